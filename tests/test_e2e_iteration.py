"""One whole iteration on the `local` target, every stage real; then the sensor asks for iteration 2.

Real components: the training loop and inference server processes, Terraform (local root
module), a Prometheus server, Dagster Pipes, a DuckDB file. A short spec keeps it quick.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from aiinfra_pipelines.assets.partitions import ITERATIONS
from aiinfra_pipelines.automation import ITERATION_JOB, retuning_sensor
from aiinfra_pipelines.defs import LIFECYCLE_ASSETS, build_defs

NINE = sorted(a.key.to_user_string() for a in LIFECYCLE_ASSETS)


def _spec(tmp: Path, shared: Path, **traffic) -> Path:
    spec = yaml.safe_load((Path(__file__).parents[1] / "examples" / "lifecycle.yaml").read_text())
    spec["training"]["epochs"] = 2
    spec["traffic"].update(
        trace=str(shared / "inference_traces/azure_llm_2023/AzureLLMInferenceTrace_conv.csv"),
        duration_s=10, **traffic,
    )
    spec["max_iterations"] = 3
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _no_prometheus_left(state: Path) -> None:
    import json

    for f in state.rglob("*.state.json"):
        pid = json.loads(f.read_text()).get("pid")
        if pid:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"Prometheus (pid {pid}) was left running by the iteration")


@pytest.fixture
def deployment(tmp_path, shared_data, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setenv("AIINFRA_HOME", str(state))
    spec_path = _spec(tmp_path, shared_data)
    defs = build_defs(spec_path=spec_path, state_dir=state)
    with dg.instance_for_test() as instance:
        yield defs, instance, state, spec_path
    _no_prometheus_left(state)


def test_iteration_end_to_end_then_sensor_requests_next(deployment):
    defs, instance, state, _ = deployment
    instance.add_dynamic_partitions(ITERATIONS, ["0001"])
    job = defs.resolve_job_def(ITERATION_JOB)
    result = job.execute_in_process(instance=instance, partition_key="0001")
    assert result.success
    materialized = sorted({e.asset_key.to_user_string() for e in result.get_asset_materialization_events()})
    assert materialized == NINE

    con = duckdb.connect(str(state / "aiinfra.duckdb"), read_only=True)
    n_requests = con.execute("SELECT count(*) FROM requests WHERE iteration='0001'").fetchone()[0]
    n_series = con.execute("SELECT count(*) FROM telemetry_series WHERE iteration='0001'").fetchone()[0]
    n_epochs = con.execute("SELECT count(*) FROM training_epochs WHERE iteration='0001'").fetchone()[0]
    ok = con.execute("SELECT count(*) FROM requests WHERE iteration='0001' AND status='ok'").fetchone()[0]
    con.close()
    assert n_epochs == 2
    assert n_requests > 50 and ok / n_requests > 0.95
    assert n_series > 0  # Prometheus' series were pulled over its HTTP API

    report = result.output_for_node("iteration_report")
    assert report.cost_per_epoch_usd > 0 and report.cost_per_1k_requests_usd > 0
    assert 0 < report.slo_attainment <= 1
    assert report.p99_latency_s > 0
    assert report.instance_type  # priced at the catalog instance type matching this machine

    # the sensor reads the proposal and asks for iteration 0002, once
    proposal = result.output_for_node("retuning_proposal")
    ctx = dg.build_sensor_context(instance=instance, definitions=defs)
    out = retuning_sensor(ctx)
    if not proposal.continue_loop:
        assert isinstance(out, dg.SkipReason) and proposal.stop_reason in out.skip_message
        return
    assert isinstance(out, dg.SensorResult)
    (req,) = out.run_requests
    assert req.partition_key == "0002"
    assert req.run_key == "retune-after-0001"
    cfg = req.run_config["ops"]["hardware_plan"]["config"]
    assert cfg["source_iteration"] == "0001" and cfg["policy_family"] == proposal.policy_family
    assert out.dynamic_partitions_requests[0].partition_keys == ["0002"]
    # evaluating again (same cursor) requests nothing; a fresh evaluation asks for the same run key
    assert isinstance(retuning_sensor(ctx), dg.SkipReason)
    again = retuning_sensor(dg.build_sensor_context(instance=instance, definitions=defs))
    assert again.run_requests[0].run_key == req.run_key and again.run_requests[0].partition_key == "0002"


def test_crashing_workload_fails_and_records_nothing(tmp_path, shared_data, monkeypatch):
    state = tmp_path / "state"
    monkeypatch.setenv("AIINFRA_HOME", str(state))
    # The Azure file read as the generic format: the workload process fails while loading the trace.
    spec_path = _spec(tmp_path, shared_data, format="generic")
    defs = build_defs(spec_path=spec_path, state_dir=state)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(ITERATIONS, ["0001"])
        job = defs.resolve_job_def(ITERATION_JOB)
        result = job.execute_in_process(instance=instance, partition_key="0001", raise_on_error=False)
        assert not result.success
        failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        assert failures and failures[0].step_key == "workload_run"
        assert "runner log" in failures[0].event_specific_data.error.message
    db = state / "aiinfra.duckdb"
    if db.exists():
        con = duckdb.connect(str(db), read_only=True)
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        if "iterations" in tables:
            assert con.execute("SELECT count(*) FROM iterations").fetchone()[0] == 0
        con.close()
    _no_prometheus_left(state)
