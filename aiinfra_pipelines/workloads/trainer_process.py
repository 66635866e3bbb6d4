"""Training as a process that exports Prometheus metrics while it trains.

    python -m aiinfra_pipelines.workloads.trainer_process --spec FILE [--epochs N] \\
        [--metrics-port 0] [--ready-file PATH] [--model-out FILE] [--result-out FILE]

The exporter serves the ``TRAINING_*`` series of :mod:`aiinfra_pipelines.telemetry.metrics`
(label ``job_name``); the ready file gets ``{"port": P, "pid": ...}`` once it listens.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from aiinfra_pipelines.telemetry import metrics as M

EPOCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class TrainingExporter:
    """The TRAINING_* series in their own registry, optionally served over HTTP on 127.0.0.1."""

    def __init__(self, job_name: str):
        self.registry = CollectorRegistry()
        lab = ["job_name"]
        self.epochs = Counter(M.TRAINING_EPOCHS_TOTAL, "Epochs completed.", lab, registry=self.registry).labels(job_name)
        self.samples = Counter(M.TRAINING_SAMPLES_TOTAL, "Samples trained on.", lab, registry=self.registry).labels(job_name)
        self.epoch_s = Histogram(M.TRAINING_EPOCH_SECONDS, "Epoch wall time.", lab, buckets=EPOCH_BUCKETS,
                                 registry=self.registry).labels(job_name)
        self._phase = Counter(M.TRAINING_PHASE_SECONDS_TOTAL, "Seconds per training phase.", ["job_name", "phase"],
                              registry=self.registry)
        self.loss = Gauge(M.TRAINING_LOSS, "Mean training loss of the last epoch.", lab, registry=self.registry).labels(job_name)
        self.job_name = job_name
        self._phase_seen: dict[str, float] = {}
        self._server = None
        self.port: int | None = None

    def serve(self, port: int = 0) -> int:
        self._server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        self.port = self._server.server_port
        return self.port

    def observe_epoch(self, stats, phase_seconds: dict[str, float] | None = None) -> None:
        self.epochs.inc()
        self.samples.inc(stats.samples)
        self.epoch_s.observe(stats.seconds)
        self.loss.set(stats.loss)
        for name, total in (phase_seconds or {}).items():
            delta = total - self._phase_seen.get(name, 0.0)
            if delta > 0:
                self._phase.labels(self.job_name, name).inc(delta)
            self._phase_seen[name] = total

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def main(argv: list[str] | None = None) -> int:
    from aiinfra_pipelines.profiling.phases import Profiler
    from aiinfra_pipelines.spec import SpecError, load_spec
    from aiinfra_pipelines.workloads.training import train

    ap = argparse.ArgumentParser(prog="python -m aiinfra_pipelines.workloads.trainer_process")
    ap.add_argument("--spec", required=True, type=Path)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--metrics-port", type=int, default=0)
    ap.add_argument("--ready-file", type=Path)
    ap.add_argument("--model-out", type=Path)
    ap.add_argument("--result-out", type=Path)
    args = ap.parse_args(argv)
    try:
        spec = load_spec(args.spec)
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    exporter = TrainingExporter(spec.name)
    port = exporter.serve(args.metrics_port)
    if args.ready_file:
        args.ready_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.ready_file.with_name(args.ready_file.name + ".tmp")
        tmp.write_text(json.dumps({"port": port, "pid": os.getpid()}))
        os.replace(tmp, args.ready_file)
    stopping = threading.Event()

    class _Stop(Exception):
        pass

    def _on_signal(*_):
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _on_signal)
    prof = Profiler(sample_interval_s=None)

    def on_epoch(st):
        exporter.observe_epoch(st, prof.phases())
        print(json.dumps({"epoch": st.epoch, "seconds": st.seconds, "loss": st.loss, "accuracy": st.accuracy}), flush=True)
        if stopping.is_set():
            raise _Stop

    try:
        with prof:
            result = train(spec, epochs=args.epochs, profiler=prof, on_epoch=on_epoch)
    except _Stop:
        exporter.close()
        return 0
    if args.model_out:
        result.save_model(args.model_out)
    if args.result_out:
        args.result_out.write_text(json.dumps({
            "framework": result.framework, "test_accuracy": result.test_accuracy,
            "samples_per_s": result.samples_per_s, "epochs": [vars(e) for e in result.epochs],
            "model_path": str(result.model_path) if result.model_path else None,
        }))
    exporter.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
