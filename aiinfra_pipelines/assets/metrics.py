"""Stage 7: `run_metrics` — the iteration's series and records into DuckDB, in one transaction."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from aiinfra_pipelines.assets.partitions import iterations_partitions
from aiinfra_pipelines.resources import DeploymentResource, WorkloadSpecResource


@dg.asset(
    partitions_def=iterations_partitions,
    group_name="lifecycle",
    kinds={"duckdb"},
    description="Pulls the iteration's series from Prometheus' HTTP API and the run's records (request log, "
    "epochs, replica events, profile samples) into DuckDB in one transaction; stops the iteration's Prometheus.",
)
def run_metrics(
    context: dg.AssetExecutionContext,
    workload_spec: WorkloadSpecResource,
    deployment: DeploymentResource,
    duckdb: DuckDBResource,
    workload_profile,
    hardware_plan,
    telemetry_stack,
    scaling_policy,
    workload_run,
):
    from aiinfra_pipelines.analytics.ingest import collect_iteration, pull_series
    from aiinfra_pipelines.analytics.store import record_iteration
    from aiinfra_pipelines.telemetry.stack import teardown_local_stack

    spec = workload_spec.load()
    iteration = context.partition_key
    folder = deployment.iteration_dir(spec.name, iteration)
    try:
        start = workload_run["started_unix"] - 5.0
        end = workload_run["finished_unix"] + 1.0
        series = pull_series(telemetry_stack.client(), start, end)
    finally:
        teardown_local_stack(telemetry_stack)
    local = hardware_plan.local_equivalent
    summary = {
        "workload": spec.name,
        "target": spec.target,
        "instance_type": local.instance_type,
        "cloud": local.cloud,
        "price_per_hour": local.price_per_hour,
        "policy_family": scaling_policy.family,
        "slo_latency_s": spec.targets.latency_slo.p99_latency_s,
        "slo_target": spec.targets.latency_slo.attainment,
        "budget_usd": spec.targets.budget_usd,
        "training_seconds": workload_run.get("training_seconds"),
        "inference_window_s": workload_run.get("inference_window_s"),
        "spec_json": spec.model_dump(mode="json"),
        "plan_json": hardware_plan.model_dump(mode="json"),
        "policy_json": scaling_policy.model_dump(mode="json"),
        "profile_json": workload_profile.model_dump(mode="json"),
    }
    record = collect_iteration(iteration=iteration, iteration_dir=folder, summary=summary, series=series)
    with duckdb.get_connection() as con:
        counts = record_iteration(con, record)
    return dg.Output(
        {"iteration": iteration, "rows": counts, "database": str(deployment.database_path)},
        metadata={"database": str(deployment.database_path),
                  **{f"rows_{t}": dg.MetadataValue.int(n) for t, n in counts.items()}},
    )
