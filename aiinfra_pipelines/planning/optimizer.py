"""The mix optimizer: which instance types, how many, spot or on-demand, and which storage tier.

Training: every (instance type, node count, spot/on-demand) candidate is priced with the performance
model; pick the cheapest that meets the deadline, or the fastest within the budget, and keep the
time-vs-cost Pareto frontier. Inference: replicas per instance type to carry the peak request rate
within the latency SLO at least cost; mixes of types are allowed (Mélange): a covering knapsack for
one request class, and an ILP over request-size buckets for LLM traffic (:func:`plan_llm_serving`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

from aiinfra_pipelines.planning.perf_model import Device, predict_inference, predict_training_step

NODE_COUNTS = (1, 2, 4, 8, 16)
HOURS_PER_MONTH = 730.0
RESTART_OVERHEAD_H = 0.1  # re-provision and reload after a spot interruption
CHECKPOINT_INTERVAL_H = 0.5  # work lost on average: half of it
DEFAULT_INTERRUPTION_RATE = 0.125  # per month, when a cloud publishes none and no AWS rate exists for the accelerator
CPU_GFLOPS_PER_VCPU = 16.0  # achieved fp32 GFLOP/s per vCPU for dense training when no CPU profile exists
PREPROCESS_VCPU_FRACTION = 0.75  # of a node's vCPUs available to input workers (the rest drive the devices)
HELPER_NODE_COUNTS = (1, 2, 4, 8, 16, 32)  # CPU-only nodes that may be added to feed the accelerators
# Data-parallel training over one node's vCPUs: each step has a part that does not parallelise (Python
# dispatch of its kernels, the optimizer loop, batch assembly). Modelled as a fixed time per step, an
# assumption rather than a measurement: a small model's 2 ms step gains little from 96 vCPUs, while a
# ResNet-50 step of minutes per core scales almost linearly.
CPU_STEP_OVERHEAD_S = 1e-3
# Clouds bill per second with a one-minute minimum per instance: a 3-second job costs a minute.
BILLING_MINIMUM_S = 60.0
# "Fastest within the budget" treats plans within this much of the fastest as equally fast and takes the
# cheapest of them: nobody pays 30x more to finish a 2-second job in 0.1 s.
TIME_TIE_FRACTION = 0.05
TIME_TIE_S = 60.0

# storage tiers: read bandwidth (bytes/s), price per GB-month, and what bounds their size
STORAGE_TIERS = {
    "memory": {"read_bps": 10e9, "usd_per_gb_month": 0.0},
    "nvme": {"read_bps": 2e9, "usd_per_gb_month": 0.0},
    "shared_fs": {"read_bps_per_tib": 1e9, "usd_per_gb_month": 0.145, "min_gb": 1200},  # FSx Lustre / Filestore
    "object": {"read_bps": 0.5e9, "usd_per_gb_month": 0.023},
}


class StoragePlan(BaseModel):
    tier: str
    size_gb: float
    predicted_load_time_s: float
    read_bandwidth_bps: float
    alternatives: list[dict] = Field(default_factory=list)


def plan_storage(dataset_bytes: float, read_bps_needed: float, node_memory_gib: float | None = None,
                 nodes: int = 1) -> StoragePlan:
    """Cheapest tier whose read bandwidth covers the need; memory only when the dataset fits in a quarter of RAM."""
    gb = max(dataset_bytes / 1e9, 0.001)
    rows = []
    for tier, t in STORAGE_TIERS.items():
        if tier == "memory" and (node_memory_gib is None or gb > 0.25 * node_memory_gib):
            feasible_size = False
        else:
            feasible_size = True
        size = max(gb * 1.2, t.get("min_gb", 0))
        bw = t.get("read_bps") or t["read_bps_per_tib"] * size / 1024
        bw_total = bw * (nodes if tier in ("memory", "nvme") else 1)
        load = dataset_bytes / bw_total
        rows.append({"tier": tier, "size_gb": round(size, 3), "read_bandwidth_bps": bw_total, "predicted_load_time_s": load,
                     "usd_per_month": size * t["usd_per_gb_month"], "meets_bandwidth": bw_total >= read_bps_needed,
                     "fits": feasible_size})
    ok = [r for r in rows if r["fits"] and r["meets_bandwidth"]]
    order = ["memory", "nvme", "object", "shared_fs"]  # cheapest first at equal fit
    best = min(ok, key=lambda r: (r["usd_per_month"], order.index(r["tier"]))) if ok else max(
        (r for r in rows if r["fits"]), key=lambda r: r["read_bandwidth_bps"])
    return StoragePlan(tier=best["tier"], size_gb=best["size_gb"], predicted_load_time_s=best["predicted_load_time_s"],
                       read_bandwidth_bps=best["read_bandwidth_bps"], alternatives=rows)


def cpu_step_s(step_one_vcpu_s: float, vcpus: float, overhead_s: float = CPU_STEP_OVERHEAD_S) -> float:
    """A training step's time on ``vcpus`` given its time on one: the serial overhead plus the rest split."""
    serial = min(overhead_s, step_one_vcpu_s)
    return serial + (step_one_vcpu_s - serial) / max(float(vcpus), 1.0)


def one_vcpu_step_s(step_s: float, vcpus_used: float, overhead_s: float = CPU_STEP_OVERHEAD_S) -> float:
    """The inverse of :func:`cpu_step_s`: a step measured on ``vcpus_used`` as if on one vCPU."""
    serial = min(overhead_s, step_s)
    return serial + (step_s - serial) * max(float(vcpus_used), 1.0)


def _device(accelerator: str, cache: dict, catalog) -> Device | None:
    """The accelerator's performance-model device, memoised per plan; None when the catalog lacks its specs."""
    if accelerator not in cache:
        try:
            cache[accelerator] = Device.from_catalog(accelerator, catalog)
        except (KeyError, ValueError):
            cache[accelerator] = None
    return cache[accelerator]


def _candidates(frame: pd.DataFrame, allow_spot: bool) -> pd.DataFrame:
    """One row per (cloud, instance type, pricing) at its cheapest region."""
    rows = [frame.assign(spot=False, price=frame.price_per_hour)]
    if allow_spot:
        s = frame[frame.spot_price_per_hour.notna()]
        rows.append(s.assign(spot=True, price=s.spot_price_per_hour))
    c = pd.concat(rows, ignore_index=True)
    c = c.sort_values("price").drop_duplicates(subset=["cloud", "instance_type", "spot"])
    return c.reset_index(drop=True)


def _interruption_rates(frame: pd.DataFrame) -> dict:
    aws = frame[(frame.cloud == "aws") & frame.spot_interruption_rate.notna()]
    return aws.groupby("accelerator").spot_interruption_rate.median().to_dict()


def spot_inflation(hours: float, rate_per_month: float) -> float:
    """Expected wall-time factor of a spot run: interruptions x (restart + half a checkpoint interval)."""
    interruptions = hours * rate_per_month / HOURS_PER_MONTH
    return 1.0 + interruptions * (RESTART_OVERHEAD_H + CHECKPOINT_INTERVAL_H / 2) / max(hours, 1e-9)


def pareto_frontier(rows: list[dict], x: str = "training_time_s", y: str = "training_cost_usd") -> list[dict]:
    front, best = [], math.inf
    for r in sorted(rows, key=lambda r: (r[x], r[y])):
        if r[y] < best - 1e-12:
            front.append(r)
            best = r[y]
    return front


def _cpu_helpers(frame: pd.DataFrame, allow_spot: bool) -> dict:
    """Per (cloud, spot): the CPU-only type with the lowest price per vCPU (>= 8 vCPUs), to feed accelerators."""
    cpu = frame[frame.accelerator.isna() & (frame.vcpus >= 8)]
    out = {}
    for spot in ((False, True) if allow_spot else (False,)):
        price = cpu.spot_price_per_hour if spot else cpu.price_per_hour
        c = cpu.assign(price=price)[price.notna()]
        if c.empty:
            continue
        c = c.assign(ppv=c.price / c.vcpus).sort_values(["ppv", "instance_type"])
        for cloud, g in c.groupby("cloud"):
            r = g.iloc[0]
            out[(cloud, spot)] = {"instance_type": r.instance_type, "region": r.region, "vcpus": float(r.vcpus),
                                  "price_per_hour": float(r.price)}
    return out


def plan_training(workload: dict, frame: pd.DataFrame, *, epochs: int, batch_size: int, samples_per_epoch: float,
                  deadline_s: float | None = None, budget_usd: float | None = None, allow_spot: bool = True,
                  cpu_samples_per_s_per_vcpu: float | None = None, data_read_bps: float | None = None,
                  node_counts=NODE_COUNTS, catalog=None, cpu_helpers: bool = True) -> dict:
    """All candidates priced, the chosen one, and the Pareto frontier (time vs cost).

    With ``workload["preprocess_cpu_s_per_sample"]`` (one vCPU's seconds to read, decode and augment a
    sample; the profile's data_load phase measures it), a node's vCPUs bound its samples/s; where that
    bound starves the accelerators, candidates that add CPU-only helper nodes (input workers over the
    network, same cloud) are priced too: the heterogeneous CPU+accelerator mix. ``helper_nodes`` is 0
    on accelerator-only rows.
    """
    rates = _interruption_rates(frame)
    cand = _candidates(frame, allow_spot)
    pre_s = float(workload.get("preprocess_cpu_s_per_sample") or 0.0)
    helpers = _cpu_helpers(frame, allow_spot) if (cpu_helpers and pre_s > 0) else {}
    devices: dict[str, Device | None] = {}
    rows = []
    for r in cand.itertuples(index=False):
        acc = r.accelerator
        for nodes in node_counts:
            if acc is None:
                if nodes > 1 or not r.vcpus or math.isnan(r.vcpus):
                    continue
                per_vcpu = cpu_samples_per_s_per_vcpu or 1.0 / (workload["flops_per_sample"] / (CPU_GFLOPS_PER_VCPU * 1e9) + pre_s)
                step_s = cpu_step_s(batch_size / per_vcpu, r.vcpus)
                sps = batch_size / step_s
                n_dev = 0
            else:
                dev = _device(acc, devices, catalog)
                if dev is None:
                    continue
                if dev.hbm_gib and workload.get("parameters") and 16 * workload["parameters"] / max(r.accelerator_count * nodes, 1) > dev.hbm_gib * 2**30:
                    continue  # weights + grads + Adam state do not fit even when sharded over every device
                n_dev = max(int(round(r.accelerator_count * nodes)), 1)
                pred = predict_training_step(workload, dev, n_devices=n_dev, batch_size=max(batch_size, n_dev),
                                             data_read_bytes_per_s=data_read_bps, inter_node=nodes > 1)
                step_s = pred["step_s"]
                sps = max(batch_size, n_dev) / step_s
            variants = [(0, None, sps, None)]
            if pre_s > 0 and acc is not None:
                vcpus = float(r.vcpus) if r.vcpus == r.vcpus and r.vcpus else 4.0 * max(r.accelerator_count, 1)
                feed = PREPROCESS_VCPU_FRACTION * vcpus * nodes / pre_s
                variants = [(0, None, min(sps, feed), feed < sps)]
                helper = helpers.get((r.cloud, bool(r.spot)))
                if helper is not None and feed < sps:
                    for k in HELPER_NODE_COUNTS:
                        extra = PREPROCESS_VCPU_FRACTION * helper["vcpus"] * k / pre_s
                        variants.append((k, helper, min(sps, feed + extra), feed + extra < sps))
                        if feed + extra >= sps:
                            break
            for k, helper, v_sps, input_bound in variants:
                epoch_s = samples_per_epoch / v_sps
                hours = epochs * epoch_s / 3600
                rate = None
                factor = 1.0
                if r.spot:
                    rate = r.spot_interruption_rate if r.spot_interruption_rate == r.spot_interruption_rate and r.spot_interruption_rate is not None else rates.get(acc, DEFAULT_INTERRUPTION_RATE)
                    factor = spot_inflation(hours, rate)
                t = hours * 3600 * factor
                hourly = float(r.price) * nodes + (helper["price_per_hour"] * k if helper else 0.0)
                billed_s = max(t, BILLING_MINIMUM_S)
                rows.append({"cloud": r.cloud, "region": r.region, "instance_type": r.instance_type, "accelerator": acc,
                             "accelerators_per_node": float(r.accelerator_count or 0), "count": nodes, "spot": bool(r.spot),
                             "price_per_hour": float(r.price), "vcpus": float(r.vcpus) if r.vcpus == r.vcpus else None,
                             "memory_gib": float(r.memory_gib) if r.memory_gib == r.memory_gib else None,
                             "epoch_time_s": epoch_s * factor, "training_time_s": t,
                             "training_cost_usd": hourly * billed_s / 3600, "interruption_rate": rate,
                             "devices": n_dev, "helper_nodes": k,
                             "helper_instance_type": helper["instance_type"] if helper else None,
                             "helper_price_per_hour": helper["price_per_hour"] if helper else 0.0,
                             "input_bound": input_bound, "mix_price_per_hour": hourly})
    if not rows:
        raise ValueError("no catalog candidate can run the training workload (check placement filters)")
    if deadline_s is not None:
        ok = [r for r in rows if r["training_time_s"] <= deadline_s]
        chosen = min(ok, key=lambda r: r["training_cost_usd"]) if ok else min(rows, key=lambda r: r["training_time_s"])
        objective = "min cost within deadline" if ok else "deadline infeasible: fastest"
    elif budget_usd is not None:
        ok = [r for r in rows if r["training_cost_usd"] <= budget_usd]
        if ok:
            fastest = min(r["training_time_s"] for r in ok)
            tie = fastest + max(TIME_TIE_FRACTION * fastest, TIME_TIE_S)
            chosen = min((r for r in ok if r["training_time_s"] <= tie), key=lambda r: r["training_cost_usd"])
        else:
            chosen = min(rows, key=lambda r: r["training_cost_usd"])
        objective = "min time within budget" if ok else "budget infeasible: cheapest"
    else:
        chosen = min(rows, key=lambda r: r["training_cost_usd"])
        objective = "min cost"
    return {"chosen": chosen, "objective": objective, "rows": rows, "pareto": pareto_frontier(rows)}


def replica_capacity(workload: dict, frame: pd.DataFrame, *, slo_s: float, prompt_tokens: int, output_tokens: int,
                     batch_sizes=(1, 2, 4, 8, 16, 32, 64), allow_spot: bool = False, catalog=None,
                     cpu_rps_per_vcpu: float | None = None) -> pd.DataFrame:
    """Requests/s one instance of each type sustains with latency within the SLO (best batch size)."""
    cand = _candidates(frame, allow_spot)
    out, devices = [], {}
    for r in cand.itertuples(index=False):
        acc = r.accelerator
        if acc is None:
            if cpu_rps_per_vcpu is None or not r.vcpus or math.isnan(r.vcpus):
                continue
            rps, lat = cpu_rps_per_vcpu * r.vcpus, None
        else:
            dev = _device(acc, devices, catalog)
            if dev is None or (dev.hbm_gib and 2.2 * workload.get("parameters", 0) > dev.hbm_gib * 2**30 * r.accelerator_count):
                continue
            best, lat = 0.0, None
            for b in batch_sizes:
                p = predict_inference(workload, dev, prompt_tokens=prompt_tokens, output_tokens=output_tokens, batch_size=b)
                if p["latency_s"] <= slo_s and p["throughput_rps"] > best:
                    best, lat = p["throughput_rps"], p["latency_s"]
            rps = best * max(int(r.accelerator_count), 1)
        if rps > 0:
            out.append({"cloud": r.cloud, "region": r.region, "instance_type": r.instance_type, "accelerator": acc,
                        "accelerators_per_node": float(r.accelerator_count or 0), "spot": bool(r.spot),
                        "price_per_hour": float(r.price), "rps": rps, "latency_s": lat,
                        "vcpus": float(r.vcpus) if r.vcpus == r.vcpus else None,
                        "memory_gib": float(r.memory_gib) if r.memory_gib == r.memory_gib else None})
    df = pd.DataFrame(out)
    if not df.empty:
        df["usd_per_rps_hour"] = df.price_per_hour / df.rps
    return df


def plan_inference_mix(capacity: pd.DataFrame, target_rps: float, *, max_types: int = 8, max_replicas: int = 64,
                       min_replicas: int = 1) -> dict:
    """Least-cost replicas per type whose summed capacity covers ``target_rps`` (exact DP over the
    ``max_types`` most cost-efficient types), beside the best single type."""
    if capacity.empty:
        raise ValueError("no instance type meets the latency SLO")
    cap = capacity.sort_values("usd_per_rps_hour").drop_duplicates(subset=["instance_type"]).head(max_types).reset_index(drop=True)
    # best single type over all
    singles = []
    for r in capacity.itertuples(index=False):
        n = max(math.ceil(target_rps / r.rps - 1e-9), min_replicas)
        singles.append((n * r.price_per_hour, r.instance_type, n, r))
    single_cost, _, single_n, single_row = min(singles, key=lambda s: s[0])
    # covering knapsack, exact: min sum(price_i n_i) s.t. sum(rps_i n_i) >= target, n_i integer (HiGHS)
    from scipy.optimize import Bounds, LinearConstraint, milp

    prices = cap.price_per_hour.to_numpy(float)
    rps = cap.rps.to_numpy(float)
    res = milp(prices, constraints=[LinearConstraint(rps[None, :], target_rps, np.inf),
                                    LinearConstraint(np.ones((1, len(cap))), 0, max_replicas)],
               integrality=np.ones(len(cap)), bounds=Bounds(np.zeros(len(cap)), np.full(len(cap), max_replicas)))
    counts = [int(round(v)) for v in res.x] if res.x is not None else [0] * len(cap)
    mix = [dict(cap.iloc[i].to_dict(), count=n) for i, n in enumerate(counts) if n]
    mix_cost = float(sum(m["count"] * m["price_per_hour"] for m in mix))
    if mix_cost > single_cost or sum(m["count"] for m in mix) > max_replicas:
        mix = [dict(single_row._asdict(), count=single_n)]
        mix_cost = single_cost
    return {"mix": mix, "cost_per_hour_usd": mix_cost, "best_single": {"instance_type": single_row.instance_type,
            "accelerator": single_row.accelerator, "count": single_n, "cost_per_hour_usd": single_cost},
            "savings_vs_best_single": 1 - mix_cost / single_cost if single_cost else 0.0,
            "capacity_rps": float(sum(m["count"] * m["rps"] for m in mix)), "target_rps": target_rps}


# ----------------------------------------------------------------------------------------------
# LLM serving over a request-size mix (Mélange): each GPU type is cost-efficient for a different
# range of request sizes, so the traffic is split by size and the split is solved as an ILP.

INPUT_BINS = (0, 256, 1024, 2048, 4096, 1 << 30)
OUTPUT_BINS = (0, 128, 512, 1 << 30)
LLM_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def request_buckets(input_tokens: np.ndarray, output_tokens: np.ndarray, rate_rps: float) -> pd.DataFrame:
    """Requests binned by (input, output) size: mean sizes and each bin's share of ``rate_rps``."""
    df = pd.DataFrame({"i": np.asarray(input_tokens, float), "o": np.maximum(np.asarray(output_tokens, float), 1)})
    df["ib"] = np.digitize(df.i, INPUT_BINS[1:-1])
    df["ob"] = np.digitize(df.o, OUTPUT_BINS[1:-1])
    g = df.groupby(["ib", "ob"]).agg(input_tokens=("i", "mean"), output_tokens=("o", "mean"), n=("i", "size")).reset_index()
    g["rate_rps"] = rate_rps * g.n / g.n.sum()
    return g


def llm_replica_rps(workload: dict, dev: Device, devices: int, input_tokens: float, output_tokens: float,
                    tpot_slo_s: float, ttft_slo_s: float) -> float:
    """Requests/s of one replica (``devices`` accelerators, tensor parallel) within the TTFT/TPOT SLOs.

    Continuous batching: a replica holds ``b`` sequences, limited by HBM after the weights; each request
    costs its prefill (which stalls the batch) plus ``output_tokens`` decode steps shared by ``b``:
    rps(b) = 1 / (ttft + output_tokens * tpot(b) / b). The best ``b`` that keeps tpot(b) within the SLO.
    """
    params_n = float(workload["parameters"])
    kv = float(workload.get("kv_bytes_per_token") or 0.0)
    weights = 2 * params_n
    hbm = 0.9 * (dev.hbm_gib or 0) * 2**30 * devices
    if weights >= hbm:
        return 0.0
    agg = Device(dev.name, dev.peak_flops * devices / 1e12, dev.bandwidth * devices / 1e9)  # ideal TP scaling
    ctx = input_tokens + output_tokens
    p_ttft = predict_inference(workload, agg, prompt_tokens=int(input_tokens), output_tokens=1, batch_size=1)["ttft_s"]
    if p_ttft > ttft_slo_s:
        return 0.0
    best = 0.0
    fpt = workload.get("flops_per_token") or 2 * params_n
    from aiinfra_pipelines.planning.perf_model import _roofline

    for b in LLM_BATCHES:
        if weights + b * ctx * kv > hbm:
            break
        tpot = _roofline(fpt * b, weights + b * (input_tokens + output_tokens / 2) * kv, agg, b)
        if tpot > tpot_slo_s:
            break
        best = max(best, 1.0 / (p_ttft + output_tokens * tpot / b))
    return best


def plan_llm_serving(workload: dict, frame: pd.DataFrame, buckets: pd.DataFrame, *, tpot_slo_s: float = 0.1,
                     ttft_slo_s: float = 2.0, max_types: int = 40, catalog=None) -> dict:
    """Least-cost replicas per instance type for the bucketed traffic (fractional routing of each bucket
    to types, integer instances), solved with HiGHS; beside the best single instance type."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    cand = _candidates(frame[frame.accelerator.notna()], allow_spot=False)
    devices: dict = {}
    caps, rows = [], []
    for r in cand.itertuples(index=False):
        if r.accelerator not in devices:
            try:
                devices[r.accelerator] = Device.from_catalog(r.accelerator, catalog)
            except (KeyError, ValueError):
                devices[r.accelerator] = None
        dev = devices[r.accelerator]
        n_acc = float(r.accelerator_count or 0)
        if dev is None or n_acc < 1:
            continue
        # smallest tensor-parallel group of this node's devices that holds the weights; replicas per node
        tp = 1
        while tp <= n_acc and 2 * workload["parameters"] >= 0.9 * (dev.hbm_gib or 0) * 2**30 * tp:
            tp *= 2
        if tp > n_acc:
            continue
        per_node = int(n_acc // tp)
        c = np.array([per_node * llm_replica_rps(workload, dev, tp, b.input_tokens, b.output_tokens, tpot_slo_s, ttft_slo_s)
                      for b in buckets.itertuples()])
        if not (c > 0).any():
            continue
        caps.append(c)
        rows.append({"cloud": r.cloud, "region": r.region, "instance_type": r.instance_type, "accelerator": r.accelerator,
                     "accelerators_per_node": n_acc, "tensor_parallel": tp, "replicas_per_node": per_node,
                     "price_per_hour": float(r.price)})
    if not rows:
        raise ValueError("no instance type meets the latency SLOs for this model")
    cap = np.vstack(caps)  # types x buckets, requests/s per instance
    rate = buckets.rate_rps.to_numpy()
    price = np.array([r["price_per_hour"] for r in rows])
    with np.errstate(divide="ignore"):
        usd_per_req = np.where(cap > 0, price[:, None] / cap, np.inf)
    # best single type: one type carries every bucket
    full = (cap > 0).all(axis=1)
    need = np.where(full, np.ceil(np.sum(rate[None, :] / np.where(cap > 0, cap, 1), axis=1) - 1e-9), np.inf)
    single_cost = price * need
    s = int(np.argmin(single_cost))
    # keep the types that are among the cheapest per request for some bucket, plus the best singles
    keep = set(np.argsort(single_cost)[: max_types // 2].tolist())
    for j in range(cap.shape[1]):
        keep.update(np.argsort(usd_per_req[:, j])[:4].tolist())
    keep = sorted(k for k in keep if np.isfinite(usd_per_req[k]).any())[:max_types]
    T, J = len(keep), cap.shape[1]
    # variables: n_t (T, integer) then x_tj (T*J, fraction of bucket j routed to type t)
    nvar = T + T * J
    c = np.concatenate([price[keep], np.zeros(T * J)])
    A_route = np.zeros((J, nvar))
    A_cap = np.zeros((T, nvar))
    ub = np.concatenate([np.full(T, np.inf), np.ones(T * J)])
    for ti, t in enumerate(keep):
        A_cap[ti, ti] = -1.0
        for j in range(J):
            v = T + ti * J + j
            A_route[j, v] = 1.0
            if cap[t, j] > 0:
                A_cap[ti, v] = rate[j] / cap[t, j]
            else:
                ub[v] = 0.0
    res = milp(c, constraints=[LinearConstraint(A_route, 1, 1), LinearConstraint(A_cap, -np.inf, 0)],
               integrality=np.concatenate([np.ones(T), np.zeros(T * J)]), bounds=Bounds(np.zeros(nvar), ub),
               options={"time_limit": 1.0})
    if res.x is None:
        raise ValueError(f"inference mix: the solver found no solution ({res.message})")
    n = np.round(res.x[:T]).astype(int)
    x = res.x[T:].reshape(T, J)
    mix = []
    for ti, t in enumerate(keep):
        if n[ti] > 0:
            share = {f"in{int(b.ib)}_out{int(b.ob)}": float(x[ti, j]) for j, b in enumerate(buckets.itertuples()) if x[ti, j] > 1e-6}
            mix.append(dict(rows[t], count=int(n[ti]), bucket_share=share))
    mix_cost = float(sum(m["count"] * m["price_per_hour"] for m in mix))
    best_single = dict(rows[s], count=int(need[s]), cost_per_hour_usd=float(single_cost[s]))
    return {"mix": mix, "cost_per_hour_usd": mix_cost, "best_single": best_single,
            "savings_vs_best_single": 1 - mix_cost / float(single_cost[s]), "target_rps": float(rate.sum()),
            "candidate_types": len(rows), "types_in_ilp": T, "tpot_slo_s": tpot_slo_s, "ttft_slo_s": ttft_slo_s,
            "buckets": buckets.drop(columns=["n"]).to_dict(orient="records")}
