"""Stage 8: `iteration_report` — SQL over the DuckDB history, compared with the previous iteration.

Its numeric metadata (cost per epoch, cost per 1k requests, SLO attainment, p99 latency, ...)
is what the Dagster UI plots across iterations; the asset checks hold the SLO and the budget.
"""


import dagster as dg
from dagster_duckdb import DuckDBResource

from aiinfra_pipelines.assets._meta import as_json, numeric, table
from aiinfra_pipelines.assets.partitions import iterations_partitions

PLOTTED = (
    "cost_per_epoch_usd", "cost_per_1k_requests_usd", "slo_attainment", "p50_latency_s", "p95_latency_s",
    "p99_latency_s", "cpu_utilization", "gpu_utilization", "inference_utilization", "over_provisioning_ratio",
    "scale_up_response_s", "replica_seconds", "training_cost_usd", "inference_cost_usd", "requests",
    "epoch_seconds", "final_accuracy", "peak_replicas",
)


@dg.asset(
    partitions_def=iterations_partitions,
    group_name="lifecycle",
    kinds={"duckdb"},
    description="Cost per epoch, cost per 1k requests, CPU/GPU utilisation, p50/p95/p99 latency, SLO "
    "attainment, over-provisioning and scaling response, compared with the previous iteration.",
)
def iteration_report(context: dg.AssetExecutionContext, duckdb: DuckDBResource, run_metrics):
    from aiinfra_pipelines.analytics.report import build_report, history

    with duckdb.get_connection() as con:
        report = build_report(con, context.partition_key)
        past = history(con, report.workload)
    values = report.model_dump()
    rows = [{"metric": k, "value": values.get(k), "delta_vs_previous": report.delta_vs_previous.get(k)}
            for k in PLOTTED]
    meta = {
        "report": table(rows, ["metric", "value", "delta_vs_previous"]),
        "priced_as": f"{report.cloud} {report.instance_type} at ${report.price_per_hour or 0:.4f}/h per replica/node",
        "previous_iteration": report.previous_iteration or "none",
        "slo_met": str(report.slo_met),
        "budget_met": str(report.budget_met),
        "history": table(
            [{"iteration": h.iteration, "cost_per_epoch_usd": h.cost_per_epoch_usd,
              "cost_per_1k_requests_usd": h.cost_per_1k_requests_usd, "slo_attainment": h.slo_attainment,
              "p99_latency_s": h.p99_latency_s, "policy": h.policy_family} for h in past]
        ),
        "report_json": as_json(report),
    }
    meta.update(numeric({k: values.get(k) for k in PLOTTED}))
    return dg.Output(report, metadata=meta)


def _latest_report(duckdb: DuckDBResource, iteration: str):
    from aiinfra_pipelines.analytics.report import build_report

    with duckdb.get_connection() as con:
        return build_report(con, iteration)


@dg.asset_check(asset=iteration_report, description="SLO attainment meets the spec's target.")
def slo_attainment_check(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource):
    iteration = _partition(context)
    r = _latest_report(duckdb, iteration)
    if r.slo_attainment is None:
        return dg.AssetCheckResult(passed=True, metadata={"iteration": iteration, "note": "no inference part"})
    return dg.AssetCheckResult(
        passed=bool(r.slo_met),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"iteration": iteration, "slo_attainment": float(r.slo_attainment),
                  "target": float(r.slo_target or 0), "p99_latency_s": float(r.p99_latency_s or 0)},
    )


@dg.asset_check(asset=iteration_report, description="Training cost stays within the spec's budget.")
def budget_check(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource):
    iteration = _partition(context)
    r = _latest_report(duckdb, iteration)
    if r.budget_usd is None or r.training_cost_usd is None:
        return dg.AssetCheckResult(passed=True, metadata={"iteration": iteration, "note": "no budget or no training"})
    return dg.AssetCheckResult(
        passed=bool(r.budget_met),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"iteration": iteration, "training_cost_usd": float(r.training_cost_usd),
                  "budget_usd": float(r.budget_usd)},
    )


def _partition(context) -> str:
    """The partition this check evaluates: the run's partition, else the latest recorded iteration."""
    key = context.run.tags.get("dagster/partition") if context.run else None
    if key:
        return key
    raise dg.Failure("the iteration_report checks run with an iteration partition")
