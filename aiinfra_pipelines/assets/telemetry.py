"""Stage 4: `telemetry_stack` — a real Prometheus server for the iteration, with promtool-checked config."""


import dagster as dg

from aiinfra_pipelines.assets.partitions import iterations_partitions
from aiinfra_pipelines.resources import DeploymentResource, WorkloadSpecResource


@dg.asset(
    partitions_def=iterations_partitions,
    group_name="lifecycle",
    kinds={"prometheus"},
    deps=["infrastructure"],
    description="Writes the Prometheus config and recording rules (checked with promtool), starts Prometheus "
    "on a free loopback port with a temporary TSDB and verifies that the exporter targets are up.",
)
def telemetry_stack(
    context: dg.AssetExecutionContext, workload_spec: WorkloadSpecResource, deployment: DeploymentResource
):
    from aiinfra_pipelines.telemetry.stack import TelemetryStack, deploy_local_stack, teardown_local_stack

    spec = workload_spec.load()
    folder = deployment.iteration_dir(spec.name, context.partition_key) / "telemetry"
    # A stack left by an iteration that failed mid-way is stopped first (by PID).
    for stale in (deployment.root / "deployments" / spec.name / "iterations").glob("*/telemetry/*.state.json"):
        try:
            teardown_local_stack(TelemetryStack.attach(stale))
        except Exception as err:  # already gone
            context.log.debug(f"stale telemetry state {stale}: {err}")
    # Short rate windows: a local replay lasts tens of seconds, and rate() over a window longer
    # than a replica has lived under-reads it right after a scale-out.
    stack = deploy_local_stack(folder, rule_window_s=10.0)
    return dg.Output(
        stack,
        metadata={
            "prometheus_url": dg.MetadataValue.url(stack.url),
            "config": str(stack.config_path),
            "rules": str(stack.rules_path),
            "targets_up": ", ".join(stack.targets_up),
        },
    )
