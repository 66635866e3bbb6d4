"""An exporter of this machine: CPU and memory (psutil), and each NVIDIA GPU (NVML) when present.

Values are read at scrape time (a custom collector), so a 1 s scrape sees a 1 s CPU window and
nothing runs between scrapes. Without a GPU (or without the NVIDIA driver) the GPU series are
simply absent.

As a process: ``python -m aiinfra_pipelines.telemetry.host_exporter --port 0 --ready-file PATH``
writes ``{"port": P, "pid": N}`` to PATH once it listens and exits on SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path

import psutil
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily

from . import metrics as m


class _Nvml:
    """NVML handles when a GPU and its driver are there; an empty list otherwise."""

    def __init__(self):
        self.handles: list = []
        self.names: list[str] = []
        self.indices: list[int] = []  # NVML index of each handle (the `gpu` label)
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception:  # no driver / no library / no GPU: no GPU series  # noqa: BLE001
            self.pynvml = None
            return
        self.pynvml = pynvml
        try:
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError:  # driver loaded but no usable device: no GPU series, not a crash
            return
        for i in range(count):
            try:
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
                name = pynvml.nvmlDeviceGetName(h)
            except pynvml.NVMLError:  # one lost or inaccessible GPU must not hide the others
                continue
            self.handles.append(h)
            self.indices.append(i)
            self.names.append(name.decode() if isinstance(name, bytes) else str(name))


class HostCollector:
    """Collects HOST_* and GPU_* gauges at each scrape."""

    def __init__(self, gpus: bool = True):
        psutil.cpu_percent(interval=None)  # prime: the first call has no earlier reading
        self._lock = threading.Lock()
        self.nvml = _Nvml() if gpus else None

    def collect(self):
        with self._lock:  # cpu_percent's window is "since the last call": one caller at a time
            cpu = psutil.cpu_percent(interval=None) / 100.0
        vm = psutil.virtual_memory()
        yield GaugeMetricFamily(m.HOST_CPU_UTILIZATION, "CPU utilisation of this machine since the previous scrape (0..1).", value=cpu)
        yield GaugeMetricFamily(
            m.HOST_MEMORY_USED_BYTES, "Memory in use (total minus available) in bytes.", value=float(vm.total - vm.available)
        )
        yield GaugeMetricFamily(m.HOST_MEMORY_TOTAL_BYTES, "Physical memory in bytes.", value=float(vm.total))
        if not self.nvml or not self.nvml.handles:
            return
        nv = self.nvml.pynvml
        util = GaugeMetricFamily(m.GPU_UTILIZATION, "GPU utilisation over NVML's last sample period (0..1).", labels=["gpu", "model"])
        mem = GaugeMetricFamily(m.GPU_MEMORY_USED_BYTES, "GPU memory in use in bytes.", labels=["gpu", "model"])
        power = GaugeMetricFamily(m.GPU_POWER_WATTS, "GPU board power draw in watts.", labels=["gpu", "model"])
        for i, h, name in zip(self.nvml.indices, self.nvml.handles, self.nvml.names):
            labels = [str(i), name]
            try:
                util.add_metric(labels, nv.nvmlDeviceGetUtilizationRates(h).gpu / 100.0)
                mem.add_metric(labels, float(nv.nvmlDeviceGetMemoryInfo(h).used))
            except nv.NVMLError:
                continue
            try:
                power.add_metric(labels, nv.nvmlDeviceGetPowerUsage(h) / 1000.0)
            except nv.NVMLError:  # some boards (and MIG slices) do not report power
                pass
        yield util
        yield mem
        yield power


def start_host_exporter(port: int = 0, host: str = "127.0.0.1", *, gpus: bool = True):
    """Serves the host metrics in this process; returns ``(server, port)``.

    Stop it with ``server.shutdown(); server.server_close()``.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HostCollector(gpus=gpus))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server, server.server_port


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aiinfra_pipelines.telemetry.host_exporter", description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    ap.add_argument("--ready-file", type=Path, help='written as {"port": P, "pid": N} once listening')
    ap.add_argument("--no-gpu", action="store_true", help="do not export GPU series even when a GPU is present")
    args = ap.parse_args(argv)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server, port = start_host_exporter(args.port, args.host, gpus=not args.no_gpu)
    if args.ready_file:
        args.ready_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.ready_file.with_name(f".{args.ready_file.name}.tmp")
        tmp.write_text(json.dumps({"port": port, "pid": os.getpid(), "host": args.host}))
        os.replace(tmp, args.ready_file)
    stop.wait()
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
