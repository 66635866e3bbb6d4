"""Performance model: predicts operator, training-step and inference latencies on any accelerator
from its published specs (peak dense bf16 TFLOPS, HBM bandwidth, SM count and clock).

Every operator is described by its FLOPs, the bytes it moves and the elements it touches. Its time
on a device is a smooth maximum of

- a compute term, ``F / (P_peak * e_max * M / (M + M_half))`` (tensor-core matmuls; M = tokens),
- a memory term, ``B / (BW_peak * e_bw)``,
- for the memory-bound (elementwise, normalisation, gather) kernels an issue term,
  ``a_class * E / (SMs * clock)``: per-element instruction cost, which is why a layer norm does not reach
  HBM bandwidth on an A100 yet runs relatively faster on an A40 than its bandwidth alone says,
- a fixed per-kernel overhead in cycles (``t0 * 1.41 GHz / clock``).

All parameters are hardware-independent in form and are fitted on A100 measurements only
(:func:`fit_parameters`); predictions on other devices use only those devices' spec-sheet figures.
:func:`run_perf_model_validation` is the honest check against H100 and A40 measurements.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pandas as pd

OPS = ["emb", "input_layernorm", "attn_pre_proj", "attn_rope", "attn_post_proj", "post_attention_layernorm",
       "mlp_up_proj", "mlp_act", "mlp_down_proj", "add"]
MATMUL_OPS = {"attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj"}
OP_CLASS = {"emb": "emb", "input_layernorm": "norm", "post_attention_layernorm": "norm", "attn_rope": "rope",
            "mlp_act": "act", "add": "add"}
CLASSES = ["emb", "norm", "rope", "act", "add"]
SHAPE_COLUMNS = ["n_head", "n_kv_head", "n_embd", "n_expanded_embd", "vocab_size", "use_gated_mlp", "num_tokens",
                 "num_tensor_parallel_workers"]
# the measured GPUs in vidur_profiling/compute -> catalog accelerator names (SXM parts, DGX systems)
VIDUR_GPUS = {"a100": "A100-80GB", "h100": "H100", "a40": "A40"}
REF_CLOCK_GHZ = 1.41  # overheads are expressed in A100 cycles

# Result of fit_parameters() on every A100 file of vidur_profiling/compute (see docs/planning.md);
# used when the measurements are not at hand. A test checks that a fresh fit reproduces them.
DEFAULT_PARAMS = {
    "matmul_overhead_us": 5.733, "matmul_peak_efficiency": 0.737, "matmul_half_tokens": 18.3,
    "bandwidth_efficiency": 0.902, "sharpness": 1.503,
    "issue_cost": {"emb": 1.98, "norm": 0.788, "rope": 0.650, "act": 0.816, "add": 4.7e-6},
    "overhead_us": {"emb": 5.04, "norm": 4.97, "rope": 3.74, "act": 3.87, "add": 2.19},
    "memory_sharpness": 2.13,
}


class Device:
    """The spec-sheet figures the model needs for one accelerator."""

    def __init__(self, name: str, peak_tflops: float, bandwidth_gbps: float, sm_count: float | None = None,
                 clock_ghz: float | None = None, hbm_gib: float | None = None, intra_node_bandwidth_gbps: float | None = None):
        if not peak_tflops or not bandwidth_gbps or math.isnan(peak_tflops) or math.isnan(bandwidth_gbps):
            raise ValueError(f"accelerator {name!r}: peak_tflops_bf16 and hbm_bandwidth_gbps are required")
        self.name = name
        self.peak_flops = peak_tflops * 1e12
        self.bandwidth = bandwidth_gbps * 1e9
        ok = sm_count and clock_ghz and not (math.isnan(sm_count) or math.isnan(clock_ghz))
        self.clock_ghz = clock_ghz if ok else REF_CLOCK_GHZ
        # without SM figures (TPU, Neuron), the issue rate is taken as proportional to bandwidth like an A100's
        self.issue_rate = sm_count * clock_ghz if ok else 108 * REF_CLOCK_GHZ * bandwidth_gbps / 2039.0
        self.hbm_gib = hbm_gib
        link = intra_node_bandwidth_gbps
        self.link_bandwidth = link * 1e9 if link and not math.isnan(link) else None

    @classmethod
    def from_catalog(cls, accelerator: str, catalog=None) -> "Device":
        from aiinfra_pipelines.planning.catalog import load_catalog

        s = (catalog or load_catalog()).accelerator_spec(accelerator)
        return cls(s["accelerator"], s["peak_tflops_bf16"], s["hbm_bandwidth_gbps"], s.get("sm_count"),
                   s.get("clock_ghz"), s.get("hbm_gib"), s.get("intra_node_bandwidth_gbps"))


# ----------------------------------------------------------------------------------------------
# operator FLOPs / bytes / elements from the transformer shape (fp16 weights and activations)

def operator_costs(df: pd.DataFrame, op_column: str = "op") -> pd.DataFrame:
    """Adds flops, bytes and elements columns for each (shape, op) row."""
    T = df.num_tokens.to_numpy(float)
    tp = df.num_tensor_parallel_workers.to_numpy(float)
    h = df.n_embd.to_numpy(float)
    nq = df.n_head.to_numpy(float)
    nkv = df.n_kv_head.to_numpy(float)
    hd = h / nq
    ff = df.n_expanded_embd.to_numpy(float)
    gated = df.use_gated_mlp.astype(bool).to_numpy(float)
    op = df[op_column].to_numpy()
    b = 2.0
    F = np.zeros(len(df))
    B = np.zeros(len(df))
    E = np.zeros(len(df))
    shapes = {"attn_pre_proj": (h, (nq + 2 * nkv) * hd / tp), "attn_post_proj": (nq * hd / tp, h),
              "mlp_up_proj": (h, ff * (1 + gated) / tp), "mlp_down_proj": (ff / tp, h)}
    for name, (k, n) in shapes.items():
        m = op == name
        F[m] = 2 * T[m] * k[m] * n[m]
        B[m] = b * (T[m] * k[m] + k[m] * n[m] + T[m] * n[m])
        E[m] = T[m] * n[m]
    m = np.isin(op, ["input_layernorm", "post_attention_layernorm"])
    B[m] = b * (2 * T[m] * h[m] + h[m])
    E[m] = T[m] * h[m]
    m = op == "add"
    B[m] = b * 3 * T[m] * h[m]
    E[m] = T[m] * h[m]
    m = op == "emb"
    B[m] = b * 2 * T[m] * h[m] + 8 * T[m]
    E[m] = T[m] * h[m]
    m = op == "attn_rope"
    w = (nq[m] + nkv[m]) * hd[m] / tp[m]
    B[m] = b * 2 * T[m] * w
    E[m] = T[m] * w
    m = op == "mlp_act"
    w = ff[m] / tp[m]
    B[m] = b * (T[m] * w * (1 + gated[m]) + T[m] * w)
    E[m] = T[m] * w
    return df.assign(flops=F, bytes=B, elements=E)


def _vector(params: dict) -> np.ndarray:
    return np.array([params["matmul_overhead_us"], params["matmul_peak_efficiency"],
                     math.log(params["matmul_half_tokens"] * 1e6), params["bandwidth_efficiency"], params["sharpness"]]
                    + [math.log(params["issue_cost"][c]) for c in CLASSES]
                    + [params["overhead_us"][c] for c in CLASSES] + [params["memory_sharpness"]])


def _params(x: np.ndarray) -> dict:
    n = len(CLASSES)
    return {"matmul_overhead_us": float(x[0]), "matmul_peak_efficiency": float(x[1]),
            "matmul_half_tokens": float(math.exp(x[2]) * 1e-6), "bandwidth_efficiency": float(x[3]),
            "sharpness": float(x[4]),
            "issue_cost": {c: float(math.exp(x[5 + i])) for i, c in enumerate(CLASSES)},
            "overhead_us": {c: float(x[5 + n + i]) for i, c in enumerate(CLASSES)},
            "memory_sharpness": float(x[5 + 2 * n])}


def predict_operator_times(costs: pd.DataFrame, device: Device, params: dict | None = None) -> np.ndarray:
    """Predicted seconds for each row of :func:`operator_costs` output on ``device``."""
    p = params or DEFAULT_PARAMS
    ck = REF_CLOCK_GHZ / device.clock_ghz
    op = costs.op.to_numpy()
    is_mm = np.isin(op, list(MATMUL_OPS))
    M = costs.num_tokens.to_numpy(float)
    s = p["sharpness"]
    t_compute = costs.flops.to_numpy() / (device.peak_flops * p["matmul_peak_efficiency"] * (M / (M + p["matmul_half_tokens"])))
    t_memory = costs.bytes.to_numpy() / (device.bandwidth * p["bandwidth_efficiency"])
    t_mm = p["matmul_overhead_us"] * 1e-6 * ck + (t_compute ** s + t_memory ** s) ** (1 / s)
    cls = pd.Series(op).map(OP_CLASS).to_numpy()
    a = np.zeros(len(op))
    t0 = np.zeros(len(op))
    for c in CLASSES:
        m = cls == c
        a[m] = p["issue_cost"][c]
        t0[m] = p["overhead_us"][c] * 1e-6 * ck
    q = p["memory_sharpness"]
    t_issue = a * costs.elements.to_numpy() / (device.issue_rate * 1e9)
    t_mb = (t0 ** q + t_memory ** q + t_issue ** q) ** (1 / q)
    return np.where(is_mm, t_mm, t_mb)


# ----------------------------------------------------------------------------------------------
# measurements (vidur_profiling/compute) and the validation protocol

def load_operator_measurements(data_dir: Path, gpu: str, models: list[str] | None = None) -> pd.DataFrame:
    """Long table (model, op, shape columns, measured_s) of every mlp.csv.gz of one GPU."""
    root = Path(data_dir) / "accelerator_perf" / "vidur_profiling" / "compute" / gpu
    files = sorted(root.glob("*/*/mlp.csv.gz"))
    if not files:
        raise FileNotFoundError(f"no operator measurements under {root}")
    frames = []
    for f in files:
        model = f.parent.name
        if models is not None and model not in models:
            continue
        df = pd.read_csv(f)
        missing = [c for c in SHAPE_COLUMNS if c not in df.columns]
        if missing:
            raise ValueError(f"{f}: missing columns {missing}")
        for op in OPS:
            col = f"time_stats.{op}.median"
            if col not in df.columns:
                continue
            sub = df[SHAPE_COLUMNS].copy()
            sub["measured_s"] = df[col].to_numpy(float) * 1e-3
            sub["op"] = op
            sub["model"] = model
            frames.append(sub)
    out = pd.concat(frames, ignore_index=True)
    return out[out.measured_s > 0].reset_index(drop=True)


def fit_parameters(measurements: pd.DataFrame, device: Device, start: dict | None = None) -> dict:
    """Least squares on log time (robust loss) of the model's hardware-independent parameters."""
    from scipy.optimize import least_squares

    costs = operator_costs(measurements)
    y = np.log(costs.measured_s.to_numpy())
    n = len(CLASSES)
    lb = [0, 0.1, math.log(1e-2 * 1e6), 0.3, 1] + [math.log(1e-8)] * n + [0] * n + [1]
    ub = [50, 1, math.log(1e4 * 1e6), 1, 20] + [math.log(1e3)] * n + [50] * n + [20]
    x0 = np.clip(_vector(start or DEFAULT_PARAMS), np.array(lb) + 1e-9, np.array(ub) - 1e-9)

    def residual(x):
        return np.log(predict_operator_times(costs, device, _params(x))) - y

    r = least_squares(residual, x0, bounds=(lb, ub), loss="soft_l1", f_scale=0.1)
    return _params(r.x)


def _ape_summary(ape: np.ndarray) -> dict:
    return {"median_ape": float(np.median(ape)), "p90_ape": float(np.quantile(ape, 0.9)), "operators": int(len(ape))}


FAST_MODELS = ["Llama-2-7b-hf", "phi-2", "CodeLlama-34b-Instruct-hf"]


def run_perf_model_validation(data_dir: Path | str | None = None, fast: bool = False) -> dict:
    """Fit on A100 operator measurements, predict H100 and A40; APE summaries as fractions.

    ``fast`` uses three models (Llama-2-7b, phi-2, CodeLlama-34b) for fitting and checking.
    """
    from aiinfra_pipelines.paths import shared_data_dir

    data_dir = Path(data_dir) if data_dir else shared_data_dir()
    if data_dir is None:
        raise FileNotFoundError("the public data folder is missing (set AIINFRA_DATA_DIR)")
    models = FAST_MODELS if fast else None
    devices = {g: Device.from_catalog(name) for g, name in VIDUR_GPUS.items()}
    a100 = load_operator_measurements(data_dir, "a100", models)
    params = fit_parameters(a100, devices["a100"])
    key = ["model", "op"] + SHAPE_COLUMNS
    base = operator_costs(a100)
    base["predicted_s"] = predict_operator_times(base, devices["a100"], params)
    base = base.drop_duplicates(subset=key)
    result = {"gpus": {}, "fitted_on": "a100", "fast": fast, "parameters": params,
              "fit_median_ape": float(np.median(np.abs(base.predicted_s / base.measured_s - 1)))}
    ratios = []
    for g in ("h100", "a40"):
        m = operator_costs(load_operator_measurements(data_dir, g, models))
        m["predicted_s"] = predict_operator_times(m, devices[g], params)
        ape = np.abs(m.predicted_s / m.measured_s - 1).to_numpy()
        is_mm = m.op.isin(MATMUL_OPS).to_numpy()
        summary = _ape_summary(ape)
        summary["matmul"] = _ape_summary(ape[is_mm])
        summary["memory_bound"] = _ape_summary(ape[~is_mm])
        summary["by_operator"] = {op: float(np.median(ape[m.op.to_numpy() == op])) for op in OPS if (m.op == op).any()}
        j = m.drop_duplicates(subset=key).merge(base[key + ["measured_s", "predicted_s"]], on=key, suffixes=("", "_a100"))
        sp = np.abs((j.predicted_s / j.predicted_s_a100) / (j.measured_s / j.measured_s_a100) - 1).to_numpy()
        summary["speedup_median_ape"] = float(np.median(sp))
        ratios.append(sp)
        result["gpus"][g] = summary
    result["speedup_median_ape"] = float(np.median(np.concatenate(ratios)))
    return result


# ----------------------------------------------------------------------------------------------
# collectives: all-reduce times measured in vidur_profiling/network

@functools.lru_cache(maxsize=8)
def allreduce_fit(data_dir: str | None = None, topology: str = "a100_dgx") -> tuple[float, float]:
    """(latency_s, bus_bandwidth_bytes_per_s) of ring all-reduce, fitted to the measured times.

    Fits t = alpha + 2 (n-1)/n * size / beta on the rows of ``network/<topology>/all_reduce.csv.gz``.
    Falls back to (2e-5 s, 150 GB/s) when the data folder is absent.
    """
    from aiinfra_pipelines.paths import shared_data_dir

    root = Path(data_dir) if data_dir else shared_data_dir()
    f = root / "accelerator_perf" / "vidur_profiling" / "network" / topology / "all_reduce.csv.gz" if root else None
    if f is None or not f.exists():
        return 2e-5, 150e9
    df = pd.read_csv(f)
    df = df[df.num_workers > 1]
    x = 2 * (df.num_workers - 1) / df.num_workers * df["size"]
    t = df["time_stats.all_reduce.median"] * 1e-3
    A = np.vstack([np.ones(len(x)), x]).T
    (alpha, inv_beta), *_ = np.linalg.lstsq(A, t.to_numpy(), rcond=None)
    return max(float(alpha), 1e-6), 1.0 / max(float(inv_beta), 1e-15)


def allreduce_time(size_bytes: float, n_devices: int, device: Device | None = None, *, inter_node: bool = False) -> float:
    """Seconds for one all-reduce of ``size_bytes`` over ``n_devices`` (0 for one device)."""
    if n_devices <= 1:
        return 0.0
    topology = "h100_dgx" if device is not None and device.name.startswith("H") else "a100_dgx"
    alpha, beta = allreduce_fit(None, topology)
    if device is not None and device.link_bandwidth and topology == "a100_dgx":
        beta = beta * min(device.link_bandwidth / 300e9, 1.5)  # scale the A100 NVLink fit by the device's link speed
    if inter_node:
        beta = min(beta, 12.5e9)  # 100 Gb/s class network between nodes
    return alpha + 2 * (n_devices - 1) / n_devices * size_bytes / beta


# ----------------------------------------------------------------------------------------------
# workload-level predictions

def _roofline(flops: float, nbytes: float, device: Device, tokens: float, params: dict | None = None) -> float:
    p = params or DEFAULT_PARAMS
    s = p["sharpness"]
    tc = flops / (device.peak_flops * p["matmul_peak_efficiency"] * (tokens / (tokens + p["matmul_half_tokens"])))
    tm = nbytes / (device.bandwidth * p["bandwidth_efficiency"])
    return (tc ** s + tm ** s) ** (1 / s)


def predict_training_step(workload: dict, accelerator: str | Device, *, n_devices: int = 1, batch_size: int = 64,
                          data_read_bytes_per_s: float | None = None, catalog=None, inter_node: bool = False,
                          kernels_per_step: int | None = None, params: dict | None = None) -> dict:
    """Predicted seconds per training step (data parallel over ``n_devices``).

    ``workload``: ``flops_per_sample`` (forward+backward), ``bytes_per_sample`` (activations moved),
    ``parameters``, optional ``sample_bytes`` (input bytes read per sample).
    The step is the larger of compute and data loading (prefetching overlaps them), plus the gradient
    all-reduce (fp16 gradients) and a fixed per-kernel overhead.
    """
    dev = accelerator if isinstance(accelerator, Device) else Device.from_catalog(accelerator, catalog)
    p = params or DEFAULT_PARAMS
    per_dev = max(batch_size / n_devices, 1.0)
    flops = workload["flops_per_sample"] * per_dev
    params_n = float(workload.get("parameters") or 0)
    nbytes = workload.get("bytes_per_sample", 0.0) * per_dev + 3 * 2 * params_n  # weights read, grads written, optimizer
    compute = _roofline(flops, nbytes, dev, per_dev * workload.get("tokens_per_sample", 1), p)
    kernels = kernels_per_step or max(30, int(6 * math.log2(max(params_n, 2))))
    overhead = kernels * p["matmul_overhead_us"] * 1e-6 * REF_CLOCK_GHZ / dev.clock_ghz
    comm = allreduce_time(2 * params_n, n_devices, dev, inter_node=inter_node)
    load = 0.0
    if data_read_bytes_per_s:
        load = workload.get("sample_bytes", 0.0) * batch_size / data_read_bytes_per_s
    step = max(compute + overhead, load) + comm
    return {"step_s": step, "compute_s": compute, "overhead_s": overhead, "allreduce_s": comm, "data_load_s": load,
            "accelerator": dev.name, "n_devices": n_devices}


def predict_inference(workload: dict, accelerator: str | Device, *, prompt_tokens: int = 1024, output_tokens: int = 128,
                      batch_size: int = 1, catalog=None, params: dict | None = None) -> dict:
    """Time to first token (prefill of the prompt) and per-token decode latency for one replica.

    ``workload``: ``parameters`` (weights, fp16) and optionally ``flops_per_token`` (default 2 x parameters),
    ``flops_per_request`` for non-token models (then ``prompt_tokens`` = ``output_tokens`` = 1).
    """
    dev = accelerator if isinstance(accelerator, Device) else Device.from_catalog(accelerator, catalog)
    params_n = float(workload.get("parameters") or 0)
    weights = 2 * params_n
    fpt = workload.get("flops_per_token") or (2 * params_n if params_n else workload.get("flops_per_request", 0.0))
    ttft = _roofline(fpt * prompt_tokens * batch_size, weights + 4 * prompt_tokens * batch_size * math.sqrt(max(params_n, 1)),
                     dev, prompt_tokens * batch_size, params)
    kv_bytes = 2 * 2 * batch_size * (prompt_tokens + output_tokens / 2) * (params_n ** 0.5) * 8  # ~ layers*hidden
    tpot = _roofline(fpt * batch_size, weights + kv_bytes, dev, batch_size, params)
    latency = ttft + tpot * max(output_tokens - 1, 0)
    return {"ttft_s": ttft, "tpot_s": tpot, "latency_s": latency, "throughput_rps": batch_size / latency,
            "accelerator": dev.name, "batch_size": batch_size}
