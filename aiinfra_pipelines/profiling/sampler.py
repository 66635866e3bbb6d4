"""Background system sampling: CPU, memory and I/O through psutil, GPUs through NVML.

A daemon thread wakes every ``interval_s`` and records one row per metric into the
profiler's samples table. NVML (``nvidia-ml-py``) is used when a driver and a device are
present: SM utilisation, memory used and power per GPU. Without one the sampler records
``gpu_present = 0`` once and the profile reports GPU figures as absent (None), never as zero.
"""

from __future__ import annotations

import platform
import threading
import time
from typing import Callable

import psutil

Record = Callable[..., None]


class Nvml:
    """A thin NVML session; ``Nvml.open()`` returns None when no driver or device is present."""

    def __init__(self, pynvml, handles):
        self._n = pynvml
        self.handles = handles

    @classmethod
    def open(cls) -> "Nvml | None":
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            if count == 0:
                pynvml.nvmlShutdown()
                return None
            return cls(pynvml, [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)])
        except Exception:  # no library, no driver, no device: recorded as absent
            return None

    def devices(self) -> list[dict]:
        out = []
        for i, h in enumerate(self.handles):
            name = self._n.nvmlDeviceGetName(h)
            mem = self._n.nvmlDeviceGetMemoryInfo(h)
            out.append(
                {
                    "index": i,
                    "name": name.decode() if isinstance(name, bytes) else str(name),
                    "memory_total_bytes": int(mem.total),
                }
            )
        return out

    def read(self) -> list[dict]:
        out = []
        for i, h in enumerate(self.handles):
            row = {"gpu": i}
            try:
                row["gpu_utilization"] = self._n.nvmlDeviceGetUtilizationRates(h).gpu / 100.0
            except Exception:
                pass
            try:
                row["gpu_memory_used_bytes"] = float(self._n.nvmlDeviceGetMemoryInfo(h).used)
            except Exception:
                pass
            try:
                row["gpu_power_watts"] = self._n.nvmlDeviceGetPowerUsage(h) / 1000.0
            except Exception:
                pass
            out.append(row)
        return out

    def close(self) -> None:
        try:
            self._n.nvmlShutdown()
        except Exception:
            pass


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_info() -> dict:
    nv = Nvml.open()
    gpus = nv.devices() if nv else []
    if nv:
        nv.close()
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": psutil.cpu_count(logical=True) or 1,
        "memory_gib": psutil.virtual_memory().total / 2**30,
        "gpu": gpus,
        "gpu_present": bool(gpus),
    }


class SystemSampler:
    """Samples this process and host every ``interval_s`` into ``record(source, metric, value, labels, ts=)``."""

    def __init__(self, record: Record, interval_s: float = 0.25, gpu: bool = True):
        if interval_s <= 0:
            raise ValueError(f"interval_s: must be positive, got {interval_s}")
        self._record = record
        self.interval_s = interval_s
        self._gpu = gpu
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proc = psutil.Process()
        self._ncpu = psutil.cpu_count(logical=True) or 1
        self.nvml: Nvml | None = None
        self.peak_rss_bytes = 0
        self.cpu_utilization: list[float] = []  # this process, 0..1 of the whole host
        self.gpu_utilization: list[float] = []  # mean over GPUs, 0..1
        self.read_bytes = 0
        self.n = 0
        self._last_io = None
        self._last_t = None

    @property
    def gpu_present(self) -> bool:
        return self.nvml is not None

    def _io(self):
        try:
            io = self._proc.io_counters()
            return io.read_bytes, io.write_bytes
        except (psutil.Error, AttributeError, NotImplementedError):
            return None

    def sample(self) -> None:
        now = time.time()
        rec = self._record
        proc_cpu = self._proc.cpu_percent(None) / 100.0 / self._ncpu
        host_cpu = psutil.cpu_percent(None) / 100.0
        rss = self._proc.memory_info().rss
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
        if self.n > 0:  # the first cpu_percent call only primes the counters
            self.cpu_utilization.append(proc_cpu)
            rec("system", "process_cpu_utilization", proc_cpu, "", ts=now)
            rec("system", "host_cpu_utilization", host_cpu, "", ts=now)
        rec("system", "process_rss_bytes", rss, "", ts=now)
        rec("system", "host_memory_used_bytes", psutil.virtual_memory().used, "", ts=now)
        io = self._io()
        if io is not None and self._last_io is not None and now > self._last_t:
            dt = now - self._last_t
            self.read_bytes += io[0] - self._last_io[0]
            rec("system", "process_read_bytes_per_s", (io[0] - self._last_io[0]) / dt, "", ts=now)
            rec("system", "process_write_bytes_per_s", (io[1] - self._last_io[1]) / dt, "", ts=now)
        if io is not None:
            self._last_io, self._last_t = io, now
        if self.nvml is not None:
            utils = []
            for row in self.nvml.read():
                lab = f"gpu={row['gpu']}"
                for key in ("gpu_utilization", "gpu_memory_used_bytes", "gpu_power_watts"):
                    if key in row:
                        rec("system", key, row[key], lab, ts=now)
                if "gpu_utilization" in row:
                    utils.append(row["gpu_utilization"])
            if utils:
                self.gpu_utilization.append(sum(utils) / len(utils))
        self.n += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except psutil.Error:
                pass

    def start(self) -> None:
        if self._gpu:
            self.nvml = Nvml.open()
        if self.nvml is None:
            self._record("system", "gpu_present", 0.0, "")
        else:
            self._record("system", "gpu_present", float(len(self.nvml.handles)), "")
        self.sample()
        self._thread = threading.Thread(target=self._run, name="aiinfra-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.sample()
        except psutil.Error:
            pass
        if self.nvml is not None:
            self.nvml.close()

    def mean_cpu_utilization(self) -> float | None:
        return sum(self.cpu_utilization) / len(self.cpu_utilization) if self.cpu_utilization else None

    def mean_gpu_utilization(self) -> float | None:
        if self.nvml is None or not self.gpu_utilization:
            return None
        return sum(self.gpu_utilization) / len(self.gpu_utilization)
