"""The same autoscaling model as ``simulator.py``, written as a per-request discrete-event
simulation with SimPy: the cross-check of the fast simulator (cost and SLO attainment must
agree within 1%).

Each request is a SimPy process that takes a slot token from one FCFS ``Store`` (tokens of
ready replicas; the Store hands out the token that became idle first), holds it for its
service time and gives it back unless its replica is draining. The controller is a process
whose wake-ups are scheduled URGENT, so a tick precedes arrivals and completions of the same
instant (the fast simulator's convention). Billing is accumulated per replica from events.
"""

from __future__ import annotations

import math
from bisect import bisect_left

import numpy as np
import simpy
from simpy.core import URGENT

from aiinfra_pipelines.scaling.policies import Observation
from aiinfra_pipelines.scaling.simulator import bind_policy, drain_order, prepare
from aiinfra_pipelines.scaling.service_model import ServiceModel
from aiinfra_pipelines.scaling.traces import Trace


class _Replica:
    __slots__ = ("rid", "requested", "ready", "end", "state", "busy", "held")

    def __init__(self, rid, requested):
        self.rid, self.requested, self.ready, self.end = rid, requested, None, None
        self.state = "pending"
        self.held = 0  # tokens currently held by requests
        self.busy = 0.0  # end of the last started request


def simulate_simpy(
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
    hold_s: float | None = None,
) -> dict:
    """Returns a summary dict with ``cost_usd``, ``cost_per_1k_requests``, ``slo_attainment``."""
    a, pre, svc = prepare(trace, service_model)
    n = len(a)
    B = int(service_model.max_batch_size)
    dt = float(control_interval_s)
    delay = math.ceil(provisioning_delay_s / dt - 1e-9) * dt
    policy.reset()
    # the clairvoyant's schedule (its plan and, the first time, its repair by a few fast
    # replays) is an input both simulators share
    bind_policy(trace, policy, service_model, (a, pre, svc), price_per_replica_hour=price_per_replica_hour,
                provisioning_delay_s=provisioning_delay_s, control_interval_s=control_interval_s,
                slo_ttft_s=slo_ttft_s, slo_latency_s=slo_latency_s, initial_replicas=initial_replicas,
                rate_window_s=rate_window_s, hold_s=hold_s, score_from_s=0.0)
    hold = max(2 * (delay + dt), 240.0) if hold_s is None else hold_s
    env = simpy.Environment()
    store = simpy.Store(env)
    replicas: list[_Replica] = []
    ready: list[_Replica] = []
    pending: list[_Replica] = []
    st = {"arrived": 0, "started": 0, "done": 0, "times": []}
    start = np.full(n, np.nan)
    arrival_log: list[float] = []

    def put_tokens(rep):
        for _ in range(B):
            store.put(rep)

    def request(i):
        st["arrived"] += 1
        arrival_log.append(env.now)
        rep = yield store.get()
        start[i] = env.now
        st["started"] += 1
        rep.held += 1
        rep.busy = max(rep.busy, env.now + svc[i])
        yield env.timeout(svc[i])
        rep.held -= 1
        st["done"] += 1
        if rep.state == "ready":
            store.put(rep)
        elif rep.state == "draining" and rep.held == 0:
            rep.end = env.now

    def arrivals():
        last = 0.0
        for i in range(n):
            yield env.timeout(a[i] - last)
            last = a[i]
            env.process(request(i))

    def urgent_sleep(d):
        ev = env.event()
        ev._ok, ev._value = True, None
        env.schedule(ev, URGENT, d)
        return ev

    def drain(rep):
        rep.state = "draining"
        idle = [x for x in store.items if x is rep]
        store.items[:] = [x for x in store.items if x is not rep]
        del idle
        rep.end = env.now if rep.held == 0 else None

    def controller():
        k = 0
        due = {}
        while True:
            t = env.now
            if t > a[-1] and st["done"] == n:
                break
            na = st["arrived"]
            lo = bisect_left(arrival_log, t - rate_window_s)
            rate = (na - lo) / min(rate_window_s, t) if t > 0 else 0.0
            in_service = st["started"] - st["done"]
            obs = Observation(t, rate, na - st["done"], in_service / (len(ready) * B) if ready else 0.0,
                              len(ready), len(pending))
            if k == 0:
                init = initial_replicas
                if init is None:
                    span = max(min(300.0, a[-1]), dt)
                    first = a < min(300.0, a[-1] + 1e-9) + 1e-9
                    init = max(1, math.ceil(float(svc[first].sum()) / span / B / 0.7))
                if hasattr(policy, "_last_desired"):
                    policy._last_desired = init
                obs.ready_replicas = init
            want = int(policy.desired_replicas(obs, t))
            if k == 0:
                for _ in range(init):
                    rep = _Replica(len(replicas), 0.0)
                    replicas.append(rep)
                    rep.state, rep.ready = "ready", 0.0
                    ready.append(rep)
                    put_tokens(rep)
            else:
                have = len(ready) + len(pending)
                for _ in range(max(0, want - have)):
                    rep = _Replica(len(replicas), t)
                    replicas.append(rep)
                    pending.append(rep)
                    due.setdefault(k + round(delay / dt), []).append(rep)
                drop = max(0, have - want) if t >= hold else 0
                while drop and pending:
                    rep = pending.pop()
                    rep.state, rep.end = "gone", t
                    drop -= 1
                if drop and ready:
                    busy = {rep: rep.busy for rep in ready}
                    for rep in drain_order(ready, busy, t)[:drop]:
                        ready.remove(rep)
                        drain(rep)
            for rep in due.pop(k, ()):
                if rep.state == "pending":
                    pending.remove(rep)
                    rep.state, rep.ready = "ready", t
                    ready.append(rep)
                    put_tokens(rep)
            k += 1
            yield urgent_sleep(dt)
        env._end = env.now

    env.process(arrivals())
    ctl = env.process(controller())
    env.run(until=ctl)
    t_end = env.now
    billed = 0.0
    for rep in replicas:
        end = t_end if rep.end is None else rep.end
        billed += math.ceil(max(end - rep.requested, 0.0) - 1e-9)
    cost = billed * price_per_replica_hour / 3600.0
    wait = start - a
    ttft, lat = wait + pre, wait + svc
    ok = ~np.isnan(start)
    if slo_ttft_s is not None:
        ok &= ttft <= slo_ttft_s + 1e-9
    if slo_latency_s is not None:
        ok &= lat <= slo_latency_s + 1e-9
    return {"cost_usd": cost, "cost_per_1k_requests": cost / n * 1000.0, "slo_attainment": float(ok.mean()),
            "replica_seconds": billed, "requests": n}
