"""A short torch.profiler window over training steps of a torch model.

Per-operator time (CPU and, on CUDA, device), the FLOPs torch reports (matrix products),
and memory. The window runs on a copy of the trained network, so the profiled model is
unchanged; its overhead (step time inside the window over step time outside) is reported
separately from the always-on profiler's.
"""

from __future__ import annotations

import copy
import time

import numpy as np

from aiinfra_pipelines.profiling.schema import OperatorStat, TorchWindow
from aiinfra_pipelines.workloads.training import MOMENTUM

TOP_OPERATORS = 15


def run_torch_window(model, X: np.ndarray, y: np.ndarray, batch_size: int, lr: float, steps: int = 10) -> TorchWindow:
    import torch
    from torch.profiler import ProfilerActivity, profile

    dev = model.device
    net = copy.deepcopy(model.net)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=MOMENTUM)
    lossf = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(steps):
        idx = rng.integers(0, X.shape[0], size=batch_size)
        batches.append((torch.from_numpy(X[idx]).to(dev), torch.from_numpy(y[idx]).to(dev)))

    def step(xb, yb):
        out = net(xb)
        loss = lossf(out, yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def run_all() -> float:
        model.sync()
        t0 = time.perf_counter()
        for xb, yb in batches:
            step(xb, yb)
        model.sync()
        return time.perf_counter() - t0

    run_all()  # warm-up
    plain = min(run_all() for _ in range(3))
    activities = [ProfilerActivity.CPU]
    cuda = dev.type == "cuda"
    if cuda:
        activities.append(ProfilerActivity.CUDA)
        torch.cuda.reset_peak_memory_stats()
    with profile(activities=activities, record_shapes=True, with_flops=True, profile_memory=True) as prof:
        profiled = run_all()
    ops = []
    total_flops = 0.0
    for evt in prof.key_averages():
        flops = float(getattr(evt, "flops", 0) or 0)
        total_flops += flops
        dev_us = getattr(evt, "self_device_time_total", None)
        if dev_us is None:
            dev_us = getattr(evt, "self_cuda_time_total", None)
        dev_mem = getattr(evt, "self_device_memory_usage", None)
        if dev_mem is None:
            dev_mem = getattr(evt, "self_cuda_memory_usage", None)
        ops.append(
            OperatorStat(
                name=evt.key,
                calls=int(evt.count),
                self_cpu_s=float(evt.self_cpu_time_total) / 1e6,
                device_s=(float(dev_us) / 1e6) if (cuda and dev_us is not None) else None,
                flops=flops or None,
                cpu_memory_bytes=int(getattr(evt, "self_cpu_memory_usage", 0) or 0),
                device_memory_bytes=int(dev_mem) if (cuda and dev_mem is not None) else None,
            )
        )
    ops.sort(key=lambda o: o.self_cpu_s + (o.device_s or 0.0), reverse=True)
    return TorchWindow(
        steps=steps,
        operators=ops[:TOP_OPERATORS],
        measured_flops_per_sample=(total_flops / (steps * batch_size)) if total_flops > 0 else None,
        overhead_ratio=profiled / plain if plain > 0 else None,
        peak_device_memory_bytes=int(torch.cuda.max_memory_allocated()) if cuda else None,
    )
