"""Collects an iteration's staged data and its Prometheus series into one IterationRecord."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from aiinfra_pipelines.analytics.store import IterationRecord
from aiinfra_pipelines.telemetry import metrics as m

# The series an iteration keeps: raw exporter series and the recording rules.
SERIES = (
    m.HOST_CPU_UTILIZATION,
    m.HOST_MEMORY_USED_BYTES,
    m.GPU_UTILIZATION,
    m.RULE_REQUEST_RATE,
    m.RULE_UTILIZATION,
    m.RULE_QUEUE_PER_REPLICA,
    m.RULE_LATENCY_P99,
    m.RULE_READY_REPLICAS,
    f"sum({m.INFERENCE_QUEUE_LENGTH})",
    f"sum(rate({m.TRAINING_SAMPLES_TOTAL}[5s]))",
)


def pull_series(client: Any, start: float, end: float, step_s: float = 1.0) -> pd.DataFrame:
    """Range-query every kept series over [start, end] (unix seconds); empty series are skipped."""
    frames = []
    for expr in SERIES:
        df = client.query_range(expr, start, end, step_s)
        if df is None or len(df) == 0:
            continue
        df = df.copy()
        df["metric"] = expr if not expr.startswith(("aiinfra:", "aiinfra_")) else df["metric"].fillna(expr)
        df.loc[df["metric"].isna() | (df["metric"] == ""), "metric"] = expr
        frames.append(df[["ts", "metric", "labels", "value"]])
    if not frames:
        return pd.DataFrame(columns=["ts", "metric", "labels", "value"])
    return pd.concat(frames, ignore_index=True)


def _read(path: Path) -> pd.DataFrame | None:
    return pd.read_parquet(path) if path.exists() else None


def collect_iteration(
    *,
    iteration: str,
    iteration_dir: Path,
    summary: dict[str, Any],
    series: pd.DataFrame | None,
) -> IterationRecord:
    """Build the record from the staged files of the iteration folder (nothing is written here)."""
    run = iteration_dir / "run"
    tables: dict[str, pd.DataFrame] = {}
    if (df := _read(iteration_dir / "staged" / "profile_samples.parquet")) is not None:
        if "labels" in df.columns:
            df["labels"] = df["labels"].astype(str)
        tables["profile_samples"] = df[[c for c in ("ts", "source", "metric", "value", "labels") if c in df.columns]]
    if (df := _read(run / "training_epochs.parquet")) is not None:
        tables["training_epochs"] = df
    if (df := _read(run / "requests.parquet")) is not None:
        tables["requests"] = df
    if (df := _read(run / "replica_events.parquet")) is not None:
        tables["replica_events"] = df[["ts_s", "replica", "event", "desired"]]
    if series is not None and len(series):
        tables["telemetry_series"] = series
    return IterationRecord(iteration=iteration, summary=summary, tables=tables)
