"""The retuning proposal: new autoscaling thresholds and a new hardware mix, with the reason.

Thresholds: the iteration's observed traffic (its request log: arrival times and measured
service times) is replayed in the simulator under every policy family; the tuner picks the
cheapest setting that meets the SLO (tuned on the first half, scored on the second). The
current policy is replayed on the same traffic, so the predicted improvement compares
like with like. Hardware: the planner re-plans for the observed peak rate.

The loop stops when the proposal no longer improves the predicted cost or SLO attainment
beyond the spec's tolerance while the targets are met, or at the spec's maximum number of
iterations; the proposal says which.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from aiinfra_pipelines.fields import get_field as _get
from aiinfra_pipelines.spec import WorkloadSpec


class Proposal(BaseModel):
    source_iteration: str
    continue_loop: bool
    reason: str
    stop_reason: str | None = None
    policy_family: str | None = None
    policy_params: dict[str, Any] = Field(default_factory=dict)
    min_replicas: int | None = None
    max_replicas: int | None = None
    inference_instance_types: list[str] = Field(default_factory=list)
    training_instance_type: str | None = None
    target_rps: float | None = None
    predicted_current: dict[str, float | None] = Field(default_factory=dict)
    predicted_proposed: dict[str, float | None] = Field(default_factory=dict)
    predicted_cost_improvement: float | None = None
    predicted_slo_improvement: float | None = None
    search: list[dict] = Field(default_factory=list)

    def run_config(self) -> dict:
        """The typed run config (ProposalConfig fields) the next iteration applies."""
        numeric = {k: float(v) for k, v in self.policy_params.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        metric = self.policy_params.get("metric")
        return {
            "source_iteration": self.source_iteration,
            "reason": self.reason,
            "policy_family": self.policy_family,
            "policy_params": numeric,
            "policy_metric": metric if isinstance(metric, str) else None,
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "inference_instance_types": self.inference_instance_types,
            "training_instance_type": self.training_instance_type,
            "target_rps": self.target_rps,
        }




def local_service_model(spec: WorkloadSpec, profile):
    from aiinfra_pipelines.scaling.service_model import ServiceModel

    inf = _get(profile, "inference")
    points = [(int(_get(p, "batch_size")), float(_get(p, "p50_s"))) for p in (_get(inf, "latency_by_batch") or [])]
    return ServiceModel.from_measurements(
        points, saturation_rps=_get(inf, "saturation_rps"), max_batch_size=spec.inference.max_batch_size
    )


def observed_trace(requests: pd.DataFrame):
    """The iteration's observed traffic as a trace: arrival times and measured service times."""
    from aiinfra_pipelines.scaling.traces import Trace

    ok = requests[requests["status"] == "ok"]
    frame = pd.DataFrame({
        "arrival_s": requests["arrival_s"] - requests["arrival_s"].min(),
        "work_s": requests["service_s"].fillna(ok["service_s"].median() if len(ok) else 0.01),
    })
    return Trace.from_frame(frame, source="observed request log")


def peak_rate_rps(requests: pd.DataFrame, bin_s: float = 1.0) -> float:
    if requests.empty:
        return 0.0
    bins = np.floor((requests["arrival_s"] - requests["arrival_s"].min()) / bin_s)
    return float(bins.value_counts().max() / bin_s)


def propose(
    spec: WorkloadSpec,
    *,
    iteration: str,
    iteration_number: int,
    report,
    requests: pd.DataFrame | None,
    profile,
    plan,
    current_policy,
    provisioning_delay_s: float | None = None,
) -> Proposal:
    """The next iteration's configuration and whether the loop should go on."""
    tolerance = spec.improvement_tolerance
    targets_met = bool(_get(report, "targets_met", True))
    at_max = iteration_number >= spec.max_iterations
    prop = Proposal(source_iteration=iteration, continue_loop=False, reason="")

    if spec.inference is not None and requests is not None and len(requests) >= 20:
        from aiinfra_pipelines.scaling.simulator import simulate
        from aiinfra_pipelines.scaling.tuning import SLO, recommend

        slo = SLO(latency_s=spec.targets.latency_slo.p99_latency_s, attainment=spec.targets.latency_slo.attainment)
        trace = observed_trace(requests)
        model = local_service_model(spec, profile)
        price = float(plan.local_equivalent.price_per_hour)
        delay = provisioning_delay_s if provisioning_delay_s else 2.0
        sim_kw = dict(price_per_replica_hour=price, provisioning_delay_s=delay,
                      control_interval_s=spec.scaling.control_interval_s)
        # workers=1: an iteration's observed trace is short; forking workers would cost more than it saves
        rec = recommend(trace, slo, service_model=model, max_replicas=spec.scaling.max_replicas, workers=1, **sim_kw)
        current = current_policy.policy()
        cur = simulate(trace, current, model, slo_latency_s=slo.latency_s, **sim_kw).summary
        prop.predicted_current = {k: cur.get(k) for k in ("cost_usd", "slo_attainment", "p99_latency_s")}
        prop.search = [
            {"family": f, "meets_slo": r.meets_slo,
             "cost_usd": (r.eval_summary or {}).get("cost_usd"),
             "slo_attainment": (r.eval_summary or {}).get("slo_attainment")}
            for f, r in rec.results.items()
        ]
        if rec.result is not None:
            best = rec.result
            new = simulate(trace, best.best_policy, model, slo_latency_s=slo.latency_s, **sim_kw).summary
            prop.predicted_proposed = {k: new.get(k) for k in ("cost_usd", "slo_attainment", "p99_latency_s")}
            prop.policy_family = best.family
            prop.policy_params = dict(best.best_params or {})
            prop.min_replicas = int(prop.policy_params.get("min_replicas", prop.policy_params.get("replicas", 1)))
            prop.max_replicas = int(prop.policy_params.get("max_replicas", prop.policy_params.get("replicas", 1)))
            if cur["cost_usd"]:
                prop.predicted_cost_improvement = (cur["cost_usd"] - new["cost_usd"]) / cur["cost_usd"]
            prop.predicted_slo_improvement = new["slo_attainment"] - cur["slo_attainment"]
        time_scale = spec.traffic.time_scale if spec.traffic else 1.0
        prop.target_rps = peak_rate_rps(requests) / time_scale  # the trace's own rate, for cloud sizing

    # Hardware: re-plan for the observed traffic; propose the planner's pools.
    for pool in getattr(plan, "pools", []) or []:
        if pool.role == "inference":
            prop.inference_instance_types.append(pool.instance_type)
        elif pool.role == "training" and prop.training_instance_type is None:
            prop.training_instance_type = pool.instance_type

    gain = max(prop.predicted_cost_improvement or 0.0, prop.predicted_slo_improvement or 0.0)
    improves = prop.policy_family is not None and gain > tolerance
    if at_max:
        prop.stop_reason = f"reached the spec's maximum of {spec.max_iterations} iteration(s)"
    elif targets_met and not improves:
        prop.stop_reason = (
            f"targets met and the best proposal improves predicted cost/SLO by {gain:.1%}, "
            f"within the tolerance of {tolerance:.0%}"
        )
    elif prop.policy_family is None and spec.inference is not None:
        prop.stop_reason = "no policy setting meets the SLO on the observed traffic within max_replicas"
    elif spec.inference is None and targets_met:
        prop.stop_reason = "training-only workload: targets met, nothing to retune"
    prop.continue_loop = prop.stop_reason is None
    if prop.continue_loop:
        parts = []
        if not targets_met:
            parts.append("targets not met")
        if improves:
            parts.append(f"{prop.policy_family} policy predicted {gain:.1%} better on the observed traffic")
        prop.reason = "; ".join(parts) or "retune"
    else:
        prop.reason = prop.stop_reason or ""
    return prop
