"""Stage 9: `retuning_proposal` — the next iteration's thresholds and hardware mix, with the reason."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from aiinfra_pipelines.assets._meta import as_json, numeric, table
from aiinfra_pipelines.assets.partitions import iteration_number, iterations_partitions
from aiinfra_pipelines.resources import WorkloadSpecResource


@dg.asset(
    partitions_def=iterations_partitions,
    group_name="lifecycle",
    kinds={"python"},
    description="Tunes every policy family on the iteration's observed traffic with the simulator and "
    "re-plans the hardware; says whether the loop goes on, and why.",
)
def retuning_proposal(
    context: dg.AssetExecutionContext,
    workload_spec: WorkloadSpecResource,
    duckdb: DuckDBResource,
    iteration_report,
    workload_profile,
    hardware_plan,
    scaling_policy,
):
    from aiinfra_pipelines.retuning import propose

    spec = workload_spec.load()
    key = context.partition_key
    with duckdb.get_connection() as con:
        requests = con.execute(
            "SELECT arrival_s, service_s, latency_s, status FROM requests WHERE iteration = ? ORDER BY arrival_s",
            [key],
        ).df()
    proposal = propose(
        spec, iteration=key, iteration_number=iteration_number(key), report=iteration_report,
        requests=requests if len(requests) else None, profile=workload_profile, plan=hardware_plan,
        current_policy=scaling_policy, provisioning_delay_s=iteration_report.scale_up_response_s,
    )
    meta = {
        "continue_loop": str(proposal.continue_loop),
        "reason": proposal.reason,
        "stop_reason": proposal.stop_reason or "",
        "proposal": as_json(proposal.run_config()),
        "proposal_full": as_json(proposal),
        "policy_family": proposal.policy_family or "",
        "search": table(proposal.search) if proposal.search else "no inference part",
    }
    meta.update(numeric({
        "predicted_cost_improvement": proposal.predicted_cost_improvement,
        "predicted_slo_improvement": proposal.predicted_slo_improvement,
        "target_rps": proposal.target_rps,
    }))
    return dg.Output(proposal, metadata=meta)
