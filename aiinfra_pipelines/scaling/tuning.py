"""Policy tuning with the simulator: the cheapest setting that meets the SLO.

Honest protocol (default ``split=0.5``): every setting is simulated on the first half of
the trace (by time) and the cheapest one whose SLO attainment there reaches the objective
is chosen; that setting is then scored on the second half: the whole trace is replayed
(the first half is warm-up, so the policy's state and pool are what they would be) and
only requests arriving in the second half, and the cost from then on, are counted.
``split=None`` tunes and scores on the whole trace.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from aiinfra_pipelines.scaling.policies import FAMILIES, policy_from_settings
from aiinfra_pipelines.scaling.service_model import ServiceModel
from aiinfra_pipelines.scaling.simulator import prepare, simulate
from aiinfra_pipelines.scaling.traces import Trace


@dataclass(frozen=True)
class SLO:
    """A request meets the SLO when TTFT <= ``ttft_s`` and latency <= ``latency_s`` (each
    when set); the objective is met when at least ``attainment`` of requests do."""

    ttft_s: float | None = None
    latency_s: float | None = None
    attainment: float = 0.99

    @classmethod
    def coerce(cls, slo) -> "SLO":
        if isinstance(slo, SLO):
            return slo
        if isinstance(slo, (int, float)):
            return cls(ttft_s=float(slo))
        if isinstance(slo, dict):
            return cls(**slo)
        # spec.LatencySLO (p99_latency_s, ttft_s, attainment)
        ttft = getattr(slo, "ttft_s", None)
        lat = None if ttft is not None else getattr(slo, "p99_latency_s", None)
        return cls(ttft_s=ttft, latency_s=lat, attainment=float(getattr(slo, "attainment", 0.99)))

    def kwargs(self) -> dict:
        return {"slo_ttft_s": self.ttft_s, "slo_latency_s": self.latency_s}


@dataclass
class TuneResult:
    family: str
    best_params: dict | None
    best_policy: object | None
    table: pd.DataFrame
    train_summary: dict | None
    eval_summary: dict | None
    meets_slo: bool  # on the evaluation part
    slo: SLO = field(default_factory=SLO)
    # SLO attainment of the chosen setting in each of WINDOWS equal sub-windows (by time) of
    # the scored tuning part (None for a window without requests); see ``recommend``
    window_slo: list | None = None

    @property
    def steady(self) -> bool:
        """The chosen setting meets the SLO in every sub-window of the tuning part."""
        return bool(self.window_slo) and all(w is None or w >= self.slo.attainment for w in self.window_slo)

    def to_dict(self) -> dict:
        return {"family": self.family, "params": self.best_params, "meets_slo": self.meets_slo,
                "train": self.train_summary, "eval": self.eval_summary, "window_slo": self.window_slo}


def default_grid(family: str, *, capacity_rps: float, batch_slots: int, provisioning_delay_s: float = 120.0,
                 control_interval_s: float = 15.0, max_replicas: int = 256) -> list[dict]:
    """The search space of each family (``capacity_rps``: one replica at full batch on the
    trace's request mix; the grids scale it by a target utilisation)."""
    horizon = math.ceil(provisioning_delay_s / control_interval_s) * control_interval_s + control_interval_s
    B = batch_slots
    if family == "static":
        return [{"replicas": r} for r in range(1, max_replicas + 1)]
    if family == "reactive":
        out = []
        for target, sd, step, mn in itertools.product(
            sorted({max(0.5, B * f) for f in (0.25, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)}), (60.0, 180.0, 300.0, 600.0),
            (2, 8), (0, 1)):
            out.append({"metric": "queue", "target": target, "scale_down_stabilization_s": sd,
                        "scale_up_step": step, "min_replicas": mn, "max_replicas": max_replicas})
        for u, sd in itertools.product((0.3, 0.4, 0.5, 0.6, 0.7, 0.8), (60.0, 300.0, 600.0)):
            out.append({"metric": "rps", "target": round(capacity_rps * u, 6), "scale_down_stabilization_s": sd,
                        "min_replicas": 1, "max_replicas": max_replicas})
        return out
    if family == "predictive":
        # headroom up to 2x the forecast: a rate forecast lags a burst by a bucket or more
        return [{"capacity_rps": round(capacity_rps * u, 6), "headroom": h, "horizon_s": horizon,
                 "scale_down_stabilization_s": sd, "min_replicas": mn, "max_replicas": max_replicas}
                for u, h, sd, mn in itertools.product((0.4, 0.5, 0.6, 0.7, 0.8, 0.9), (0.0, 0.15, 0.3, 0.6, 1.0),
                                                      (120.0, 300.0, 600.0), (0, 1))] + [
            # forecasting the work in the system (requests in flight) instead of the rate
            {"signal": "inflight", "target_inflight": max(0.5, B * q), "headroom": h, "horizon_s": horizon,
             "scale_down_stabilization_s": sd, "min_replicas": 1, "max_replicas": max_replicas, "bucket_s": b}
            for q, h, sd, b in itertools.product((0.5, 0.6, 0.7, 0.8, 0.9, 1.0), (0.0, 0.15, 0.3),
                                                 (120.0, 300.0, 600.0), (30.0, 60.0))]
    if family == "hybrid":
        # the panic hold must outlast the provisioning delay, or the replicas panic asked
        # for are cancelled before they are ready (Knative's 6 s panic window assumes
        # seconds-long cold starts)
        return [{"capacity_rps": round(capacity_rps * u, 6), "headroom": h, "horizon_s": horizon,
                 "scale_down_stabilization_s": sd, "target_queue_per_replica": max(0.5, B * q),
                 "panic_threshold": pt, "panic_window_s": pw, "min_replicas": 1, "max_replicas": max_replicas}
                for u, h, sd, q, pt, pw in itertools.product((0.4, 0.6, 0.8), (0.0, 0.5, 1.0),
                                                             (300.0, 600.0), (0.75, 1.0), (1.0, 1.5),
                                                             (horizon, 4 * horizon))]
    if family == "clairvoyant":
        return [{"slack_fraction": f, "packing": p, "max_replicas": max_replicas}
                for f, p in itertools.product((0.1, 0.25, 0.5, 0.75, 0.9, 1.0), (0.8, 0.9, 1.0))]
    raise ValueError(f"family: {family!r} is not one of {list(FAMILIES)}")


# --- parallel evaluation (fork: workers inherit the prepared traces) -----------------------
_CTX: dict = {}


def _run_one(args):
    key, family, params = args
    ctx = _CTX[key]
    pol = policy_from_settings(family, **params)
    r = simulate(ctx["trace"], pol, ctx["model"], _prepared=ctx["prepared"], **ctx["sim_kw"])
    return r.summary


def _map(fn, items, workers):
    # fork copies only the calling thread: in a process that already runs other threads (an
    # orchestrator, an exporter, torch's or BLAS' pools) a child can inherit a held lock and hang,
    # so the grid is evaluated serially there.
    if workers <= 1 or len(items) < 4 or threading.active_count() > 1 or "torch" in sys.modules:
        return [fn(x) for x in items]
    import multiprocessing as mp

    from aiinfra_pipelines.scaling.slots import warm_up

    warm_up()  # the workers inherit the loaded kernels instead of each loading them
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as ex:
        return list(ex.map(fn, items, chunksize=max(1, len(items) // (4 * workers))))


def evaluate_grid(family: str, trace: Trace, grid: list[dict], *, service_model: ServiceModel,
                  workers: int = 1, **sim_kw) -> pd.DataFrame:
    """Simulate every setting of ``grid``; one row per setting (params + summary)."""
    key = id(trace), id(service_model), family, len(_CTX)
    _CTX[key] = {"trace": trace, "model": service_model, "prepared": prepare(trace, service_model), "sim_kw": sim_kw}
    try:
        items = [(key, family, p) for p in grid]
        head = []
        if family in ("predictive", "hybrid") and workers > 1 and len(items) >= 4:
            # one run here first: the forecaster's fits are cached by the history they saw
            # (the same under every setting), and the forked workers inherit the cache
            head = [_run_one(items[0])]
            items = items[1:]
        summaries = head + _map(_run_one, items, workers)
    finally:
        _CTX.pop(key, None)
    rows = [{"params": p, **{k: v for k, v in s.items()}} for p, s in zip(grid, summaries)]
    return pd.DataFrame(rows)


def _static_search(trace, slo, service_model, sim_kw, max_replicas):
    """Smallest constant pool meeting the SLO: attainment is monotone in the pool size,
    so bisect over 1..max_replicas."""
    prepared = prepare(trace, service_model)
    rows, cache = [], {}

    def run(r):
        if r not in cache:
            s = simulate(trace, policy_from_settings("static", replicas=r), service_model,
                         _prepared=prepared, initial_replicas=r, **sim_kw).summary
            cache[r] = s
            rows.append({"params": {"replicas": r}, **s})
        return cache[r]

    lo, hi = 1, max_replicas
    if run(hi)["slo_attainment"] < slo.attainment:
        return pd.DataFrame(rows)
    while lo < hi:
        mid = (lo + hi) // 2
        if run(mid)["slo_attainment"] >= slo.attainment:
            hi = mid
        else:
            lo = mid + 1
    run(lo)
    return pd.DataFrame(rows)


def tune(
    policy_family: str,
    trace: Trace,
    slo,
    *,
    service_model: ServiceModel,
    price_per_replica_hour: float,
    split: float | None = 0.5,
    grid: list[dict] | None = None,
    provisioning_delay_s: float = 120.0,
    control_interval_s: float = 15.0,
    max_replicas: int = 256,
    workers: int | None = None,
    warmup_s: float = 300.0,
    stress: float | None = None,
    free_floor: bool = True,
) -> TuneResult:
    """Search ``policy_family``'s parameters; return the cheapest setting that meets the SLO
    on the tuning part, scored on the evaluation part (see module doc). The first
    ``warmup_s`` of the tuning part are replayed but not scored (a replay starts with an
    empty history, which a running system does not have).

    ``stress`` (off by default; e.g. 1.25): a setting qualifies only if it also meets the SLO on the
    tuning part replayed ``stress`` times faster (every arrival time divided by it: the
    same bursts, ``stress`` times as intense). A setting that only just meets the SLO on
    the tuning part is one burst away from missing it later; this is the safety margin,
    and it is the same rule for every family, static included (the static pool is the
    smallest that passes both). The table's ``robust`` column says which settings were
    checked and passed (checked lazily, cheapest first); ``stress=None`` turns it off.

    ``free_floor`` (on by default): the chosen setting's ``min_replicas`` is raised to the
    fewest replicas it asked for anywhere in the scored tuning part, when a replay of the
    tuning part with that floor costs no more and attains no less (see :func:`_free_floor`).
    The row is added to the table with ``free_floor`` True."""
    slo = SLO.coerce(slo)
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    sim_kw = dict(price_per_replica_hour=price_per_replica_hour, provisioning_delay_s=provisioning_delay_s,
                  control_interval_s=control_interval_s, **slo.kwargs())
    train, cut = (trace, 0.0) if split is None else (trace.split(split)[0], trace.duration_s * split)
    if len(train) == 0:
        raise ValueError("the tuning part of the trace has no requests")
    if warmup_s > 0 and train.duration_s > 2 * warmup_s:
        sim_kw_train = {**sim_kw, "score_from_s": warmup_s}
    else:
        sim_kw_train = sim_kw
    if policy_family == "static" and grid is None:
        table = _static_search(train, slo, service_model, sim_kw_train, max_replicas)
    else:
        if grid is None:
            grid = default_grid(policy_family, capacity_rps=service_model.capacity_rps(train),
                                batch_slots=service_model.max_batch_size, provisioning_delay_s=provisioning_delay_s,
                                control_interval_s=control_interval_s, max_replicas=max_replicas)
        if policy_family == "clairvoyant":  # its plan is repaired up to the objective's attainment
            grid = [{"repair_target": slo.attainment, **p} for p in grid]
        table = evaluate_grid(policy_family, train, grid, service_model=service_model, workers=workers, **sim_kw_train)
    table.insert(0, "family", policy_family)
    table["meets_slo"] = table["slo_attainment"] >= slo.attainment
    table = table.sort_values(["meets_slo", "cost_usd", "slo_attainment"], ascending=[False, True, False])
    table = table.reset_index(drop=True)
    ok = table[table["meets_slo"]]
    if ok.empty:
        return TuneResult(policy_family, None, None, table, None, None, False, slo)
    if stress:
        pick = _robust_pick(policy_family, train, table, slo, service_model, sim_kw_train, stress, workers,
                            max_replicas)
        if pick is None:
            return TuneResult(policy_family, None, None, table, None, None, False, slo)
        best = table.iloc[pick]
    else:
        best = ok.iloc[0]
    params = dict(best["params"])
    train_summary = {k: best[k] for k in table.columns if k not in ("params", "family", "meets_slo")}
    init = params["replicas"] if policy_family == "static" else None
    # the chosen setting replayed on the tuning part (its sub-window SLO, and the free floor's base)
    train_replay = simulate(train, policy_from_settings(policy_family, **params), service_model,
                            initial_replicas=init, **sim_kw_train)
    if free_floor and "min_replicas" in params:
        floored = _free_floor(policy_family, train, params, train_summary, service_model, sim_kw_train,
                              replay=train_replay)
        if floored is not None:
            params, train_summary, train_replay = floored
            table["free_floor"] = False
            table.loc[len(table)] = {**{c: None for c in table.columns}, "family": policy_family, "params": params,
                                     **train_summary, "meets_slo": True, "free_floor": True}
    policy = policy_from_settings(policy_family, **params)
    if split is None and sim_kw_train is sim_kw:
        eval_summary = train_summary
    else:
        eval_kw = {**sim_kw, "score_from_s": cut if split is not None else sim_kw_train.get("score_from_s", 0.0)}
        eval_summary = simulate(trace, policy, service_model, initial_replicas=init, **eval_kw).summary
    window_slo = _window_slo(train_replay, sim_kw_train, cut if split is not None else trace.duration_s)
    return TuneResult(policy_family, params, policy, table, train_summary, eval_summary,
                      bool(eval_summary["slo_attainment"] >= slo.attainment), slo, window_slo)


def _free_floor(family, train, params, train_summary, service_model, sim_kw, replay=None):
    """``(params, summary, replay)`` with ``min_replicas`` raised to the fewest replicas the
    setting asked for during the scored tuning part (``replay``: the setting's replay of the
    tuning part, made here when not given), or None when that changes nothing or costs more.

    The tuning part cannot tell these two settings apart: the floor binds nowhere in it, so
    both cost the same there. They differ after a quiet spell the tuning part did not have,
    where the lower floor lets the pool shrink below anything the load has been seen to need
    and a burst then waits a provisioning delay. Choosing the higher floor on a tie costs
    nothing on the data the tuner may use and keeps that capacity in reserve; the replay
    with the floor confirms the tie (a floor can still move a decision in the warm-up)."""
    r = replay if replay is not None else simulate(train, policy_from_settings(family, **params), service_model,
                                                   **sim_kw)
    iv = r.intervals
    desired = iv.loc[iv["t_s"] >= float(sim_kw.get("score_from_s", 0.0)), "replicas_desired"]
    if desired.empty:
        return None
    floor = min(int(desired.min()), int(params.get("max_replicas", desired.min())))
    if floor <= int(params["min_replicas"]):
        return None
    cand = {**params, "min_replicas": floor}
    rc = simulate(train, policy_from_settings(family, **cand), service_model, **sim_kw)
    s = rc.summary
    if s["cost_usd"] <= train_summary["cost_usd"] * (1 + 1e-9) + 1e-9 and \
            s["slo_attainment"] >= train_summary["slo_attainment"] - 1e-12:
        return cand, s, rc
    return None


WINDOWS = 4


def _window_slo(replay, sim_kw, end_s: float, windows: int = WINDOWS) -> list:
    """SLO attainment of a replay of the tuning part, in ``windows`` equal sub-windows (by
    time) of its scored part ``[score_from_s, end_s)``."""
    q = replay.requests
    lo = float(sim_kw.get("score_from_s", 0.0))
    edges = np.linspace(lo, max(end_s, lo), windows + 1)
    a, ok = q["arrival_s"].to_numpy(), q["meets_slo"].to_numpy()
    out = []
    for i in range(windows):
        hi_ok = a < edges[i + 1] if i < windows - 1 else a <= edges[i + 1] + 1e-9
        sel = (a >= edges[i]) & hi_ok
        out.append(float(ok[sel].mean()) if sel.any() else None)
    return out


def _stressed(trace: Trace, factor: float) -> Trace:
    df = trace.df.copy()
    df["arrival_s"] = df["arrival_s"] / factor
    return Trace(df, trace.source + f"[x{factor:g}]", trace.format)


def _robust_pick(family, train, table, slo, service_model, sim_kw, factor, workers, max_replicas):
    """Index (in ``table``, sorted cheapest first among settings meeting the SLO) of the
    cheapest setting that also meets it on the stressed tuning part; fills ``robust``."""
    stressed = _stressed(train, factor)
    kw = dict(sim_kw)
    if kw.get("score_from_s"):
        kw["score_from_s"] = kw["score_from_s"] / factor
    table["robust"] = None
    idx = list(table.index[table["meets_slo"]])
    if family == "static":
        prepared = prepare(stressed, service_model)
        n = int(table.loc[idx[0], "params"]["replicas"])
        for r in range(n, max_replicas + 1):
            s = simulate(stressed, policy_from_settings("static", replicas=r), service_model, _prepared=prepared,
                         initial_replicas=r, **kw).summary
            if s["slo_attainment"] >= slo.attainment:
                break
        else:
            return None
        hit = [i for i in idx if int(table.loc[i, "params"]["replicas"]) == r]
        if not hit:  # a pool the bisection did not visit: its figures on the tuning part
            row = simulate(train, policy_from_settings("static", replicas=r), service_model, initial_replicas=r,
                           **sim_kw).summary
            table.loc[len(table)] = {**{c: None for c in table.columns}, "family": "static",
                                     "params": {"replicas": r}, **row, "meets_slo": True}
            hit = [len(table) - 1]
        for i in idx:
            if int(table.loc[i, "params"]["replicas"]) < r:
                table.loc[i, "robust"] = False
        table.loc[hit[0], "robust"] = True
        return hit[0]
    chunk = max(4, 4 * max(1, workers))
    for j in range(0, len(idx), chunk):
        part = idx[j: j + chunk]
        res = evaluate_grid(family, stressed, [table.loc[i, "params"] for i in part], service_model=service_model,
                            workers=workers, **kw)
        for i, att in zip(part, res["slo_attainment"]):
            table.loc[i, "robust"] = bool(att >= slo.attainment)
        good = [i for i in part if table.loc[i, "robust"]]
        if good:
            return good[0]
    return None


@dataclass
class Recommendation:
    family: str | None
    result: TuneResult | None
    results: dict[str, TuneResult]

    @property
    def table(self) -> pd.DataFrame:
        return pd.concat([r.table for r in self.results.values()], ignore_index=True)


def recommend(trace: Trace, slo, *, families=("static", "reactive", "predictive", "hybrid"),
              include_clairvoyant: bool = False, **tune_kw) -> Recommendation:
    """Tune every deployable family; recommend the one cheapest on the tuning part among
    those meeting the SLO there (each scored on the evaluation part). With
    ``include_clairvoyant`` the reference is tuned too (never recommended).

    Families whose tuned setting is *steady* (meets the SLO in each of the ``WINDOWS``
    equal sub-windows of the tuning part, not only on the whole of it) are preferred: a
    setting that meets the SLO on average while missing it in one stretch of the tuning
    part has already shown that its margin does not survive the load's own variation.
    When no family is steady the cheapest of all is recommended, as before."""
    fams = list(families) + (["clairvoyant"] if include_clairvoyant else [])
    results = {f: tune(f, trace, slo, **tune_kw) for f in fams}
    cands = [r for f, r in results.items() if f != "clairvoyant" and r.train_summary is not None]
    if not cands:
        return Recommendation(None, None, results)
    steady = [r for r in cands if r.steady]
    cands = steady or cands
    best = min(cands, key=lambda r: (r.train_summary["cost_usd"], -r.train_summary["slo_attainment"]))
    return Recommendation(best.family, best, results)
