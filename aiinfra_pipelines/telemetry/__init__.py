"""Telemetry stage: a real Prometheus server for the `local` target, and the host exporter.

Modules (import the one you need; this package imports nothing heavy, so
``python -m aiinfra_pipelines.telemetry.host_exporter`` starts fast):

- :mod:`.metrics`: the metric-name contract shared with exporters, rules, triggers, analytics.
- :mod:`.config`: prometheus.yml and recording rules as YAML text.
- :mod:`.targets`: file_sd target files changed at run time (replicas come and go).
- :mod:`.promtool`: ``promtool check config|rules``.
- :mod:`.server`: start / attach / stop a detached Prometheus process by PID.
- :mod:`.client`: the HTTP API (instant and range queries, targets).
- :mod:`.host_exporter`: CPU, memory and NVIDIA GPU series of this machine.
- :mod:`.stack`: ``deploy_local_stack`` / ``teardown_local_stack``, what the asset calls.
"""
