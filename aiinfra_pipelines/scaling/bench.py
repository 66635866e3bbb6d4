"""`aiinfra bench autoscaling`: every policy family tuned on a real trace and scored on its
evaluation half, against the static pool and the clairvoyant reference, plus the simulator's
speed and its agreement with the SimPy cross-check.

Protocol (the tuner's honest default): each family's parameters are searched on the first
half of the trace (by time); the cheapest setting meeting the SLO there is replayed over the
whole trace and scored on the second half only. The recommended family is the one the
tuner picks (cheapest on the tuning half among those meeting the SLO there, preferring
families whose setting meets it in every quarter of the tuning half: ``recommend``), never
the clairvoyant.

Replica model: token traces (``azure``, ``generic`` with tokens) use the vidur-calibrated
:class:`LLMServiceModel` (default Llama-2-70B, tensor parallel 4 on A100, continuous
batching up to 8 sequences); fixed-work traces (``alibaba-lora``, ``generic`` with
``work_s``) use :class:`FixedWorkServiceModel` with one request per replica. Price: the
cheapest on-demand per-GPU price of the accelerator in the AWS catalog times the GPUs per
replica, billed per second.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import click
import numpy as np

FAMILY_ORDER = ("static", "reactive", "predictive", "hybrid", "clairvoyant")
DEFAULT_SLO_TTFT_S = {"tokens": 2.0, "work": 150.0}


def _service_model(trace, accelerator, model, tensor_parallel, max_batch_size):
    from aiinfra_pipelines.scaling.service_model import FixedWorkServiceModel, LLMServiceModel

    fixed_work = not np.isnan(trace.df["work_s"].to_numpy(dtype=float)).any()
    if fixed_work:
        return FixedWorkServiceModel(max_batch_size=max_batch_size or 1), 1, "work"
    m = LLMServiceModel.from_vidur(accelerator, model, tensor_parallel=tensor_parallel,
                                   max_batch_size=max_batch_size or 8)
    return m, tensor_parallel, "tokens"


def _timed(fn, repeat: int):
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def run_benchmark(trace, *, slo_ttft_s: float | None = None, attainment: float = 0.99,
                  accelerator: str | None = None, model: str = "meta-llama/Llama-2-70b-hf",
                  tensor_parallel: int = 4, max_batch_size: int | None = None,
                  price_per_replica_hour: float | None = None, provisioning_delay_s: float = 120.0,
                  control_interval_s: float = 15.0, max_replicas: int = 256, workers: int = 2,
                  simpy_check: bool = True, grid_check: bool = True,
                  check_window_s: float = 2 * 86400.0, stress: float | None = None) -> tuple[dict, dict]:
    """Returns ``(report, simulations)``: the JSON-able report and, per family, the tuned
    policy's whole-trace :class:`SimResult` (for plots).

    The tuning and the scored figures always use the whole trace. The simulator checks (the
    100-setting grid timing and the SimPy cross-check, which only measure the simulator)
    replay the first ``check_window_s`` of a longer trace (default two days): on a 23-day
    trace a SimPy replay of every tuned policy alone would take minutes."""
    from aiinfra_pipelines.scaling.policies import policy_from_settings
    from aiinfra_pipelines.scaling.service_model import gpu_price_per_hour
    from aiinfra_pipelines.scaling.simpy_reference import simulate_simpy
    from aiinfra_pipelines.scaling.simulator import prepare, simulate
    from aiinfra_pipelines.scaling.tuning import SLO, default_grid, evaluate_grid, recommend

    kind_default = "a100"
    svc_model, gpus, kind = _service_model(trace, accelerator or kind_default, model, tensor_parallel, max_batch_size)
    if price_per_replica_hour is None:
        acc = accelerator or ("A10G" if kind == "work" else kind_default)
        price_per_replica_hour = gpu_price_per_hour(acc) * gpus
    slo = SLO(ttft_s=slo_ttft_s if slo_ttft_s is not None else DEFAULT_SLO_TTFT_S[kind], attainment=attainment)
    sim_kw = dict(price_per_replica_hour=price_per_replica_hour, provisioning_delay_s=provisioning_delay_s,
                  control_interval_s=control_interval_s)

    t0 = time.perf_counter()
    rec = recommend(trace, slo, include_clairvoyant=True, service_model=svc_model, max_replicas=max_replicas,
                    workers=workers, stress=stress, **sim_kw)
    tune_s = time.perf_counter() - t0
    cut = trace.duration_s * 0.5

    prepared = prepare(trace, svc_model)
    policies, sims, timings = {}, {}, {}
    for fam in FAMILY_ORDER:
        r = rec.results.get(fam)
        if r is None or r.best_params is None:
            # no setting met the SLO on the tuning half: the keys are there, with no figures
            policies[fam] = {"tuned": False, "params": None, **{k: None for k in (
                "cost_per_1k_requests", "slo_attainment", "p99_ttft_s", "mean_utilization", "scale_up_response_s")}}
            continue
        pol = policy_from_settings(fam, **r.best_params)
        init = r.best_params["replicas"] if fam == "static" else None
        run = lambda pol=pol, init=init: simulate(trace, pol, svc_model, _prepared=prepared, initial_replicas=init,  # noqa: E731
                                                  score_from_s=cut, **slo.kwargs(), **sim_kw)
        secs, res = _timed(run, 3)
        timings[fam] = secs
        sims[fam] = res
        s = res.summary
        policies[fam] = {
            "tuned": True, "params": r.best_params,
            "cost_per_1k_requests": s["cost_per_1k_requests"], "slo_attainment": s["slo_attainment"],
            "p99_ttft_s": s["p99_ttft_s"], "mean_utilization": s["mean_utilization"],
            "scale_up_response_s": s["scale_up_response_s"], "mean_replicas": s["mean_replicas"],
            "cost_usd": s["cost_usd"], "tuning_cost_usd": r.train_summary["cost_usd"],
            "tuning_slo_attainment": r.train_summary["slo_attainment"],
            "tuning_window_slo": r.window_slo, "steady": r.steady,
        }
    base = policies.get("static", {}).get("cost_per_1k_requests")
    ref = policies.get("clairvoyant", {}).get("cost_per_1k_requests")
    for p in policies.values():
        c = p.get("cost_per_1k_requests")
        p["cost_vs_static"] = c / base if (c is not None and base) else None
        p["cost_vs_clairvoyant"] = c / ref if (c is not None and ref) else None

    # work-conserving lower bound on the evaluation half: every slot busy all the time
    _, _, svc = prepared
    a = prepared[0]
    ev = a >= cut
    fluid_cost = float(svc[ev].sum()) / svc_model.max_batch_size * price_per_replica_hour / 3600.0
    fluid_per_1k = fluid_cost / max(int(ev.sum()), 1) * 1000.0

    recd = {"family": rec.family, "params": rec.result.best_params if rec.result else None}
    if rec.family is not None and base and ref is not None:
        c = policies[rec.family]["cost_per_1k_requests"]
        recd["saving_vs_static"] = 1.0 - c / base
        recd["clairvoyant_saving_vs_static"] = 1.0 - ref / base
        recd["saving_captured"] = (base - c) / (base - ref) if base > ref else None
        recd["targets"] = {
            "meets_slo": policies[rec.family]["slo_attainment"] >= attainment,
            "le_reactive": (policies["reactive"].get("cost_per_1k_requests") is None
                            or c <= policies["reactive"]["cost_per_1k_requests"] + 1e-12),
            "le_static": c <= base + 1e-12,
            "captures_half_of_clairvoyant": (recd["saving_captured"] or 0.0) >= 0.5 if base > ref else c <= ref,
        }

    sim = {"seconds_per_policy": max(timings.values()) if timings else None,
           "seconds_per_policy_by_family": timings, "tuning_s": tune_s}
    check = trace
    if check_window_s and trace.duration_s > check_window_s:
        check = trace.split(check_window_s / trace.duration_s)[0]
        sim["check_window_s"] = float(check_window_s)
    if grid_check:
        grid = [("reactive", p) for p in default_grid("reactive", capacity_rps=svc_model.capacity_rps(check),
                                                      batch_slots=svc_model.max_batch_size, max_replicas=max_replicas)]
        grid += [("predictive", p) for p in default_grid("predictive", capacity_rps=svc_model.capacity_rps(check),
                                                         batch_slots=svc_model.max_batch_size, max_replicas=max_replicas)]
        grid = grid[:100]
        t0 = time.perf_counter()
        for fam in ("reactive", "predictive"):
            evaluate_grid(fam, check, [p for f, p in grid if f == fam], service_model=svc_model, workers=workers,
                          **slo.kwargs(), **sim_kw)
        sim["grid_100_s"] = time.perf_counter() - t0
        sim["grid_workers"] = workers
    if simpy_check:
        diffs, fast_s, simpy_s = [], 0.0, 0.0
        for fam in FAMILY_ORDER:
            if not policies[fam].get("tuned"):
                continue
            params = policies[fam]["params"]
            init = params["replicas"] if fam == "static" else None
            # one untimed run first: the clairvoyant's plan and the forecaster's fits are cached
            # by the data they saw and are shared by both simulators, so neither pays them
            simulate(check, policy_from_settings(fam, **params), svc_model, initial_replicas=init,
                     **slo.kwargs(), **sim_kw)
            # best of three for both: the figure is the simulators', not the machine's noise
            t_fast, f = _timed(lambda: simulate(check, policy_from_settings(fam, **params), svc_model,
                                                initial_replicas=init, **slo.kwargs(), **sim_kw).summary, 3)
            t_simpy, r = _timed(lambda: simulate_simpy(check, policy_from_settings(fam, **params), svc_model,
                                                       initial_replicas=init, **slo.kwargs(), **sim_kw), 3)
            fast_s += t_fast
            simpy_s += t_simpy
            for k in ("cost_usd", "slo_attainment"):
                diffs.append(abs(f[k] - r[k]) / max(abs(r[k]), 1e-12))
        sim["simpy_speed_ratio"] = simpy_s / fast_s if fast_s > 0 else None
        sim["simpy_max_rel_diff"] = max(diffs) if diffs else None
    report = {
        "trace": trace.source, "format": trace.format, "requests": int(len(trace)),
        "evaluation_requests": int(ev.sum()),
        "slo": {"ttft_s": slo.ttft_s, "attainment": slo.attainment},
        "service_model": svc_model.describe(), "price_per_replica_hour": price_per_replica_hour,
        "provisioning_delay_s": provisioning_delay_s, "control_interval_s": control_interval_s, "stress": stress,
        "recommended": recd, "policies": policies,
        "work_conserving_bound_cost_per_1k_requests": fluid_per_1k,
        "simulator": sim,
    }
    return report, sims


def _table(report: dict) -> str:
    cols = ("cost_per_1k_requests", "slo_attainment", "p99_ttft_s", "mean_utilization", "scale_up_response_s",
            "cost_vs_static", "cost_vs_clairvoyant")
    heads = ("policy", "$/1k req", "SLO att.", "p99 TTFT s", "util", "scale-up s", "vs static", "vs clairv.")
    lines = ["  ".join(f"{h:>11}" for h in heads)]
    for fam in FAMILY_ORDER:
        p = report["policies"][fam]
        cells = [fam]
        for c in cols:
            v = p.get(c)
            cells.append("-" if v is None else f"{v:.4g}")
        lines.append("  ".join(f"{x:>11}" for x in cells))
    r = report["recommended"]
    lines.append(f"recommended: {r['family']} {r.get('params')}")
    if r.get("saving_vs_static") is not None:
        cap = r.get("saving_captured")
        lines.append(f"saving vs static: {r['saving_vs_static']:.1%} (clairvoyant: {r['clairvoyant_saving_vs_static']:.1%}; "
                     f"captured {'-' if cap is None else f'{cap:.0%}'}); paper: 40%, SkyServe: 43%")
    s = report["simulator"]
    lines.append("simulator: " + ", ".join(f"{k}={v:.4g}" for k, v in s.items() if isinstance(v, (int, float))))
    return "\n".join(lines)


def _plot(report: dict, sims: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fams = [f for f in FAMILY_ORDER if f in sims]
    fig, axes = plt.subplots(len(fams), 1, figsize=(11, 2.2 * len(fams) + 0.6), sharex=True, squeeze=False)
    for ax, fam in zip(axes[:, 0], fams):
        iv = sims[fam].intervals
        t = iv["t_s"].to_numpy() / 60.0
        ax.plot(t, iv["request_rate_rps"], color="tab:gray", lw=0.8, label="arrivals (req/s, 30 s window)")
        ax.set_ylabel("req/s")
        ax2 = ax.twinx()
        ax2.step(t, iv["replicas_ready"], where="post", color="tab:blue", lw=1.1, label="replicas ready")
        ax2.step(t, iv["replicas_ready"] + iv["replicas_pending"], where="post", color="tab:orange", lw=0.8,
                 ls="--", label="ready + provisioning")
        ax2.set_ylabel("replicas")
        p = report["policies"][fam]
        ax.set_title(f"{fam}: ${p['cost_per_1k_requests']:.3g}/1k req, SLO {p['slo_attainment']:.2%} (evaluation half)",
                     fontsize=9)
        ax.axvline(report_cut_min(report, sims), color="k", lw=0.6, ls=":")
    axes[0, 0].legend(loc="upper left", fontsize=7)
    ax2.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("minutes (dotted line: start of the evaluation half)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report_cut_min(report: dict, sims: dict) -> float:
    return report.get("_cut_s", 0.0) / 60.0


@click.command("autoscaling")
@click.option("--trace", "trace_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Request trace file.")
@click.option("--format", "fmt", required=True, type=click.Choice(["azure", "alibaba-lora", "generic"]))
@click.option("--slo-ttft-s", type=float, default=None,
              help="TTFT SLO in seconds (default 2 for token traces; 150 for fixed-work traces, "
                   "whose first output is the whole result).")
@click.option("--attainment", type=float, default=0.99, show_default=True, help="Fraction of requests that must meet the SLO.")
@click.option("--accelerator", default=None, help="vidur profile GPU (a100, h100, a40) for token traces; price lookup.")
@click.option("--model", default="meta-llama/Llama-2-70b-hf", show_default=True, help="vidur-profiled model.")
@click.option("--tensor-parallel", type=int, default=4, show_default=True)
@click.option("--max-batch-size", type=int, default=None, help="Batch slots per replica (default 8 tokens / 1 fixed-work).")
@click.option("--price-per-hour", type=float, default=None, help="Replica price (default: catalog).")
@click.option("--provisioning-delay-s", type=float, default=120.0, show_default=True)
@click.option("--control-interval-s", type=float, default=15.0, show_default=True)
@click.option("--time-scale", type=float, default=1.0, show_default=True)
@click.option("--rate-scale", type=float, default=1.0, show_default=True)
@click.option("--workers", type=int, default=2, show_default=True)
@click.option("--stress", type=float, default=0.0, show_default=True,
              help="Safety margin: a setting must also meet the SLO on the tuning half replayed this many times "
                   "faster (0: off).")
@click.option("--no-simpy", is_flag=True, help="Skip the SimPy cross-check.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last stdout line.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), default=None, help="PNG: load and replicas over time.")
def autoscaling_command(trace_path, fmt, slo_ttft_s, attainment, accelerator, model, tensor_parallel, max_batch_size,
                        price_per_hour, provisioning_delay_s, control_interval_s, time_scale, rate_scale, workers,
                        stress, no_simpy, as_json, plot_path):
    """Tune every policy on the first half of a trace, score on the second half."""
    from aiinfra_pipelines.scaling.traces import TraceError, load_trace

    try:
        trace = load_trace(trace_path, fmt, time_scale=time_scale, rate_scale=rate_scale)
    except TraceError as e:
        raise click.ClickException(str(e)) from None
    report, sims = run_benchmark(
        trace, slo_ttft_s=slo_ttft_s, attainment=attainment, accelerator=accelerator, model=model,
        tensor_parallel=tensor_parallel, max_batch_size=max_batch_size, price_per_replica_hour=price_per_hour,
        provisioning_delay_s=provisioning_delay_s, control_interval_s=control_interval_s, workers=workers,
        simpy_check=not no_simpy, stress=stress or None)
    report["trace"] = str(Path(trace_path))
    if plot_path:
        report["_cut_s"] = trace.duration_s * 0.5
        _plot(report, sims, plot_path)
        report.pop("_cut_s")
        report["plot"] = str(plot_path)
    click.echo(_table(report))
    if as_json:
        sys.stdout.flush()
        click.echo(json.dumps(report, default=_jsonable))


def _jsonable(x):
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return str(x)
