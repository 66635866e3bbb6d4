"""The iteration report: SQL over the DuckDB history.

Cost model: on every target a replica (and the training node) is billed per second at the
catalog price of its instance type; on ``local`` that is the catalog instance type that
matches this machine, so the figures are real prices that iterations can be compared on.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb
from pydantic import BaseModel

from aiinfra_pipelines.analytics.store import ensure_schema
from aiinfra_pipelines.telemetry import metrics as m

_SUMMARY_SQL = """
WITH it AS (SELECT * FROM iterations WHERE iteration = $it),
ep AS (
    SELECT count(*) AS epochs, sum(seconds) AS epoch_seconds, sum(samples) AS samples,
           arg_max(loss, epoch) AS final_loss, arg_max(accuracy, epoch) AS final_accuracy
    FROM training_epochs WHERE iteration = $it
),
rq AS (
    SELECT count(*) AS requests,
           count(*) FILTER (WHERE status = 'ok') AS ok_requests,
           quantile_cont(latency_s, 0.50) FILTER (WHERE status = 'ok') AS p50_latency_s,
           quantile_cont(latency_s, 0.95) FILTER (WHERE status = 'ok') AS p95_latency_s,
           quantile_cont(latency_s, 0.99) FILTER (WHERE status = 'ok') AS p99_latency_s,
           avg(queue_s) AS mean_queue_s,
           count(*) FILTER (WHERE status = 'ok' AND latency_s <= (SELECT slo_latency_s FROM it)) AS within_slo
    FROM requests WHERE iteration = $it
),
-- busy seconds: a batch's requests share its compute, so summing their service times would
-- count a batch of k requests k times. Each request's service window on the router's clock
-- is [done - service_s, done] (done = arrival_s + latency_s); the union of the windows per
-- replica is the time its model worker computed.
svc AS (
    SELECT replica, arrival_s + latency_s - service_s AS s, arrival_s + latency_s AS e
    FROM requests WHERE iteration = $it AND service_s IS NOT NULL AND latency_s IS NOT NULL
),
svc_prev AS (
    SELECT replica, s, e,
           max(e) OVER (PARTITION BY replica ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_e
    FROM svc
),
svc_runs AS (
    SELECT replica, s, e,
           sum(CASE WHEN prev_e IS NULL OR s > prev_e THEN 1 ELSE 0 END)
               OVER (PARTITION BY replica ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS run
    FROM svc_prev
),
busy AS (
    SELECT sum(run_e - run_s) AS busy_seconds
    FROM (SELECT replica, run, min(s) AS run_s, max(e) AS run_e FROM svc_runs GROUP BY replica, run)
),
-- replica-seconds: each replica is billed from 'requested' until 'stopped' (or the last event).
life AS (
    SELECT replica,
           min(ts_s) FILTER (WHERE event = 'requested') AS requested_s,
           min(ts_s) FILTER (WHERE event = 'ready') AS ready_s,
           max(ts_s) FILTER (WHERE event = 'stopped') AS stopped_s
    FROM replica_events WHERE iteration = $it GROUP BY replica
),
window_end AS (SELECT max(ts_s) AS end_s FROM replica_events WHERE iteration = $it),
rep AS (
    SELECT sum(coalesce(stopped_s, (SELECT end_s FROM window_end)) - requested_s) AS replica_seconds,
           avg(ready_s - requested_s) AS scale_up_response_s,
           count(*) AS replicas_started,
           max(desired) AS peak_replicas
    FROM life LEFT JOIN (SELECT max(desired) AS desired FROM replica_events WHERE iteration = $it) d ON true
),
tel AS (
    SELECT avg(value) FILTER (WHERE metric = $host_cpu) AS cpu_utilization,
           avg(value) FILTER (WHERE metric = $gpu_util) AS gpu_utilization,
           avg(value) FILTER (WHERE metric = $util_rule) AS inference_utilization,
           max(value) FILTER (WHERE metric = $p99_rule) AS p99_latency_server_s
    FROM telemetry_series WHERE iteration = $it
)
SELECT it.iteration, it.workload, it.target, it.instance_type, it.cloud, it.price_per_hour,
       it.policy_family, it.slo_latency_s, it.slo_target, it.budget_usd,
       ep.epochs, ep.epoch_seconds, ep.samples, ep.final_loss, ep.final_accuracy,
       it.training_seconds,
       rq.requests, rq.ok_requests, rq.p50_latency_s, rq.p95_latency_s, rq.p99_latency_s, rq.mean_queue_s,
       busy.busy_seconds, rq.within_slo,
       rep.replica_seconds, rep.scale_up_response_s, rep.replicas_started, rep.peak_replicas,
       it.inference_window_s,
       tel.cpu_utilization, tel.gpu_utilization, tel.inference_utilization, tel.p99_latency_server_s
FROM it, ep, rq, busy, rep, tel
"""


class IterationReport(BaseModel):
    """What one iteration achieved; every figure derived by SQL from the recorded data."""

    iteration: str
    workload: str
    target: str
    instance_type: str | None
    cloud: str | None
    price_per_hour: float | None
    policy_family: str | None
    epochs: int
    epoch_seconds: float | None
    final_accuracy: float | None
    cost_per_epoch_usd: float | None
    training_cost_usd: float | None
    requests: int
    p50_latency_s: float | None
    p95_latency_s: float | None
    p99_latency_s: float | None
    slo_latency_s: float | None
    slo_target: float | None
    slo_attainment: float | None
    replica_seconds: float | None
    inference_cost_usd: float | None
    cost_per_1k_requests_usd: float | None
    cpu_utilization: float | None
    gpu_utilization: float | None
    inference_utilization: float | None
    over_provisioning_ratio: float | None
    scale_up_response_s: float | None
    peak_replicas: int | None
    budget_usd: float | None
    slo_met: bool | None
    budget_met: bool | None
    previous_iteration: str | None = None
    delta_vs_previous: dict[str, float | None] = {}

    @property
    def targets_met(self) -> bool:
        return self.slo_met is not False and self.budget_met is not False


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


COMPARED = ("cost_per_epoch_usd", "cost_per_1k_requests_usd", "slo_attainment", "p99_latency_s", "replica_seconds")


def _report_alone(con: duckdb.DuckDBPyConnection, iteration: str) -> IterationReport:
    params = {
        "it": iteration,
        "host_cpu": m.HOST_CPU_UTILIZATION,
        "gpu_util": m.GPU_UTILIZATION,
        "util_rule": m.RULE_UTILIZATION,
        "p99_rule": m.RULE_LATENCY_P99,
    }
    cur = con.execute(_SUMMARY_SQL, params)
    row = cur.fetchone()
    if row is None:
        raise LookupError(f"iteration {iteration!r} is not recorded in the DuckDB history")
    r = dict(zip([d[0] for d in cur.description], row))
    price_s = (_num(r["price_per_hour"]) or 0.0) / 3600.0

    epochs = int(r["epochs"] or 0)
    training_s = _num(r["training_seconds"]) or _num(r["epoch_seconds"])
    training_cost = training_s * price_s if (training_s is not None and epochs) else None
    cost_per_epoch = training_cost / epochs if training_cost is not None else None

    requests = int(r["requests"] or 0)
    replica_seconds = _num(r["replica_seconds"])
    inference_cost = replica_seconds * price_s if replica_seconds is not None else None
    cost_per_1k = inference_cost / requests * 1000.0 if (inference_cost is not None and requests) else None
    attainment = (r["within_slo"] / requests) if requests else None
    busy = _num(r["busy_seconds"])
    over_prov = replica_seconds / busy if (replica_seconds and busy) else None

    slo_target = _num(r["slo_target"])
    slo_met = None if attainment is None or slo_target is None else attainment >= slo_target
    budget = _num(r["budget_usd"])
    budget_met = None if budget is None or training_cost is None else training_cost <= budget

    report = IterationReport(
        iteration=iteration,
        workload=r["workload"],
        target=r["target"],
        instance_type=r["instance_type"],
        cloud=r["cloud"],
        price_per_hour=_num(r["price_per_hour"]),
        policy_family=r["policy_family"],
        epochs=epochs,
        epoch_seconds=_num(r["epoch_seconds"]),
        final_accuracy=_num(r["final_accuracy"]),
        cost_per_epoch_usd=cost_per_epoch,
        training_cost_usd=training_cost,
        requests=requests,
        p50_latency_s=_num(r["p50_latency_s"]),
        p95_latency_s=_num(r["p95_latency_s"]),
        p99_latency_s=_num(r["p99_latency_s"]),
        slo_latency_s=_num(r["slo_latency_s"]),
        slo_target=slo_target,
        slo_attainment=attainment,
        replica_seconds=replica_seconds,
        inference_cost_usd=inference_cost,
        cost_per_1k_requests_usd=cost_per_1k,
        cpu_utilization=_num(r["cpu_utilization"]),
        gpu_utilization=_num(r["gpu_utilization"]),
        inference_utilization=_num(r["inference_utilization"]),
        over_provisioning_ratio=over_prov,
        scale_up_response_s=_num(r["scale_up_response_s"]),
        peak_replicas=int(r["peak_replicas"]) if r["peak_replicas"] is not None else None,
        budget_usd=budget,
        slo_met=slo_met,
        budget_met=budget_met,
    )
    return report


def build_report(con: duckdb.DuckDBPyConnection, iteration: str) -> IterationReport:
    """Compute the report of a recorded iteration, compared with the one recorded before it."""
    ensure_schema(con)
    report = _report_alone(con, iteration)
    prev = con.execute(
        "SELECT iteration FROM iterations WHERE workload = ? AND iteration < ? ORDER BY iteration DESC LIMIT 1",
        [report.workload, iteration],
    ).fetchone()
    if prev is not None:
        before = _report_alone(con, prev[0])
        report.previous_iteration = prev[0]
        report.delta_vs_previous = {
            k: (getattr(report, k) - getattr(before, k))
            if getattr(report, k) is not None and getattr(before, k) is not None
            else None
            for k in COMPARED
        }
    return report


def history(con: duckdb.DuckDBPyConnection, workload: str) -> list[IterationReport]:
    """Every recorded iteration of a workload, oldest first."""
    ensure_schema(con)
    rows = con.execute(
        "SELECT iteration FROM iterations WHERE workload = ? ORDER BY iteration", [workload]
    ).fetchall()
    return [_report_alone(con, r[0]) for r in rows]
