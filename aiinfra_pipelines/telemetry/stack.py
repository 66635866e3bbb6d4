"""The `telemetry_stack` stage for the `local` target: a real Prometheus server on loopback.

:func:`deploy_local_stack` writes the config and the recording rules, has promtool check
both, starts the host exporter and the server (concurrently: each takes a fraction of a
second), registers the exporter and the server itself in file_sd, and returns once the
server is ready and both targets are up. The returned :class:`TelemetryStack` is plain
JSON (also written to ``<run_dir>/telemetry.state.json``), so a later pipeline step in
another process re-attaches with :meth:`TelemetryStack.attach`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from . import metrics as m
from .client import PrometheusClient
from .config import DEFAULT_JOBS, render_prometheus_config, render_recording_rules
from .binaries import resolve_prometheus, resolve_promtool
from .errors import PrometheusStartError, TelemetryError
from .promtool import check_config, check_rules
from .server import PrometheusServer, pid_alive, terminate_pid
from .targets import TargetRegistry

HOST_EXPORTER_MODULE = "aiinfra_pipelines.telemetry.host_exporter"
STACK_STATE_FILE = "telemetry.state.json"  # the only *.state.json in the folder: TelemetryStack.attach reads it


class TelemetryStack(BaseModel):
    """Where the local telemetry stack runs and what it scrapes."""

    model_config = ConfigDict(frozen=True)

    url: str = Field(description="Base URL of the Prometheus HTTP API.")
    port: int
    pid: int = Field(description="PID of the Prometheus server process.")
    config_path: Path
    rules_path: Path
    file_sd_dir: Path = Field(description="Directory of the per-job file_sd target files.")
    state_file: Path = Field(description="This stack as JSON; TelemetryStack.attach reads it.")
    prometheus_state_file: Path
    tsdb_dir: Path
    tsdb_temporary: bool
    host_exporter_pid: int | None
    host_exporter_port: int | None
    scrape_interval_s: float
    evaluation_interval_s: float
    rule_window_s: float
    targets_up: list[str] = Field(description='Targets up when the stack was ready, as "job/instance".')
    ready_s: float = Field(description="Seconds from the call to a ready server with its targets up.")

    @classmethod
    def attach(cls, state_file: str | os.PathLike) -> TelemetryStack:
        p = Path(state_file)
        try:
            return cls.model_validate_json(p.read_text())
        except FileNotFoundError as err:
            raise TelemetryError(f"no telemetry stack state at {p}: deploy_local_stack has not run or the stack was torn down") from err

    def client(self) -> PrometheusClient:
        return PrometheusClient(self.url)

    def registry(self) -> TargetRegistry:
        return TargetRegistry(self.file_sd_dir)

    def server(self) -> PrometheusServer:
        return PrometheusServer.attach(self.prometheus_state_file)

    def is_running(self) -> bool:
        return pid_alive(self.pid)


def _start_host_exporter(ready_file: Path, log_file: Path) -> subprocess.Popen:
    with contextlib.suppress(FileNotFoundError):
        ready_file.unlink()
    with open(log_file, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", HOST_EXPORTER_MODULE, "--port", "0", "--ready-file", str(ready_file)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_host_exporter(proc: subprocess.Popen, ready_file: Path, log_file: Path, timeout_s: float) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready_file.exists():
            return json.loads(ready_file.read_text())
        if proc.poll() is not None:
            raise TelemetryError(
                f"the host exporter exited with status {proc.returncode}; log {log_file}:\n{log_file.read_text()[-3000:]}"
            )
        time.sleep(0.02)
    raise TelemetryError(f"the host exporter did not listen within {timeout_s:g} s; log {log_file}")


def deploy_local_stack(
    run_dir: str | os.PathLike,
    *,
    scrape_interval_s: float = 1.0,
    evaluation_interval_s: float | None = None,
    rule_window_s: float = 30.0,
    jobs: tuple[str, ...] = DEFAULT_JOBS,
    keep_tsdb: bool = False,
    host_exporter: bool = True,
    port: int | None = None,
    binary: str | os.PathLike | None = None,
    timeout_s: float = 30.0,
) -> TelemetryStack:
    """Deploys the local telemetry stack; its files go to ``run_dir`` (created when missing).

    ``keep_tsdb``: keep the TSDB in ``<run_dir>/tsdb`` after teardown instead of a
    temporary directory that teardown removes. ``binary``: the prometheus binary (else
    $AIINFRA_PROMETHEUS_BIN, else PATH). Anything started is stopped again when a step fails.
    """
    t0 = time.monotonic()
    binary = resolve_prometheus(binary)  # a missing tool fails here, before anything starts
    resolve_promtool()
    evaluation_interval_s = scrape_interval_s if evaluation_interval_s is None else evaluation_interval_s
    tdir = Path(run_dir).resolve()
    tdir.mkdir(parents=True, exist_ok=True)
    file_sd_dir = tdir / "file_sd"
    registry = TargetRegistry(file_sd_dir)
    for job in (*jobs, m.JOB_PROMETHEUS):
        registry.ensure(job)

    rules_path = tdir / "rules.yml"
    rules_path.write_text(render_recording_rules(window_s=rule_window_s, evaluation_interval_s=evaluation_interval_s))
    config_path = tdir / "prometheus.yml"
    config_path.write_text(
        render_prometheus_config(
            scrape_interval_s=scrape_interval_s,
            evaluation_interval_s=evaluation_interval_s,
            file_sd_dir=file_sd_dir,
            rule_files=[rules_path],
            jobs=jobs,
        )
    )
    check_rules(rules_path)
    check_config(config_path)

    server = PrometheusServer(
        config_path, tdir / "tsdb" if keep_tsdb else None, port=port, binary=binary, state_file=tdir / "prometheus-server.json"
    )
    exporter: subprocess.Popen | None = None
    exporter_info: dict | None = None
    try:
        ready_file = tdir / "host_exporter.ready.json"
        exporter_log = tdir / "host_exporter.log"
        if host_exporter:
            exporter = _start_host_exporter(ready_file, exporter_log)
        server.start(timeout_s=timeout_s)
        registry.set(m.JOB_PROMETHEUS, [{"address": server.listen_address, "labels": {}}])
        if exporter is not None:
            exporter_info = _wait_host_exporter(exporter, ready_file, exporter_log, timeout_s)
            registry.set(
                m.JOB_HOST,
                [{"address": f"127.0.0.1:{exporter_info['port']}", "labels": {"hostname": socket.gethostname()}}],
            )
        remaining = max(1.0, timeout_s - (time.monotonic() - t0))
        server.wait_ready(remaining)
        client = PrometheusClient(server.url)
        up = client.wait_for_targets(m.JOB_PROMETHEUS, timeout_s=remaining)
        if exporter is not None:
            up += client.wait_for_targets(m.JOB_HOST, timeout_s=remaining)
    except BaseException:
        with contextlib.suppress(Exception):
            server.stop()
        if exporter is not None:
            terminate_pid(exporter.pid)
            exporter.wait(timeout=5)
        raise

    stack = TelemetryStack(
        url=server.url,
        port=server.port,
        pid=server.pid,
        config_path=config_path,
        rules_path=rules_path,
        file_sd_dir=file_sd_dir,
        state_file=tdir / STACK_STATE_FILE,
        prometheus_state_file=server.state_file,
        tsdb_dir=server.tsdb_dir,
        tsdb_temporary=server.tsdb_temporary,
        host_exporter_pid=exporter.pid if exporter is not None else None,
        host_exporter_port=exporter_info["port"] if exporter_info else None,
        scrape_interval_s=scrape_interval_s,
        evaluation_interval_s=evaluation_interval_s,
        rule_window_s=rule_window_s,
        targets_up=[_target(t) for t in up],
        ready_s=round(time.monotonic() - t0, 3),
    )
    tmp = stack.state_file.with_name(f".{stack.state_file.name}.tmp")
    tmp.write_text(stack.model_dump_json(indent=2))
    os.replace(tmp, stack.state_file)
    return stack


def _target(t: dict) -> str:
    labels = t.get("labels", {})
    return f"{labels.get('job', '')}/{labels.get('instance', '')}"


def scrape_targets_up(stack: TelemetryStack, job: str, min_count: int = 1, timeout_s: float = 30.0) -> list[str]:
    """Waits until ``min_count`` targets of ``job`` are up and returns them as "job/instance";
    raises :class:`TargetsDownError` listing each target's health and lastError."""
    return [_target(t) for t in stack.client().wait_for_targets(job, up=True, min_count=min_count, timeout_s=timeout_s)]


def teardown_local_stack(stack: TelemetryStack, timeout_s: float = 10.0) -> bool:
    """Stops the server (removing a temporary TSDB) and the host exporter, by PID; idempotent.
    Returns whether anything was still running."""
    stopped = False
    try:
        server = stack.server()
    except PrometheusStartError:  # state file gone: stopped before; still make sure the PID is gone
        stopped |= terminate_pid(stack.pid, timeout_s=timeout_s / 2, must_contain=f"--web.listen-address=127.0.0.1:{stack.port}")
    else:
        stopped |= server.stop(timeout_s=timeout_s)
    if stack.host_exporter_pid:
        stopped |= terminate_pid(stack.host_exporter_pid, timeout_s=timeout_s / 2, must_contain=HOST_EXPORTER_MODULE)
    if stack.tsdb_temporary:
        shutil.rmtree(stack.tsdb_dir, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        stack.state_file.unlink()
    return stopped
