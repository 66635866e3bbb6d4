"""plan_hardware: a profiled workload + the catalog -> a HardwarePlan (node pools, storage, predictions)."""

from __future__ import annotations

import re
import time

from pydantic import BaseModel, Field

from aiinfra_pipelines.planning.catalog import Catalog, CatalogEntry, load_catalog, local_equivalent
from aiinfra_pipelines.planning.optimizer import (
    StoragePlan,
    one_vcpu_step_s,
    plan_inference_mix,
    plan_storage,
    plan_training,
    replica_capacity,
)
from aiinfra_pipelines.fields import get_field as _get
from aiinfra_pipelines.spec import WorkloadSpec


class PlanOverrides(BaseModel):
    training_instance_type: str | None = None
    inference_instance_types: list[str] | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    allow_spot: bool | None = None
    target_rps: float | None = Field(None, gt=0, description="Observed peak request rate to size for.")


class Taint(BaseModel):
    key: str
    value: str
    effect: str = "NoSchedule"


class NodePool(BaseModel):
    name: str
    role: str
    cloud: str
    region: str
    instance_type: str
    accelerator: str | None = None
    accelerators_per_node: float = 0
    count: int
    min_count: int
    max_count: int
    spot: bool = False
    price_per_hour: float
    vcpus: float | None = None
    memory_gib: float | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)


class HardwarePlan(BaseModel):
    workload: str
    target: str
    pools: list[NodePool]
    storage: StoragePlan
    predicted: dict
    alternatives: list[dict] = Field(default_factory=list)
    pareto: list[dict] = Field(default_factory=list)
    local_equivalent: CatalogEntry
    catalog_snapshot: str
    provenance: dict




def _dns(s: str) -> str:
    s = re.sub(r"[^a-z0-9-]+", "-", s.lower()).strip("-")
    return s[:63].strip("-") or "pool"


def _pool(name, role, r, count, min_count, max_count) -> NodePool:
    labels = {"aiinfra/role": role, "aiinfra/pool": name, "node.kubernetes.io/instance-type": r["instance_type"]}
    taints = []
    if r.get("accelerator"):
        labels["aiinfra/accelerator"] = _dns(r["accelerator"])
        taints.append(Taint(key="aiinfra/accelerator", value=_dns(r["accelerator"])))
    if r.get("spot"):
        labels["aiinfra/capacity"] = "spot"
    return NodePool(name=name, role=role, cloud=r["cloud"], region=r["region"], instance_type=r["instance_type"],
                    accelerator=r.get("accelerator"), accelerators_per_node=r.get("accelerators_per_node") or 0,
                    count=count, min_count=min_count, max_count=max_count, spot=bool(r.get("spot")),
                    price_per_hour=r["price_per_hour"], vcpus=r.get("vcpus"), memory_gib=r.get("memory_gib"),
                    labels=labels, taints=taints)


# Shared-core and burstable types sustain a fraction of a vCPU (CPU credits): a training job or a serving
# replica at its target load would run at the baseline, not at the vCPU count the catalog lists.
SHARED_CORE = re.compile(r"^(f1-micro|g1-small|e2-(micro|small|medium)|t\d[a-z]*\..*|Standard_B.*)$")


def _frame_for(spec: WorkloadSpec, catalog: Catalog):
    pl = spec.placement
    clouds = ["aws"] if spec.target == "aws" else ["gcp"] if spec.target == "gcp" else list(pl.clouds)
    df = catalog.filter(cloud=clouds, regions=pl.regions or None)
    df = df[~df.instance_type.str.match(SHARED_CORE)]
    if pl.accelerators:
        keep = {a.lower() for a in pl.accelerators}
        df = df[df.accelerator.isna() | df.accelerator.str.lower().isin(keep).fillna(False)]
    return df


def plan_hardware(spec: WorkloadSpec, profile, *, catalog: Catalog | None = None,
                  overrides: PlanOverrides | None = None) -> HardwarePlan:
    """Choose node pools, storage and predictions for ``spec`` from its ``profile`` (model or dict)."""
    t0 = time.perf_counter()
    cat = catalog or load_catalog()
    ov = overrides or PlanOverrides()
    host = _get(profile, "host", {}) or {}
    host_cpus = float(_get(host, "logical_cpus", 1) or 1)
    host_mem = float(_get(host, "memory_gib", 1) or 1)
    local = local_equivalent(int(host_cpus), host_mem, cat)
    frame = _frame_for(spec, cat)
    allow_spot = spec.placement.allow_spot if ov.allow_spot is None else ov.allow_spot
    pools, predicted, alternatives, pareto = [], {}, [], []
    storage = plan_storage(0, 0, local.memory_gib)
    tr = _get(profile, "training")
    if spec.training is not None and tr is not None:
        for f in ("samples_per_s", "flops_per_sample"):
            if not _get(tr, f):
                raise ValueError(f"profile.training.{f} is required to plan training")
        sps_cpu = float(_get(tr, "samples_per_s"))
        # The profile measured this rate on the cores the process kept busy (the reference trainer
        # uses one); the planner scales one vCPU's step time (see optimizer.cpu_step_s).
        busy = float(_get(tr, "cpu_utilization") or 0.0) * host_cpus
        cores_used = min(max(busy, 1.0), host_cpus)
        batch = spec.training.batch_size
        per_vcpu_sps = batch / one_vcpu_step_s(batch / sps_cpu, cores_used)
        epoch_s = float(_get(tr, "epoch_s") or 0) or None
        samples = sps_cpu * epoch_s if epoch_s else float(_get(tr, "samples_per_epoch") or 1e4)
        dataset_bytes = float(_get(tr, "dataset_bytes") or 0) or (spec.dataset.size_gb or 0) * 1e9
        read_bps = float(_get(tr, "io_read_bytes_per_s_needed") or 0)
        workload = {"flops_per_sample": spec.model.flops_per_sample or float(_get(tr, "flops_per_sample")),
                    "bytes_per_sample": float(_get(tr, "bytes_per_sample") or 0),
                    "parameters": spec.model.parameters or float(_get(tr, "parameters") or 0),
                    "sample_bytes": dataset_bytes / samples if samples else 0.0}
        tf = frame if not ov.training_instance_type else frame[frame.instance_type == ov.training_instance_type]
        if tf.empty:
            raise ValueError(f"overrides.training_instance_type: {ov.training_instance_type!r} is not in the catalog for this placement")
        res = plan_training(workload, tf, epochs=spec.training.epochs, batch_size=spec.training.batch_size,
                            samples_per_epoch=samples, deadline_s=(spec.targets.deadline_hours or 0) * 3600 or None,
                            budget_usd=spec.targets.budget_usd, allow_spot=allow_spot,
                            cpu_samples_per_s_per_vcpu=per_vcpu_sps, catalog=cat)
        ch = res["chosen"]
        storage = plan_storage(dataset_bytes, read_bps, ch.get("memory_gib"), ch["count"])
        pools.append(_pool(_dns(f"{spec.name}-train"), "training", ch, ch["count"], 0, ch["count"]))
        predicted.update(epoch_time_s=ch["epoch_time_s"], training_time_s=ch["training_time_s"],
                         training_cost_usd=ch["training_cost_usd"], training_objective=res["objective"],
                         data_load_time_s=storage.predicted_load_time_s)
        alternatives = sorted(res["rows"], key=lambda r: r["training_cost_usd"])[:20]
        pareto = res["pareto"][:50]
    inf = _get(profile, "inference")
    if spec.inference is not None and inf is not None:
        slo = spec.targets.latency_slo.p99_latency_s
        lat = _get(inf, "latency_by_batch") or []
        cpu_rps = float(_get(inf, "saturation_rps") or 0)
        ok = [_get(r, "throughput_rps") for r in lat if _get(r, "p99_s", 1e9) <= slo]
        if ok:
            cpu_rps = max(ok)
        workload = {"flops_per_request": float(_get(inf, "flops_per_request") or 0),
                    "parameters": spec.model.parameters or float(_get(tr, "parameters") or 0) if tr is not None else (spec.model.parameters or 0)}
        if not workload["parameters"]:
            workload["parameters"] = workload["flops_per_request"] / 2
        target = ov.target_rps or cpu_rps or 1.0
        cap_kw = dict(slo_s=slo, prompt_tokens=1, output_tokens=1, allow_spot=False, catalog=cat,
                      cpu_rps_per_vcpu=cpu_rps / host_cpus if cpu_rps else None)
        cap = None
        if ov.inference_instance_types:
            cap = replica_capacity(workload, frame[frame.instance_type.isin(ov.inference_instance_types)], **cap_kw)
            if cap.empty:  # the proposal's types are gone from this placement or miss the SLO: plan afresh
                predicted["override_ignored"] = (
                    f"overrides.inference_instance_types {ov.inference_instance_types}: none is in the catalog for "
                    f"this placement with a replica that meets the {slo}s latency SLO; planned over every type"
                )
                cap = None
        if cap is None:
            cap = replica_capacity(workload, frame, **cap_kw)
        if cap.empty:
            raise ValueError(
                f"targets.latency_slo.p99_latency_s={slo}: no instance type of placement.clouds={spec.placement.clouds} "
                "serves a request within it (by the profile's latency curve and the performance model)"
            )
        mix = plan_inference_mix(cap, target, min_replicas=ov.min_replicas or spec.scaling.min_replicas or 1,
                                 max_replicas=ov.max_replicas or 64)
        for m in mix["mix"]:
            name = _dns(f"{spec.name}-serve-{m['instance_type']}")
            pools.append(_pool(name, "inference", m, int(m["count"]), ov.min_replicas or spec.scaling.min_replicas,
                               max(ov.max_replicas or spec.scaling.max_replicas, int(m["count"]))))
        hourly = mix["cost_per_hour_usd"]
        predicted.update(inference_cost_per_hour_usd=hourly, target_rps=target, capacity_rps=mix["capacity_rps"],
                         cost_per_1k_requests_usd=hourly / (target * 3600) * 1000,
                         inference_best_single=mix["best_single"], savings_vs_best_single=mix["savings_vs_best_single"])
    sysrow = local_equivalent(2, 4, cat) if spec.target == "local" else None
    sys_frame = frame[frame.accelerator.isna() & (frame.vcpus >= 2) & (frame.memory_gib >= 4)]
    if not sys_frame.empty:
        sysrow = sys_frame.sort_values(["vcpus", "price_per_hour"]).iloc[0].to_dict()
    elif sysrow is not None:
        sysrow = sysrow.model_dump()
    else:
        sysrow = local_equivalent(2, 4, cat).model_dump()
    sysrow = {**sysrow, "accelerator": None, "spot": False}
    pools.append(_pool(_dns(f"{spec.name}-system"), "system", sysrow, 1, 1, 1))
    if spec.target == "local":
        predicted["local_price_per_hour"] = local.price_per_hour
    predicted["planning_time_s"] = time.perf_counter() - t0
    return HardwarePlan(workload=spec.name, target=spec.target, pools=pools, storage=storage, predicted=predicted,
                        alternatives=alternatives, pareto=pareto, local_equivalent=local,
                        catalog_snapshot=cat.snapshot,
                        provenance={"profile": _get(profile, "profile_id") or _get(profile, "id") or "inline",
                                    "catalog": cat.provenance})
