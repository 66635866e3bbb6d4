"""`aiinfra bench profiler-overhead`: what the always-on profiler costs the reference training workload.

"With" is the training workload under the phase timers, the background system sampler and a
Prometheus exporter (TRAINING_* series, scraped over HTTP every second); "without" is the same
training run, same seed, with none of them. Runs are interleaved (ABBA) so drift on a shared
machine hits both sides, and the figure is the median over the repeated pairs:
``overhead_ratio = median_i(samples/cpu-s with_i / samples/cpu-s without_i)`` (1.0 = free; the
target is >= 0.99). A run's throughput is its best steady epoch (epochs after the first; the
one-time start-up of exporter, sampler thread and NVML probe is reported as ``setup_cpu_s``):
the profiler's cost is per sample and present in every epoch, while a neighbour's burst on a
shared machine hits some epochs only. ``accounted_overhead_ratio`` counts the same cost bottom-up. Throughput is counted per CPU-second of the whole process (all threads,
so the sampler's, the exporter's and the scraper's CPU are charged to "with"): on a machine
shared with other work, wall-clock throughput measures the neighbours as much as the
profiler. The wall-clock ratio is reported next to it (``wall_overhead_ratio``).
The torch.profiler window, when torch is installed, is reported apart.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.request
from pathlib import Path

import click
import numpy as np

from aiinfra_pipelines.profiling.phases import Profiler
from aiinfra_pipelines.spec import WorkloadSpec, load_spec, parse_spec
from aiinfra_pipelines.workloads.datasets import train_test_split
from aiinfra_pipelines.workloads.trainer_process import TrainingExporter
from aiinfra_pipelines.workloads.training import train

DEFAULT_SPEC = {
    "name": "digits-overhead",
    "model": {"name": "digits-mlp", "framework": "auto", "hidden_units": [128, 64]},
    "dataset": {"name": "digits"},
    "training": {"epochs": 3, "batch_size": 64, "learning_rate": 0.05},
}


def _scraper(port: int, interval_s: float, stop: threading.Event) -> threading.Thread:
    def run():
        while not stop.wait(interval_s):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                r.read()

    t = threading.Thread(target=run, name="scraper", daemon=True)
    t.start()
    return t


def accounted_overhead(spec: WorkloadSpec, split, sample_interval_s: float, scrape_interval_s: float,
                       samples_per_cpu_s: float, calls: int = 200) -> dict:
    """The same cost counted bottom-up: CPU seconds of each always-on part per CPU second of training.

    Timed on this host with ``time.process_time`` over many calls: one phase boundary (``lap``; four
    per batch), one system sample, one Prometheus scrape (the exporter's side and an in-process
    client). A cross-check of the A/B ratio that does not depend on the neighbours' noise.
    """
    from aiinfra_pipelines.profiling.sampler import SystemSampler

    prof = Profiler(sample_interval_s=None)
    n = 20000
    t = time.process_time()
    for _ in range(n):
        prof.lap("x")
    lap_s = (time.process_time() - t) / n
    sampler = SystemSampler(prof.record, sample_interval_s)
    sampler.start()
    sampler._stop.set()
    t = time.process_time()
    for _ in range(calls):
        sampler.sample()
    sample_s = (time.process_time() - t) / calls
    sampler.stop()
    exporter = TrainingExporter(spec.name)
    port = exporter.serve(0)
    try:
        t = time.process_time()
        for _ in range(calls // 4):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                r.read()
        scrape_s = (time.process_time() - t) / (calls // 4)
    finally:
        exporter.close()
    batch = spec.training.batch_size if spec.training else 64
    per_cpu_s = {"phase_timers": 4 * lap_s / batch * samples_per_cpu_s, "sampler": sample_s / sample_interval_s,
                 "exporter_scrape": scrape_s / scrape_interval_s}
    total = sum(per_cpu_s.values())
    return {"accounted_cost_fraction": per_cpu_s, "accounted_overhead_ratio": 1 / (1 + total),
            "lap_cpu_us": lap_s * 1e6, "sample_cpu_ms": sample_s * 1e3, "scrape_cpu_ms": scrape_s * 1e3}


def measure_overhead(spec: WorkloadSpec, repeats: int = 41, epochs: int = 5, sample_interval_s: float = 0.25,
                     scrape_interval_s: float = 1.0) -> dict:
    if repeats < 1:
        raise ValueError(f"repeats: must be at least 1, got {repeats}")
    if epochs < 2:
        raise ValueError(f"epochs: need at least 2 (throughput counts the epochs after the first), got {epochs}")
    split = train_test_split(spec.dataset.name, seed=0)
    train(spec, epochs=1, split=split)  # warm caches and BLAS threads

    def steady(marks: list[tuple[float, float]], samples_per_epoch: int) -> tuple[float, float]:
        # throughput after the first epoch (the always-on cost, not the one-time start-up), of the run's
        # least-disturbed epoch: a constant per-sample cost is in every epoch, a neighbour's burst is not
        cpu = [samples_per_epoch / (b[0] - a[0]) for a, b in zip(marks[1:], marks[2:])] or [0.0]
        wall = [samples_per_epoch / (b[1] - a[1]) for a, b in zip(marks[1:], marks[2:])] or [0.0]
        if len(marks) == 2:
            (c0, w0), (c1, w1) = marks
            return samples_per_epoch / (c1 - c0), samples_per_epoch / (w1 - w0)
        return max(cpu), max(wall)

    def mark(marks):
        return lambda st: marks.append((time.process_time(), time.perf_counter()))

    def without(seed: int) -> tuple[float, float]:
        marks: list[tuple[float, float]] = []
        r = train(spec, epochs=epochs, split=split, seed=seed, on_epoch=mark(marks))
        return steady(marks, r.epochs[0].samples)

    def with_profiler(seed: int) -> tuple[float, float]:
        c_setup = time.process_time()
        exporter = TrainingExporter(spec.name)
        port = exporter.serve(0)
        stop = threading.Event()
        scraper = _scraper(port, scrape_interval_s, stop)
        prof = Profiler(sample_interval_s=sample_interval_s)
        marks: list[tuple[float, float]] = []
        tick = mark(marks)

        def on_epoch(st):
            exporter.observe_epoch(st, prof.phases())
            tick(st)

        try:
            with prof:
                setup_cpu.append(time.process_time() - c_setup)
                r = train(spec, epochs=epochs, split=split, seed=seed, profiler=prof, on_epoch=on_epoch)
        finally:
            stop.set()
            scraper.join(timeout=5)
            exporter.close()
        return steady(marks, r.epochs[0].samples)

    setup_cpu: list[float] = []
    a, b, pairs = [], [], []
    for i in range(repeats):
        # ABBA: the order alternates so slow drift on a shared machine hits both sides alike
        if i % 2 == 0:
            x = without(i)
            y = with_profiler(i)
        else:
            y = with_profiler(i)
            x = without(i)
        a.append(x)
        b.append(y)
        pairs.append(y[0] / x[0])
    med = statistics.median
    out = {
        "workload": spec.name,
        "framework": spec.model.framework,
        "epochs": epochs,
        "repeats": repeats,
        "samples_per_cpu_s_without": med(x[0] for x in a),
        "samples_per_cpu_s_with": med(x[0] for x in b),
        # the headline: median over the repeated (with, without) pairs of their throughput ratio
        "overhead_ratio": med(pairs),
        "ratio_of_medians": med(x[0] for x in b) / med(x[0] for x in a),
        "pair_ratio_p25": float(np.percentile(pairs, 25)),
        "pair_ratio_p75": float(np.percentile(pairs, 75)),
        "samples_per_s_without": med(x[1] for x in a),
        "samples_per_s_with": med(x[1] for x in b),
        "wall_overhead_ratio": med(y[1] / x[1] for x, y in zip(a, b)),
        "setup_cpu_s": med(setup_cpu),
        "sample_interval_s": sample_interval_s,
        "scrape_interval_s": scrape_interval_s,
    }
    out["overhead_pct"] = (1 - out["overhead_ratio"]) * 100
    out.update(accounted_overhead(spec, split, sample_interval_s, scrape_interval_s, out["samples_per_cpu_s_without"]))
    r = train(spec, epochs=1, split=split)
    out["framework"] = r.framework
    if r.framework == "torch":
        from aiinfra_pipelines.profiling.torch_window import run_torch_window

        tw = run_torch_window(r.model, split.X_train, split.y_train, r.batch_size,
                              (spec.training.learning_rate if spec.training else 0.05))
        out["torch_window_overhead_ratio"] = tw.overhead_ratio
    return out


@click.command("profiler-overhead")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Workload spec with a training section (default: the digits [128, 64] reference).")
@click.option("--repeats", default=41, show_default=True, type=click.IntRange(1, 101))
@click.option("--epochs", default=5, show_default=True, type=click.IntRange(2, 100),
              help="Epochs per run; throughput counts the epochs after the first.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on the last line.")
def profiler_overhead_command(spec_path: Path | None, repeats: int, epochs: int, as_json: bool) -> None:
    """Throughput of the reference training workload with the always-on profiler / without."""
    from aiinfra_pipelines.spec import SpecError

    try:
        spec = load_spec(spec_path) if spec_path else parse_spec(DEFAULT_SPEC, source="<default overhead spec>")
    except SpecError as err:
        raise click.ClickException(str(err)) from None
    if spec.training is None:
        raise click.ClickException(f"{spec_path}: training: the overhead benchmark needs a training section")
    res = measure_overhead(spec, repeats=repeats, epochs=epochs)
    click.echo(f"{'workload':<28}{res['workload']}")
    click.echo(f"{'framework':<28}{res['framework']}")
    click.echo(f"{'samples/cpu-s without':<28}{res['samples_per_cpu_s_without']:.0f}")
    click.echo(f"{'samples/cpu-s with':<28}{res['samples_per_cpu_s_with']:.0f}")
    click.echo(f"{'overhead_ratio':<28}{res['overhead_ratio']:.4f}  ({res['overhead_pct']:+.2f}% cost)")
    click.echo(f"{'pair ratio p25..p75':<28}{res['pair_ratio_p25']:.4f} .. {res['pair_ratio_p75']:.4f}")
    click.echo(f"{'accounted (bottom-up) ratio':<28}{res['accounted_overhead_ratio']:.4f}  "
               + ", ".join(f"{k} {v:.3%}" for k, v in res["accounted_cost_fraction"].items()))
    click.echo(f"{'wall-clock ratio':<28}{res['wall_overhead_ratio']:.4f}  "
               f"({res['samples_per_s_with']:.0f} / {res['samples_per_s_without']:.0f} samples/s)")
    if "torch_window_overhead_ratio" in res:
        click.echo(f"{'torch window step ratio':<28}{res['torch_window_overhead_ratio']:.2f}")
    if as_json:
        click.echo(json.dumps(res))
