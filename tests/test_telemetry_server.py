"""Against a real Prometheus server: the local stack started by another process and re-attached,
a replica exporter discovered through file_sd at run time with its recording rules evaluated,
a down target reported with its error, a busy port, reload, and stop/teardown by PID."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from aiinfra_pipelines.telemetry import metrics as m
from aiinfra_pipelines.telemetry.config import render_prometheus_config
from aiinfra_pipelines.telemetry.errors import PrometheusStartError, TargetsDownError
from aiinfra_pipelines.telemetry.server import PrometheusServer, free_port, pid_alive, port_is_free
from aiinfra_pipelines.telemetry.stack import TelemetryStack, scrape_targets_up, teardown_local_stack

pytestmark = pytest.mark.timeout(60)

# rate() divides by the whole window, so a new series reads low until the window is full;
# a short window keeps this test fast (the default, 30 s, is what the rule names say).
RULE_WINDOW_S = 4.0


def _deploy_in_child(run_dir) -> TelemetryStack:
    """Deploys the stack from a separate Python process that then exits, as the asset does."""
    code = (
        "import sys; from aiinfra_pipelines.telemetry.stack import deploy_local_stack;"
        "print(deploy_local_stack(sys.argv[1], rule_window_s=float(sys.argv[2])).state_file)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(run_dir), str(RULE_WINDOW_S)], capture_output=True, text=True, timeout=45)
    assert out.returncode == 0, out.stderr
    return TelemetryStack.attach(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = _deploy_in_child(tmp_path_factory.mktemp("run") / "telemetry")
    yield s
    teardown_local_stack(s)


def _poll(fn, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.2)
    pytest.fail(f"{what} not seen within {timeout_s} s")


class _Replica:
    """A real exporter with the replica metric names; a thread drives its counters at a known rate."""

    def __init__(self, replica="r0", period_s=0.05, busy_fraction=0.5, latency_s=0.15, queue=3):
        self.registry = CollectorRegistry()
        lab = {"replica": replica}
        self.requests = Counter(m.INFERENCE_REQUESTS_TOTAL, "req", ["replica", "status"], registry=self.registry)
        self.busy = Counter(m.INFERENCE_BUSY_SECONDS_TOTAL, "busy", ["replica"], registry=self.registry).labels(**lab)
        self.latency = Histogram(m.INFERENCE_REQUEST_DURATION, "lat", ["replica"], buckets=(0.05, 0.1, 0.2, 0.5),
                                 registry=self.registry).labels(**lab)
        Gauge(m.INFERENCE_QUEUE_LENGTH, "queue", ["replica"], registry=self.registry).labels(**lab).set(queue)
        self.ok = self.requests.labels(replica=replica, status="ok")
        self.period_s, self.busy_fraction, self.latency_s = period_s, busy_fraction, latency_s
        self.count, self.t0 = 0, time.monotonic()
        self._stop = threading.Event()
        self.server, _ = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.address = f"127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self._drive, daemon=True)
        self._thread.start()

    def _drive(self):
        last = time.monotonic()
        while not self._stop.wait(self.period_s):
            now = time.monotonic()
            self.busy.inc((now - last) * self.busy_fraction)
            last = now
            self.ok.inc()
            self.latency.observe(self.latency_s)
            self.count += 1

    def rate(self) -> float:
        return self.count / (time.monotonic() - self.t0)

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.server.shutdown()
        self.server.server_close()


def test_stack_outlives_its_starter_and_reattaches(stack):
    assert stack.is_running() and pid_alive(stack.host_exporter_pid)
    assert f"{m.JOB_HOST}/127.0.0.1:{stack.host_exporter_port}" in stack.targets_up
    assert f"{m.JOB_PROMETHEUS}/127.0.0.1:{stack.port}" in stack.targets_up
    assert stack.ready_s < 15, stack.ready_s
    assert f"[{RULE_WINDOW_S:g}s]" in stack.rules_path.read_text()
    # the host exporter's real series arrive
    c = stack.client()
    cpu = _poll(lambda: c.query(m.HOST_CPU_UTILIZATION), 10, "host CPU series")
    assert 0.0 <= float(cpu[0]["value"][1]) <= 1.0 and cpu[0]["metric"]["job"] == m.JOB_HOST
    assert {m.HOST_MEMORY_USED_BYTES, "up", "prometheus_build_info"} <= set(c.series_names())
    # a range query as a long table
    end = time.time()
    df = c.query_range(f'up{{job="{m.JOB_HOST}"}}', end - 5, end, 1)
    assert list(df.columns) == ["ts", "metric", "labels", "value"] and len(df) >= 1
    assert isinstance(df["ts"].dtype, pd.DatetimeTZDtype) and (df["value"] == 1.0).all()
    assert json.loads(df["labels"].iloc[0])["job"] == m.JOB_HOST and df["metric"].iloc[0] == "up"
    # with no replica yet, the ready-replica count is 0, not absent
    assert _poll(lambda: c.query(m.RULE_READY_REPLICAS), 10, "ready replicas")[0]["value"][1] == "0"


def test_replica_added_at_run_time_is_scraped_and_rules_evaluate(stack):
    c, reg = stack.client(), stack.registry()
    replica = _Replica()
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    try:
        reg.add(m.JOB_INFERENCE, replica.address, {"replica": "r0"})
        reg.add(m.JOB_TRAINING, dead)
        assert scrape_targets_up(stack, m.JOB_INFERENCE, min_count=1, timeout_s=20) == [f"inference/{replica.address}"]

        def all_rules():
            got = {r: c.query(r) for r in (m.RULE_REQUEST_RATE, m.RULE_UTILIZATION, m.RULE_QUEUE_PER_REPLICA, m.RULE_LATENCY_P99)}
            return got if all(got.values()) else None

        _poll(all_rules, 15, "all recording rules")
        time.sleep(RULE_WINDOW_S + 1)  # the replica's series now fills the rate window
        got = {k: float(v[0]["value"][1]) for k, v in all_rules().items()}
        assert 0.6 * replica.rate() < got[m.RULE_REQUEST_RATE] < 1.4 * replica.rate(), (got, replica.rate())
        assert 0.35 < got[m.RULE_UTILIZATION] < 0.65, got
        assert got[m.RULE_QUEUE_PER_REPLICA] == 3.0
        assert 0.1 < got[m.RULE_LATENCY_P99] <= 0.2, got  # every request took 0.15 s: the (0.1, 0.2] bucket
        assert c.query_value(m.RULE_READY_REPLICAS) == 1.0
        # the exporter's own `replica` label is kept (honor_labels), not renamed exported_replica
        series = c.query(m.INFERENCE_REQUESTS_TOTAL)
        assert series[0]["metric"]["replica"] == "r0" and "exported_replica" not in series[0]["metric"]

        # the dead training target is reported with its scrape error
        c.wait_for_targets(m.JOB_TRAINING, up=False, timeout_s=15)
        with pytest.raises(TargetsDownError) as err:
            scrape_targets_up(stack, m.JOB_TRAINING, timeout_s=0.5)
        assert dead in str(err.value) and "connection refused" in str(err.value)

        # scale-in: the replica leaves file_sd, and the ready count follows without a restart
        reg.remove(m.JOB_INFERENCE, replica.address)
        _poll(lambda: c.query_value(m.RULE_READY_REPLICAS) == 0.0, 20, "ready replicas back to 0")
    finally:
        reg.set(m.JOB_INFERENCE, [])
        reg.set(m.JOB_TRAINING, [])
        replica.close()


def test_busy_port_gets_another_port_then_stop_leaves_nothing(tmp_path):
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(render_prometheus_config(scrape_interval_s=1, evaluation_interval_s=1, file_sd_dir=tmp_path, rule_files=[]))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        server = PrometheusServer(cfg, port=taken)
        try:
            server.start()
            assert server.port != taken and server.port_attempts[0] == taken and len(server.port_attempts) >= 2
            assert "address already in use" in server.log_file.read_text()
            server.wait_ready(10)
            state = json.loads(server.state_file.read_text())
            assert state["pid"] == server.pid and state["url"] == f"http://127.0.0.1:{server.port}"
            tsdb = server.tsdb_dir
            assert tsdb.is_dir() and state["tsdb"] == str(tsdb)

            # reload: a broken config is refused with the server's reason, and the server keeps running
            good = cfg.read_text()
            cfg.write_text(good + "scrape_configs: [{job_name: x, scrape_interval: nonsense}]\n")
            with pytest.raises(PrometheusStartError, match="rejected the reload"):
                server.reload()
            cfg.write_text(good)
            server.reload()
        finally:
            attached = PrometheusServer.attach(server.state_file) if server.state_file.exists() else server
            pid, port = attached.pid, attached.port
            assert attached.stop() is True
    assert not pid_alive(pid) and port_is_free("127.0.0.1", port)
    assert not tsdb.exists() and not server.state_file.exists()
    assert server.stop() is False  # idempotent


def test_teardown_stops_everything_by_pid(stack):
    assert teardown_local_stack(stack) is True
    assert not pid_alive(stack.pid) and not pid_alive(stack.host_exporter_pid)
    assert port_is_free("127.0.0.1", stack.port) and port_is_free("127.0.0.1", stack.host_exporter_port)
    assert not stack.tsdb_dir.exists() and not stack.state_file.exists()
    assert teardown_local_stack(stack) is False
