"""Stage 2: `hardware_plan` — node pools chosen from the real catalog by the performance model."""


import dagster as dg

from aiinfra_pipelines.assets._meta import as_json, numeric, table
from aiinfra_pipelines.assets.config import ProposalConfig
from aiinfra_pipelines.assets.partitions import iterations_partitions
from aiinfra_pipelines.resources import WorkloadSpecResource


def overrides_from_proposal(config: ProposalConfig):
    from aiinfra_pipelines.planning import PlanOverrides

    return PlanOverrides(
        training_instance_type=config.training_instance_type,
        inference_instance_types=list(config.inference_instance_types) or None,
        min_replicas=config.min_replicas,
        max_replicas=config.max_replicas,
        target_rps=config.target_rps,
    )


@dg.asset(
    partitions_def=iterations_partitions,
    group_name="lifecycle",
    kinds={"python"},
    description="Chooses node pools for training and inference from the packaged catalog; predicted cost "
    "and time, and the alternatives considered.",
)
def hardware_plan(
    context: dg.AssetExecutionContext, config: ProposalConfig, workload_spec: WorkloadSpecResource, workload_profile
):
    from aiinfra_pipelines.planning import plan_hardware

    spec = workload_spec.load()
    plan = plan_hardware(spec, workload_profile, overrides=overrides_from_proposal(config))
    pools = [p.model_dump(mode="json") for p in plan.pools]
    meta = {
        "plan": as_json(plan),
        "pools": table(pools, ["name", "role", "cloud", "region", "instance_type", "accelerator",
                               "count", "min_count", "max_count", "spot", "price_per_hour"]),
        "local_equivalent": f"{plan.local_equivalent.cloud} {plan.local_equivalent.instance_type} "
        f"(${plan.local_equivalent.price_per_hour:.4f}/h)",
        "catalog_snapshot": str(plan.catalog_snapshot),
        "applied_proposal": config.source_iteration or "none (first iteration)",
    }
    meta.update(numeric({f"predicted_{k}": v for k, v in (plan.predicted or {}).items()}))
    if plan.alternatives:
        rows = [a if isinstance(a, dict) else a.model_dump(mode="json") for a in plan.alternatives[:15]]
        meta["alternatives"] = table(rows)
    return dg.Output(plan, metadata=meta)
