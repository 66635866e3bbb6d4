"""Stage 3: `infrastructure` — Terraform plan and apply of the plan's pools.

The plan is checked before it is applied: a plan that destroys or replaces a stateful
resource (cluster, file system, bucket) is refused unless the run config approves it;
the blocking check `no_unapproved_stateful_changes` records why and stops the iteration.
"""


import dagster as dg

from aiinfra_pipelines.assets._meta import as_json, table
from aiinfra_pipelines.assets.config import InfrastructureConfig
from aiinfra_pipelines.assets.partitions import iteration_number, iterations_partitions
from aiinfra_pipelines.resources import WorkloadSpecResource
from aiinfra_pipelines.resources.terraform import TerraformResource

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
    terraform: TerraformResource,
    hardware_plan,
):
    from aiinfra_pipelines.provisioning import StatefulChangeRefused

    spec = workload_spec.load()
    try:
        # One plan, checked, then exactly that saved plan applied.
        result = terraform.apply(hardware_plan, spec, iteration=iteration_number(context.partition_key),
                                 approve_stateful_changes=config.approve_stateful_changes)
    except StatefulChangeRefused as refused:
        yield dg.AssetCheckResult(
            check_name=STATEFUL_CHECK, passed=False, severity=dg.AssetCheckSeverity.ERROR,
            metadata={"stateful_changes": ", ".join(refused.addresses)},
        )
        raise dg.Failure(
            description=f"refusing to apply: {refused}; "
            "set ops.infrastructure.config.approve_stateful_changes=true to approve",
            metadata={"stateful_changes": ", ".join(refused.addresses)},
        ) from None
    summary = result.plan
    risky = summary.replaces_stateful if summary else []
    yield dg.AssetCheckResult(
        check_name=STATEFUL_CHECK, passed=True,
        metadata={"stateful_changes": ", ".join(risky) or "none", "approved": config.approve_stateful_changes},
    )
    resource_rows = [
        {"address": rc.address, "action": rc.action, "resource_type": rc.resource_type}
        for rc in (summary.resource_changes if summary else [])
    ]
    yield dg.Output(
        {"target": spec.target, "changes": dict(result.changes), "outputs": result.outputs},
        metadata={
            "target": spec.target,
            "plan_add": result.changes.get("add", 0),
            "plan_change": result.changes.get("change", 0),
            "plan_destroy": result.changes.get("destroy", 0),
            "resource_changes": table(resource_rows) if resource_rows else "no changes",
            "outputs": as_json(result.outputs),
        },
    )
