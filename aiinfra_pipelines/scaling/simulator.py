"""Trace-driven autoscaling simulator.

Model (the SimPy reference in ``simpy_reference.py`` implements the same one event by event):

* A replica has ``max_batch_size`` batch slots. The load balancer keeps one FCFS queue;
  a request takes the slot that frees first (idle slots in the order they became idle),
  holds it for ``service_s`` and sees its first token ``prefill_s`` after it started.
* The policy runs every ``control_interval_s`` at ticks ``k * interval`` and sees only an
  :class:`Observation` of the past. A tick happens before the arrivals and completions of
  the same instant. At a tick: observe, decide, then apply: scale-up requests replicas
  (billed from now, ready after the provisioning delay rounded up to whole intervals);
  scale-down first cancels pending replicas (newest first, billing stops now), then
  drains ready ones, those that free up soonest first (fewest remaining busy seconds;
  ties: newest first; :func:`drain_order`): a draining replica takes no new request and
  is billed until its last request finishes. Then replicas due at this tick become ready.
* Billing is per second (each replica's billed time rounded up to a whole second).
* The run ends at the first tick after the last arrival at which every request has
  finished; replicas still up are billed until then.

Implementation: requests are processed in arrival order with a heap of slot free times
(lazy deletion of drained replicas' slots) between control ticks; a request is started
only once its start time is before the next tick, so every start sees the replica set
the policy had actually chosen by then. Per-interval figures are computed with numpy.
"""

from __future__ import annotations

import math
from bisect import bisect_left

import numpy as np
import pandas as pd

from aiinfra_pipelines.scaling.policies import Observation, drain_order
from aiinfra_pipelines.scaling.service_model import ServiceModel
from aiinfra_pipelines.scaling.slots import slot_pool
from aiinfra_pipelines.scaling.traces import Trace

PENDING, READY, DRAINING, GONE = 0, 1, 2, 3


class SimResult:
    """``summary`` (a dict), and per request / per interval / per replica frames. The
    frames are built on first access (a tuning search reads only the summary, and building
    three pandas frames would otherwise be most of a short replay's cost)."""

    __slots__ = ("_requests", "_intervals", "summary", "_replicas")

    def __init__(self, requests, intervals, summary: dict, replicas=None):
        self._requests, self._intervals, self.summary = requests, intervals, summary
        self._replicas = pd.DataFrame() if replicas is None else replicas

    @staticmethod
    def _get(v):
        return v() if callable(v) else v

    @property
    def requests(self) -> pd.DataFrame:
        self._requests = self._get(self._requests)
        return self._requests

    @property
    def intervals(self) -> pd.DataFrame:
        self._intervals = self._get(self._intervals)
        return self._intervals

    @property
    def replicas(self) -> pd.DataFrame:
        self._replicas = self._get(self._replicas)
        return self._replicas


def prepare(trace: Trace, service_model: ServiceModel):
    a = trace.df["arrival_s"].to_numpy(dtype=float)
    pre, svc = service_model.service_times(trace)
    return a, np.asarray(pre, dtype=float), np.asarray(svc, dtype=float)


def simulate(
    trace: Trace,
    policy,
    service_model: ServiceModel,
    *,
    price_per_replica_hour: float,
    provisioning_delay_s: float = 120.0,
    control_interval_s: float = 15.0,
    slo_ttft_s: float | None = None,
    slo_latency_s: float | None = None,
    initial_replicas: int | None = None,
    rate_window_s: float = 30.0,
    max_idle_wait_s: float = 6 * 3600.0,
    score_from_s: float = 0.0,
    hold_s: float | None = None,
    _prepared=None,
    _bound: bool = False,
    _compiled: bool | None = None,
) -> SimResult:
    """Replay ``trace`` under ``policy``; see the module doc for the model.

    ``initial_replicas``: replicas ready at time 0 (default: the pool a running system would
    have, ``ceil(mean concurrency of the first 5 minutes / slots / 0.7)``, the same for
    every policy). ``hold_s`` (default: twice the provisioning delay plus one interval, at least 240 s): no scale-down
    before then, while the policies' histories fill (a replay starts with none). ``score_from_s``: the summary counts requests arriving from then on and the
    cost from then on (the replay before it is warm-up; the tuner's honest protocol
    replays the whole trace and scores the evaluation half). A request meets the SLO when its TTFT is within
    ``slo_ttft_s`` and its end-to-end latency within ``slo_latency_s`` (each when given).
    """
    if control_interval_s <= 0 or provisioning_delay_s < 0 or price_per_replica_hour < 0:
        raise ValueError("control_interval_s must be > 0, provisioning_delay_s and price_per_replica_hour >= 0")
    a, pre, svc = _prepared if _prepared is not None else prepare(trace, service_model)
    n = len(a)
    B = int(service_model.max_batch_size)
    dt = float(control_interval_s)
    delay_ticks = int(math.ceil(provisioning_delay_s / dt - 1e-9))
    policy.reset()
    if not _bound:
        bind_policy(trace, policy, service_model, (a, pre, svc), price_per_replica_hour=price_per_replica_hour,
                    provisioning_delay_s=provisioning_delay_s, control_interval_s=control_interval_s,
                    slo_ttft_s=slo_ttft_s, slo_latency_s=slo_latency_s, initial_replicas=initial_replicas,
                    rate_window_s=rate_window_s, max_idle_wait_s=max_idle_wait_s, hold_s=hold_s,
                    score_from_s=score_from_s)
    hold = max(2 * (delay_ticks + 1) * dt, 240.0) if hold_s is None else hold_s

    arrivals = a.tolist()
    pool = slot_pool(a, svc, B, dt, compiled=_compiled)
    # replicas: parallel lists
    r_req, r_ready, r_end, r_state = [], [], [], []
    ready_ids: list[int] = []  # ready, not draining, in ready order
    pending_ids: list[int] = []  # in request order
    n_done_before = 0
    nxt = 0  # next request to start (FCFS)
    last_arrival = arrivals[-1] if n else 0.0

    def add_replica(t_req: float, t_ready: float, state: int) -> int:
        r_req.append(t_req); r_ready.append(t_ready); r_end.append(math.nan); r_state.append(state)
        return len(r_req) - 1

    def make_ready(rid: int, t: float) -> None:
        r_state[rid] = READY
        r_ready[rid] = t
        ready_ids.append(rid)
        pool.add(rid, t)

    tk, tready, tpending, tdesired, trate, tqueue, tutil = [], [], [], [], [], [], []
    due: dict[int, list[int]] = {}
    k = 0
    idle_since = None
    while True:
        t = k * dt
        # 1. start every waiting request whose start falls before this tick
        arrived = bisect_left(arrivals, t)
        if nxt < arrived and pool.has_slots():
            nxt = pool.start_pass(nxt, arrived, t, k)
        n_done_before += pool.done_at(k)
        if t > last_arrival and n_done_before == n:
            break
        # 2. observe
        in_service = nxt - n_done_before
        n_ready = len(ready_ids)
        rate = (arrived - bisect_left(arrivals, t - rate_window_s)) / min(rate_window_s, t) if t > 0 else 0.0
        obs = Observation(t, rate, arrived - n_done_before,
                          in_service / (n_ready * B) if n_ready else 0.0, n_ready, len(pending_ids))
        # 3. decide and apply
        if k == 0:
            policy_init = initial_replicas
            if policy_init is None:
                first = a < min(300.0, last_arrival + 1e-9) + 1e-9
                span = max(min(300.0, last_arrival), dt)
                policy_init = max(1, math.ceil(float(svc[first].sum()) / span / B / 0.7)) if n else 0
            init = int(policy_init)
            if hasattr(policy, "_last_desired"):
                policy._last_desired = init
            obs.ready_replicas = init
        want = int(policy.desired_replicas(obs, t))
        if k == 0:
            for _ in range(max(init, 0)):
                make_ready(add_replica(0.0, 0.0, READY), 0.0)
        else:
            have = len(ready_ids) + len(pending_ids)
            if want > have:
                for _ in range(want - have):
                    rid = add_replica(t, t + delay_ticks * dt, PENDING)
                    pending_ids.append(rid)
                    due.setdefault(k + delay_ticks, []).append(rid)
            elif want < have and t >= hold:
                drop = have - want
                while drop and pending_ids:
                    rid = pending_ids.pop()
                    r_state[rid] = GONE
                    r_end[rid] = t
                    drop -= 1
                if drop and ready_ids:
                    # when each ready replica frees up: the latest free time of its slots (a
                    # slot's free time is the end of the last request it started)
                    busy_until = pool.busy_until(ready_ids)
                    for rid in drain_order(ready_ids, busy_until, t)[:drop]:
                        ready_ids.remove(rid)
                        r_state[rid] = DRAINING
                        pool.drain(rid)
                        r_end[rid] = max(t, busy_until[rid])
        for rid in due.pop(k, ()):
            if r_state[rid] == PENDING:
                pending_ids.remove(rid)
                make_ready(rid, t)
        tk.append(k); tready.append(n_ready); tpending.append(obs.pending_replicas)
        tdesired.append(want); trate.append(rate); tqueue.append(obs.queue_length); tutil.append(obs.utilization)
        # guard: nothing can ever serve the waiting requests
        if t > last_arrival and not ready_ids and not pending_ids:
            idle_since = t if idle_since is None else idle_since
            if t - idle_since > max_idle_wait_s:
                break
        else:
            idle_since = None
        k += 1
    t_end = k * dt
    for rid in range(len(r_req)):
        if r_state[rid] in (READY, PENDING):
            r_end[rid] = t_end
    start = pool.starts()
    done = start + svc
    return _results(a, pre, svc, start, done, np.array(r_req), np.array(r_ready), np.array(r_end),
                    np.array(r_state), tk, tready, tpending, tdesired, trate, tqueue, tutil, dt, B,
                    price_per_replica_hour, slo_ttft_s, slo_latency_s, t_end, score_from_s)


def bind_policy(trace: Trace, policy, service_model: ServiceModel, prepared, **sim_kw) -> None:
    """Give a policy that sees the future (``bind_future``: the clairvoyant) the trace it is
    about to replay, and repair its plan the first time (:func:`repair_plan`). Both
    simulators call this, so the schedule is an input they share. ``sim_kw``: the replay's
    :func:`simulate` keyword arguments (with ``control_interval_s`` and
    ``provisioning_delay_s``)."""
    if not hasattr(policy, "bind_future"):
        return
    a, pre, svc = prepared
    dt = float(sim_kw["control_interval_s"])
    delay = math.ceil(float(sim_kw["provisioning_delay_s"]) / dt - 1e-9) * dt
    policy.bind_future(a, svc, batch_slots=int(service_model.max_batch_size), provisioning_delay_s=delay,
                       control_interval_s=dt, prefill_s=pre, slo_ttft_s=sim_kw.get("slo_ttft_s"),
                       slo_latency_s=sim_kw.get("slo_latency_s"), score_from_s=float(sim_kw.get("score_from_s", 0.0)))
    if getattr(policy, "needs_repair", False):
        repair_plan(trace, policy, service_model, prepared, **sim_kw)
        policy.reset()


def repair_plan(trace: Trace, policy, service_model: ServiceModel, prepared, **sim_kw) -> np.ndarray:
    """Repair a clairvoyant plan against the simulator (see ``ClairvoyantPolicy.repair_rounds``).

    Each round replays the bound plan; while the scored requests' SLO attainment is below
    ``policy.repair_target`` it adds one replica to the control intervals with the most
    *helpable* misses (requests that missed the SLO although, started on arrival, their TTFT
    and latency are within it), most first, until those intervals hold as many misses as
    the attainment falls short by; at most ``policy.repair_rounds`` rounds. An interval's
    added replica is asked for a provisioning delay ahead by the policy's look-ahead, so it
    is ready when the requests arrive. Returns the replicas added per interval (also bound
    to the policy and cached with its plan)."""
    a, pre, svc = prepared
    dt = float(sim_kw["control_interval_s"])
    ttft_s, lat_s = sim_kw.get("slo_ttft_s"), sim_kw.get("slo_latency_s")
    scored = a >= float(sim_kw.get("score_from_s", 0.0))
    helpable = scored.copy()
    if ttft_s is not None:
        helpable &= pre <= ttft_s + 1e-9
    if lat_s is not None:
        helpable &= svc <= lat_s + 1e-9
    extra = np.zeros(policy.plan_ticks, dtype=float)
    n_scored = int(scored.sum())
    if (ttft_s is None and lat_s is None) or n_scored == 0:
        policy.set_repair(extra)
        return extra
    ticks = np.minimum((a // dt).astype(np.int64), len(extra) - 1)
    # a replica asked for at tick 1 (tick 0 is the initial pool) is ready a provisioning delay later
    helpable &= ticks >= policy.lookahead_ticks + 1
    need_ok = math.ceil(policy.repair_target * n_scored - 1e-9)
    best_ok, best_extra = -1, extra.copy()
    for _ in range(policy.repair_rounds + 1):
        r = simulate(trace, policy, service_model, _prepared=prepared, _bound=True, **sim_kw)
        ok = r.requests["meets_slo"].to_numpy()
        n_ok = int(ok[scored].sum())
        if n_ok <= best_ok:  # the last round's replicas helped no request: undo them, stop
            break
        best_ok, best_extra = n_ok, extra.copy()
        miss = helpable & ~ok
        if n_ok >= need_ok or not miss.any():
            break
        k, counts = np.unique(ticks[miss], return_counts=True)
        order = np.argsort(-counts, kind="stable")
        upto = int(np.searchsorted(np.cumsum(counts[order]), need_ok - n_ok, side="left")) + 1
        extra[k[order[:upto]]] += 1
        policy.set_repair(extra)
    policy.set_repair(best_extra)
    return best_extra


def _integral(starts: np.ndarray, ends: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """sum_i |[s_i, e_i) ∩ [0, g)| for each g of the grid."""
    s = np.sort(starts)
    e = np.sort(ends)
    cs = np.concatenate([[0.0], np.cumsum(s)])
    ce = np.concatenate([[0.0], np.cumsum(e)])
    i = np.searchsorted(s, grid, side="left")
    j = np.searchsorted(e, grid, side="left")
    return (grid * i - cs[i]) - (grid * j - ce[j])


def _results(a, pre, svc, start, done, r_req, r_ready, r_end, r_state, tk, tready, tpending, tdesired,
             trate, tqueue, tutil, dt, B, price, slo_ttft_s, slo_latency_s, t_end, score_from_s=0.0) -> SimResult:
    served = ~np.isnan(start)
    wait = np.where(served, start - a, np.inf)
    ttft = wait + pre
    lat = wait + svc
    ok = served.copy()
    if slo_ttft_s is not None:
        ok &= ttft <= slo_ttft_s + 1e-9
    if slo_latency_s is not None:
        ok &= lat <= slo_latency_s + 1e-9
    a_all, ok_all, ttft_all, lat_all, wait_all = a, ok, ttft, lat, wait

    def requests():
        return pd.DataFrame({"arrival_s": a_all, "start_s": start, "queueing_delay_s": wait_all, "ttft_s": ttft_all,
                             "latency_s": lat_all, "meets_slo": ok_all})
    billed = np.ceil(np.maximum(r_end - r_req, 0.0) - 1e-9) if len(r_req) else np.zeros(0)
    cost = float(billed.sum()) * price / 3600.0
    grid = np.arange(len(tk) + 1) * dt
    became_ready = r_state != 0  # PENDING replicas cancelled before ready have r_ready in the future
    ready_mask = (r_ready <= r_end) & became_ready & ~((r_state == 3) & (r_ready > r_end - 1e-12))
    s_served, d_served = start[served], done[served]

    def intervals():  # per-interval figures: built only when asked for
        alive = np.diff(_integral(r_req, r_end, grid)) if len(r_req) else np.zeros(len(tk))
        ready_sec = (np.diff(_integral(r_ready[ready_mask], r_end[ready_mask], grid)) if ready_mask.any()
                     else np.zeros(len(tk)))
        busy = np.diff(_integral(s_served, d_served, grid)) if len(s_served) else np.zeros(len(tk))
        with np.errstate(invalid="ignore", divide="ignore"):
            util = np.where(ready_sec > 0, busy / (ready_sec * B), 0.0)
        return pd.DataFrame({
            "t_s": grid[:-1], "replicas_ready": tready, "replicas_pending": tpending, "replicas_desired": tdesired,
            "request_rate_rps": trate, "queue_length": tqueue, "utilization_observed": tutil,
            "utilization": util, "replica_seconds": alive, "cost_usd": alive * price / 3600.0,
        })
    waiting_any = _backlog_flags(a, start, grid[:-1])
    from_k = int(score_from_s // dt) if score_from_s > 0 else 0
    t0 = from_k * dt
    # totals over the scored span [t0, t_end): the per-interval sums, without the intervals
    ready_s = _overlap(r_ready[ready_mask], r_end[ready_mask], t0, t_end)
    busy_s = _overlap(s_served, d_served, t0, t_end)
    if score_from_s > 0:
        sel = a >= score_from_s
        a, ok, ttft, lat, wait = a[sel], ok[sel], ttft[sel], lat[sel], wait[sel]
        waiting_any = waiting_any[from_k:]
        t_span = t_end - t0
        billed_s = _overlap(r_req, r_end, t0, t_end)
        cost = billed_s * price / 3600.0
        served = served[sel]
    else:
        t_span, billed_s = t_end, float(billed.sum())
    n = len(a)
    summary = {
        "requests": int(n),
        "cost_usd": cost,
        "cost_per_1k_requests": cost / n * 1000.0 if n else 0.0,
        "slo_attainment": float(ok.mean()) if n else 1.0,
        "replica_seconds": billed_s,
        "mean_replicas": billed_s / t_span if t_span > 0 else 0.0,
        "max_replicas": int(max(np.asarray(tready).max(initial=0), 0)),
        "mean_utilization": busy_s / (ready_s * B) if ready_s > 0 else 0.0,
        "scale_up_response_s": _episode_mean(waiting_any, dt),
        "unserved_requests": int((~served).sum()),
        "duration_s": float(t_span),
    }
    q = np.percentile(np.stack([ttft, lat, wait]), (50, 95, 99), axis=1) if n else np.zeros((3, 3))
    for j, name in enumerate(("ttft", "latency", "queueing_delay")):
        for i, p in enumerate((50, 95, 99)):
            summary[f"p{p}_{name}_s"] = float(q[i, j])
    return SimResult(requests, intervals, summary,
                     lambda: pd.DataFrame({"requested_s": r_req, "ready_s": r_ready, "end_s": r_end}))


def _overlap(starts: np.ndarray, ends: np.ndarray, lo: float, hi: float) -> float:
    """sum_i |[s_i, e_i) ∩ [lo, hi)|."""
    if not len(starts):
        return 0.0
    return float(np.maximum(np.minimum(ends, hi) - np.maximum(starts, lo), 0.0).sum())


def _backlog_flags(a, start, ticks) -> np.ndarray:
    """At each tick: was some arrived request waiting for a slot?"""
    s = np.where(np.isnan(start), np.inf, start)
    arrived = np.searchsorted(a, ticks, side="left")
    # FCFS from one queue starts requests in arrival order, so the starts are already sorted
    # (the running maximum only guards the search against float ties)
    started = np.searchsorted(np.maximum.accumulate(s), ticks, side="left")
    return arrived > started


def _episode_mean(flags: np.ndarray, dt: float) -> float:
    """Mean length of runs of ticks with a backlog: how long capacity took to catch up."""
    if not flags.any():
        return 0.0
    f = np.concatenate([[False], flags, [False]]).astype(int)
    d = np.diff(f)
    lengths = np.flatnonzero(d == -1) - np.flatnonzero(d == 1)
    return float(lengths.mean() * dt)
