"""The iteration report's SQL on a small DuckDB file whose every figure is known by hand."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from aiinfra_pipelines.analytics.report import build_report, history
from aiinfra_pipelines.analytics.store import IterationRecord, record_iteration
from aiinfra_pipelines.telemetry import metrics as m

PRICE = 3.6  # $/h, i.e. $0.001 per second: costs below are seconds / 1000


def _requests(rows: list[tuple]) -> pd.DataFrame:
    """rows: (arrival_s, latency_s, service_s, status, replica)."""
    df = pd.DataFrame(rows, columns=["arrival_s", "latency_s", "service_s", "status", "replica"])
    df.insert(0, "request_id", range(len(df)))
    df["queue_s"] = 0.0
    return df


def _events(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["ts_s", "replica", "event", "desired"])


def _summary(**kw) -> dict:
    base = dict(workload="w", target="local", instance_type="n2-standard-2", cloud="gcp", price_per_hour=PRICE,
                policy_family="reactive", slo_latency_s=0.2, slo_target=0.9, budget_usd=1.0)
    base.update(kw)
    return base


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "history.duckdb"))
    yield c
    c.close()


def _first_iteration() -> IterationRecord:
    # 10 requests on two replicas, none overlapping: 8 ok within the 0.2 s SLO, 1 ok but slow, 1 failed
    reqs = [(i * 1.0, 0.1, 0.05, "ok", "replica-1" if i % 2 else "replica-2") for i in range(8)]
    reqs += [(8.0, 0.5, 0.05, "ok", "replica-1"), (9.0, 0.1, None, "http_503", "replica-2")]
    events = [
        (0.0, "replica-1", "requested", 1), (2.0, "replica-1", "ready", 1),
        (10.0, "replica-2", "requested", 2), (13.0, "replica-2", "ready", 2),
        (50.0, "replica-1", "draining", 1), (52.0, "replica-1", "stopped", 1),
        # replica-2 never stopped: billed until the last recorded event (52 s)
    ]
    epochs = pd.DataFrame({"epoch": [1, 2, 3, 4], "seconds": [30.0] * 4, "samples": [1000] * 4,
                           "loss": [0.9, 0.5, 0.3, 0.2], "accuracy": [0.5, 0.8, 0.9, 0.95]})
    series = pd.DataFrame({
        "ts": [1.0, 2.0, 1.0, 2.0], "labels": ["{}"] * 4,
        "metric": [m.HOST_CPU_UTILIZATION] * 2 + [m.RULE_UTILIZATION] * 2, "value": [0.2, 0.4, 0.1, 0.3],
    })
    return IterationRecord("0001", _summary(training_seconds=120.0), {
        "requests": _requests(reqs), "replica_events": _events(events), "training_epochs": epochs,
        "telemetry_series": series,
    })


def test_costs_slo_and_provisioning_have_known_values(con):
    record_iteration(con, _first_iteration())
    r = build_report(con, "0001")
    # training: 120 s at $0.001/s over 4 epochs
    assert r.epochs == 4 and r.epoch_seconds == pytest.approx(120.0)
    assert r.training_cost_usd == pytest.approx(0.120)
    assert r.cost_per_epoch_usd == pytest.approx(0.030)
    assert r.final_accuracy == pytest.approx(0.95)
    assert r.budget_met is True
    # inference: replica-1 52 s, replica-2 52 - 10 = 42 s
    assert r.replica_seconds == pytest.approx(94.0)
    assert r.inference_cost_usd == pytest.approx(0.094)
    assert r.cost_per_1k_requests_usd == pytest.approx(0.094 / 10 * 1000)
    assert r.scale_up_response_s == pytest.approx((2.0 + 3.0) / 2)
    assert r.peak_replicas == 2
    # SLO attainment counts every request (the failed one is a miss): 8 / 10 < 0.9
    assert r.requests == 10
    assert r.slo_attainment == pytest.approx(0.8)
    assert r.slo_met is False and r.targets_met is False
    # 9 served requests of 0.05 s compute each, none overlapping
    assert r.over_provisioning_ratio == pytest.approx(94.0 / 0.45)
    assert r.cpu_utilization == pytest.approx(0.3) and r.inference_utilization == pytest.approx(0.2)
    assert r.gpu_utilization is None
    assert r.previous_iteration is None and r.delta_vs_previous == {}


def test_a_batch_counts_its_compute_once(con):
    # four requests served in one 0.1 s batch on one replica (they finish together), then one alone
    reqs = [(0.0 + k * 0.01, 0.2 - k * 0.01, 0.1, "ok", "replica-1") for k in range(4)]
    reqs.append((5.0, 0.05, 0.05, "ok", "replica-1"))
    events = [(0.0, "replica-1", "requested", 1), (0.0, "replica-1", "ready", 1), (15.0, "replica-1", "stopped", 0)]
    record_iteration(con, IterationRecord("0001", _summary(), {"requests": _requests(reqs),
                                                                "replica_events": _events(events)}))
    r = build_report(con, "0001")
    assert r.replica_seconds == pytest.approx(15.0)
    # busy = 0.1 (the batch) + 0.05, not 4 * 0.1 + 0.05
    assert r.over_provisioning_ratio == pytest.approx(15.0 / 0.15)


def test_training_only_iteration_has_no_inference_figures(con):
    epochs = pd.DataFrame({"epoch": [1, 2], "seconds": [10.0, 14.0], "samples": [500, 500], "loss": [0.5, 0.4]})
    # no training_seconds recorded: the epochs' own seconds are billed
    record_iteration(con, IterationRecord("0001", _summary(budget_usd=0.01), {"training_epochs": epochs}))
    r = build_report(con, "0001")
    assert r.training_cost_usd == pytest.approx(0.024) and r.cost_per_epoch_usd == pytest.approx(0.012)
    assert r.budget_met is False
    assert r.requests == 0 and r.cost_per_1k_requests_usd is None and r.slo_attainment is None
    assert r.slo_met is None and r.replica_seconds is None and r.over_provisioning_ratio is None


def test_compared_with_the_previous_iteration_of_the_same_workload(con):
    record_iteration(con, _first_iteration())
    # another workload's iteration in between must not be taken as "previous"
    record_iteration(con, IterationRecord("0002", _summary(workload="other", training_seconds=1.0), {}))
    reqs = [(i * 1.0, 0.1, 0.05, "ok", "replica-1") for i in range(10)]
    events = [(0.0, "replica-1", "requested", 1), (1.0, "replica-1", "ready", 1), (40.0, "replica-1", "stopped", 0)]
    epochs = pd.DataFrame({"epoch": [1, 2, 3, 4], "seconds": [20.0] * 4, "samples": [1000] * 4, "loss": [0.2] * 4})
    record_iteration(con, IterationRecord("0003", _summary(training_seconds=80.0), {
        "requests": _requests(reqs), "replica_events": _events(events), "training_epochs": epochs}))
    r = build_report(con, "0003")
    assert r.previous_iteration == "0001"
    d = r.delta_vs_previous
    assert d["cost_per_epoch_usd"] == pytest.approx(0.020 - 0.030)
    assert d["replica_seconds"] == pytest.approx(40.0 - 94.0)
    assert d["cost_per_1k_requests_usd"] == pytest.approx(4.0 - 9.4)
    assert d["slo_attainment"] == pytest.approx(1.0 - 0.8)
    assert d["p99_latency_s"] is not None and d["p99_latency_s"] < 0
    assert r.slo_met is True
    assert [h.iteration for h in history(con, "w")] == ["0001", "0003"]


def test_unknown_iteration_is_refused_by_name(con):
    record_iteration(con, _first_iteration())
    with pytest.raises(LookupError, match="'0009'"):
        build_report(con, "0009")
