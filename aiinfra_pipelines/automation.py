"""The retuning loop: a sensor that starts the next iteration with the proposal, and a schedule.

Both go through :func:`next_iteration_request`, as does `aiinfra iterate`, so the three
agree on what "the next iteration" is: the next partition key, and the last proposal as
typed run config (`ProposalConfig` on `hardware_plan` and `scaling_policy`).
"""


from dataclasses import dataclass

import dagster as dg

from aiinfra_pipelines.assets.partitions import ITERATIONS, iteration_key, iteration_number, next_iteration_key

ITERATION_JOB = "iteration"
PROPOSAL_KEY = dg.AssetKey("retuning_proposal")


@dataclass
class LastProposal:
    iteration: str
    continue_loop: bool
    reason: str
    stop_reason: str
    run_config: dict


def last_proposal(instance: dg.DagsterInstance) -> LastProposal | None:
    """The latest materialized `retuning_proposal` (any partition), read from its metadata."""
    event = instance.get_latest_materialization_event(PROPOSAL_KEY)
    if event is None or event.asset_materialization is None:
        return None
    mat = event.asset_materialization
    md = mat.metadata

    def text(k: str) -> str:
        v = md.get(k)
        return "" if v is None else str(getattr(v, "value", getattr(v, "text", v)))

    cfg = md.get("proposal")
    data = cfg.data if cfg is not None and hasattr(cfg, "data") else {}
    return LastProposal(
        iteration=mat.partition or "",
        continue_loop=text("continue_loop") == "True",
        reason=text("reason"),
        stop_reason=text("stop_reason"),
        run_config=dict(data),
    )


def run_config_for(proposal: dict | None) -> dict:
    ops = {}
    if proposal:
        cfg = {k: v for k, v in proposal.items() if v is not None}
        ops = {"hardware_plan": {"config": cfg}, "scaling_policy": {"config": cfg}}
    return {"ops": ops} if ops else {}


def next_iteration_request(instance: dg.DagsterInstance, *, use_proposal: bool = True) -> tuple[str, dict, LastProposal | None]:
    existing = instance.get_dynamic_partitions(ITERATIONS)
    key = next_iteration_key(existing)
    last = last_proposal(instance) if use_proposal else None
    return key, run_config_for(last.run_config if last else None), last


@dg.sensor(
    job_name=ITERATION_JOB,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When an iteration's report and proposal land and the targets are not met (or the proposal "
    "predicts a gain beyond the tolerance), adds the next iteration and requests it with the proposal.",
)
def retuning_sensor(context: dg.SensorEvaluationContext):
    last = last_proposal(context.instance)
    if last is None:
        return dg.SkipReason("no iteration has produced a retuning proposal yet")
    if context.cursor == last.iteration:
        return dg.SkipReason(f"iteration {last.iteration}'s proposal was already handled")
    if not last.continue_loop:
        context.update_cursor(last.iteration)
        return dg.SkipReason(f"loop stopped after iteration {last.iteration}: {last.stop_reason}")
    # The next key derives from the source iteration, so a repeated evaluation asks for the same one.
    key = iteration_key(iteration_number(last.iteration) + 1)
    context.update_cursor(last.iteration)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                # one request per source iteration, whatever the number of evaluations
                run_key=f"retune-after-{last.iteration}",
                partition_key=key,
                run_config=run_config_for(last.run_config),
                tags={"aiinfra/proposal_from": last.iteration, "aiinfra/reason": last.reason[:200]},
            )
        ],
        dynamic_partitions_requests=[dg.AddDynamicPartitionsRequest(ITERATIONS, [key])],
    )


@dg.schedule(
    cron_schedule="0 3 * * *",
    job_name=ITERATION_JOB,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="A periodic retuning iteration (daily at 03:00) with the latest proposal; stopped by default.",
)
def periodic_retuning_schedule(context: dg.ScheduleEvaluationContext):
    key, run_config, last = next_iteration_request(context.instance)
    context.instance.add_dynamic_partitions(ITERATIONS, [key])
    return dg.RunRequest(
        run_key=f"scheduled-{context.scheduled_execution_time:%Y%m%dT%H%M}",
        partition_key=key,
        run_config=run_config,
        tags={"aiinfra/proposal_from": last.iteration if last else "none", "aiinfra/trigger": "schedule"},
    )

