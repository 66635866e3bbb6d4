"""Scaling policies: one interface, ``desired_replicas(observation, now) -> int``.

Every policy is a small dataclass with documented parameters, a ``family`` name, ``params()``
(a JSON-able dict that :func:`policy_from_settings` turns back into the policy) and
``reset()`` (forget the history; policies are stateful and keep what they observed).
Policies see only :class:`Observation` (what a controller can measure now); only
:class:`ClairvoyantPolicy` is given the future, through ``bind_future``.

The live controller calls ``policy.reset()`` once, then ``desired_replicas(obs, now)``
every control interval, and applies the answer clamped to the policy's own bounds
(already applied inside) — the same contract the simulator uses.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar

import numpy as np


@dataclass(slots=True)
class Observation:
    """What the controller measured at ``now_s`` (no future information)."""

    now_s: float
    request_rate_rps: float  # arrivals over the last rate window (rate30s)
    queue_length: int  # requests in the system: waiting plus in service, all replicas
    utilization: float  # 0..1: busy batch slots / (ready replicas * batch slots)
    ready_replicas: int
    pending_replicas: int  # requested, still provisioning


def _clamp(n: float, lo: int, hi: int) -> int:
    return int(max(lo, min(hi, n)))


@dataclass
class _Policy:
    family: ClassVar[str] = ""

    def params(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def reset(self) -> None:  # stateless by default
        pass

    def desired_replicas(self, observation: Observation, now: float) -> int:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.params().items())})"


@dataclass(repr=False)
class StaticPolicy(_Policy):
    """A constant pool of ``replicas`` (the static GPU pool baseline; the tuner finds the
    smallest count that meets the SLO)."""

    family: ClassVar[str] = "static"
    replicas: int = 1

    def desired_replicas(self, observation: Observation, now: float) -> int:
        return self.replicas


@dataclass(repr=False)
class ReactivePolicy(_Policy):
    """HPA/KEDA-like threshold scaling.

    * ``metric``: ``"queue"`` (in-flight requests per replica; KEDA Prometheus trigger on
      the queue-per-replica rule), ``"utilization"`` (busy fraction per replica) or
      ``"rps"`` (request rate per replica).
    * ``target``: the per-replica value to aim for (requests, fraction or req/s).
    * ``min_replicas`` / ``max_replicas``: bounds; ``min_replicas=0`` scales to zero, and
      any queued request activates one replica (KEDA activation).
    * ``tolerance``: no change while ``|metric/target - 1| <= tolerance`` (HPA default 0.1).
    * ``scale_up_stabilization_s`` / ``scale_down_stabilization_s``: HPA behavior windows:
      scale up to the smallest, down to the largest recommendation within the window.
    * ``scale_up_step`` / ``scale_down_step``: most replicas added / removed per decision.
    * ``cooldown_s``: no scale-down until this long after the last scale-up (and, as KEDA's
      ``cooldownPeriod``, before going to zero).
    """

    family: ClassVar[str] = "reactive"
    metric: str = "queue"
    target: float = 8.0
    min_replicas: int = 1
    max_replicas: int = 64
    tolerance: float = 0.1
    scale_up_stabilization_s: float = 0.0
    scale_down_stabilization_s: float = 300.0
    scale_up_step: int = 8
    scale_down_step: int = 2
    cooldown_s: float = 0.0
    _recs: deque = field(default_factory=deque, repr=False)
    _last_up: float = field(default=-math.inf, repr=False)
    _last_desired: int | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.metric not in ("queue", "utilization", "rps"):
            raise ValueError(f"metric: {self.metric!r} is not one of queue, utilization, rps")
        if not self.target > 0:
            raise ValueError(f"target must be > 0, got {self.target}")
        if self.min_replicas < 0 or self.max_replicas < max(1, self.min_replicas):
            raise ValueError(f"bounds: need 0 <= min_replicas <= max_replicas, got {self.min_replicas}, {self.max_replicas}")

    def reset(self) -> None:
        self._recs = deque()
        self._last_up = -math.inf
        self._last_desired = None

    def raw_recommendation(self, o: Observation) -> int:
        current = o.ready_replicas + o.pending_replicas
        if self.metric == "queue":
            total = float(o.queue_length)
        elif self.metric == "rps":
            total = o.request_rate_rps
        else:
            total = o.utilization * o.ready_replicas
        if current == 0:
            return 1 if (o.queue_length > 0 or total > 0) else 0
        ratio = total / (self.target * max(o.ready_replicas, 1))
        if abs(ratio - 1.0) <= self.tolerance:
            return current
        return math.ceil(total / self.target - 1e-9)

    def desired_replicas(self, observation: Observation, now: float) -> int:
        o = observation
        current = o.ready_replicas + o.pending_replicas
        if self._last_desired is not None:
            current = self._last_desired
        rec = _clamp(self.raw_recommendation(o), self.min_replicas, self.max_replicas)
        self._recs.append((now, rec))
        horizon = max(self.scale_up_stabilization_s, self.scale_down_stabilization_s)
        while self._recs and self._recs[0][0] < now - horizon:
            self._recs.popleft()
        up = min(r for t, r in self._recs if t >= now - self.scale_up_stabilization_s)
        down = max(r for t, r in self._recs if t >= now - self.scale_down_stabilization_s)
        if up > current:
            desired = min(up, current + self.scale_up_step)
        elif down < current and now - self._last_up >= self.cooldown_s:
            desired = max(down, current - self.scale_down_step)
        else:
            desired = current
        desired = _clamp(desired, self.min_replicas, self.max_replicas)
        if desired > current:
            self._last_up = now
        self._last_desired = desired
        return desired


class _RateForecaster:
    """Damped-trend exponential smoothing of the arrival rate (statsmodels ``Holt``).

    The observed rate is averaged into ``bucket_s`` buckets; every ``refit_s`` the smoothing
    parameters are re-estimated with ``statsmodels.tsa.holtwinters.Holt(damped_trend=True)``
    by maximum likelihood on the last ``history_buckets`` buckets, and between refits the
    level/trend are updated with the same recursions each bucket (cheap). Fits are cached by
    the history they saw, since the rate history is the same under every policy setting.
    """

    _cache: ClassVar[dict] = {}

    def __init__(self, bucket_s: float, refit_s: float, history_buckets: int = 240):
        self.bucket_s, self.refit_s, self.history = bucket_s, refit_s, history_buckets
        self.buckets: list[float] = []
        self._acc, self._n, self._bucket_start = 0.0, 0, None
        self.alpha, self.beta, self.phi = 0.5, 0.1, 0.95
        self.level, self.trend = None, 0.0
        self._last_fit = -math.inf

    def observe(self, now: float, rate: float) -> None:
        if self._bucket_start is None:
            self._bucket_start = now
        if now - self._bucket_start >= self.bucket_s and self._n:
            self._close(self._acc / self._n, now)
            self._acc, self._n, self._bucket_start = 0.0, 0, now
        self._acc += rate
        self._n += 1

    def _close(self, y: float, now: float) -> None:
        self.buckets.append(y)
        if self.level is None:
            self.level = y
        else:
            prev = self.level
            self.level = self.alpha * y + (1 - self.alpha) * (prev + self.phi * self.trend)
            self.trend = self.beta * (self.level - prev) + (1 - self.beta) * self.phi * self.trend
        if now - self._last_fit >= self.refit_s and len(self.buckets) >= 12:
            self._refit()
            self._last_fit = now

    def _refit(self) -> None:
        hist = np.asarray(self.buckets[-self.history:], dtype=float)
        key = (self.bucket_s, len(self.buckets), round(float(hist.sum()), 9), round(float(hist[-1]), 9))
        fit = self._cache.get(key)
        if fit is None:
            import warnings

            from statsmodels.tsa.holtwinters import Holt

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    r = Holt(hist + 1e-6, damped_trend=True, initialization_method="estimated").fit()
                    p = r.params
                    fit = (float(p["smoothing_level"]), float(p["smoothing_trend"]), float(p["damping_trend"]),
                           float(r.level[-1]), float(r.trend[-1]))
                except Exception:  # a degenerate history (e.g. all zeros): keep the current parameters
                    fit = (self.alpha, self.beta, self.phi, float(hist[-1]), 0.0)
            if len(self._cache) > 20000:
                self._cache.clear()
            self._cache[key] = fit
        self.alpha, self.beta, self.phi, self.level, self.trend = fit

    def forecast_max(self, horizon_s: float) -> float:
        """Largest forecast over the next ``horizon_s`` (bucketed)."""
        if self.level is None:
            return self._acc / self._n if self._n else 0.0
        h = max(1, math.ceil(horizon_s / self.bucket_s))
        best, damp, cum = self.level, 1.0, 0.0
        for _ in range(h):
            damp *= self.phi
            cum += damp
            best = max(best, self.level + cum * self.trend)
        return max(best, 0.0)


@dataclass(repr=False)
class PredictivePolicy(_Policy):
    """Provision ahead of the forecast arrival rate.

    desired = ceil(max forecast over the horizon * (1 + headroom) / capacity_rps),
    where the horizon is ``horizon_s`` (set it to the provisioning delay plus one control
    interval) and the forecast is damped-trend exponential smoothing fitted with statsmodels
    (see :class:`_RateForecaster`: statsmodels is already a dependency, its Holt model is a
    maximum-likelihood fit of a few parameters that runs in milliseconds, and the recursion
    between refits is O(1) per step, which keeps the simulator fast).

    * ``capacity_rps``: requests per second one replica serves within the SLO.
    * ``headroom``: extra fraction provisioned above the forecast.
    * ``scale_down_stabilization_s``: scale down to the largest desire of this window.
    * ``bucket_s`` / ``refit_s``: forecast resolution and refit period.
    """

    family: ClassVar[str] = "predictive"
    capacity_rps: float = 1.0
    headroom: float = 0.2
    horizon_s: float = 135.0
    min_replicas: int = 1
    max_replicas: int = 64
    scale_down_stabilization_s: float = 300.0
    bucket_s: float = 60.0
    refit_s: float = 900.0
    _fc: _RateForecaster | None = field(default=None, repr=False)
    _hist: deque = field(default_factory=deque, repr=False)

    def __post_init__(self):
        if not self.capacity_rps > 0:
            raise ValueError(f"capacity_rps must be > 0, got {self.capacity_rps}")
        if self.headroom < -0.5:
            raise ValueError(f"headroom must be >= -0.5, got {self.headroom}")

    def reset(self) -> None:
        self._fc = None
        self._hist = deque()

    def _baseline(self, o: Observation, now: float) -> int:
        if self._fc is None:
            self._fc = _RateForecaster(self.bucket_s, self.refit_s)
        if now > 0:  # at time 0 no rate has been measured yet
            self._fc.observe(now, o.request_rate_rps)
        rate = self._fc.forecast_max(self.horizon_s)
        want = math.ceil(rate * (1.0 + self.headroom) / self.capacity_rps - 1e-9)
        if want == 0 and o.queue_length > 0:
            want = 1
        self._hist.append((now, want))
        while self._hist and self._hist[0][0] < now - self.scale_down_stabilization_s:
            self._hist.popleft()
        return max(w for _, w in self._hist)

    def desired_replicas(self, observation: Observation, now: float) -> int:
        return _clamp(self._baseline(observation, now), self.min_replicas, self.max_replicas)


@dataclass(repr=False)
class HybridPolicy(PredictivePolicy):
    """The predictive baseline plus a reactive burst path (after Knative's panic mode).

    Panic starts when the in-flight requests per ready replica exceed
    ``panic_threshold * target_queue_per_replica``; while in panic (and ``panic_window_s``
    after the last panicking tick) the desire is at least ``ceil(queue / target_queue_per_replica)``
    and never decreases.
    """

    family: ClassVar[str] = "hybrid"
    target_queue_per_replica: float = 8.0
    panic_threshold: float = 2.0
    panic_window_s: float = 60.0
    _panic_until: float = field(default=-math.inf, repr=False)
    _panic_level: int = field(default=0, repr=False)

    def reset(self) -> None:
        super().reset()
        self._panic_until, self._panic_level = -math.inf, 0

    def desired_replicas(self, observation: Observation, now: float) -> int:
        o = observation
        base = self._baseline(o, now)
        reactive = math.ceil(o.queue_length / self.target_queue_per_replica - 1e-9)
        if o.queue_length > self.panic_threshold * self.target_queue_per_replica * max(o.ready_replicas, 1):
            if now >= self._panic_until:
                self._panic_level = 0
            self._panic_until = now + self.panic_window_s
            self._panic_level = max(self._panic_level, reactive, o.ready_replicas + o.pending_replicas)
        if now < self._panic_until:
            base = max(base, self._panic_level)
        return _clamp(base, self.min_replicas, self.max_replicas)


@dataclass(repr=False)
class ClairvoyantPolicy(_Policy):
    """The reference: knows every future arrival and service time, same provisioning delay.

    From the future requests it computes the concurrency N(t) that serving every request
    immediately on arrival needs (an exact sweep over start/end events, maximum per
    ``resolution_s`` bin), and the replicas R(t) = ceil(N(t) * packing / batch_slots).
    At tick ``t`` it asks for max R over [t, t + provisioning_delay + control_interval]:
    the capacity that replicas requested now must cover when they become ready, and kept
    while it is needed again sooner than re-provisioning would take (keeping an idle
    replica for g seconds costs g, releasing and re-provisioning it costs the delay).
    With ``packing = 1`` no request ever waits for a slot, so every request meets its
    SLO with the fewest replicas that can guarantee that; ``packing < 1`` lets requests
    wait within the SLO's slack and is tuned by the same search as the other families.
    It is not an exact optimum (that is an integer program over the whole schedule), but
    any schedule with fewer replicas at some time makes requests wait.
    """

    family: ClassVar[str] = "clairvoyant"
    packing: float = 1.0
    min_replicas: int = 0
    max_replicas: int = 1024
    resolution_s: float = 1.0
    _need: np.ndarray | None = field(default=None, repr=False)
    _lookahead_bins: int = field(default=0, repr=False)

    def bind_future(self, arrivals_s: np.ndarray, service_s: np.ndarray, *, batch_slots: int,
                    provisioning_delay_s: float, control_interval_s: float) -> None:
        a = np.asarray(arrivals_s, dtype=float)
        e = a + np.asarray(service_s, dtype=float)
        times = np.concatenate([a, e])
        delta = np.concatenate([np.ones(len(a)), -np.ones(len(e))])
        order = np.lexsort((delta, times))  # ends before starts at the same instant
        conc = np.cumsum(delta[order])
        t = times[order]
        nbins = int(math.ceil((t.max() if len(t) else 0) / self.resolution_s)) + 2
        need = np.zeros(nbins)
        np.maximum.at(need, (t / self.resolution_s).astype(int), conc)
        # concurrency carried through bins without events
        idx = np.searchsorted(t, np.arange(nbins) * self.resolution_s, side="right") - 1
        carried = np.where(idx >= 0, conc[np.clip(idx, 0, None)], 0.0)
        need = np.maximum(need, carried)
        self._need = np.ceil(need * self.packing / batch_slots - 1e-9)
        self._lookahead_bins = int(math.ceil((provisioning_delay_s + control_interval_s) / self.resolution_s))

    def reset(self) -> None:
        pass  # the future stays bound

    def desired_replicas(self, observation: Observation, now: float) -> int:
        if self._need is None:
            raise RuntimeError("ClairvoyantPolicy needs bind_future(...) before use (the simulator does it)")
        i = int(now / self.resolution_s)
        window = self._need[i: i + self._lookahead_bins + 1]
        want = int(window.max()) if len(window) else 0
        if want == 0 and observation.queue_length > 0:
            want = 1
        return _clamp(want, self.min_replicas, self.max_replicas)


POLICY_CLASSES = {c.family: c for c in (StaticPolicy, ReactivePolicy, PredictivePolicy, HybridPolicy, ClairvoyantPolicy)}
FAMILIES = tuple(POLICY_CLASSES)


def policy_from_settings(family: str, **params):
    """Build a policy from its family name and ``params()``; unknown names raise."""
    cls = POLICY_CLASSES.get(family)
    if cls is None:
        raise ValueError(f"family: {family!r} is not one of {list(POLICY_CLASSES)}")
    names = {f.name for f in fields(cls) if not f.name.startswith("_")}
    unknown = set(params) - names
    if unknown:
        raise ValueError(f"{family}: unknown parameter(s) {sorted(unknown)}; known: {sorted(names)}")
    return cls(**params)
