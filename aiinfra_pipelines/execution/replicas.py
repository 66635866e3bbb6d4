"""Inference replicas on this machine: processes that the autoscaling controller starts and stops.

Each replica is a real inference server process (``aiinfra_pipelines.workloads.serving``)
on a free loopback port. Its lifecycle is recorded as events (``requested`` -> ``ready`` ->
``draining`` -> ``stopped``), from which replica-seconds (what a cloud would bill) and
scale-up response times are computed. Scale-down drains: the router stops sending new
requests, in-flight requests finish, then the process is sent SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass
class Replica:
    name: str
    process: subprocess.Popen
    ready_file: Path
    log_path: Path
    requested_at: float
    port: int | None = None
    ready_at: float | None = None
    draining: bool = False
    outstanding: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class ReplicaStartError(RuntimeError):
    pass


@dataclass
class ReplicaEvent:
    ts_s: float
    replica: str
    event: str
    desired: int


class ReplicaSet:
    """Starts, tracks, routes to and drains inference replica processes.

    ``on_ready(replica)`` / ``on_removed(replica)`` let telemetry register the replica's
    exporter as a Prometheus scrape target (file_sd) and remove it when it drains.
    """

    def __init__(
        self,
        *,
        model_path: Path,
        workdir: Path,
        max_batch_size: int,
        clock_origin: float | None = None,
        start_delay_s: float = 0.0,
        on_ready: Callable[[Replica], None] | None = None,
        on_removed: Callable[[Replica], None] | None = None,
        start_timeout_s: float = 60.0,
    ):
        self.model_path = Path(model_path)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.max_batch_size = max_batch_size
        self.origin = clock_origin if clock_origin is not None else time.monotonic()
        self.start_delay_s = start_delay_s
        self.on_ready = on_ready
        self.on_removed = on_removed
        self.start_timeout_s = start_timeout_s
        self._lock = threading.Condition()
        self._replicas: dict[str, Replica] = {}
        self._seq = 0
        self.events: list[ReplicaEvent] = []
        self.desired = 0
        self.errors: list[str] = []

    # -- clock and events ------------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic() - self.origin

    def _event(self, replica: str, event: str) -> None:
        self.events.append(ReplicaEvent(self.now(), replica, event, self.desired))

    # -- views -----------------------------------------------------------------------------
    @property
    def ready(self) -> list[Replica]:
        with self._lock:
            return [r for r in self._replicas.values() if r.ready_at is not None and not r.draining]

    @property
    def pending(self) -> list[Replica]:
        with self._lock:
            return [r for r in self._replicas.values() if r.ready_at is None]

    @property
    def active_count(self) -> int:
        """Replicas counted against the desired number: ready or starting, not draining."""
        with self._lock:
            return sum(1 for r in self._replicas.values() if not r.draining)

    # -- scaling ---------------------------------------------------------------------------
    def scale_to(self, desired: int) -> None:
        self.desired = max(0, int(desired))
        active = self.active_count
        for _ in range(self.desired - active):
            self.start_replica()
        for _ in range(active - self.desired):
            if not self.drain_one():
                break

    def start_replica(self) -> Replica:
        with self._lock:
            self._seq += 1
            name = f"replica-{self._seq}"
        ready_file = self.workdir / f"{name}.ready.json"
        log_path = self.workdir / f"{name}.log"
        ready_file.unlink(missing_ok=True)
        cmd = [
            sys.executable, "-m", "aiinfra_pipelines.workloads.serving",
            "--model", str(self.model_path), "--port", "0", "--replica", name,
            "--max-batch-size", str(self.max_batch_size), "--ready-file", str(ready_file),
        ]
        log = open(log_path, "wb")
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        replica = Replica(name, proc, ready_file, log_path, requested_at=self.now())
        with self._lock:
            self._replicas[name] = replica
        self._event(name, "requested")
        threading.Thread(target=self._await_ready, args=(replica,), daemon=True, name=f"{name}-ready").start()
        return replica

    def _await_ready(self, replica: Replica) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if replica.draining:  # scaled down before it was ready: the drain stops it
                return
            if replica.process.poll() is not None:
                tail = replica.log_path.read_text(errors="replace")[-2000:]
                self.errors.append(f"{replica.name} exited with {replica.process.returncode} while starting:\n{tail}")
                with self._lock:
                    self._replicas.pop(replica.name, None)
                    self._lock.notify_all()
                self._event(replica.name, "stopped")
                return
            if replica.ready_file.exists():
                try:
                    info = json.loads(replica.ready_file.read_text())
                    replica.port = int(info["port"])
                    break
                except (ValueError, KeyError):
                    pass  # partially written; read again
            time.sleep(0.02)
        else:
            self.errors.append(f"{replica.name} did not become ready within {self.start_timeout_s:.0f}s")
            self._terminate(replica)
            return
        # A configurable extra start delay stands in for node start + model load on a cloud.
        remaining = self.start_delay_s - (self.now() - replica.requested_at)
        if remaining > 0:
            time.sleep(remaining)
        with self._lock:
            if replica.draining:  # drained during the start delay: never ready, never a target
                return
            replica.ready_at = self.now()
            self._lock.notify_all()
        self._event(replica.name, "ready")
        if self.on_ready:
            self.on_ready(replica)

    def drain_one(self) -> bool:
        """Drain the most recently requested replica (pending ones first: they cost without serving)."""
        with self._lock:
            candidates = [r for r in self._replicas.values() if not r.draining]
            if not candidates:
                return False
            candidates.sort(key=lambda r: (r.ready_at is not None, -r.requested_at))
            replica = candidates[0]
            replica.draining = True
        self._event(replica.name, "draining")
        if self.on_removed and replica.ready_at is not None:
            self.on_removed(replica)
        threading.Thread(target=self._finish_drain, args=(replica,), daemon=True, name=f"{replica.name}-drain").start()
        return True

    def _finish_drain(self, replica: Replica, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while replica.outstanding > 0 and time.monotonic() < deadline:
                self._lock.wait(0.05)
        self._terminate(replica)

    def _terminate(self, replica: Replica) -> None:
        if replica.process.poll() is None:
            try:
                os.kill(replica.process.pid, signal.SIGTERM)
                replica.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()
            except ProcessLookupError:
                pass
        with self._lock:
            # a replica drained by the controller is stopped again by stop_all(): one event only
            removed = self._replicas.pop(replica.name, None) is not None
            self._lock.notify_all()
        if removed:
            self._event(replica.name, "stopped")

    # -- routing ---------------------------------------------------------------------------
    def acquire(self, timeout_s: float) -> Replica | None:
        """The ready replica with the fewest outstanding requests (waits while none is ready)."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                ready = [r for r in self._replicas.values() if r.ready_at is not None and not r.draining]
                if ready:
                    best = min(ready, key=lambda r: r.outstanding)
                    best.outstanding += 1
                    return best
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._lock.wait(min(left, 0.05))

    def release(self, replica: Replica) -> None:
        with self._lock:
            replica.outstanding -= 1
            self._lock.notify_all()

    def wait_ready(self, count: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while len([r for r in self._replicas.values() if r.ready_at is not None]) < count:
                if self.errors:
                    raise ReplicaStartError(self.errors[-1])
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ReplicaStartError(f"{count} replica(s) not ready within {timeout_s:.0f}s")
                self._lock.wait(min(left, 0.05))

    def stop_all(self) -> None:
        with self._lock:
            replicas = list(self._replicas.values())
        for r in replicas:
            if not r.draining:
                r.draining = True
                self._event(r.name, "draining")
                if self.on_removed and r.ready_at is not None:
                    self.on_removed(r)
        for r in replicas:
            self._finish_drain(r, timeout_s=10.0)
        self.desired = 0

    @property
    def outstanding_total(self) -> int:
        with self._lock:
            return sum(r.outstanding for r in self._replicas.values())
