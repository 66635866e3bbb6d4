"""`build_defs`: the whole lifecycle as Dagster Definitions, for this code location or for embedding.

    from aiinfra_pipelines.defs import build_defs
    defs = build_defs(spec_path="my-workload.yaml", state_dir="/var/lib/aiinfra")

Embedders can merge the result with their own `Definitions` (`dg.Definitions.merge`),
override any resource by key, or take only `LIFECYCLE_ASSETS` and wire their own.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from aiinfra_pipelines.assets.infrastructure import infrastructure
from aiinfra_pipelines.assets.metrics import run_metrics
from aiinfra_pipelines.assets.plan import hardware_plan
from aiinfra_pipelines.assets.profile import workload_profile
from aiinfra_pipelines.assets.report import budget_check, iteration_report, slo_attainment_check
from aiinfra_pipelines.assets.retuning import retuning_proposal
from aiinfra_pipelines.assets.run import workload_run
from aiinfra_pipelines.assets.scaling import scaling_policy
from aiinfra_pipelines.assets.telemetry import telemetry_stack
from aiinfra_pipelines.automation import ITERATION_JOB, periodic_retuning_schedule, retuning_sensor
from aiinfra_pipelines.resources import DeploymentResource, WorkloadSpecResource

LIFECYCLE_ASSETS = [
    workload_profile,
    hardware_plan,
    infrastructure,
    telemetry_stack,
    scaling_policy,
    workload_run,
    run_metrics,
    iteration_report,
    retuning_proposal,
]
LIFECYCLE_CHECKS = [slo_attainment_check, budget_check]

iteration_job = dg.define_asset_job(
    ITERATION_JOB,
    selection=dg.AssetSelection.assets(*LIFECYCLE_ASSETS),
    # One process: the stages are sequential, and a process per step would cost seconds each.
    executor_def=dg.in_process_executor,
    description="One lifecycle iteration: profile -> plan -> provision -> telemetry -> policy -> run -> "
    "metrics -> report -> proposal.",
)


def build_defs(
    *,
    spec_path: str | Path | None = None,
    state_dir: str | Path | None = None,
    target: str | None = None,
    aws_endpoint: str | None = None,
) -> dg.Definitions:
    """Definitions for one workload's lifecycle; every argument defaults from the environment."""
    from aiinfra_pipelines.resources.terraform import TerraformResource

    spec_res = WorkloadSpecResource(spec_path=str(spec_path)) if spec_path else WorkloadSpecResource()
    deployment = DeploymentResource(state_dir=str(state_dir)) if state_dir else DeploymentResource()
    if target is None:
        try:
            target = spec_res.load().target
        except Exception:  # a bad spec is reported when an iteration loads it, not at code-location load
            target = "local"
    terraform_kwargs = {"target": target, "state_dir": str(deployment.root)}
    if aws_endpoint:
        terraform_kwargs["aws_endpoint"] = aws_endpoint
    return dg.Definitions(
        assets=LIFECYCLE_ASSETS,
        asset_checks=LIFECYCLE_CHECKS,
        jobs=[iteration_job],
        sensors=[retuning_sensor],
        schedules=[periodic_retuning_schedule],
        resources={
            "workload_spec": spec_res,
            "deployment": deployment,
            "duckdb": DuckDBResource(database=str(deployment.database_path)),
            "terraform": TerraformResource(**terraform_kwargs),
            "pipes_subprocess_client": dg.PipesSubprocessClient(),
        },
    )
