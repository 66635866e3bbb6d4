"""The `scaling_policy` stage's decision: which policy, with which thresholds, for this iteration.

The first iteration takes the spec's initial thresholds; later ones take the previous
iteration's tuned proposal. Per-replica capacity comes from the measured local profile
(the inference server's saturation throughput on a typical trace request).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from aiinfra_pipelines.fields import get_field as _get
from aiinfra_pipelines.spec import WorkloadSpec


class ScalingDecision(BaseModel):
    family: str
    params: dict[str, Any]
    source: str = Field(description="'spec' or 'proposal from iteration N'")
    min_replicas: int
    max_replicas: int
    initial_replicas: int
    control_interval_s: float
    capacity_rps: float | None = Field(None, description="Requests/s one replica serves, measured locally.")
    scaled_object: dict | None = None
    hpa: dict | None = None

    def policy(self):
        from aiinfra_pipelines.scaling.policies import policy_from_settings

        return policy_from_settings(self.family, **self.params)




def measured_capacity_rps(profile) -> float | None:
    inf = _get(profile, "inference")
    if inf is None:
        return None
    sat = _get(inf, "saturation_rps")
    svc = _get(inf, "trace_request_service_s")
    mb = _get(inf, "max_batch_size") or 1
    if sat:
        return float(sat)
    return float(mb) / float(svc) if svc else None


def spec_params(spec: WorkloadSpec, capacity_rps: float | None) -> tuple[str, dict]:
    s = spec.scaling
    cap = (capacity_rps or 10.0) * s.target_utilization
    common = {"min_replicas": s.min_replicas, "max_replicas": s.max_replicas}
    if s.policy == "static":
        return "static", {"replicas": s.max_replicas}
    if s.policy == "reactive":
        return "reactive", {
            "metric": "queue", "target": s.target_queue_per_replica, **common,
            "scale_up_stabilization_s": s.scale_up_stabilization_s,
            "scale_down_stabilization_s": s.scale_down_stabilization_s, "cooldown_s": s.cooldown_s,
        }
    predictive = {
        "capacity_rps": cap, "headroom": 0.2, "horizon_s": 3 * s.control_interval_s, **common,
        "scale_down_stabilization_s": s.scale_down_stabilization_s,
        "bucket_s": s.control_interval_s, "refit_s": 10 * s.control_interval_s,
    }
    if s.policy == "predictive":
        return "predictive", predictive
    return "hybrid", {**predictive, "target_queue_per_replica": s.target_queue_per_replica}


def decide_policy(spec: WorkloadSpec, profile, plan, *, proposal: dict | None = None) -> ScalingDecision:
    from aiinfra_pipelines.scaling.manifests import render_hpa, render_scaled_object, validate_hpa, validate_scaled_object
    from aiinfra_pipelines.scaling.policies import policy_from_settings

    capacity = measured_capacity_rps(profile)
    proposal = proposal or {}
    if proposal.get("policy_family"):
        family = proposal["policy_family"]
        params = dict(proposal.get("policy_params") or {})
        # integer-valued parameters come back from run config as floats
        for k in ("replicas", "min_replicas", "max_replicas", "scale_up_step", "scale_down_step"):
            if k in params:
                params[k] = int(round(params[k]))
        if family == "reactive":
            params["metric"] = proposal.get("policy_metric") or "queue"
        source = f"proposal from iteration {proposal.get('source_iteration')}"
    else:
        family, params = spec_params(spec, capacity)
        source = "spec"
    policy = policy_from_settings(family, **params)  # validates the parameters
    lo = int(params.get("min_replicas", params.get("replicas", spec.scaling.min_replicas)))
    hi = int(params.get("max_replicas", params.get("replicas", spec.scaling.max_replicas)))
    if proposal.get("min_replicas") is not None:
        lo = int(proposal["min_replicas"])
    if proposal.get("max_replicas") is not None:
        hi = int(proposal["max_replicas"])
    initial = max(1, lo) if family != "static" else int(params["replicas"])
    scaled_object = hpa = None
    if spec.inference is not None:
        name = spec.name
        kw = dict(name=name, namespace="aiinfra", deployment=f"{name}-inference", min_replicas=lo, max_replicas=hi)
        scaled_object = render_scaled_object(policy, prometheus_address="http://prometheus.aiinfra.svc:9090", **kw)
        hpa = render_hpa(policy, **kw)
        # Offline validation: KEDA's CRD schema and the Kubernetes 1.30 schemas.
        validate_scaled_object(scaled_object)
        validate_hpa(hpa)
    return ScalingDecision(
        family=family, params=policy.params() if hasattr(policy, "params") else params, source=source,
        min_replicas=lo, max_replicas=hi, initial_replicas=initial,
        control_interval_s=spec.scaling.control_interval_s, capacity_rps=capacity,
        scaled_object=scaled_object, hpa=hpa,
    )

