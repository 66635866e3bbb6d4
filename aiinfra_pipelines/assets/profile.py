"""Stage 1: `workload_profile` — measure the reference workloads on this machine."""


import dagster as dg

from aiinfra_pipelines.assets._meta import as_json, numeric, table
from aiinfra_pipelines.assets.partitions import iterations_partitions
from aiinfra_pipelines.resources import DeploymentResource, WorkloadSpecResource


@dg.asset(
    partitions_def=iterations_partitions,
    group_name="lifecycle",
    kinds={"python"},
    description="Runs the training loop and the inference server for real and measures them (phases, "
    "throughput, memory, CPU/GPU utilisation, latency by batch size, saturation throughput).",
)
def workload_profile(
    context: dg.AssetExecutionContext, workload_spec: WorkloadSpecResource, deployment: DeploymentResource
):
    from aiinfra_pipelines.profiling import profile_workload

    spec = workload_spec.load()
    folder = deployment.iteration_dir(spec.name, context.partition_key)
    result = profile_workload(spec, folder / "profile")
    staged = folder / "staged"
    staged.mkdir(exist_ok=True)
    # Staged, not recorded: `run_metrics` records the whole iteration in one DuckDB transaction.
    result.samples.to_parquet(staged / "profile_samples.parquet")
    profile = result.profile
    meta: dict = {"profile": as_json(profile), "samples": len(result.samples)}
    if profile.training is not None:
        t = profile.training
        meta.update(numeric({
            "training_samples_per_s": t.samples_per_s, "epoch_s": t.epoch_s,
            "peak_memory_bytes": t.peak_memory_bytes, "cpu_utilization": t.cpu_utilization,
            "arithmetic_intensity": t.arithmetic_intensity,
        }))
        meta["gpu_utilization"] = "absent (no GPU)" if t.gpu_utilization is None else float(t.gpu_utilization)
        meta["phases"] = table(
            [{"phase": k, "seconds": v.get("seconds") if isinstance(v, dict) else getattr(v, "seconds", None),
              "share": v.get("share") if isinstance(v, dict) else getattr(v, "share", None)}
             for k, v in t.phases.items()]
        )
    if profile.inference is not None:
        i = profile.inference
        meta.update(numeric({"saturation_rps": i.saturation_rps, "trace_request_service_s": i.trace_request_service_s}))
        meta["latency_by_batch"] = table(
            [p if isinstance(p, dict) else p.model_dump() for p in i.latency_by_batch]
        )
    return dg.Output(profile, metadata=meta)
