"""aiinfra-pipelines: the lifecycle of AI infrastructure as Dagster assets.

The domain layer (one package per stage: profiling, planning, provisioning, telemetry,
scaling, execution, analytics, retuning) imports nothing from Dagster; the Dagster layer
(assets, resources, sensors, schedules, ``build_defs``) is a thin shell around it.
"""

__version__ = "0.1.0"
