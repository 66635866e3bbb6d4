"""The DuckDB history against a real DuckDB file: one transaction per iteration, SQL report."""

import duckdb
import pandas as pd
import pytest

from aiinfra_pipelines.analytics.report import build_report, history
from aiinfra_pipelines.analytics.store import IterationRecord, RecordError, record_iteration, recorded_iterations


def _record(iteration: str, latencies, replica_seconds: float, price=0.36) -> IterationRecord:
    n = len(latencies)
    requests = pd.DataFrame(
        {
            "request_id": range(n),
            "arrival_s": [i * 0.1 for i in range(n)],
            "latency_s": latencies,
            "queue_s": [0.001] * n,
            "service_s": [0.01] * n,
            "status": ["ok"] * n,
            "replica": ["r0"] * n,
        }
    )
    events = pd.DataFrame(
        {
            "ts_s": [0.0, 2.0, replica_seconds],
            "replica": ["r0", "r0", "r0"],
            "event": ["requested", "ready", "stopped"],
            "desired": [1, 1, 0],
        }
    )
    epochs = pd.DataFrame({"epoch": [1, 2], "seconds": [1.5, 1.5], "samples": [1000, 1000], "loss": [0.5, 0.3]})
    summary = dict(
        workload="w", target="local", instance_type="n2-standard-2", cloud="gcp", price_per_hour=price,
        policy_family="reactive", slo_latency_s=0.25, slo_target=0.99, budget_usd=1.0, training_seconds=3.0,
        inference_window_s=replica_seconds, spec_json={"name": "w"},
    )
    return IterationRecord(iteration, summary, {"requests": requests, "replica_events": events, "training_epochs": epochs})


def test_record_and_report(tmp_path):
    con = duckdb.connect(str(tmp_path / "h.duckdb"))
    counts = record_iteration(con, _record("0001", [0.1] * 99 + [0.5], 30.0))
    assert counts["requests"] == 100 and counts["iterations"] == 1
    r = build_report(con, "0001")
    assert r.requests == 100
    assert r.slo_attainment == pytest.approx(0.99)
    assert r.slo_met is True
    assert r.cost_per_epoch_usd == pytest.approx(1.5 * 0.36 / 3600)
    assert r.replica_seconds == pytest.approx(30.0)
    assert r.cost_per_1k_requests_usd == pytest.approx(30 * 0.36 / 3600 / 100 * 1000)
    assert r.over_provisioning_ratio == pytest.approx(30.0 / 1.0)
    assert r.scale_up_response_s == pytest.approx(2.0)
    assert r.p99_latency_s > 0.1

    record_iteration(con, _record("0002", [0.1] * 100, 20.0))
    r2 = build_report(con, "0002")
    assert r2.previous_iteration == "0001"
    assert r2.delta_vs_previous["replica_seconds"] == pytest.approx(-10.0)
    assert [h.iteration for h in history(con, "w")] == ["0001", "0002"]
    con.close()
    # persisted in the file
    con = duckdb.connect(str(tmp_path / "h.duckdb"))
    assert recorded_iterations(con) == ["0001", "0002"]


def test_failed_record_leaves_nothing(tmp_path):
    con = duckdb.connect(str(tmp_path / "h.duckdb"))
    record_iteration(con, _record("0001", [0.1] * 10, 10.0))
    bad = _record("0002", [0.1] * 10, 10.0)
    bad.tables["requests"]["latency_s"] = ["not a number"] * 10  # fails inside the transaction
    with pytest.raises(Exception):
        record_iteration(con, bad)
    assert recorded_iterations(con) == ["0001"]
    assert con.execute("SELECT count(*) FROM replica_events WHERE iteration='0002'").fetchone()[0] == 0
    with pytest.raises(RecordError, match="requests: unknown column"):
        rec = _record("0003", [0.1], 1.0)
        rec.tables["requests"]["colour"] = "x"
        record_iteration(con, rec)
    assert recorded_iterations(con) == ["0001"]
