"""Stage 3: `infrastructure` — Terraform plan and apply of the plan's pools.

The plan is checked before it is applied: a plan that destroys or replaces a stateful
resource (cluster, file system, bucket) is refused unless the run config approves it;
the blocking check `no_unapproved_stateful_changes` records why and stops the iteration.
"""

from __future__ import annotations

import dagster as dg

from aiinfra_pipelines.assets._meta import as_json, table
from aiinfra_pipelines.assets.config import InfrastructureConfig
from aiinfra_pipelines.assets.partitions import iterations_partitions
from aiinfra_pipelines.resources import WorkloadSpecResource

STATEFUL_CHECK = "no_unapproved_stateful_changes"


@dg.asset(
    partitions_def=iterations_partitions,
    group_name="lifecycle",
    kinds={"terraform"},
    check_specs=[
        dg.AssetCheckSpec(
            STATEFUL_CHECK, asset="infrastructure", blocking=True,
            description="The applied plan destroys or replaces no stateful resource unless approved.",
        )
    ],
    description="Renders Terraform variables from the plan and runs init/plan/apply on the target's root module.",
)
def infrastructure(
    context: dg.AssetExecutionContext,
    config: InfrastructureConfig,
    workload_spec: WorkloadSpecResource,
    terraform,
    hardware_plan,
):
    from aiinfra_pipelines.provisioning import stateful_changes

    spec = workload_spec.load()
    iteration = context.partition_key
    summary = terraform.plan(hardware_plan, spec, iteration=iteration)
    risky = stateful_changes(summary)
    if risky and not config.approve_stateful_changes:
        yield dg.AssetCheckResult(
            check_name=STATEFUL_CHECK, passed=False, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"stateful_changes": ", ".join(risky)},
        )
        raise dg.Failure(
            description=f"refusing to apply: the plan destroys or replaces stateful resources {risky}; "
            "set infrastructure.config.approve_stateful_changes=true to approve",
            metadata={"stateful_changes": ", ".join(risky)},
        )
    result = terraform.apply(hardware_plan, spec, iteration=iteration,
                             approve_stateful_changes=config.approve_stateful_changes)
    changes = result.changes.model_dump() if hasattr(result.changes, "model_dump") else dict(result.changes)
    yield dg.AssetCheckResult(
        check_name=STATEFUL_CHECK, passed=True,
        metadata={"stateful_changes": ", ".join(risky) or "none", "approved": config.approve_stateful_changes},
    )
    resource_rows = [
        {"address": rc.get("address"), "actions": ",".join(rc.get("actions", []))}
        if isinstance(rc, dict) else {"address": rc.address, "actions": ",".join(rc.actions)}
        for rc in (summary.resource_changes or [])
    ]
    yield dg.Output(
        {"target": spec.target, "changes": changes, "outputs": result.outputs},
        metadata={
            "target": spec.target,
            "plan_add": summary.add, "plan_change": summary.change, "plan_destroy": summary.destroy,
            "resource_changes": table(resource_rows) if resource_rows else "no changes",
            "outputs": as_json(result.outputs),
        },
    )
