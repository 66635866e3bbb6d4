"""The retuning sensor and the periodic schedule, evaluated against a real Dagster instance.

A `retuning_proposal` materialization is recorded in the instance (as an iteration would
record it); the sensor must ask for the next iteration exactly once, with the proposal as run
config that the iteration job accepts, and stop when the proposal says the loop is done.
"""

from __future__ import annotations

import dagster as dg
import pytest

from aiinfra_pipelines.assets.partitions import ITERATIONS, iteration_number, next_iteration_key
from aiinfra_pipelines.automation import ITERATION_JOB, PROPOSAL_KEY, periodic_retuning_schedule, retuning_sensor
from aiinfra_pipelines.defs import build_defs

PROPOSAL = {
    "source_iteration": "0001",
    "reason": "SLO attainment 91.2% below the 99% target; hybrid predicted to reach 99.6%",
    "policy_family": "hybrid",
    "policy_params": {"capacity_rps": 40.0, "headroom": 0.25, "horizon_s": 30.0, "min_replicas": 1.0, "max_replicas": 4.0},
    "policy_metric": None,
    "min_replicas": 1,
    "max_replicas": 4,
    "inference_instance_types": ["g5.xlarge"],
    "training_instance_type": "g5.2xlarge",
    "target_rps": 18.0,
}


def _record_proposal(instance, iteration: str, *, continue_loop: bool, stop_reason: str = "") -> None:
    cfg = dict(PROPOSAL, source_iteration=iteration)
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key=PROPOSAL_KEY,
            partition=iteration,
            metadata={
                "continue_loop": str(continue_loop),
                "reason": cfg["reason"],
                "stop_reason": stop_reason,
                "proposal": dg.MetadataValue.json(cfg),
            },
        )
    )


@pytest.fixture
def defs(tmp_path, examples_dir):
    return build_defs(spec_path=examples_dir / "lifecycle.yaml", state_dir=tmp_path / "state")


def test_sensor_requests_next_iteration_once_with_typed_proposal(defs):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(ITERATIONS, ["0001"])
        assert isinstance(retuning_sensor(dg.build_sensor_context(instance=instance, definitions=defs)), dg.SkipReason)

        _record_proposal(instance, "0001", continue_loop=True)
        ctx = dg.build_sensor_context(instance=instance, definitions=defs)
        out = retuning_sensor(ctx)
        assert isinstance(out, dg.SensorResult)
        (req,) = out.run_requests
        assert req.partition_key == "0002" and req.run_key == "retune-after-0001"
        assert out.dynamic_partitions_requests[0].partition_keys == ["0002"]
        for op in ("hardware_plan", "scaling_policy"):
            cfg = req.run_config["ops"][op]["config"]
            assert cfg["policy_family"] == "hybrid" and cfg["inference_instance_types"] == ["g5.xlarge"]
        # the run config is valid for the iteration job (typed ProposalConfig)
        job = defs.resolve_job_def(ITERATION_JOB)
        assert dg.validate_run_config(job, req.run_config)

        # idempotent: the same cursor skips, a fresh context asks for the same run key again
        assert isinstance(retuning_sensor(ctx), dg.SkipReason)
        again = retuning_sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        assert again.run_requests[0].run_key == req.run_key


def test_sensor_stops_the_loop_and_says_why(defs):
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(ITERATIONS, ["0001", "0002"])
        _record_proposal(instance, "0002", continue_loop=False, stop_reason="reached max_iterations (2)")
        out = retuning_sensor(dg.build_sensor_context(instance=instance, definitions=defs))
        assert isinstance(out, dg.SkipReason)
        assert "reached max_iterations (2)" in out.skip_message and "0002" in out.skip_message


def test_schedule_is_off_by_default_and_requests_the_next_iteration(defs):
    assert periodic_retuning_schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(ITERATIONS, ["0001", "0002"])
        _record_proposal(instance, "0002", continue_loop=False, stop_reason="within tolerance")
        ctx = dg.build_schedule_context(instance=instance, scheduled_execution_time=__import__("datetime").datetime(2026, 12, 5, 3))
        req = periodic_retuning_schedule(ctx)
        assert req.partition_key == "0003" and req.run_key == "scheduled-20261205T0300"
        assert "0003" in instance.get_dynamic_partitions(ITERATIONS)
        assert req.run_config["ops"]["scaling_policy"]["config"]["source_iteration"] == "0002"


def test_iteration_keys():
    assert next_iteration_key([]) == "0001"
    assert next_iteration_key(["0001", "0009", "manual"]) == "0010"
    with pytest.raises(ValueError, match="partition 'manual'"):
        iteration_number("manual")
