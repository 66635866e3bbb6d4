"""Stage 5: `scaling_policy` — the autoscaling policy, as the local run's config and as KEDA/HPA manifests."""


import dagster as dg
import yaml

from aiinfra_pipelines.assets._meta import as_json, numeric
from aiinfra_pipelines.assets.config import ProposalConfig
from aiinfra_pipelines.assets.partitions import iterations_partitions
from aiinfra_pipelines.resources import DeploymentResource, WorkloadSpecResource


@dg.asset(
    partitions_def=iterations_partitions,
    group_name="lifecycle",
    kinds={"kubernetes"},
    description="The autoscaling policy (initial thresholds from the spec, or the previous iteration's "
    "proposal), rendered as the local controller's config and as a KEDA ScaledObject and HPA v2, validated.",
)
def scaling_policy(
    context: dg.AssetExecutionContext,
    config: ProposalConfig,
    workload_spec: WorkloadSpecResource,
    deployment: DeploymentResource,
    workload_profile,
    hardware_plan,
):
    from aiinfra_pipelines.scaling.decision import decide_policy

    spec = workload_spec.load()
    decision = decide_policy(spec, workload_profile, hardware_plan, proposal=config.model_dump())
    folder = deployment.iteration_dir(spec.name, context.partition_key) / "manifests"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, manifest in (("scaledobject.yaml", decision.scaled_object), ("hpa.yaml", decision.hpa)):
        if manifest:
            (folder / name).write_text(yaml.safe_dump(manifest, sort_keys=False))
            written.append(str(folder / name))
    meta = {
        "policy_family": decision.family,
        "policy": as_json(decision),
        "source": decision.source,
        "manifests": ", ".join(written) or "none",
    }
    if decision.scaled_object:
        meta["keda_scaledobject"] = dg.MetadataValue.md(
            "```yaml\n" + yaml.safe_dump(decision.scaled_object, sort_keys=False) + "```"
        )
    meta.update(numeric({f"param_{k}": v for k, v in decision.params.items()}))
    meta.update(numeric({"min_replicas": decision.min_replicas, "max_replicas": decision.max_replicas}))
    return dg.Output(decision, metadata=meta)
