"""The iteration history in DuckDB: schema, and the one-transaction write of an iteration.

Everything an iteration measured (profile samples, telemetry series, the request log,
training epochs, replica events) is staged in the iteration's folder while it runs and
recorded here in a single transaction by :func:`record_iteration`. A failure anywhere
before the commit leaves the database as it was: no partial iteration is ever recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

SCHEMA_VERSION = 1

# table -> (column, duckdb type); `iteration` is the partition key and leads every table.
TABLES: dict[str, list[tuple[str, str]]] = {
    "iterations": [
        ("iteration", "VARCHAR PRIMARY KEY"),
        ("workload", "VARCHAR NOT NULL"),
        ("target", "VARCHAR NOT NULL"),
        ("recorded_at", "TIMESTAMP NOT NULL"),
        ("instance_type", "VARCHAR"),
        ("cloud", "VARCHAR"),
        ("price_per_hour", "DOUBLE"),
        ("policy_family", "VARCHAR"),
        ("slo_latency_s", "DOUBLE"),
        ("slo_target", "DOUBLE"),
        ("budget_usd", "DOUBLE"),
        ("training_seconds", "DOUBLE"),
        ("inference_window_s", "DOUBLE"),
        ("spec_json", "VARCHAR"),
        ("plan_json", "VARCHAR"),
        ("policy_json", "VARCHAR"),
        ("profile_json", "VARCHAR"),
        ("proposal_json", "VARCHAR"),
    ],
    "training_epochs": [
        ("iteration", "VARCHAR NOT NULL"),
        ("epoch", "INTEGER"),
        ("seconds", "DOUBLE"),
        ("samples", "BIGINT"),
        ("loss", "DOUBLE"),
        ("accuracy", "DOUBLE"),
    ],
    "requests": [
        ("iteration", "VARCHAR NOT NULL"),
        ("request_id", "BIGINT"),
        ("arrival_s", "DOUBLE"),
        ("sent_s", "DOUBLE"),
        ("latency_s", "DOUBLE"),
        ("queue_s", "DOUBLE"),
        ("service_s", "DOUBLE"),
        ("ttft_s", "DOUBLE"),
        ("status", "VARCHAR"),
        ("replica", "VARCHAR"),
        ("input_tokens", "INTEGER"),
        ("output_tokens", "INTEGER"),
    ],
    "replica_events": [
        ("iteration", "VARCHAR NOT NULL"),
        ("ts_s", "DOUBLE"),
        ("replica", "VARCHAR"),
        ("event", "VARCHAR"),  # requested | ready | draining | stopped
        ("desired", "INTEGER"),
    ],
    "telemetry_series": [
        ("iteration", "VARCHAR NOT NULL"),
        ("ts", "DOUBLE"),
        ("metric", "VARCHAR"),
        ("labels", "VARCHAR"),
        ("value", "DOUBLE"),
    ],
    "profile_samples": [
        ("iteration", "VARCHAR NOT NULL"),
        ("ts", "DOUBLE"),
        ("source", "VARCHAR"),
        ("metric", "VARCHAR"),
        ("value", "DOUBLE"),
        ("labels", "VARCHAR"),
    ],
}


class RecordError(ValueError):
    """An iteration's data does not fit the schema (names the table and column)."""


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    for table, cols in TABLES.items():
        ddl = ", ".join(f"{name} {typ}" for name, typ in cols)
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({ddl})")


def _columns(table: str) -> list[str]:
    return [c for c, _ in TABLES[table]]


def _conform(table: str, frame: pd.DataFrame, iteration: str) -> pd.DataFrame:
    cols = _columns(table)
    frame = frame.copy()
    frame["iteration"] = iteration
    unknown = [c for c in frame.columns if c not in cols]
    if unknown:
        raise RecordError(f"table {table}: unknown column(s) {unknown}; expected a subset of {cols}")
    types = dict(TABLES[table])
    for c in cols:
        if c not in frame.columns:
            frame[c] = None
        elif types[c] == "DOUBLE" and pd.api.types.is_datetime64_any_dtype(frame[c]):
            # timestamps are kept as unix seconds, whatever clock type the producer used
            ts = frame[c]
            if getattr(ts.dt, "tz", None) is None:
                ts = ts.dt.tz_localize("UTC")
            frame[c] = (ts - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    return frame[cols]


@dataclass
class IterationRecord:
    """Everything one iteration recorded; ``iteration`` row fields go in ``summary``."""

    iteration: str
    summary: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def record_iteration(con: duckdb.DuckDBPyConnection, record: IterationRecord) -> dict[str, int]:
    """Write one iteration in a single transaction (replacing an earlier record of it).

    Returns the row count per table. On any error the transaction is rolled back and
    the error re-raised: the database holds either all of the iteration or none of it.
    """
    ensure_schema(con)
    summary = dict(record.summary)
    summary.setdefault("recorded_at", pd.Timestamp.now(tz="UTC").tz_localize(None))
    for key in ("spec_json", "plan_json", "policy_json", "profile_json", "proposal_json"):
        if key in summary and not isinstance(summary[key], (str, type(None))):
            summary[key] = json.dumps(summary[key], default=str)
    frames = {"iterations": _conform("iterations", pd.DataFrame([summary]), record.iteration)}
    for table, frame in record.tables.items():
        if table not in TABLES or table == "iterations":
            raise RecordError(f"unknown table {table!r}; expected one of {sorted(TABLES)}")
        frames[table] = _conform(table, frame, record.iteration)

    counts: dict[str, int] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for table in TABLES:
            con.execute(f"DELETE FROM {table} WHERE iteration = ?", [record.iteration])
        for table, frame in frames.items():
            con.register("_staged", frame)
            try:
                con.execute(f"INSERT INTO {table} SELECT * FROM _staged")
            finally:
                con.unregister("_staged")
            counts[table] = len(frame)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return counts


def recorded_iterations(con: duckdb.DuckDBPyConnection, workload: str | None = None) -> list[str]:
    ensure_schema(con)
    if workload is None:
        rows = con.execute("SELECT iteration FROM iterations ORDER BY iteration").fetchall()
    else:
        rows = con.execute(
            "SELECT iteration FROM iterations WHERE workload = ? ORDER BY iteration", [workload]
        ).fetchall()
    return [r[0] for r in rows]
