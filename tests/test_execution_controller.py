"""The live autoscaling controller against a real Prometheus: replica processes are started
under load (the utilisation signal only Prometheus has) and drained once the load is gone and
the stabilisation window has passed; their exporters come and go as file_sd targets."""

from __future__ import annotations

import threading
import time

import pytest

from aiinfra_pipelines.execution.controller import Controller, PrometheusObserver
from aiinfra_pipelines.execution.replicas import ReplicaSet, ReplicaStartError
from aiinfra_pipelines.scaling.policies import ReactivePolicy
from aiinfra_pipelines.telemetry import metrics as m
from aiinfra_pipelines.telemetry.server import pid_alive
from aiinfra_pipelines.telemetry.stack import deploy_local_stack, teardown_local_stack
from aiinfra_pipelines.workloads.serving import InferenceClient

pytestmark = pytest.mark.timeout(120)

SCALE_DOWN_WINDOW_S = 3.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = deploy_local_stack(tmp_path_factory.mktemp("telemetry"), scrape_interval_s=0.5, rule_window_s=2.0,
                           host_exporter=False)
    yield s
    teardown_local_stack(s)
    assert not pid_alive(s.pid)


def _drive(replicas: ReplicaSet, stop: threading.Event, errors: list) -> None:
    """A closed-loop client: one request in flight at a time, routed like the load generator."""
    clients: dict[str, InferenceClient] = {}
    while not stop.is_set():
        r = replicas.acquire(timeout_s=1.0)
        if r is None:
            continue
        try:
            c = clients.get(r.name) or clients.setdefault(r.name, InferenceClient(r.port))
            c.predict({"input_tokens": 1024, "output_tokens": 200})
        except Exception as err:  # a drained replica's connection; counted, the test checks none while loaded
            errors.append(f"{r.name}: {err}")
            clients.pop(r.name, None)
        finally:
            replicas.release(r)
    for c in clients.values():
        c.close()


def test_scales_up_under_load_and_drains_after_the_window(stack, model_path, tmp_path):
    registry = stack.registry()
    replicas = ReplicaSet(
        model_path=model_path, workdir=tmp_path / "replicas", max_batch_size=8,
        on_ready=lambda r: registry.add(m.JOB_INFERENCE, r.address, {"replica": r.name}),
        on_removed=lambda r: registry.remove(m.JOB_INFERENCE, r.address),
    )
    policy = ReactivePolicy(metric="utilization", target=0.4, min_replicas=1, max_replicas=3,
                            scale_down_stabilization_s=SCALE_DOWN_WINDOW_S, scale_down_step=2)
    client = stack.client()
    controller = Controller(policy, replicas, PrometheusObserver(client, replicas), interval_s=0.5,
                            min_replicas=1, max_replicas=3)
    stop_load = threading.Event()
    load_errors: list[str] = []
    drivers = [threading.Thread(target=_drive, args=(replicas, stop_load, load_errors), daemon=True) for _ in range(6)]
    pids: set[int] = set()
    try:
        replicas.scale_to(1)
        replicas.wait_ready(1, timeout_s=30)
        client.wait_for_targets(m.JOB_INFERENCE, min_count=1, timeout_s=15)
        controller.start()
        for t in drivers:
            t.start()
        # under load the busy fraction (from Prometheus) rises and the controller starts replicas
        deadline = time.monotonic() + 45
        while len(replicas.ready) < 3 and time.monotonic() < deadline:
            pids |= {r.process.pid for r in replicas.ready}
            time.sleep(0.2)
        pids |= {r.process.pid for r in replicas.ready}
        assert len(replicas.ready) == 3, (controller.steps[-5:], replicas.errors, controller.errors)
        assert len(pids) == 3 and all(pid_alive(p) for p in pids)
        assert len(client.wait_for_targets(m.JOB_INFERENCE, min_count=3, timeout_s=15)) == 3
        up_steps = [s for s in controller.steps if s.desired_replicas > 1]
        assert up_steps and up_steps[0].source == "prometheus" and up_steps[0].utilization > 0.4
        time.sleep(1.0)  # the new replicas take load too
        stop_load.set()
        t_idle = replicas.now()
        for t in drivers:
            t.join(10)
        assert not load_errors
        # no load: utilisation falls to zero, and after the window the controller drains to one replica
        deadline = time.monotonic() + 30
        while replicas.active_count > 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert replicas.active_count == 1, (controller.steps[-5:], controller.errors)
        drains = [e for e in replicas.events if e.event == "draining"]
        assert drains and all(e.ts_s >= t_idle + SCALE_DOWN_WINDOW_S - 0.5 for e in drains)
        deadline = time.monotonic() + 15
        while len({e.replica for e in replicas.events if e.event == "stopped"}) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len({e.replica for e in replicas.events if e.event == "stopped"}) == 2
        survivor = replicas.ready[0]
        assert [p for p in pids if pid_alive(p)] == [survivor.process.pid]
        assert registry.addresses(m.JOB_INFERENCE) == [survivor.address]
    finally:
        stop_load.set()
        controller.stop()
        replicas.stop_all()
    assert not controller.errors and not replicas.errors
    assert not any(pid_alive(p) for p in pids)
    assert registry.addresses(m.JOB_INFERENCE) == []
    # each replica: requested -> ready -> draining -> stopped, exactly once each
    for name in {e.replica for e in replicas.events}:
        assert [e.event for e in replicas.events if e.replica == name] == ["requested", "ready", "draining", "stopped"]


def test_a_replica_drained_while_starting_never_becomes_a_target(model_path, tmp_path):
    added: list[str] = []
    replicas = ReplicaSet(model_path=model_path, workdir=tmp_path, max_batch_size=4, start_delay_s=2.0,
                          on_ready=lambda r: added.append(r.name))
    try:
        replicas.scale_to(1)
        replicas.drain_one()  # scaled down again before it became ready
        time.sleep(2.5)
        assert added == [] and replicas.errors == [] and replicas.active_count == 0
        assert [e.event for e in replicas.events] == ["requested", "draining", "stopped"]
    finally:
        replicas.stop_all()


def test_a_replica_that_crashes_at_start_surfaces_its_log(tmp_path):
    bad = tmp_path / "model.npz"
    bad.write_bytes(b"not a model")
    replicas = ReplicaSet(model_path=bad, workdir=tmp_path / "replicas", max_batch_size=4)
    try:
        replicas.scale_to(1)
        with pytest.raises(ReplicaStartError) as err:
            replicas.wait_ready(1, timeout_s=30)
    finally:
        replicas.stop_all()
    msg = str(err.value)
    assert "replica-1 exited with" in msg
    assert "Traceback" in msg or "error:" in msg  # the replica's own log, not just its status
    assert replicas.active_count == 0
