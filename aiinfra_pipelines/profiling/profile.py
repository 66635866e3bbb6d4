"""profile_workload: run the workload for real and measure where its time and capacity go.

Training: the reference workload runs its epochs under the always-on profiler (phase timers
and the system sampler); torch workloads also get a short torch.profiler window.
Inference: the trained model is saved, served by the in-process inference server on a free
loopback port, and measured over real HTTP: latency by batch size (one sequential client),
and the saturation throughput (closed-loop clients at doubling concurrency until throughput
stops growing), for one-row requests and for a typical trace request (1155 input and 211
output tokens, the mean of the Azure conversation trace). Client threads share the process
(and the GIL) with the server, so saturation figures are a lower bound on a replica's capacity.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aiinfra_pipelines.profiling.phases import Profiler, shares
from aiinfra_pipelines.profiling.sampler import host_info
from aiinfra_pipelines.profiling.schema import (
    HostInfo,
    InferenceProfile,
    LatencyPoint,
    PhaseStat,
    SaturationPoint,
    TrainingProfile,
    WorkloadProfile,
)
from aiinfra_pipelines.spec import TrainingSpec, WorkloadSpec
from aiinfra_pipelines.workloads import serving
from aiinfra_pipelines.workloads.datasets import train_test_split
from aiinfra_pipelines.workloads.training import TrainResult, train

SAMPLE_COLUMNS = ["ts", "source", "metric", "value", "labels"]


@dataclass
class ProfileResult:
    profile: WorkloadProfile
    samples: pd.DataFrame  # ts, source, metric, value, labels
    model_path: Path | None = None
    train_result: TrainResult | None = None


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q)) if xs else 0.0


def _training_profile(spec: WorkloadSpec, result: TrainResult, prof: Profiler, torch_window) -> TrainingProfile:
    ph = prof.phases()
    ph["compute"] = ph.get("forward", 0.0) + ph.get("backward", 0.0)
    top = shares(ph, ["data_load", "compute", "optimizer"])
    sub = shares(ph, ["forward", "backward"])
    total = sum(v["seconds"] for v in top.values()) or 1.0
    phases = {k: PhaseStat(**v) for k, v in top.items()}
    phases.update({k: PhaseStat(seconds=v["seconds"], share=v["seconds"] / total) for k, v in sub.items()})
    costs = result.costs
    flops, source = costs.train_flops_per_sample, "derived"
    if torch_window is not None and torch_window.measured_flops_per_sample:
        flops, source = torch_window.measured_flops_per_sample, "measured"
    sampler = prof.sampler
    sps = result.samples_per_s
    B = result.batch_size
    acts = sum(costs.layer_sizes[1:])
    model_mem = 4 * costs.parameters * 3 + 4 * B * (costs.layer_sizes[0] + 2 * acts)
    dataset_bytes = int(spec.dataset.size_gb * 1e9) if spec.dataset.size_gb else int(result.dataset_bytes)
    return TrainingProfile(
        phases=phases,
        epochs=len(result.epochs),
        batch_size=B,
        samples_per_s=sps,
        epoch_s=float(np.median([e.seconds for e in result.epochs])),
        samples_per_epoch=result.epochs[0].samples,
        peak_memory_bytes=int(sampler.peak_rss_bytes) if sampler else 0,
        model_memory_bytes=int(model_mem),
        cpu_utilization=sampler.mean_cpu_utilization() if sampler else None,
        gpu_utilization=sampler.mean_gpu_utilization() if sampler else None,
        flops_per_sample=flops,
        bytes_per_sample=costs.train_bytes_per_sample,
        arithmetic_intensity=flops / costs.train_bytes_per_sample,
        flops_source=source,
        derived_flops_per_sample=costs.train_flops_per_sample,
        achieved_flops_per_s=flops * sps,
        parameters=costs.parameters,
        dataset_bytes=dataset_bytes,
        io_read_bytes_per_s_needed=costs.input_bytes_per_sample * sps,
        test_accuracy=result.test_accuracy,
        torch_window=torch_window,
    )


def _latency_curve(port: int, X: np.ndarray, batch_sizes: list[int], prof: Profiler,
                   max_requests: int = 60, budget_s: float = 0.4) -> list[LatencyPoint]:
    client = serving.InferenceClient(port)
    points = []
    try:
        for b in batch_sizes:
            reps = -(-b // X.shape[0])
            rows = (np.tile(X, (reps, 1)) if reps > 1 else X)[:b].tolist()
            body = {"inputs": rows}
            for _ in range(3):
                client.predict(body)
            lat, svc = [], []
            t_start = time.perf_counter()
            while len(lat) < max_requests and (len(lat) < 10 or time.perf_counter() - t_start < budget_s):
                t0 = time.perf_counter()
                out = client.predict(body)
                lat.append(time.perf_counter() - t0)
                svc.append(out["service_s"])
            elapsed = time.perf_counter() - t_start
            for v in lat:
                prof.record("inference", "request_latency_s", v, f"batch_size={b}")
            points.append(
                LatencyPoint(
                    batch_size=b,
                    p50_s=_pct(lat, 50),
                    p99_s=_pct(lat, 99),
                    throughput_rps=len(lat) / elapsed,
                    rows_per_s=len(lat) * b / elapsed,
                    service_p50_s=_pct(svc, 50),
                    requests=len(lat),
                )
            )
    finally:
        client.close()
    return points


def _closed_loop(port: int, body: dict, concurrency: int, duration_s: float) -> tuple[float, float]:
    lat: list[list[float]] = [[] for _ in range(concurrency)]
    start = threading.Barrier(concurrency + 1)
    stop_at = [0.0]
    errors: list[str] = []

    def worker(i: int) -> None:
        c = serving.InferenceClient(port)
        try:
            c.predict(body)
            start.wait()
            while time.perf_counter() < stop_at[0]:
                t0 = time.perf_counter()
                c.predict(body)
                lat[i].append(time.perf_counter() - t0)
        except Exception as err:  # surfaced below, not swallowed
            errors.append(str(err))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    stop_at[0] = time.perf_counter() + duration_s + 0.05
    t0 = time.perf_counter()
    start.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"saturation run at concurrency {concurrency} failed: {errors[0]}")
    flat = [v for xs in lat for v in xs]
    return len(flat) / elapsed, _pct(flat, 99)


def _saturation(port: int, body: dict, prof: Profiler, label: str, max_concurrency: int = 16,
                duration_s: float = 0.3, growth: float = 0.05) -> tuple[float, list[SaturationPoint]]:
    """Double the closed-loop concurrency until throughput has not grown by ``growth`` for two levels.

    Two levels, not one: batches only fill once several requests queue behind the one in
    service, so throughput can dip at concurrency 2 and rise again at 4.
    """
    curve: list[SaturationPoint] = []
    best = 0.0
    flat = 0
    c = 1
    while c <= max_concurrency:
        rps, p99 = _closed_loop(port, body, c, duration_s)
        curve.append(SaturationPoint(concurrency=c, throughput_rps=rps, p99_s=p99))
        prof.record("inference", "closed_loop_rps", rps, f"form={label},concurrency={c}")
        if rps < best * (1 + growth):
            flat += 1
            if flat >= 2:
                break
        else:
            flat = 0
        best = max(best, rps)
        c *= 2
    return best, curve


def _inference_profile(spec: WorkloadSpec, model_path: Path, result: TrainResult, X_test: np.ndarray,
                       prof: Profiler) -> InferenceProfile:
    inf = spec.inference
    assert inf is not None
    srv = serving.InferenceServer(model_path, replica=f"{spec.name}-profile", max_batch_size=inf.max_batch_size)
    srv.start()
    try:
        curve = _latency_curve(srv.port, X_test, inf.batch_sizes, prof)
        sat, sat_curve = _saturation(srv.port, {"inputs": X_test[:1].tolist()}, prof, "rows")
        trace_body = {"input_tokens": serving.TRACE_INPUT_TOKENS, "output_tokens": serving.TRACE_OUTPUT_TOKENS}
        client = serving.InferenceClient(srv.port)
        try:
            client.predict(trace_body)
            svc, ttft = [], []
            for _ in range(15):
                out = client.predict(trace_body)
                svc.append(out["service_s"])
                ttft.append(out["ttft_s"])
                prof.record("inference", "trace_request_service_s", out["service_s"])
        finally:
            client.close()
        tsat, tsat_curve = _saturation(srv.port, trace_body, prof, "trace")
    finally:
        srv.stop()
    c = result.costs
    prefill, decode = serving.token_work(serving.TRACE_INPUT_TOKENS, serving.TRACE_OUTPUT_TOKENS)
    rows = prefill + decode
    weights_bytes = 4 * c.parameters
    flops_req = c.forward_flops_per_sample * rows
    # prefill reads the weights once per pass of max_batch_size rows; each decode step once
    passes = math.ceil(prefill / inf.max_batch_size) + decode
    bytes_req = rows * (c.forward_bytes_per_sample - weights_bytes / c.batch_size) + passes * weights_bytes
    return InferenceProfile(
        latency_by_batch=curve,
        saturation_rps=sat,
        saturation_curve=sat_curve,
        trace_saturation_rps=tsat,
        trace_saturation_curve=tsat_curve,
        trace_request_service_s=float(np.mean(svc)),
        trace_request_ttft_s=float(np.mean(ttft)),
        trace_input_tokens=serving.TRACE_INPUT_TOKENS,
        trace_output_tokens=serving.TRACE_OUTPUT_TOKENS,
        tokens_per_row=serving.TOKENS_PER_ROW,
        tokens_per_step=serving.TOKENS_PER_STEP,
        max_batch_size=inf.max_batch_size,
        flops_per_row=c.forward_flops_per_sample,
        flops_per_request=flops_req,
        bytes_per_request=bytes_req,
        arithmetic_intensity=flops_req / bytes_req,
        model_file=str(model_path),
    )


def profile_workload(spec: WorkloadSpec, workdir: Path, *, torch_window: bool = True,
                     measure_overhead: bool = False, sample_interval_s: float = 0.25) -> ProfileResult:
    """Run ``spec``'s training and/or inference for real and return the typed profile and its samples."""
    t_wall = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    split = train_test_split(spec.dataset.name, seed=0)
    tprof = Profiler(sample_interval_s=sample_interval_s)
    with tprof:
        # an inference-only spec still needs a model to serve: a short training run makes one
        result = train(spec, profiler=tprof, split=split, epochs=None if spec.training else 2)
    training = None
    if spec.training is not None:
        window = None
        if torch_window and result.framework == "torch":
            from aiinfra_pipelines.profiling.torch_window import run_torch_window
            from aiinfra_pipelines.profiling.schema import TorchWindow

            try:
                window = run_torch_window(result.model, split.X_train, split.y_train, result.batch_size,
                                          (spec.training or TrainingSpec()).learning_rate)
            except Exception as err:  # the deep window is optional; its failure is reported, not hidden
                window = TorchWindow(steps=0, error=f"{type(err).__name__}: {err}")
        training = _training_profile(spec, result, tprof, window)
    frames = [tprof.samples()]
    model_path = None
    inference = None
    if spec.inference is not None:
        model_path = result.save_model(workdir / ("model.pt" if result.framework == "torch" else "model.npz"))
        iprof = Profiler(sample_interval_s=sample_interval_s)
        with iprof:
            inference = _inference_profile(spec, model_path, result, split.X_test, iprof)
        frames.append(iprof.samples())
    overhead = None
    if measure_overhead and spec.training is not None:
        from aiinfra_pipelines.profiling.bench import measure_overhead as _measure

        overhead = _measure(spec, repeats=5)["overhead_ratio"]
    profile = WorkloadProfile(
        workload=spec.name,
        host=HostInfo.model_validate(host_info()),
        framework=result.framework,
        training=training,
        inference=inference,
        overhead_ratio=overhead,
        wall_s=time.perf_counter() - t_wall,
    )
    samples = pd.concat(frames, ignore_index=True)[SAMPLE_COLUMNS]
    return ProfileResult(profile=profile, samples=samples, model_path=model_path, train_result=result)
