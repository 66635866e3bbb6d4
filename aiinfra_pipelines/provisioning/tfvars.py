"""The hardware plan as Terraform variables (JSON tfvars).

Every value a user or the planner chose reaches Terraform as typed data in a ``.tfvars.json``
file; no HCL is assembled from strings. Each root module's ``variables.tf`` declares the types,
and Terraform's own validation rejects a bad value with the variable's name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiinfra_pipelines.provisioning.plan_view import PlanError, PlanView, PoolView, view_plan

TARGETS = ("local", "aws")
ARM_FAMILIES = re.compile(r"^(a1|[a-z]+\d+g[a-z]*)\.")  # Graviton: m7g, c7gn, g5g, t4g ...

_EKS_TAINT_EFFECT = {"NoSchedule": "NO_SCHEDULE", "NoExecute": "NO_EXECUTE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}


def workload_name(spec_or_workload: Any) -> str:
    if isinstance(spec_or_workload, str):
        return spec_or_workload
    name = spec_or_workload.get("name") if isinstance(spec_or_workload, dict) else getattr(spec_or_workload, "name", None)
    if not name:
        raise PlanError("spec: has no 'name' to name the deployment")
    return name


def ami_type(pool: PoolView) -> str:
    """The EKS AMI for a pool: the NVIDIA GPU AMI, the Neuron AMI (Inferentia/Trainium), or the standard one."""
    kind = pool.accelerator_kind
    if kind == "nvidia":
        return "AL2023_ARM_64_NVIDIA" if ARM_FAMILIES.match(pool.instance_type) else "AL2023_x86_64_NVIDIA"
    if kind == "neuron":
        return "AL2023_x86_64_NEURON"
    return "AL2023_ARM_64_STANDARD" if ARM_FAMILIES.match(pool.instance_type) else "AL2023_x86_64_STANDARD"


def pool_taints(pool: PoolView) -> list[dict[str, str]]:
    """The plan's taints, plus the accelerator taint that keeps CPU-only pods off accelerator nodes."""
    taints = [t.model_dump() for t in pool.taints]
    if pool.k8s_resource and not any(t["key"] == pool.k8s_resource for t in taints):
        taints.append({"key": pool.k8s_resource, "value": "present", "effect": "NoSchedule"})
    return taints


def pool_labels(plan: PlanView, pool: PoolView) -> dict[str, str]:
    labels = {
        "aiinfra.io/workload": plan.workload,
        "aiinfra.io/pool": pool.name,
        "aiinfra.io/role": pool.role,
        "aiinfra.io/accelerator": (pool.accelerator or "none").lower().replace(" ", "-"),
    }
    # The kubelet owns the kubernetes.io / k8s.io label namespaces (it sets node.kubernetes.io/instance-type itself).
    labels.update({str(k): str(v) for k, v in pool.labels.items() if not _reserved_label(str(k))})
    return labels


def _reserved_label(key: str) -> bool:
    prefix = key.split("/", 1)[0] if "/" in key else ""
    return any(prefix == d or prefix.endswith("." + d) for d in ("kubernetes.io", "k8s.io"))


def _local_vars(plan: PlanView, iteration: int, deployment_dir: str) -> dict[str, Any]:
    return {
        "workload": plan.workload,
        "iteration": int(iteration),
        "deployment_dir": deployment_dir,
        "pools": {
            p.name: {
                "role": p.role,
                "cloud": p.cloud,
                "region": p.region,
                "instance_type": p.instance_type,
                "accelerator": p.accelerator,
                "accelerators_per_node": p.accelerators_per_node,
                "count": p.count,
                "min_count": p.min_count,
                "max_count": p.max_count,
                "spot": p.spot,
                "price_per_hour": p.price_per_hour,
                "vcpus": p.vcpus,
                "memory_gib": p.memory_gib,
                "labels": pool_labels(plan, p),
                "taints": pool_taints(p),
            }
            for p in plan.pools
        },
        "storage": {"tier": plan.storage.tier, "size_gb": plan.storage.size_gb},
    }


def _aws_vars(plan: PlanView, iteration: int, shared_fs_kind: str) -> dict[str, Any]:
    not_aws = [p.name for p in plan.pools if p.cloud != "aws"]
    if not_aws:
        raise PlanError(f"pools.{not_aws[0]}.cloud: the aws target provisions only aws pools, plan has {not_aws}")
    regions = sorted({p.region for p in plan.pools})
    if len(regions) != 1:
        raise PlanError(f"pools.region: one EKS cluster lives in one region, the plan spans {regions}")
    pools = {}
    for p in plan.pools:
        max_size = max(p.max_count, p.count, 1)
        pools[p.name] = {
            "role": p.role,
            "instance_types": [p.instance_type],
            "ami_type": ami_type(p),
            "capacity_type": "SPOT" if p.spot else "ON_DEMAND",
            "desired_size": p.count,
            "min_size": min(p.min_count, p.count),
            "max_size": max_size,
            "labels": pool_labels(plan, p),
            "taints": [
                {"key": t["key"], "value": t["value"], "effect": _EKS_TAINT_EFFECT[t["effect"]]} for t in pool_taints(p)
            ],
            "disk_size_gb": 100 if p.accelerator_kind != "cpu" else 50,
            # Local NVMe (instance store) is formatted and mounted by a launch template when the plan wants it.
            "local_nvme": plan.storage.tier == "nvme" and p.role == "training",
        }
    return {
        "name": plan.workload,
        "region": regions[0],
        "iteration": int(iteration),
        "node_pools": pools,
        "storage": {"tier": plan.storage.tier, "size_gb": plan.storage.size_gb, "shared_fs_kind": shared_fs_kind},
        "tags": {"aiinfra.io/workload": plan.workload, "managed-by": "aiinfra-pipelines"},
    }


def tfvars_from_plan(
    plan: Any,
    spec: Any,
    target: str,
    iteration: int,
    *,
    deployment_dir: str | Path | None = None,
    aws_endpoint: str | None = None,
    shared_fs_kind: str = "efs",
) -> dict[str, Any]:
    """The variables of the ``target`` root module for this plan and iteration."""
    view = view_plan(plan)
    if spec is not None and workload_name(spec) != view.workload:
        raise PlanError(f"workload: the plan is for {view.workload!r}, the spec is {workload_name(spec)!r}")
    if target == "local":
        if deployment_dir is None:
            raise ValueError("deployment_dir: the local target needs the deployment's state folder")
        return _local_vars(view, iteration, str(deployment_dir))
    if target == "aws":
        if shared_fs_kind not in ("efs", "fsx_lustre"):
            raise PlanError(f"shared_fs_kind: expected efs or fsx_lustre, got {shared_fs_kind!r}")
        tfvars = _aws_vars(view, iteration, shared_fs_kind)
        tfvars["aws_endpoint"] = aws_endpoint
        return tfvars
    raise PlanError(f"target: expected one of {TARGETS}, got {target!r}")
