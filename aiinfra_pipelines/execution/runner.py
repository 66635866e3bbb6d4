"""The workload process of the ``local`` target, launched through Dagster Pipes.

``python -m aiinfra_pipelines.execution.runner --plan RUN_PLAN.json``

1. training: trains the reference model for the spec's epochs, exporting training
   metrics to Prometheus (its exporter is registered as a file_sd target);
2. inference: starts the policy's initial replicas, replays the real trace open-loop,
   and lets the autoscaling controller start and drain replicas from Prometheus metrics;
3. writes the request log, epochs and replica events to the iteration folder (staged:
   they are recorded in DuckDB by the `run_metrics` stage, in one transaction) and
   reports a summary back to Dagster through Pipes.

It runs the same way outside Dagster (no Pipes context): the summary goes to stdout.
A failure exits non-zero after logging why; nothing is recorded for the iteration.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from aiinfra_pipelines.spec import WorkloadSpec

log = logging.getLogger("aiinfra.runner")


class RunPlan(BaseModel):
    """Everything the workload process needs; written by the `workload_run` stage."""

    iteration: str
    iteration_dir: str
    spec: dict
    model_path: str | None = None  # a model saved by the profile stage (inference-only workloads)
    prometheus_url: str | None = None
    file_sd_dir: str | None = None
    policy_family: str = "reactive"
    policy_params: dict = Field(default_factory=dict)
    initial_replicas: int = 1
    min_replicas: int = 0
    max_replicas: int = 4
    control_interval_s: float = 2.0
    replica_start_delay_s: float = 0.0
    drain_timeout_s: float = 20.0


class _NoPipes:
    """Stands in for the Pipes context when the runner is started by hand."""

    class _Log:
        def info(self, msg):
            print(msg, file=sys.stderr)

        warning = error = info

    log = _Log()

    def report_asset_materialization(self, metadata=None, **_):
        print(json.dumps({"materialization": metadata}, default=str))


def _pipes_context():
    import os

    from dagster_pipes import DAGSTER_PIPES_CONTEXT_ENV_VAR, open_dagster_pipes

    if os.environ.get(DAGSTER_PIPES_CONTEXT_ENV_VAR):
        return open_dagster_pipes()
    return contextlib.nullcontext(_NoPipes())


def _registry(plan: RunPlan):
    if not plan.file_sd_dir:
        return None
    from aiinfra_pipelines.telemetry.targets import TargetRegistry

    return TargetRegistry(plan.file_sd_dir)


def run_training(spec: WorkloadSpec, plan: RunPlan, out: Path, pipes) -> tuple[pd.DataFrame, float, Path]:
    """Train for the spec's epochs with a live Prometheus exporter; returns epochs, seconds, model path."""
    from aiinfra_pipelines.workloads.trainer_process import TrainingExporter
    from aiinfra_pipelines.workloads.training import train

    # the same series, labels and buckets as the standalone trainer process
    exporter = TrainingExporter(spec.name)
    address = f"127.0.0.1:{exporter.serve(0)}"
    targets = _registry(plan)
    if targets is not None:
        targets.add("training", address, {"iteration": plan.iteration})
    rows: list[dict] = []

    def on_epoch(stats) -> None:
        exporter.observe_epoch(stats)
        rows.append(
            {"epoch": stats.epoch, "seconds": stats.seconds, "samples": stats.samples,
             "loss": stats.loss, "accuracy": stats.accuracy}
        )
        pipes.log.info(f"epoch {stats.epoch}: {stats.seconds:.3f}s loss={stats.loss:.4f} acc={stats.accuracy:.3f}")

    t0 = time.monotonic()
    try:
        result = train(spec, on_epoch=on_epoch)
        seconds = time.monotonic() - t0
        model_path = result.save_model(out / ("model.pt" if result.framework == "torch" else "model.npz"))
        # let Prometheus take a last scrape of the final counters
        time.sleep(1.5)
    finally:
        if targets is not None:
            targets.remove("training", address)
        exporter.close()
    return pd.DataFrame(rows), seconds, Path(model_path)


def run_inference(spec: WorkloadSpec, plan: RunPlan, model_path: Path, out: Path, pipes) -> dict[str, Any]:
    """Replay the trace against autoscaled replica processes; returns frames and figures."""
    from aiinfra_pipelines.execution.controller import Controller, PrometheusObserver
    from aiinfra_pipelines.execution.loadgen import replay
    from aiinfra_pipelines.execution.replicas import ReplicaSet
    from aiinfra_pipelines.scaling.policies import policy_from_settings
    from aiinfra_pipelines.scaling.traces import load_trace
    from aiinfra_pipelines.telemetry.client import PrometheusClient

    traffic = spec.traffic
    trace = load_trace(
        traffic.trace, traffic.format, time_scale=traffic.time_scale, rate_scale=traffic.rate_scale,
        start_s=traffic.start_s, duration_s=traffic.duration_s,
    )
    frame = trace.df
    if traffic.max_requests:
        frame = frame.iloc[: traffic.max_requests]
    pipes.log.info(f"replaying {len(frame)} requests of {traffic.trace} over {traffic.duration_s:.0f}s")

    targets = _registry(plan)
    replicas = ReplicaSet(
        model_path=model_path,
        workdir=out / "replicas",
        max_batch_size=spec.inference.max_batch_size,
        start_delay_s=plan.replica_start_delay_s,
        on_ready=(lambda r: targets.add("inference", r.address, {"replica": r.name})) if targets else None,
        on_removed=(lambda r: targets.remove("inference", r.address)) if targets else None,
    )
    policy = policy_from_settings(plan.policy_family, **plan.policy_params)
    if hasattr(policy, "reset"):
        policy.reset()
    controller = None
    try:
        replicas.scale_to(plan.initial_replicas)
        replicas.wait_ready(plan.initial_replicas, timeout_s=60)
        if plan.prometheus_url:
            client = PrometheusClient(plan.prometheus_url)
            controller = Controller(
                policy, replicas, PrometheusObserver(client, replicas), interval_s=plan.control_interval_s,
                min_replicas=plan.min_replicas, max_replicas=plan.max_replicas,
            )
            controller.start()
        result = replay(frame, replicas)
    finally:
        if controller is not None:
            controller.stop()
        replicas.stop_all()
    if replicas.errors:
        pipes.log.warning("replica errors: " + "; ".join(replicas.errors[-3:]))
    steps = pd.DataFrame([s.__dict__ for s in controller.steps]) if controller else pd.DataFrame()
    events = pd.DataFrame([e.__dict__ for e in replicas.events])
    return {
        "requests": result.requests,
        "replica_events": events,
        "control_steps": steps,
        "window_s": result.finished_at - result.started_at,
        "max_lateness_s": result.max_lateness_s,
        "controller_errors": controller.errors if controller else [],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", required=True, help="RunPlan JSON written by the workload_run stage")
    parser.add_argument("--log", help="send this process's stdout and stderr to this file")
    args = parser.parse_args(argv)
    if args.log:
        import os

        fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    plan = RunPlan.model_validate_json(Path(args.plan).read_text())
    spec = WorkloadSpec.model_validate(plan.spec)
    out = Path(plan.iteration_dir) / "run"
    out.mkdir(parents=True, exist_ok=True)
    with _pipes_context() as pipes:
        try:
            summary: dict[str, Any] = {"iteration": plan.iteration, "started_unix": time.time()}
            model_path = Path(plan.model_path) if plan.model_path else None
            if spec.training is not None:
                epochs, seconds, model_path = run_training(spec, plan, out, pipes)
                epochs.to_parquet(out / "training_epochs.parquet")
                summary.update(epochs=len(epochs), training_seconds=seconds)
            if spec.inference is not None:
                if model_path is None:
                    raise RuntimeError("an inference-only workload needs the model saved by the profile stage")
                inf = run_inference(spec, plan, model_path, out, pipes)
                inf["requests"].to_parquet(out / "requests.parquet")
                inf["replica_events"].to_parquet(out / "replica_events.parquet")
                if len(inf["control_steps"]):
                    inf["control_steps"].to_parquet(out / "control_steps.parquet")
                req = inf["requests"]
                ok = req[req["status"] == "ok"]
                summary.update(
                    requests=len(req),
                    failed_requests=int((req["status"] != "ok").sum()),
                    inference_window_s=inf["window_s"],
                    p99_latency_s=float(ok["latency_s"].quantile(0.99)) if len(ok) else None,
                    peak_replicas=int(inf["replica_events"]["desired"].max()) if len(inf["replica_events"]) else 0,
                    sender_max_lateness_s=inf["max_lateness_s"],
                    controller_errors=len(inf["controller_errors"]),
                )
            summary["finished_unix"] = time.time()
            (out / "summary.json").write_text(json.dumps(summary, default=str, indent=2))
            pipes.report_asset_materialization(metadata={k: v for k, v in summary.items() if v is not None})
        except Exception:
            pipes.log.error(traceback.format_exc())
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
