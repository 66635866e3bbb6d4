"""The same policy, rendered for Kubernetes: a KEDA ScaledObject (Prometheus trigger) and an
HPA ``autoscaling/v2`` manifest, both validated offline.

Mapping from a policy to the manifests:

* ``ReactivePolicy(metric="queue")``: trigger on the recording rule
  ``RULE_QUEUE_PER_REPLICA`` (mean in-flight requests per replica), ``metricType: AverageValue``
  with the policy's ``target`` multiplied back to a total so KEDA's per-pod averaging
  reproduces it: the query sums the queue over replicas (``RULE_QUEUE_PER_REPLICA *
  RULE_READY_REPLICAS``) and the threshold is ``target`` per replica.
* ``ReactivePolicy(metric="rps")`` / ``PredictivePolicy`` / ``HybridPolicy``: trigger on the
  request-rate rule ``RULE_REQUEST_RATE`` with threshold ``capacity_rps`` (or ``target``)
  per replica; the predictive headroom is folded into the threshold
  (``capacity_rps / (1 + headroom)``), since KEDA cannot forecast. The hybrid's burst path
  becomes a second trigger on the queue per replica (KEDA takes the max over triggers).
  A predictive policy forecasting requests in flight (``signal="inflight"``) triggers on the
  queue instead, with threshold ``target_inflight / (1 + headroom)``.
* ``ReactivePolicy(metric="utilization")``: trigger on ``RULE_UTILIZATION``.
* ``StaticPolicy``: min = max = the pool size.
* Windows and step limits go to ``advanced.horizontalPodAutoscalerConfig.behavior``
  (HPA: ``stabilizationWindowSeconds``, a ``Pods`` policy per 15 s); ``cooldown_s`` becomes
  KEDA's ``cooldownPeriod`` (the wait before scaling to zero).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

from aiinfra_pipelines.paths import PACKAGE_DATA
from aiinfra_pipelines.scaling.policies import (
    ClairvoyantPolicy,
    HybridPolicy,
    PredictivePolicy,
    ReactivePolicy,
    StaticPolicy,
)
from aiinfra_pipelines.telemetry.metrics import (
    RULE_QUEUE_PER_REPLICA,
    RULE_READY_REPLICAS,
    RULE_REQUEST_RATE,
    RULE_UTILIZATION,
)

KUBERNETES_VERSION = "1.30.0"
KEDA_CRD = PACKAGE_DATA / "k8s_crds" / "keda.sh_scaledobjects.yaml"


class ManifestError(ValueError):
    pass


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _triggers(policy, prometheus_address: str) -> list[dict]:
    def trig(name, query, threshold):
        return {"type": "prometheus", "name": name, "metricType": "AverageValue",
                "metadata": {"serverAddress": prometheus_address, "query": query, "threshold": _fmt(threshold)}}

    queue_total = f"sum({RULE_QUEUE_PER_REPLICA}) * sum({RULE_READY_REPLICAS})"
    if isinstance(policy, ReactivePolicy):
        if policy.metric == "queue":
            return [trig("queue-per-replica", queue_total, policy.target)]
        if policy.metric == "rps":
            return [trig("request-rate", f"sum({RULE_REQUEST_RATE})", policy.target)]
        return [trig("utilization", f"sum({RULE_UTILIZATION}) * sum({RULE_READY_REPLICAS})", policy.target)]
    if isinstance(policy, PredictivePolicy):
        if getattr(policy, "signal", "rate") == "inflight":
            out = [trig("queue-per-replica", queue_total, policy.target_inflight / (1.0 + policy.headroom))]
        else:
            out = [trig("request-rate", f"sum({RULE_REQUEST_RATE})", policy.capacity_rps / (1.0 + policy.headroom))]
        if isinstance(policy, HybridPolicy):
            out.append(trig("queue-burst", queue_total, policy.target_queue_per_replica * policy.panic_threshold))
        return out
    if isinstance(policy, StaticPolicy):
        return [trig("request-rate", f"sum({RULE_REQUEST_RATE})", 1e9)]  # never drives: min = max
    if isinstance(policy, ClairvoyantPolicy):
        raise ManifestError("policy: the clairvoyant reference knows the future and cannot be deployed")
    raise ManifestError(f"policy: cannot render {type(policy).__name__}")


def _behavior(policy) -> dict:
    up_window = int(getattr(policy, "scale_up_stabilization_s", 0))
    down_window = int(getattr(policy, "scale_down_stabilization_s", 300))
    up_step = int(getattr(policy, "scale_up_step", 0) or 0)
    down_step = int(getattr(policy, "scale_down_step", 0) or 0)
    up = {"stabilizationWindowSeconds": up_window, "selectPolicy": "Max",
          "policies": [{"type": "Pods", "value": up_step or 100, "periodSeconds": 15}]}
    down = {"stabilizationWindowSeconds": down_window, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": down_step or 100, "periodSeconds": 15}]}
    return {"scaleUp": up, "scaleDown": down}


def _bounds(policy, min_replicas, max_replicas):
    if isinstance(policy, StaticPolicy):
        return policy.replicas, policy.replicas
    lo = getattr(policy, "min_replicas", 1) if min_replicas is None else min_replicas
    hi = getattr(policy, "max_replicas", 64) if max_replicas is None else max_replicas
    if lo < 0 or hi < max(lo, 1):
        raise ManifestError(f"bounds: need 0 <= min_replicas <= max_replicas and max >= 1, got {lo}, {hi}")
    return int(lo), int(hi)


def render_scaled_object(policy, *, name: str, namespace: str = "default", deployment: str,
                         prometheus_address: str = "http://prometheus.monitoring:9090",
                         min_replicas: int | None = None, max_replicas: int | None = None,
                         polling_interval_s: int = 15) -> dict:
    """A ``keda.sh/v1alpha1`` ScaledObject driving ``deployment`` with ``policy``'s thresholds."""
    lo, hi = _bounds(policy, min_replicas, max_replicas)
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
        "pollingInterval": int(polling_interval_s),
        "cooldownPeriod": int(max(getattr(policy, "cooldown_s", 0) or 0, getattr(policy, "scale_down_stabilization_s", 300))),
        "minReplicaCount": lo,
        "maxReplicaCount": hi,
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _behavior(policy)}},
        "triggers": _triggers(policy, prometheus_address),
    }
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "aiinfra"}},
            "spec": spec}


def render_hpa(policy, *, name: str, namespace: str = "default", deployment: str,
               min_replicas: int | None = None, max_replicas: int | None = None) -> dict:
    """An ``autoscaling/v2`` HorizontalPodAutoscaler on the same series, read through a
    metrics adapter as External metrics (the Prometheus rule names as metric names)."""
    lo, hi = _bounds(policy, min_replicas, max_replicas)
    metrics = []
    for t in _triggers(policy, "unused"):
        rule = t["metadata"]["query"].split("(")[1].split(")")[0]
        metrics.append({"type": "External", "external": {
            "metric": {"name": rule.replace(":", "_")},
            "target": {"type": "AverageValue", "averageValue": t["metadata"]["threshold"]}}})
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
                     "minReplicas": max(lo, 1), "maxReplicas": hi, "metrics": metrics,
                     "behavior": _behavior(policy)}}


@functools.lru_cache(maxsize=2)
def _keda_schema(path: str) -> dict:
    import yaml

    crd = yaml.safe_load(Path(path).read_text())
    for v in crd["spec"]["versions"]:
        if v["name"] == "v1alpha1":
            return v["schema"]["openAPIV3Schema"]
    raise ManifestError(f"{path}: no v1alpha1 schema")


def validate_scaled_object(obj: dict, *, crd_path: Path | None = None) -> None:
    """Validate against the KEDA CRD's openAPIV3Schema; raise ``ManifestError`` naming the path."""
    import jsonschema

    if crd_path is None:
        crd_path = KEDA_CRD  # packaged with its provenance
    schema = copy.deepcopy(_keda_schema(str(crd_path)))
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        path = ".".join(str(p) for p in e.absolute_path) or "<root>"
        raise ManifestError(f"ScaledObject {path}: {e.message}")
    if obj.get("apiVersion") != "keda.sh/v1alpha1" or obj.get("kind") != "ScaledObject":
        raise ManifestError("ScaledObject apiVersion/kind: expected keda.sh/v1alpha1 ScaledObject")


def validate_hpa(obj: dict) -> None:
    """Strict validation against the Kubernetes 1.30 schemas (kubernetes-validate)."""
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in getattr(e, "path", [])) or "<root>"
        raise ManifestError(f"HorizontalPodAutoscaler {path}: {e.message}") from None
