"""Read a hardware plan whether it is the planner's pydantic model, any object with the same
attributes, or a plain dict (JSON from disk). Provisioning depends on the plan's fields, not on
the class that carries them, so it can run from a saved plan file without importing the planner."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from aiinfra_pipelines.fields import get_field as _get


class PlanError(ValueError):
    """A hardware plan that provisioning cannot use; the message names the field."""




def _plain(obj: Any) -> Any:
    """A JSON-able copy: pydantic models dumped, objects read by attribute, dicts and lists walked."""
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


class Taint(BaseModel):
    model_config = ConfigDict(extra="ignore")
    key: str
    value: str = ""
    effect: str = "NoSchedule"

    @field_validator("effect")
    @classmethod
    def _effect(cls, v: str) -> str:
        if v not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            raise ValueError("must be NoSchedule, PreferNoSchedule or NoExecute")
        return v


class PoolView(BaseModel):
    """One node pool of the plan, as provisioning and the manifests read it."""

    model_config = ConfigDict(extra="ignore")
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
    role: str = Field(pattern=r"^(training|inference|system)$")
    cloud: str = "aws"
    region: str = "us-east-1"
    instance_type: str
    accelerator: str | None = None
    # fractional on partitioned GPUs (g6f: 1/8 of an L4); the node still advances one device
    accelerators_per_node: float = Field(0, ge=0)
    count: int = Field(1, ge=0)
    min_count: int = Field(0, ge=0)
    max_count: int = Field(1, ge=1)
    spot: bool = False
    price_per_hour: float = Field(0.0, ge=0)
    vcpus: float = Field(0, ge=0)
    memory_gib: float = Field(0, ge=0)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)
    local_nvme_gb: float = Field(0, ge=0)

    @property
    def accelerator_kind(self) -> str:
        """'nvidia', 'neuron' (Inferentia/Trainium) or 'cpu': decides AMI, device plugin resource and exporter."""
        acc = (self.accelerator or "").lower()
        if not acc or self.accelerators_per_node == 0:
            return "cpu"
        if any(k in acc for k in ("inferentia", "trainium", "inf1", "inf2", "trn1", "trn2", "neuron")):
            return "neuron"
        return "nvidia"

    @property
    def devices_per_node(self) -> int:
        """Whole devices the device plugin advertises per node (a fractional GPU partition is one device)."""
        if self.accelerator_kind == "cpu":
            return 0
        return max(1, math.floor(self.accelerators_per_node + 1e-9))

    @property
    def k8s_resource(self) -> str | None:
        """The extended resource the device plugin advertises for this pool's accelerator."""
        return {"nvidia": "nvidia.com/gpu", "neuron": "aws.amazon.com/neuron"}.get(self.accelerator_kind)


class StorageView(BaseModel):
    model_config = ConfigDict(extra="ignore")
    tier: str = Field("memory", pattern=r"^(memory|nvme|shared_fs|object)$")
    size_gb: float = Field(1.0, ge=0)


class PlanView(BaseModel):
    """The fields of a HardwarePlan that provisioning uses."""

    model_config = ConfigDict(extra="ignore")
    workload: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")
    pools: list[PoolView] = Field(min_length=1)
    storage: StorageView = Field(default_factory=StorageView)
    predicted: dict[str, Any] = Field(default_factory=dict)

    @field_validator("pools")
    @classmethod
    def _unique(cls, v: list[PoolView]) -> list[PoolView]:
        names = [p.name for p in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"pool names must be unique, repeated: {dup}")
        return v

    def pools_with_role(self, role: str) -> list[PoolView]:
        return [p for p in self.pools if p.role == role]

    @property
    def region(self) -> str:
        return self.pools[0].region


def view_plan(plan: Any) -> PlanView:
    """A PlanView of a HardwarePlan model, an object with its attributes, or a dict; PlanError names bad fields."""
    if isinstance(plan, PlanView):
        return plan
    data = _plain(plan) if isinstance(plan, (dict, BaseModel)) else None
    if data is None:
        data = {
            "workload": _get(plan, "workload"),
            "pools": [_plain(p) if isinstance(p, (dict, BaseModel)) else dict(vars(p)) for p in (_get(plan, "pools") or [])],
            "storage": _plain(_get(plan, "storage")) if _get(plan, "storage") is not None else {},
            "predicted": _plain(_get(plan, "predicted") or {}),
        }
        if not isinstance(data["storage"], dict):
            data["storage"] = {"tier": _get(_get(plan, "storage"), "tier"), "size_gb": _get(_get(plan, "storage"), "size_gb")}
    if not isinstance(data, dict):
        raise PlanError(f"hardware plan: expected a mapping or a HardwarePlan, got {type(plan).__name__}")
    if data.get("storage") is None:
        data.pop("storage", None)
    for pool in data.get("pools") or []:
        if isinstance(pool, dict) and pool.get("accelerator") is None:
            pool.pop("accelerator", None)
    try:
        return PlanView.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(plan)'}: {e['msg'].removeprefix('Value error, ')}" for e in err.errors()
        )
        raise PlanError(f"hardware plan: {problems}") from None


# General-purpose AWS instances for a CPU-only pool, smallest first: (type, vCPUs, GiB).
AWS_GENERAL_PURPOSE = (
    ("m7i.large", 2, 8),
    ("m7i.xlarge", 4, 16),
    ("m7i.2xlarge", 8, 32),
    ("m7i.4xlarge", 16, 64),
    ("m7i.8xlarge", 32, 128),
)


def adapt_plan_for_target(plan: Any, target: str) -> tuple[PlanView, list[str]]:
    """The plan as the target provisions it, and a note for each pool that had to move.

    One cluster lives in one cloud and region. On ``aws``, a CPU-only pool (the system pool)
    that the plan placed on another cloud, because its catalog offered the cheapest small
    machine there, moves to the smallest general-purpose AWS instance with at least its
    vCPUs and memory, in the region of the accelerator pools. Accelerator pools never move:
    a plan whose accelerator pool is not on AWS is refused by the variables."""
    view = view_plan(plan)
    if target != "aws":
        return view, []
    aws_regions = sorted({p.region for p in view.pools if p.cloud == "aws"})
    region = aws_regions[0] if aws_regions else "us-east-1"
    notes, pools = [], []
    for p in view.pools:
        if p.cloud != "aws" and p.accelerator_kind == "cpu":
            itype, vcpus, mem = next(
                (t for t in AWS_GENERAL_PURPOSE if t[1] >= (p.vcpus or 0) and t[2] >= (p.memory_gib or 0)),
                AWS_GENERAL_PURPOSE[-1],
            )
            labels = dict(p.labels)
            if "node.kubernetes.io/instance-type" in labels:
                labels["node.kubernetes.io/instance-type"] = itype
            notes.append(
                f"pool {p.name}: planned as {p.cloud} {p.instance_type} ({p.region}); the aws target runs it on "
                f"{itype} ({vcpus} vCPU, {mem} GiB) in {region}"
            )
            p = p.model_copy(update={"cloud": "aws", "region": region, "instance_type": itype,
                                     "vcpus": float(vcpus), "memory_gib": float(mem), "labels": labels})
        pools.append(p)
    return view.model_copy(update={"pools": pools}), notes
