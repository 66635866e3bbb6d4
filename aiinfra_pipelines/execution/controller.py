"""The live autoscaling controller of the ``local`` target.

Every control interval it reads what the policy may know (the Prometheus series up to
now: request rate, mean replica utilisation, queue length; and the replicas it runs),
asks the policy for a replica count, and starts or drains replica processes to match.
The same policy object drives the simulator; here it drives real processes.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from aiinfra_pipelines.execution.replicas import ReplicaSet
from aiinfra_pipelines.telemetry import metrics as m


@dataclass
class ControlStep:
    ts_s: float
    request_rate_rps: float
    utilization: float
    queue_length: float
    ready_replicas: int
    pending_replicas: int
    desired_replicas: int
    source: str  # "prometheus" or "router" when Prometheus had no sample yet


def _scalar(result: list[dict]) -> float | None:
    """Sum of an instant-vector result (None when empty or NaN)."""
    total, seen = 0.0, False
    for sample in result:
        v = float(sample["value"][1])
        if not math.isnan(v):
            total += v
            seen = True
    return total if seen else None


class PrometheusObserver:
    """Builds the policy's observation from Prometheus (the recording rules in telemetry/)."""

    def __init__(self, client: Any, replicas: ReplicaSet):
        self.client = client
        self.replicas = replicas

    def __call__(self) -> tuple[dict, str]:
        q = self.client.query
        try:
            rate = _scalar(q(m.RULE_REQUEST_RATE))
            util = _scalar(q(m.RULE_UTILIZATION))
            queue = _scalar(q(f"sum({m.INFERENCE_QUEUE_LENGTH})"))
            source = "prometheus"
        except Exception:  # Prometheus briefly unreachable: fall back to the router's own counts
            rate = util = queue = None
            source = "router"
        router_waiting = max(0, self.replicas.outstanding_total)
        obs = dict(
            request_rate_rps=rate if rate is not None else 0.0,
            utilization=min(1.0, util) if util is not None else 0.0,
            # requests waiting at the router (no replica ready) are queue too
            queue_length=max(queue or 0.0, float(router_waiting)),
            ready_replicas=len(self.replicas.ready),
            pending_replicas=len(self.replicas.pending),
        )
        if rate is None and util is None:
            source = "router"
        return obs, source


class Controller:
    """Runs ``policy.desired_replicas(observation, now)`` every ``interval_s`` in a thread."""

    def __init__(
        self,
        policy: Any,
        replicas: ReplicaSet,
        observe: Callable[[], tuple[dict, str]],
        *,
        interval_s: float,
        min_replicas: int = 0,
        max_replicas: int = 8,
        observation_factory: Callable[..., Any] | None = None,
    ):
        self.policy = policy
        self.replicas = replicas
        self.observe = observe
        self.interval_s = interval_s
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.steps: list[ControlStep] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if observation_factory is None:
            from aiinfra_pipelines.scaling.policies import Observation

            observation_factory = Observation
        self._make_obs = observation_factory

    def step(self) -> int:
        obs, source = self.observe()
        now = self.replicas.now()
        observation = self._make_obs(now_s=now, **obs)
        desired = int(self.policy.desired_replicas(observation, now))
        desired = max(self.min_replicas, min(self.max_replicas, desired))
        self.replicas.scale_to(desired)
        self.steps.append(
            ControlStep(now, obs["request_rate_rps"], obs["utilization"], obs["queue_length"],
                        obs["ready_replicas"], obs["pending_replicas"], desired, source)
        )
        return desired

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as err:  # keep controlling; the run reports the errors
                self.errors.append(f"{type(err).__name__}: {err}")
            next_at += self.interval_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True, name="autoscaler")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
