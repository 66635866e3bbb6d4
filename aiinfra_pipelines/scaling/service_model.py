"""Replica service models: how long one request occupies one batch slot of a replica.

The simulator (and its SimPy cross-check) treats a replica as ``max_batch_size`` batch
slots (continuous batching: a request joins the running batch as soon as a slot frees,
and leaves it when its last token is out). A service model turns each request of a trace
into two numbers:

* ``prefill_s``: time from taking a slot to the first token (prompt processing);
* ``service_s``: total time it holds the slot (prefill plus decode), ``>= prefill_s``.

Models:

* :class:`LLMServiceModel` — calibrated from vidur's measured per-operator GPU timings
  (``accelerator_perf/vidur_profiling/compute/<gpu>/<org>/<model>/mlp.csv.gz``).
  Method: the per-layer time of the linear operators (layer norms, QKV projection, RoPE,
  output projection, MLP up/act/down, residual add) is the sum of the profiled mean times,
  interpolated linearly in the number of tokens of the forward pass, times the number of
  layers. Attention kernels are not in the copied profile, so they are derived from it:
  prefill attention runs at the FLOP rate the profile measured for the QKV projection at
  its largest token count (causal ``2 * n^2 * d_model / tp`` FLOPs per layer), and decode
  attention reads the KV cache at the memory bandwidth the profile measured for the MLP
  up-projection at one token (where it is weight-read bound). A decode step is computed
  at the full batch (``max_batch_size`` sequences, each with the trace's mean context),
  which is the conservative end of continuous batching. Tensor-parallel all-reduce time
  is not added.
* :class:`FixedWorkServiceModel` — the request carries its own work (``work_s``, e.g.
  the Alibaba GenAI ``exec_time_seconds``); no separate first token (``prefill_s = service_s``).
* :class:`MeasuredServiceModel` — for the ``local`` target: a measured latency-by-batch
  curve ``[(batch_size, latency_s), ...]`` and an optional saturation throughput.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from aiinfra_pipelines.paths import shared_data_dir

if TYPE_CHECKING:  # pragma: no cover
    from aiinfra_pipelines.scaling.traces import Trace

# Number of transformer layers of the profiled models (public model configs).
MODEL_LAYERS = {
    "meta-llama/Llama-2-7b-hf": 32,
    "meta-llama/Llama-2-70b-hf": 80,
    "meta-llama/Meta-Llama-3-8B": 32,
    "meta-llama/Meta-Llama-3-70B": 80,
    "codellama/CodeLlama-34b-Instruct-hf": 48,
    "internlm/internlm-20b": 60,
    "Qwen/Qwen-72B": 80,
    "microsoft/phi-2": 32,
}
_LINEAR_OPS = (
    "input_layernorm",
    "attn_pre_proj",
    "attn_rope",
    "attn_post_proj",
    "post_attention_layernorm",
    "mlp_up_proj",
    "mlp_act",
    "mlp_down_proj",
    "add",
)


class ServiceModelError(ValueError):
    pass


@dataclass
class ServiceModel:
    """Base: ``max_batch_size`` slots per replica; subclasses map requests to slot times."""

    max_batch_size: int = 1

    def service_times(self, trace: "Trace") -> tuple[np.ndarray, np.ndarray]:
        """``(prefill_s, service_s)`` arrays aligned with ``trace.df``."""
        raise NotImplementedError

    def capacity_rps(self, trace: "Trace") -> float:
        """Requests per second one replica sustains at full batch on this trace's request mix."""
        _, s = self.service_times(trace)
        mean = float(np.mean(s)) if len(s) else 1.0
        return self.max_batch_size / max(mean, 1e-9)

    def describe(self) -> dict:
        return {"kind": type(self).__name__, "max_batch_size": self.max_batch_size}

    @staticmethod
    def from_measurements(
        points: Sequence[tuple[int, float]], *, saturation_rps: float | None = None, max_batch_size: int | None = None
    ) -> "MeasuredServiceModel":
        return MeasuredServiceModel.from_measurements(points, saturation_rps=saturation_rps, max_batch_size=max_batch_size)


@dataclass
class FixedWorkServiceModel(ServiceModel):
    """Each request holds a slot for its ``work_s`` (times ``work_scale``)."""

    work_scale: float = 1.0

    def service_times(self, trace: "Trace") -> tuple[np.ndarray, np.ndarray]:
        w = trace.df["work_s"].to_numpy(dtype=float)
        if np.isnan(w).any():
            raise ServiceModelError(f"trace {trace.source!r} has requests without work_s; use an LLM service model")
        s = np.maximum(w * self.work_scale, 0.0)
        return s.copy(), s

    def describe(self) -> dict:
        return {**super().describe(), "work_scale": self.work_scale}


@dataclass
class MeasuredServiceModel(ServiceModel):
    """A replica measured as a latency-by-batch curve (local target).

    A request holds a slot for ``latency(max_batch_size)`` (interpolated on the curve), or
    longer when the measured saturation throughput says the replica cannot finish
    ``max_batch_size`` requests that fast: ``max(latency(B), B / saturation_rps)``.
    The whole response arrives at once, so ``prefill_s = service_s``.
    """

    batch_sizes: tuple[int, ...] = (1,)
    latencies_s: tuple[float, ...] = (0.01,)
    saturation_rps: float | None = None

    @classmethod
    def from_measurements(
        cls, points: Sequence[tuple[int, float]], *, saturation_rps: float | None = None, max_batch_size: int | None = None
    ) -> "MeasuredServiceModel":
        pts = sorted((int(b), float(lat)) for b, lat in points)
        if not pts:
            raise ServiceModelError("points: need at least one (batch_size, latency_s) measurement")
        for b, lat in pts:
            if b < 1 or not (lat > 0 and math.isfinite(lat)):
                raise ServiceModelError(f"points: bad measurement (batch_size={b}, latency_s={lat})")
        if saturation_rps is not None and not saturation_rps > 0:
            raise ServiceModelError(f"saturation_rps must be > 0, got {saturation_rps}")
        mb = int(max_batch_size or pts[-1][0])
        return cls(
            max_batch_size=mb,
            batch_sizes=tuple(b for b, _ in pts),
            latencies_s=tuple(lat for _, lat in pts),
            saturation_rps=saturation_rps,
        )

    def slot_time_s(self) -> float:
        lat = float(np.interp(self.max_batch_size, self.batch_sizes, self.latencies_s))
        if len(self.batch_sizes) >= 2 and self.max_batch_size > self.batch_sizes[-1]:
            b0, b1 = self.batch_sizes[-2:]
            l0, l1 = self.latencies_s[-2:]
            lat = l1 + (l1 - l0) / (b1 - b0) * (self.max_batch_size - b1)
        if self.saturation_rps:
            lat = max(lat, self.max_batch_size / self.saturation_rps)
        return lat

    def service_times(self, trace: "Trace") -> tuple[np.ndarray, np.ndarray]:
        w = trace.df["work_s"].to_numpy(dtype=float)
        base = self.slot_time_s()
        s = np.where(np.isnan(w), base, np.maximum(w, 0.0))
        return s.copy(), s

    def describe(self) -> dict:
        return {**super().describe(), "slot_time_s": self.slot_time_s(), "saturation_rps": self.saturation_rps}


@dataclass
class LLMServiceModel(ServiceModel):
    """Prefill and decode times of a transformer replica from vidur operator profiles."""

    accelerator: str = "a100"
    model: str = "meta-llama/Llama-2-70b-hf"
    tensor_parallel: int = 4
    token_grid: np.ndarray = field(default_factory=lambda: np.array([1.0]), repr=False)
    layer_ms: np.ndarray = field(default_factory=lambda: np.array([1.0]), repr=False)
    n_layers: int = 32
    d_model: int = 4096
    kv_bytes_per_token_layer: float = 0.0  # per tensor-parallel shard
    attn_flops_per_s: float = 1e14
    mem_bytes_per_s: float = 1e12
    mean_context_tokens: float | None = None  # for the decode step; default: the trace's mean

    @classmethod
    def from_vidur(
        cls,
        accelerator: str = "a100",
        model: str = "meta-llama/Llama-2-70b-hf",
        *,
        tensor_parallel: int = 4,
        max_batch_size: int = 16,
        data_dir: Path | None = None,
    ) -> "LLMServiceModel":
        data_dir = Path(data_dir) if data_dir else shared_data_dir()
        if data_dir is None:
            raise ServiceModelError("the public data folder is missing (set AIINFRA_DATA_DIR)")
        path = data_dir / "accelerator_perf" / "vidur_profiling" / "compute" / accelerator.lower() / model / "mlp.csv.gz"
        if not path.is_file():
            raise ServiceModelError(f"no vidur profile for accelerator={accelerator!r} model={model!r} ({path})")
        if model not in MODEL_LAYERS:
            raise ServiceModelError(f"model: layer count of {model!r} unknown; known: {sorted(MODEL_LAYERS)}")
        df = pd.read_csv(path)
        df = df[df["num_tensor_parallel_workers"] == tensor_parallel].sort_values("num_tokens")
        if df.empty:
            raise ServiceModelError(f"tensor_parallel: {tensor_parallel} not profiled in {path}")
        df = df.groupby("num_tokens", as_index=False).mean(numeric_only=True)
        layer = sum(df[f"time_stats.{op}.mean"].to_numpy() for op in _LINEAR_OPS)
        row = df.iloc[-1]
        d = int(row["n_embd"])
        n_head, n_kv = int(row["n_head"]), int(row["n_kv_head"])
        head = d // n_head
        tp = tensor_parallel
        # achieved matmul FLOP rate: QKV projection at the largest profiled token count
        n_big = float(row["num_tokens"])
        qkv_flops = 2.0 * n_big * d * (d + 2 * n_kv * head) / tp
        attn_flops_per_s = qkv_flops / (float(row["time_stats.attn_pre_proj.mean"]) * 1e-3)
        # achieved memory bandwidth: MLP up-projection at one token reads its weights (fp16)
        r1 = df.iloc[0]
        gate = 2 if int(r1["use_gated_mlp"]) else 1
        up_bytes = 2.0 * d * int(r1["n_expanded_embd"]) * gate / tp
        mem_bytes_per_s = up_bytes / (float(r1["time_stats.mlp_up_proj.mean"]) * 1e-3)
        kv_bytes = 2.0 * 2.0 * n_kv * head / tp  # K and V, fp16, per token per layer per shard
        return cls(
            max_batch_size=max_batch_size,
            accelerator=accelerator.lower(),
            model=model,
            tensor_parallel=tp,
            token_grid=df["num_tokens"].to_numpy(dtype=float),
            layer_ms=np.asarray(layer, dtype=float),
            n_layers=MODEL_LAYERS[model],
            d_model=d,
            kv_bytes_per_token_layer=kv_bytes,
            attn_flops_per_s=attn_flops_per_s,
            mem_bytes_per_s=mem_bytes_per_s,
        )

    def _linear_s(self, n_tokens: np.ndarray) -> np.ndarray:
        n = np.asarray(n_tokens, dtype=float)
        g, t = self.token_grid, self.layer_ms
        inside = np.interp(n, g, t)
        # beyond the profiled range: extend with the per-token slope of the last two points
        slope = (t[-1] - t[-2]) / (g[-1] - g[-2]) if len(g) > 1 else t[-1] / g[-1]
        out = np.where(n > g[-1], t[-1] + slope * (n - g[-1]), inside)
        return out * 1e-3 * self.n_layers

    def prefill_s(self, prompt_tokens: np.ndarray) -> np.ndarray:
        p = np.maximum(np.asarray(prompt_tokens, dtype=float), 1.0)
        attn = self.n_layers * 2.0 * p * p * self.d_model / self.tensor_parallel / self.attn_flops_per_s
        return self._linear_s(p) + attn

    def decode_step_s(self, batch: int, context_tokens: float) -> float:
        lin = float(self._linear_s(np.array([batch]))[0])
        kv = self.n_layers * batch * context_tokens * self.kv_bytes_per_token_layer / self.mem_bytes_per_s
        return lin + kv

    def service_times(self, trace: "Trace") -> tuple[np.ndarray, np.ndarray]:
        df = trace.df
        p = df["input_tokens"].to_numpy(dtype=float)
        o = df["output_tokens"].to_numpy(dtype=float)
        ctx = self.mean_context_tokens
        if ctx is None:
            ctx = float(np.mean(p + o / 2.0)) if len(p) else 1.0
        pre = self.prefill_s(p)
        step = self.decode_step_s(self.max_batch_size, ctx)
        return pre, pre + np.maximum(o - 1.0, 0.0) * step

    def describe(self) -> dict:
        return {
            **super().describe(),
            "accelerator": self.accelerator,
            "model": self.model,
            "tensor_parallel": self.tensor_parallel,
            "prefill_1k_tokens_s": float(self.prefill_s(np.array([1024.0]))[0]),
            "decode_step_full_batch_s(ctx=1k)": self.decode_step_s(self.max_batch_size, 1024.0),
        }


def gpu_price_per_hour(accelerator: str, *, data_dir: Path | None = None) -> float:
    """Cheapest on-demand price of one GPU of this kind in the AWS catalog (per-second billing).

    ``Price / AcceleratorCount`` minimised over instance types and regions of
    ``instance_catalogs/aws_accelerator_instances_vantage_2025-11-30.csv``; falls back to the
    Lambda catalog for accelerators AWS does not list.
    """
    data_dir = Path(data_dir) if data_dir else shared_data_dir()
    if data_dir is None:
        raise ServiceModelError("the public data folder is missing (set AIINFRA_DATA_DIR)")
    name = accelerator.upper()
    cat = data_dir / "instance_catalogs"
    for f in ("aws_accelerator_instances_vantage_2025-11-30.csv", "lambda_vms_skypilot_format.csv"):
        df = pd.read_csv(cat / f)
        rows = df[(df["AcceleratorName"].astype(str).str.upper() == name) & (df["Price"] > 0)]
        if not rows.empty:
            return float((rows["Price"] / rows["AcceleratorCount"].astype(float)).min())
    raise ServiceModelError(f"accelerator: {accelerator!r} has no price in the instance catalogs; pass a price")
