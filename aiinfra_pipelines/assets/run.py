"""Stage 6: `workload_run` — training epochs and a real trace replay, through Dagster Pipes."""


import json
import sys
import time
from pathlib import Path

import dagster as dg

from aiinfra_pipelines.assets.partitions import iteration_number, iterations_partitions
from aiinfra_pipelines.resources import DeploymentResource, WorkloadSpecResource


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dg.asset(
    partitions_def=iterations_partitions,
    group_name="lifecycle",
    kinds={"python"},
    description="Runs the training epochs and replays the real trace against autoscaled inference replicas "
    "(local processes through PipesSubprocessClient; Kubernetes through PipesK8sClient when a kubeconfig is given).",
)
def workload_run(
    context: dg.AssetExecutionContext,
    workload_spec: WorkloadSpecResource,
    deployment: DeploymentResource,
    pipes_subprocess_client: dg.PipesSubprocessClient,
    workload_profile,
    hardware_plan,
    infrastructure,
    telemetry_stack,
    scaling_policy,
):
    from aiinfra_pipelines.execution.runner import RunPlan
    from aiinfra_pipelines.k8s.dagster_k8s import kubeconfig_from_env
    from aiinfra_pipelines.telemetry.stack import teardown_local_stack

    spec = workload_spec.load()
    folder = deployment.iteration_dir(spec.name, context.partition_key)
    if spec.target != "local" and kubeconfig_from_env() is not None:
        return _run_on_cluster(context, spec, hardware_plan, infrastructure, folder)
    inference_profile = getattr(workload_profile, "inference", None)
    model_path = getattr(inference_profile, "model_file", None)
    plan = RunPlan(
        iteration=context.partition_key,
        iteration_dir=str(folder),
        spec=spec.model_dump(mode="json"),
        model_path=str(model_path) if model_path else None,
        prometheus_url=telemetry_stack.url,
        file_sd_dir=str(telemetry_stack.file_sd_dir),
        policy_family=scaling_policy.family,
        policy_params=scaling_policy.params,
        initial_replicas=scaling_policy.initial_replicas,
        min_replicas=scaling_policy.min_replicas,
        max_replicas=scaling_policy.max_replicas,
        control_interval_s=scaling_policy.control_interval_s,
    )
    plan_path = folder / "run_plan.json"
    plan_path.write_text(plan.model_dump_json(indent=2))
    log_path = folder / "run" / "runner.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "aiinfra_pipelines.execution.runner", "--plan", str(plan_path),
               "--log", str(log_path)]
    try:
        invocation = pipes_subprocess_client.run(
            context=context, command=command, extras={"iteration": context.partition_key},
            env={"PYTHONUNBUFFERED": "1"},
        )
        result = invocation.get_materialize_result()
    except Exception as err:
        teardown_local_stack(telemetry_stack)
        raise dg.Failure(
            description=f"the workload failed: {err}\n--- runner log (tail) ---\n{_tail(log_path, 2000)}",
            metadata={"runner_log": dg.MetadataValue.md("```\n" + _tail(log_path) + "\n```"),
                      "log_path": str(log_path)},
        ) from err
    summary = json.loads((folder / "run" / "summary.json").read_text())
    return dg.Output(
        {"run_dir": str(folder / "run"), **summary},
        metadata={**(result.metadata or {}), "run_dir": str(folder / "run"), "runner_log": str(log_path)},
    )



def _run_on_cluster(context: dg.AssetExecutionContext, spec, hardware_plan, infrastructure, folder: Path) -> dg.Output:
    """Apply the iteration's manifests and run the training part in a pod through PipesK8sClient."""
    from aiinfra_pipelines.k8s.dagster_k8s import run_workload_on_cluster

    started = time.time()
    invocation = run_workload_on_cluster(
        context, spec, hardware_plan, iteration=iteration_number(context.partition_key),
        infra_outputs=(infrastructure or {}).get("outputs"), manifests_dir=folder / "k8s",
    )
    result = invocation.get_materialize_result()
    finished = time.time()
    summary = {"started_unix": started, "finished_unix": finished, "training_seconds": finished - started,
               "inference_window_s": None, "executor": "kubernetes"}
    (folder / "run").mkdir(parents=True, exist_ok=True)
    (folder / "run" / "summary.json").write_text(json.dumps(summary))
    return dg.Output({"run_dir": str(folder / "run"), **summary},
                     metadata={**(result.metadata or {}), "executor": "kubernetes", "manifests": str(folder / "k8s")})
