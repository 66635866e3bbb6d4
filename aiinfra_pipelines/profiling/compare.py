"""The CI/CD profiling gate: compare a new profile with a saved baseline.

Each figure has a direction (throughput: higher is better; latency, epoch time, memory:
lower is better). A regression is a change in the bad direction by more than the tolerance
(relative). Figures missing from either profile are not compared.
"""

from __future__ import annotations

import json
from pathlib import Path

from aiinfra_pipelines.profiling.schema import Regression, WorkloadProfile


def _figures(p: WorkloadProfile) -> dict[str, tuple[float, bool]]:
    """metric -> (value, higher_is_better)."""
    out: dict[str, tuple[float, bool]] = {}
    if p.training is not None:
        t = p.training
        out["training.samples_per_s"] = (t.samples_per_s, True)
        out["training.epoch_s"] = (t.epoch_s / max(t.samples_per_epoch, 1) * 1e6, False)  # us per sample-epoch
        out["training.peak_memory_bytes"] = (float(t.peak_memory_bytes), False)
        out["training.test_accuracy"] = (t.test_accuracy, True)
    if p.inference is not None:
        i = p.inference
        out["inference.saturation_rps"] = (i.saturation_rps, True)
        out["inference.trace_saturation_rps"] = (i.trace_saturation_rps, True)
        out["inference.trace_request_service_s"] = (i.trace_request_service_s, False)
        for pt in i.latency_by_batch:
            out[f"inference.p50_s[batch={pt.batch_size}]"] = (pt.p50_s, False)
    return out


def compare_profiles(new: WorkloadProfile, baseline: WorkloadProfile, tolerance: float = 0.1) -> list[Regression]:
    """The figures of ``new`` worse than ``baseline`` by more than ``tolerance`` (relative)."""
    if tolerance < 0:
        raise ValueError(f"tolerance: must be non-negative, got {tolerance}")
    a, b = _figures(baseline), _figures(new)
    regressions = []
    for metric, (base, hib) in a.items():
        if metric not in b or base <= 0:
            continue
        val = b[metric][0]
        change = (base - val) / base if hib else (val - base) / base
        if change > tolerance:
            regressions.append(
                Regression(metric=metric, baseline=base, new=val, change=change, tolerance=tolerance, higher_is_better=hib)
            )
    return regressions


def load_profile(path: str | Path) -> WorkloadProfile:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"profile file not found: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"profile file {path}: not JSON (line {err.lineno}): {err.msg}") from None
    if isinstance(data, dict) and "profile" in data and "workload" not in data:
        data = data["profile"]
    return WorkloadProfile.model_validate(data)
