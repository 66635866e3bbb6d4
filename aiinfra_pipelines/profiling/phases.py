"""The phase API: where a workload's time goes, for any Python workload.

Three forms, all cheap enough to leave on in production (a phase costs two
``perf_counter`` calls and one small object):

* ``with profiler.phase("data_load"): ...`` or, with an active profiler, ``with phase("data_load"):``;
* ``@phased("forward")`` on a function;
* ``profiler.lap("forward")`` in a tight loop: the time since the previous lap (or ``reset_lap``)
  is charged to the named phase, one clock read per boundary.

Phases accumulate seconds and call counts per name. Different names may nest; a phase
counts its own wall time, so nested phases are not subtracted from their parent.
Without an active profiler the module-level ``phase`` and ``phased`` do nothing.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import time
from collections import defaultdict
from typing import Callable, Iterator

import pandas as pd

_perf = time.perf_counter
_active: contextvars.ContextVar["Profiler | None"] = contextvars.ContextVar("aiinfra_profiler", default=None)


class _PhaseTimer:
    __slots__ = ("_prof", "_name", "_t0")

    def __init__(self, prof: "Profiler", name: str):
        self._prof = prof
        self._name = name
        self._t0 = 0.0

    def __enter__(self) -> "_PhaseTimer":
        self._t0 = _perf()
        return self

    def __exit__(self, *exc) -> None:
        self._prof.add(self._name, _perf() - self._t0)


class _NullPhase:
    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


_NULL = _NullPhase()


class Profiler:
    """Phase timers plus an optional background system sampler, and the samples table they fill.

    ``with Profiler() as prof:`` makes it the active profiler of this context (for the
    module-level :func:`phase`), and starts and stops the sampler.
    """

    def __init__(self, sample_interval_s: float | None = 0.25, gpu: bool = True):
        self.phase_seconds: dict[str, float] = defaultdict(float)
        self.phase_calls: dict[str, int] = defaultdict(int)
        self._lap_t = _perf()
        self._rows: list[tuple[float, str, str, float, str]] = []
        self._rows_lock = threading.Lock()
        self.sample_interval_s = sample_interval_s
        self._gpu = gpu
        self.sampler = None
        self._token = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None

    # --- phases -----------------------------------------------------------------------------
    def phase(self, name: str) -> _PhaseTimer:
        return _PhaseTimer(self, name)

    def add(self, name: str, seconds: float) -> None:
        self.phase_seconds[name] += seconds
        self.phase_calls[name] += 1

    def reset_lap(self) -> None:
        self._lap_t = _perf()

    def lap(self, name: str) -> None:
        t = _perf()
        self.phase_seconds[name] += t - self._lap_t
        self.phase_calls[name] += 1
        self._lap_t = t

    def phases(self) -> dict[str, float]:
        return dict(self.phase_seconds)

    # --- samples ----------------------------------------------------------------------------
    def record(self, source: str, metric: str, value: float, labels: str = "", ts: float | None = None) -> None:
        row = (time.time() if ts is None else ts, source, metric, float(value), labels)
        with self._rows_lock:
            self._rows.append(row)

    def record_phases(self, labels: str = "") -> None:
        """One 'phase' sample per phase: cumulative seconds so far (e.g. at the end of an epoch)."""
        now = time.time()
        for name, secs in list(self.phase_seconds.items()):
            lab = f"phase={name}" + (f",{labels}" if labels else "")
            self.record("phase", "phase_seconds_total", secs, lab, ts=now)

    def samples(self) -> pd.DataFrame:
        with self._rows_lock:
            rows = list(self._rows)
        return pd.DataFrame(rows, columns=["ts", "source", "metric", "value", "labels"]).astype(
            {"ts": "float64", "source": "string", "metric": "string", "value": "float64", "labels": "string"}
        )

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> "Profiler":
        self.started_at = time.time()
        if self.sample_interval_s:
            from aiinfra_pipelines.profiling.sampler import SystemSampler

            self.sampler = SystemSampler(self.record, interval_s=self.sample_interval_s, gpu=self._gpu)
            self.sampler.start()
        self.reset_lap()
        return self

    def stop(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        self.stopped_at = time.time()

    def __enter__(self) -> "Profiler":
        self._token = _active.set(self)
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if self._token is not None:
            _active.reset(self._token)
            self._token = None


def active_profiler() -> Profiler | None:
    return _active.get()


def phase(name: str):
    """``with phase("data_load"):`` charges the block to the active profiler; a no-op without one."""
    prof = _active.get()
    return _NULL if prof is None else _PhaseTimer(prof, name)


def phased(name: str) -> Callable:
    """Decorator: every call of the function is charged to phase ``name`` of the active profiler."""

    def deco(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prof = _active.get()
            if prof is None:
                return fn(*args, **kwargs)
            t0 = _perf()
            try:
                return fn(*args, **kwargs)
            finally:
                prof.add(name, _perf() - t0)

        return wrapper

    return deco


def shares(phase_seconds: dict[str, float], names: Iterator[str] | None = None) -> dict[str, dict[str, float]]:
    """{phase: {seconds, share}} with shares over the given (top-level) phases."""
    names = list(names) if names is not None else list(phase_seconds)
    total = sum(phase_seconds.get(n, 0.0) for n in names) or 1.0
    return {n: {"seconds": phase_seconds.get(n, 0.0), "share": phase_seconds.get(n, 0.0) / total} for n in names}
