"""The mix optimizer: which instance types, how many, spot or on-demand, and which storage tier.

Training: every (instance type, node count, spot/on-demand) candidate is priced with the performance
model; pick the cheapest that meets the deadline, or the fastest within the budget, and keep the
time-vs-cost Pareto frontier. Inference: replicas per instance type to carry the peak request rate
within the latency SLO at least cost; mixes of types are allowed (Mélange), solved exactly as a
covering knapsack over the most cost-efficient types.
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


def plan_training(workload: dict, frame: pd.DataFrame, *, epochs: int, batch_size: int, samples_per_epoch: float,
                  deadline_s: float | None = None, budget_usd: float | None = None, allow_spot: bool = True,
                  cpu_samples_per_s_per_vcpu: float | None = None, data_read_bps: float | None = None,
                  node_counts=NODE_COUNTS, catalog=None) -> dict:
    """All candidates priced, the chosen one, and the Pareto frontier (time vs cost)."""
    rates = _interruption_rates(frame)
    cand = _candidates(frame, allow_spot)
    devices: dict[str, Device | None] = {}
    rows = []
    for r in cand.itertuples(index=False):
        acc = r.accelerator
        for nodes in node_counts:
            if acc is None:
                if nodes > 1 or not r.vcpus or math.isnan(r.vcpus):
                    continue
                per_vcpu = cpu_samples_per_s_per_vcpu or CPU_GFLOPS_PER_VCPU * 1e9 / workload["flops_per_sample"]
                sps = per_vcpu * r.vcpus
                step_s = batch_size / sps
                n_dev = 0
            else:
                if acc not in devices:
                    try:
                        devices[acc] = Device.from_catalog(acc, catalog)
                    except (KeyError, ValueError):
                        devices[acc] = None
                dev = devices[acc]
                if dev is None:
                    continue
                if dev.hbm_gib and workload.get("parameters") and 16 * workload["parameters"] / max(r.accelerator_count * nodes, 1) > dev.hbm_gib * 2**30:
                    continue  # weights + grads + Adam state do not fit even when sharded over every device
                n_dev = max(int(round(r.accelerator_count * nodes)), 1)
                pred = predict_training_step(workload, dev, n_devices=n_dev, batch_size=max(batch_size, n_dev),
                                             data_read_bytes_per_s=data_read_bps, inter_node=nodes > 1)
                step_s = pred["step_s"]
                sps = max(batch_size, n_dev) / step_s
            epoch_s = samples_per_epoch / sps
            hours = epochs * epoch_s / 3600
            rate = None
            factor = 1.0
            if r.spot:
                rate = r.spot_interruption_rate if r.spot_interruption_rate == r.spot_interruption_rate and r.spot_interruption_rate is not None else rates.get(acc, DEFAULT_INTERRUPTION_RATE)
                factor = spot_inflation(hours, rate)
            t = hours * 3600 * factor
            rows.append({"cloud": r.cloud, "region": r.region, "instance_type": r.instance_type, "accelerator": acc,
                         "accelerators_per_node": float(r.accelerator_count or 0), "count": nodes, "spot": bool(r.spot),
                         "price_per_hour": float(r.price), "vcpus": float(r.vcpus) if r.vcpus == r.vcpus else None,
                         "memory_gib": float(r.memory_gib) if r.memory_gib == r.memory_gib else None,
                         "epoch_time_s": epoch_s * factor, "training_time_s": t,
                         "training_cost_usd": float(r.price) * nodes * t / 3600, "interruption_rate": rate,
                         "devices": n_dev})
    if not rows:
        raise ValueError("no catalog candidate can run the training workload (check placement filters)")
    if deadline_s is not None:
        ok = [r for r in rows if r["training_time_s"] <= deadline_s]
        chosen = min(ok, key=lambda r: r["training_cost_usd"]) if ok else min(rows, key=lambda r: r["training_time_s"])
        objective = "min cost within deadline" if ok else "deadline infeasible: fastest"
    elif budget_usd is not None:
        ok = [r for r in rows if r["training_cost_usd"] <= budget_usd]
        chosen = min(ok, key=lambda r: r["training_time_s"]) if ok else min(rows, key=lambda r: r["training_cost_usd"])
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
            if acc not in devices:
                try:
                    devices[acc] = Device.from_catalog(acc, catalog)
                except (KeyError, ValueError):
                    devices[acc] = None
            dev = devices[acc]
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
    # DP over units of capacity: minimise cost to reach >= target
    unit = max(target_rps / 400.0, 1e-6)
    need = math.ceil(target_rps / unit - 1e-9)
    INF = math.inf
    cost = np.full(need + 1, INF)
    choice = np.full(need + 1, -1)
    cost[0] = 0.0
    caps = [max(int(r.rps / unit), 1) for r in cap.itertuples()]
    prices = cap.price_per_hour.to_numpy()
    for c in range(1, need + 1):
        for i, k in enumerate(caps):
            prev = max(c - k, 0)
            v = cost[prev] + prices[i]
            if v < cost[c] - 1e-12:
                cost[c], choice[c] = v, i
    counts = [0] * len(cap)
    c = need
    while c > 0 and choice[c] >= 0:
        i = choice[c]
        counts[i] += 1
        c = max(c - caps[i], 0)
    mix = [dict(cap.iloc[i].to_dict(), count=n) for i, n in enumerate(counts) if n]
    mix_cost = float(sum(m["count"] * m["price_per_hour"] for m in mix))
    if mix_cost > single_cost or sum(m["count"] for m in mix) > max_replicas:
        mix = [dict(single_row._asdict(), count=single_n)]
        mix_cost = single_cost
    return {"mix": mix, "cost_per_hour_usd": mix_cost, "best_single": {"instance_type": single_row.instance_type,
            "accelerator": single_row.accelerator, "count": single_n, "cost_per_hour_usd": single_cost},
            "savings_vs_best_single": 1 - mix_cost / single_cost if single_cost else 0.0,
            "capacity_rps": float(sum(m["count"] * m["rps"] for m in mix)), "target_rps": target_rps}
