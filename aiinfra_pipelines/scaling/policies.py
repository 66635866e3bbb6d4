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

import heapq
import math
from collections import deque
from dataclasses import dataclass, field, fields
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

    The observed rate is averaged into ``bucket_s`` buckets; the smoothing parameters are
    re-estimated with ``statsmodels.tsa.holtwinters.Holt(damped_trend=True)`` by maximum
    likelihood on the last ``history_buckets`` buckets, and between refits the level/trend
    are updated with the same recursions each bucket (cheap, O(1)). Refits happen every
    ``refit_s`` while the forecaster is young and then every ``refit_growth`` times its age
    (whichever is longer): the parameters of a damped-trend model settle once a few hours
    are seen, and a refit costs tens of milliseconds, so this bounds the refits to
    O(log(age)) — about 50 over 23 days of 1-minute buckets instead of 2,200 — while a
    trace of an hour or two refits exactly every ``refit_s``. Fits are cached by the
    history they saw, since the rate history is the same under every policy setting.
    """

    _cache: ClassVar[dict] = {}

    def __init__(self, bucket_s: float, refit_s: float, history_buckets: int = 240, refit_growth: float = 0.125):
        self.bucket_s, self.refit_s, self.history = bucket_s, refit_s, history_buckets
        self.refit_growth = refit_growth
        self._first: float | None = None
        self.buckets: list[float] = []
        self._acc, self._n, self._bucket_start = 0.0, 0, None
        self.alpha, self.beta, self.phi = 0.5, 0.1, 0.95
        self.level, self.trend = None, 0.0
        self._last_fit = -math.inf

    def observe(self, now: float, rate: float) -> None:
        if self._bucket_start is None:
            self._bucket_start = now
            self._first = now
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
        gap = max(self.refit_s, self.refit_growth * (now - self._first))
        if now - self._last_fit >= gap and len(self.buckets) >= 12:
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
    * ``signal``: what is forecast. ``"rate"`` (default): the arrival rate, sized by
      ``capacity_rps``. ``"inflight"``: the requests in the system (waiting plus in service),
      sized by ``target_inflight`` requests per replica: this is the work itself (rate
      times time in the system), so long-output requests count for what they occupy.
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
    signal: str = "rate"
    target_inflight: float = 8.0
    _fc: _RateForecaster | None = field(default=None, repr=False)
    _hist: deque = field(default_factory=deque, repr=False)

    def __post_init__(self):
        if not self.capacity_rps > 0:
            raise ValueError(f"capacity_rps must be > 0, got {self.capacity_rps}")
        if self.headroom < -0.5:
            raise ValueError(f"headroom must be >= -0.5, got {self.headroom}")
        if self.signal not in ("rate", "inflight"):
            raise ValueError(f"signal: {self.signal!r} is not one of rate, inflight")
        if not self.target_inflight > 0:
            raise ValueError(f"target_inflight must be > 0, got {self.target_inflight}")

    def reset(self) -> None:
        self._fc = None
        self._hist = deque()

    def _baseline(self, o: Observation, now: float) -> int:
        if self._fc is None:
            self._fc = _RateForecaster(self.bucket_s, self.refit_s)
        inflight = self.signal == "inflight"
        if now > 0:  # at time 0 nothing has been measured yet
            self._fc.observe(now, float(o.queue_length) if inflight else o.request_rate_rps)
        level = self._fc.forecast_max(self.horizon_s)
        per_replica = self.target_inflight if inflight else self.capacity_rps
        want = math.ceil(level * (1.0 + self.headroom) / per_replica - 1e-9)
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


def drain_order(ids, busy_until, t: float) -> list:
    """The order in which to drain replicas ``ids`` (listed oldest first) at time ``t``:
    the one that frees up soonest first (fewest remaining busy seconds,
    ``max(busy_until - t, 0)``, rounded to a microsecond so float noise does not decide),
    ties newest first. ``busy_until`` maps a replica to the end of its last started request.
    The fast simulator, the SimPy reference and the clairvoyant's plan all use this rule."""
    pos = {rid: i for i, rid in enumerate(ids)}
    return sorted(ids, key=lambda rid: (round(max(busy_until[rid] - t, 0.0), 6), -pos[rid]))


def plan_min_replicas(arrivals_s, prefill_s, service_s, deadline_s, *, batch_slots: int,
                      control_interval_s: float) -> np.ndarray:
    """The fewest ready replicas per control interval that start every request by its deadline.

    Replays the simulator's serving model (one FCFS queue, a request takes the slot that
    frees first, replicas added at a tick are free from that tick, replicas removed at a
    tick are those that free up soonest, ties newest, as the simulator drains them, and
    take no new request) interval by interval. For interval ``k``
    it keeps the slots that the plan of intervals ``< k`` left and picks the smallest
    replica count that, held from this tick on, starts every request arrived by the end of
    the interval by its deadline (bisection; more replicas never start a request later).
    Holding the count until that backlog is served keeps the plan from deferring work into
    later intervals, which would only need more replicas then.
    Requests whose deadline had already passed at the tick cannot be helped by any count
    chosen now and are ignored. Returns ``r[k]`` for ``k = 0 .. last tick``.
    """
    a = np.asarray(arrivals_s, dtype=float)
    svc = np.asarray(service_s, dtype=float)
    dl = np.asarray(deadline_s, dtype=float)
    n, B, dt = len(a), int(batch_slots), float(control_interval_s)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    n_ticks = int(math.ceil(a[-1] / dt)) + 2
    r = np.zeros(n_ticks, dtype=np.int64)
    al, sl, dll = a.tolist(), svc.tolist(), dl.tolist()
    heap: list = []  # (free_time, replica_order, slot) of live replicas
    live: list[int] = []  # replica orders in ready order
    nxt, uid = 0, 0

    def trial(k: int, count: int, commit: bool):
        nonlocal nxt, uid, heap, live
        t0, t1 = k * dt, (k + 1) * dt
        h = heap if commit else heap.copy()
        lv = live if commit else live.copy()
        u = uid
        if count > len(lv):
            for _ in range(count - len(lv)):
                lv.append(u)
                for s in range(B):
                    h.append((t0, u, s))
                u += 1
            heapq.heapify(h)
        elif count < len(lv):
            busy = dict.fromkeys(lv, t0)
            for free, rid, _ in h:
                if free > busy[rid]:
                    busy[rid] = free
            drop = set(drain_order(lv, busy, t0)[: len(lv) - count])
            lv = [x for x in lv if x not in drop]
            keep = set(lv)
            h = [x for x in h if x[1] in keep]
            heapq.heapify(h)
        i = nxt
        while i < n and al[i] < t1:
            if not h:
                if not commit and dll[i] >= t0:
                    return False
                break
            free = h[0][0]
            s0 = al[i] if al[i] > free else free
            if commit and s0 >= t1:
                break
            if not commit and s0 > dll[i] + 1e-9 and dll[i] >= t0:
                return False
            _, rid, slot = heapq.heappop(h)
            heapq.heappush(h, (s0 + sl[i], rid, slot))
            i += 1
        if commit:
            heap, live, uid, nxt = h, lv, u, i
        return True

    for k in range(n_ticks):
        t1 = (k + 1) * dt
        if nxt >= n or (al[nxt] >= t1):
            # nothing to start in this interval: keep no replica in the plan (the policy's
            # look-ahead window keeps them across gaps shorter than the provisioning delay)
            if live:
                trial(k, 0, True)
            continue
        waiting = int(np.searchsorted(a, t1, side="left")) - nxt
        hi = len(live) + -(-waiting // B)
        lo = 0
        while lo < hi:
            mid = (lo + hi) // 2
            if trial(k, mid, False):
                hi = mid
            else:
                lo = mid + 1
        trial(k, lo, True)
        r[k] = lo
    return r


@dataclass(repr=False)
class ClairvoyantPolicy(_Policy):
    """The reference: knows every future arrival and service time, same provisioning delay.

    Offline, from the whole future, :func:`plan_min_replicas` computes ``r[k]``: the
    fewest ready replicas in control interval ``k`` that start every request within
    ``slack_fraction`` of its SLO slack (deadline = arrival + slack_fraction * (SLO -
    the request's own TTFT or latency without queueing)), replaying the simulator's
    serving model interval by interval. Online, at tick ``k`` it asks for
    ``max r[k .. k + D]`` with ``D`` the provisioning delay in ticks: a replica requested
    now is ready exactly when ``r[k + D]`` needs it, and a replica is kept through any gap
    shorter than the provisioning delay (releasing it and re-provisioning would bill the
    whole delay anyway, and would not be ready in time).

    Why it is near a lower bound: for each interval, given the slots the plan has left,
    no smaller count starts every request by its deadline (bisection over a monotone
    test), and replicas become ready no earlier than any online policy's could. It is not
    the exact optimum (an integer program over the whole schedule: the greedy plan does
    not trade a replica now for fewer later, and the simulator's pool can differ from the
    plan while it holds replicas across gaps), and with ``slack_fraction`` tuned it may
    spend the 1% of SLO misses the objective allows. ``packing`` scales the planned counts
    (1.0 = as planned) for the search.

    ``repair_rounds`` / ``repair_target``: the simulator's pool can still differ from the
    plan (it holds replicas across gaps and drains them later, and extra replicas take
    requests the plan put elsewhere), so before its first replay the simulator replays the
    plan up to ``repair_rounds`` times and, while the scored requests' SLO attainment is
    below ``repair_target`` (the tuner sets the objective's), adds one replica in the
    intervals where the most requests that could have met the SLO arrived and missed it
    (:func:`aiinfra_pipelines.scaling.simulator.repair_plan`). The repair is cached with the
    plan, so every later replay of the same trace and scoring (the SimPy reference's too)
    uses the same schedule. ``repair_rounds=0`` turns it off.
    """

    family: ClassVar[str] = "clairvoyant"
    slack_fraction: float = 1.0
    packing: float = 1.0
    min_replicas: int = 0
    max_replicas: int = 1024
    repair_rounds: int = 16
    repair_target: float = 0.99
    _planned: np.ndarray | None = field(default=None, repr=False)  # the plan's counts, packed
    _need: np.ndarray | None = field(default=None, repr=False)  # planned + the repair's replicas
    _lookahead: int = field(default=0, repr=False)
    _dt: float = field(default=15.0, repr=False)
    _repair_key: tuple | None = field(default=None, repr=False)
    _want: list = field(default_factory=list, repr=False)
    _plans: ClassVar[dict] = {}
    _repairs: ClassVar[dict] = {}

    def __post_init__(self):
        if not 0.0 <= self.slack_fraction <= 1.0:
            raise ValueError(f"slack_fraction must be in [0, 1], got {self.slack_fraction}")
        if not self.packing > 0:
            raise ValueError(f"packing must be > 0, got {self.packing}")
        if self.repair_rounds < 0:
            raise ValueError(f"repair_rounds must be >= 0, got {self.repair_rounds}")
        if not 0.0 < self.repair_target <= 1.0:
            raise ValueError(f"repair_target must be in (0, 1], got {self.repair_target}")

    def bind_future(self, arrivals_s: np.ndarray, service_s: np.ndarray, *, batch_slots: int,
                    provisioning_delay_s: float, control_interval_s: float, prefill_s: np.ndarray | None = None,
                    slo_ttft_s: float | None = None, slo_latency_s: float | None = None,
                    score_from_s: float = 0.0) -> None:
        a = np.asarray(arrivals_s, dtype=float)
        svc = np.asarray(service_s, dtype=float)
        pre = svc if prefill_s is None else np.asarray(prefill_s, dtype=float)
        slack = np.full(len(a), np.inf)
        if slo_ttft_s is not None:
            slack = np.minimum(slack, slo_ttft_s - pre)
        if slo_latency_s is not None:
            slack = np.minimum(slack, slo_latency_s - svc)
        slack = np.where(np.isfinite(slack), np.maximum(slack, 0.0) * self.slack_fraction, 0.0)
        dl = a + slack
        key = (len(a), float(a.sum()), float(svc.sum()), float(dl.sum()), int(batch_slots), float(control_interval_s))
        need = self._plans.get(key)
        if need is None:
            need = plan_min_replicas(a, pre, svc, dl, batch_slots=batch_slots, control_interval_s=control_interval_s)
            if len(self._plans) > 64:
                self._plans.clear()
            self._plans[key] = need
        self._planned = np.ceil(need * self.packing - 1e-9)
        self._dt = float(control_interval_s)
        self._lookahead = int(round(provisioning_delay_s / control_interval_s))
        self._repair_key = key + (self.packing, float(provisioning_delay_s), self.repair_rounds, self.repair_target,
                                  self.min_replicas, self.max_replicas, slo_ttft_s, slo_latency_s, float(score_from_s))
        self._apply(self._repairs.get(self._repair_key))

    def _apply(self, extra: np.ndarray | None) -> None:
        """``_need`` = the plan plus ``extra``; then ``max _need[k .. k + lookahead]`` for every
        tick ``k``, once (a list: one index per tick)."""
        self._need = self._planned if extra is None else self._planned + extra
        n = len(self._need)
        need = np.concatenate([self._need, np.zeros(self._lookahead, dtype=self._need.dtype)])
        want = need[:n].copy()
        for j in range(1, self._lookahead + 1):
            np.maximum(want, need[j: j + n], out=want)
        self._want = want.astype(np.int64).tolist()

    @property
    def plan_ticks(self) -> int:
        """Control intervals the bound plan covers."""
        return len(self._planned)

    @property
    def lookahead_ticks(self) -> int:
        """The provisioning delay in control intervals."""
        return self._lookahead

    @property
    def needs_repair(self) -> bool:
        """Bound to a future whose repair is not computed yet."""
        return self.repair_rounds > 0 and self._repair_key is not None and self._repair_key not in self._repairs

    def set_repair(self, extra: np.ndarray) -> None:
        """Add ``extra[k]`` replicas to interval ``k`` of the bound plan (and cache it)."""
        extra = np.array(extra, dtype=float)[: len(self._planned)]
        if len(self._repairs) > 256:
            self._repairs.clear()
        self._repairs[self._repair_key] = extra
        self._apply(extra)

    def reset(self) -> None:
        pass  # the future stays bound

    def desired_replicas(self, observation: Observation, now: float) -> int:
        if self._need is None:
            raise RuntimeError("ClairvoyantPolicy needs bind_future(...) before use (the simulator does it)")
        k = int(round(now / self._dt))
        want = self._want[k] if k < len(self._want) else 0
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
