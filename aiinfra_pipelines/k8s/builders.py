"""Kubernetes manifests of one iteration, built from the hardware plan as plain dicts.

Execution (the training Job; one inference Deployment per planned inference pool and one
Service), telemetry (Prometheus with the generated scrape configs and rules, the DCGM exporter
on GPU nodes, the node exporter on every node) and autoscaling (a KEDA ScaledObject and an HPA
v2 per inference Deployment, rendered by :mod:`aiinfra_pipelines.scaling.manifests`).

Every pod of the workload lands on its pool (``nodeSelector`` on the pool label the node groups
carry, tolerations for the pool's taints), asks for the pool's accelerators as an extended
resource (``nvidia.com/gpu`` or ``aws.amazon.com/neuron``) with requests equal to limits, and
runs as a non-root user with no privilege escalation, a read-only root file system and no
capabilities. Training pods prefer (EFS) or require (FSx for Lustre, one zone) the zones of the
shared file system. No Dagster import here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

from aiinfra_pipelines.provisioning.plan_view import PlanView, PoolView
from aiinfra_pipelines.provisioning.tfvars import pool_labels, pool_taints
from aiinfra_pipelines.telemetry import metrics as M

NAMESPACE = "aiinfra"  # the namespace scaling/ renders its ScaledObject and HPA into
DEFAULT_IMAGE = "ghcr.io/aiinfra-pipelines/aiinfra-pipelines:0.1.0"
SERVE_PORT = 8080
TRAIN_METRICS_PORT = 9400 - 1  # 9399: training exporter (9400 is the DCGM exporter's)
DCGM_PORT = 9400
NODE_EXPORTER_PORT = 9100
PROMETHEUS_PORT = 9090
RUN_AS_USER = 10001
DCGM_IMAGE = "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.9-3.6.1-ubuntu22.04"
NODE_EXPORTER_IMAGE = "quay.io/prometheus/node-exporter:v1.8.2"
PROMETHEUS_IMAGE = "quay.io/prometheus/prometheus:v2.54.1"
POOL_LABEL = "aiinfra.io/pool"
ROLE_LABEL = "aiinfra.io/role"
JOB_LABEL = "aiinfra.io/scrape-job"  # the Prometheus job a pod's metrics belong to

# The DCGM fields the exporter collects and the GPU rules read (dcgm-exporter counters CSV).
# FB_USED is in MiB and GPU_UTIL in percent; the rules convert to bytes and ratios.
DCGM_METRICS = {
    "DCGM_FI_DEV_GPU_UTIL": ("gauge", "GPU utilization (in %)."),
    "DCGM_FI_DEV_FB_USED": ("gauge", "Framebuffer memory used (in MiB)."),
    "DCGM_FI_DEV_FB_FREE": ("gauge", "Framebuffer memory free (in MiB)."),
    "DCGM_FI_DEV_POWER_USAGE": ("gauge", "Power draw (in W)."),
    "DCGM_FI_DEV_GPU_TEMP": ("gauge", "GPU temperature (in C)."),
    "DCGM_FI_DEV_XID_ERRORS": ("gauge", "Value of the last XID error encountered."),
}
RULE_GPU_UTILIZATION = "aiinfra:gpu_utilization:avg"
RULE_GPU_MEMORY_USED = "aiinfra:gpu_memory_used_bytes:sum"
RULE_GPU_POWER = "aiinfra:gpu_power_watts:sum"
# Prometheus jobs on the cluster: the workload's (same names as the local stack) and the exporters'.
JOB_DCGM = "dcgm"
JOB_NODE = "node"


class BuildError(ValueError):
    """A plan or spec the manifests cannot be built from; the message names the field."""


@dataclass
class ManifestBundle:
    """The manifests of one iteration, grouped by the file they are written to."""

    workload: str
    iteration: int
    files: dict[str, list[dict]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, filename: str, *objs: dict) -> None:
        self.files.setdefault(filename, []).extend(objs)

    def all(self) -> list[dict]:
        return [o for objs in self.files.values() for o in objs]

    def find(self, kind: str, name: str | None = None) -> list[dict]:
        return [o for o in self.all() if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


# --- building blocks --------------------------------------------------------------------------


def _meta(name: str, workload: str, component: str, iteration: int, extra: dict | None = None) -> dict:
    labels = {
        "app.kubernetes.io/name": workload,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "aiinfra",
        "app.kubernetes.io/managed-by": "aiinfra",
        "aiinfra.io/iteration": str(iteration),
    }
    labels.update(extra or {})
    return {"name": name, "namespace": NAMESPACE, "labels": labels}


def _pod_security() -> dict:
    return {"runAsNonRoot": True, "runAsUser": RUN_AS_USER, "runAsGroup": RUN_AS_USER, "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"}}


def _container_security() -> dict:
    return {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}


def _quantity_cpu(vcpus: float) -> str:
    return f"{max(100, int(vcpus * 1000))}m"


def _quantity_mem(gib: float) -> str:
    return f"{max(128, int(gib * 1024))}Mi"


def pool_resources(pool: PoolView, share: float = 0.8) -> dict:
    """Requests = limits (Guaranteed QoS): the pool's accelerators, ``share`` of its CPUs and memory
    (the rest stays with the kubelet, the CNI and the exporters)."""
    vcpus = (pool.vcpus or 2) * share
    mem = (pool.memory_gib or 4) * share
    res = {"cpu": _quantity_cpu(vcpus), "memory": _quantity_mem(mem), "ephemeral-storage": "2Gi"}
    if pool.k8s_resource:
        res[pool.k8s_resource] = str(pool.devices_per_node)
    return {"requests": dict(res), "limits": dict(res)}


def pool_scheduling(plan: PlanView, pool: PoolView) -> dict:
    """nodeSelector on the pool label and a toleration for each of the pool's taints."""
    tolerations = [
        {"key": t["key"], "operator": "Equal", "value": t["value"], "effect": t["effect"]} for t in pool_taints(pool)
    ]
    labels = pool_labels(plan, pool)
    return {"nodeSelector": {POOL_LABEL: labels[POOL_LABEL]}, "tolerations": tolerations}


def zone_affinity(zones: list[str], required: bool) -> dict | None:
    """Node affinity to the shared file system's zones (data locality)."""
    if not zones:
        return None
    term = {"matchExpressions": [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": sorted(zones)}]}
    if required:
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}
    return {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "preference": term}]}}


def _probe(path: str, port: int) -> dict:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": 10, "timeoutSeconds": 2, "failureThreshold": 3}


def _volumes(workload: str, artifacts_claim: str) -> tuple[list[dict], list[dict]]:
    volumes = [
        {"name": "spec", "configMap": {"name": f"{workload}-spec"}},
        {"name": "artifacts", "persistentVolumeClaim": {"claimName": artifacts_claim}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    mounts = [
        {"name": "spec", "mountPath": "/etc/aiinfra", "readOnly": True},
        {"name": "artifacts", "mountPath": "/artifacts"},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    return volumes, mounts


def _pod_spec(plan: PlanView, pool: PoolView, container: dict, *, workload: str, artifacts_claim: str,
              affinity: dict | None, restart: str) -> dict:
    volumes, mounts = _volumes(workload, artifacts_claim)
    container = {**container, "volumeMounts": mounts, "securityContext": _container_security(),
                 "resources": pool_resources(pool), "imagePullPolicy": "Always"}
    spec = {
        "restartPolicy": restart,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": _pod_security(),
        "containers": [container],
        "volumes": volumes,
        **pool_scheduling(plan, pool),
    }
    if affinity:
        spec["affinity"] = affinity
    return spec


# --- execution --------------------------------------------------------------------------------


def training_job(spec: Any, plan: PlanView, pool: PoolView, *, iteration: int, image: str, artifacts_claim: str,
                 affinity: dict | None) -> dict:
    name = f"{spec.name}-train-{iteration}"
    labels = {POOL_LABEL: pool.name, ROLE_LABEL: "training", JOB_LABEL: M.JOB_TRAINING}
    container = {
        "name": "trainer",
        "image": image,
        "command": ["python", "-m", "aiinfra_pipelines.workloads.trainer_process"],
        "args": ["--spec", "/etc/aiinfra/spec.yaml", "--metrics-port", str(TRAIN_METRICS_PORT),
                 "--model-out", "/artifacts/model.npz", "--result-out", f"/artifacts/train-{iteration}.json"],
        "ports": [{"name": "metrics", "containerPort": TRAIN_METRICS_PORT}],
        "env": [{"name": "AIINFRA_ITERATION", "value": str(iteration)}],
    }
    pod = _pod_spec(plan, pool, container, workload=spec.name, artifacts_claim=artifacts_claim, affinity=affinity,
                    restart="Never")
    # one pod per node of the pool: the pool's node count is the data-parallel width
    width = max(1, pool.count)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(name, spec.name, "training", iteration, labels),
        "spec": {
            "parallelism": width,
            "completions": width,
            "completionMode": "Indexed",
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 86400,
            "template": {"metadata": {"labels": _meta(name, spec.name, "training", iteration, labels)["labels"]},
                         "spec": pod},
        },
    }


def inference_deployment_name(spec: Any, pool: PoolView, n_pools: int) -> str:
    """``<workload>-inference`` for the only pool (the name scaling/ targets), else per pool."""
    return f"{spec.name}-inference" if n_pools == 1 else f"{pool.name}"[:63]


def inference_deployment(spec: Any, plan: PlanView, pool: PoolView, *, name: str, iteration: int, image: str,
                         artifacts_claim: str, affinity: dict | None) -> dict:
    labels = {POOL_LABEL: pool.name, ROLE_LABEL: "inference", JOB_LABEL: M.JOB_INFERENCE}
    selector = {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/component": "inference", POOL_LABEL: pool.name}
    max_batch = spec.inference.max_batch_size if spec.inference is not None else 32
    container = {
        "name": "server",
        "image": image,
        "command": ["python", "-m", "aiinfra_pipelines.workloads.serving"],
        "args": ["--model", "/artifacts/model.npz", "--host", "0.0.0.0", "--port", str(SERVE_PORT),
                 "--max-batch-size", str(max_batch),
                 "--replica", "$(POD_NAME)"],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "ports": [{"name": "http", "containerPort": SERVE_PORT}],
        "readinessProbe": _probe("/healthz", SERVE_PORT),
        "livenessProbe": {**_probe("/healthz", SERVE_PORT), "initialDelaySeconds": 10},
    }
    pod = _pod_spec(plan, pool, container, workload=spec.name, artifacts_claim=artifacts_claim, affinity=affinity,
                    restart="Always")
    pod_labels = {**_meta(name, spec.name, "inference", iteration, labels)["labels"], **selector}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, spec.name, "inference", iteration, labels),
        "spec": {
            "replicas": max(1, pool.count),
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": pod_labels}, "spec": pod},
        },
    }


def inference_service(spec: Any, iteration: int) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(f"{spec.name}-inference", spec.name, "inference", iteration),
        "spec": {
            "type": "ClusterIP",
            "selector": {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/component": "inference"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def spec_configmap(spec: Any, iteration: int) -> dict:
    data = spec.model_dump(mode="json", exclude_none=True)
    if data.get("traffic"):
        # the trace is replayed from outside the cluster; pods read the model and the training part
        data["traffic"]["trace"] = "/etc/aiinfra/trace.csv"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(f"{spec.name}-spec", spec.name, "config", iteration),
        "data": {"spec.yaml": yaml.safe_dump(data, sort_keys=False)},
    }


def artifacts_claim(spec: Any, iteration: int, *, storage_class: str, size_gb: float) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(f"{spec.name}-artifacts", spec.name, "storage", iteration),
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": storage_class,
            "resources": {"requests": {"storage": f"{max(1, math.ceil(size_gb))}Gi"}},
        },
    }


def namespace(workload: str, iteration: int) -> dict:
    meta = _meta(NAMESPACE, workload, "namespace", iteration)
    meta.pop("namespace")
    meta["labels"].update({"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted"})
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
