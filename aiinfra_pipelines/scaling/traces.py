"""Request-trace loaders: Azure LLM 2023, Alibaba GenAI LoRA, and a generic CSV.

Every loader returns a :class:`Trace`: a DataFrame with ``arrival_s`` (float seconds from 0,
sorted), ``input_tokens`` / ``output_tokens`` (ints; 0 for fixed-work traces) and
``work_s`` (float seconds of service, NaN for token traces).

Formats:

* ``azure``: ``TIMESTAMP,ContextTokens,GeneratedTokens`` (Azure LLM inference trace 2023).
* ``alibaba-lora``: Alibaba GenAI ``lora_request_trace.csv`` (``gmt_create`` 1-s timestamps,
  ``exec_time_seconds``); rows whose ``predict_status`` is ``SUCCEED`` or ``FAILED`` are
  kept (both used the GPU); ``PENDING``/``PROCESSING`` rows carry no execution time.
* ``generic``: ``timestamp_s,input_tokens,output_tokens`` or ``timestamp_s,work_s``
  (seconds, any origin; rows need not be sorted).

Options: ``start_s`` (offset into the trace, trace seconds), ``time_scale`` (trace seconds
per output second: output arrival = (t - start_s) / time_scale; ``work_s`` is not scaled),
``duration_s`` (length kept, output seconds), ``rate_scale`` (multiplies the arrival rate:
each request is kept ``floor(rate_scale)`` times plus once more with probability equal to
the fractional part, seeded; copies are spread uniformly within +-0.5 s of the original).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

FORMATS = ("azure", "alibaba-lora", "generic")
COLUMNS = ["arrival_s", "input_tokens", "output_tokens", "work_s"]


class TraceError(ValueError):
    """A trace file that cannot be read; the message names the file, line and column."""

    def __init__(self, path, message: str, *, line: int | None = None, column: str | None = None):
        self.path, self.line, self.column = str(path), line, column
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {message}")


@dataclass
class Trace:
    df: pd.DataFrame
    source: str = ""
    format: str = "generic"

    def __len__(self) -> int:
        return len(self.df)

    @property
    def duration_s(self) -> float:
        return float(self.df["arrival_s"].iloc[-1]) if len(self.df) else 0.0

    @classmethod
    def from_frame(cls, df: pd.DataFrame, *, source: str = "frame", format: str = "generic") -> "Trace":
        """A trace from a frame with ``arrival_s`` and either token columns or ``work_s``
        (e.g. an observed request log: arrival time and measured service time)."""
        if "arrival_s" not in df.columns:
            raise TraceError(source, "missing column", column="arrival_s")
        out = pd.DataFrame({"arrival_s": pd.to_numeric(df["arrival_s"], errors="coerce").astype(float)})
        for c in ("input_tokens", "output_tokens"):
            out[c] = pd.to_numeric(df[c], errors="coerce") if c in df.columns else 0
        out["work_s"] = pd.to_numeric(df["work_s"], errors="coerce").astype(float) if "work_s" in df.columns else np.nan
        for c in ("arrival_s", "input_tokens", "output_tokens"):
            bad = out[c].isna() | (out[c] < 0)
            if bad.any():
                raise TraceError(source, f"not a non-negative number: {df[c].iloc[int(np.argmax(bad.to_numpy()))]!r}",
                                 line=int(np.argmax(bad.to_numpy())), column=c)
        if ("input_tokens" not in df.columns) and out["work_s"].isna().any():
            i = int(np.argmax(out["work_s"].isna().to_numpy()))
            raise TraceError(source, "need work_s or input_tokens/output_tokens", line=i, column="work_s")
        return cls(_finish(out), source=source, format=format)

    def split(self, fraction: float = 0.5) -> tuple["Trace", "Trace"]:
        """Split by time: requests before ``fraction`` of the span, and the rest (re-based to 0)."""
        if not 0 < fraction < 1:
            raise ValueError(f"split fraction must be in (0, 1), got {fraction}")
        cut = self.duration_s * fraction
        a = self.df[self.df["arrival_s"] < cut]
        b = self.df[self.df["arrival_s"] >= cut].copy()
        b["arrival_s"] -= cut
        return (Trace(a.reset_index(drop=True), self.source + f"[:{fraction:g}]", self.format),
                Trace(b.reset_index(drop=True), self.source + f"[{fraction:g}:]", self.format))


def _finish(df: pd.DataFrame, rebase: bool = True) -> pd.DataFrame:
    df = df.sort_values("arrival_s", kind="mergesort").reset_index(drop=True)
    if rebase and len(df):
        df["arrival_s"] = df["arrival_s"] - df["arrival_s"].iloc[0]
    df["input_tokens"] = df["input_tokens"].astype(np.int64)
    df["output_tokens"] = df["output_tokens"].astype(np.int64)
    df["work_s"] = df["work_s"].astype(float)
    return df[COLUMNS]


def _read_csv(path: Path, required: list[str]) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise TraceError(path, "file not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise TraceError(path, f"not a readable CSV ({e})") from None
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise TraceError(path, f"missing column(s); header has {list(raw.columns)}", line=1, column=missing[0])
    return raw


def _numeric(path: Path, raw: pd.DataFrame, col: str, *, integer: bool = False, mask=None) -> pd.Series:
    s = raw[col].str.strip()
    v = pd.to_numeric(s, errors="coerce")
    bad = v.isna() | (v < 0)
    if integer:
        bad |= (v % 1 != 0)
    if mask is not None:
        bad &= mask
    if bad.any():
        i = int(np.argmax(bad.to_numpy()))
        what = "a non-negative integer" if integer else "a non-negative number"
        raise TraceError(path, f"expected {what}, got {raw[col].iloc[i]!r}", line=i + 2, column=col)
    return v


def _timestamps(path: Path, raw: pd.DataFrame, col: str, fmt: str | None) -> pd.Series:
    ts = pd.to_datetime(raw[col].str.strip(), errors="coerce", format=fmt)
    if ts.isna().any():
        i = int(np.argmax(ts.isna().to_numpy()))
        raise TraceError(path, f"not a timestamp: {raw[col].iloc[i]!r}", line=i + 2, column=col)
    return (ts - ts.min()).dt.total_seconds()


def _load_azure(path: Path) -> pd.DataFrame:
    raw = _read_csv(path, ["TIMESTAMP", "ContextTokens", "GeneratedTokens"])
    t = _timestamps(path, raw, "TIMESTAMP", "ISO8601")
    return pd.DataFrame({
        "arrival_s": t,
        "input_tokens": _numeric(path, raw, "ContextTokens", integer=True),
        "output_tokens": _numeric(path, raw, "GeneratedTokens", integer=True),
        "work_s": np.nan,
    })


def _load_alibaba(path: Path) -> pd.DataFrame:
    raw = _read_csv(path, ["gmt_create", "predict_status", "exec_time_seconds"])
    keep = raw["predict_status"].str.strip().isin(["SUCCEED", "FAILED"])
    t = _timestamps(path, raw, "gmt_create", "%Y-%m-%d %H:%M:%S")
    w = _numeric(path, raw, "exec_time_seconds", mask=keep)
    df = pd.DataFrame({"arrival_s": t, "input_tokens": 0, "output_tokens": 0, "work_s": w})
    return df[keep.to_numpy()]


def _load_generic(path: Path) -> pd.DataFrame:
    raw = _read_csv(path, ["timestamp_s"])
    t = _numeric(path, raw, "timestamp_s")
    t = t - t.min()  # any origin: seconds from the first arrival, like the other formats
    if "work_s" in raw.columns:
        return pd.DataFrame({"arrival_s": t, "input_tokens": 0, "output_tokens": 0, "work_s": _numeric(path, raw, "work_s")})
    for c in ("input_tokens", "output_tokens"):
        if c not in raw.columns:
            raise TraceError(path, "generic traces need work_s or input_tokens and output_tokens", line=1, column=c)
    return pd.DataFrame({
        "arrival_s": t,
        "input_tokens": _numeric(path, raw, "input_tokens", integer=True),
        "output_tokens": _numeric(path, raw, "output_tokens", integer=True),
        "work_s": np.nan,
    })


_LOADERS = {"azure": _load_azure, "alibaba-lora": _load_alibaba, "generic": _load_generic}


def load_trace(
    path,
    format: str,
    *,
    time_scale: float = 1.0,
    rate_scale: float = 1.0,
    start_s: float = 0.0,
    duration_s: float | None = None,
    seed: int = 0,
) -> Trace:
    """Load a trace file (see module doc for formats and options)."""
    path = Path(path)
    if format not in _LOADERS:
        raise ValueError(f"format: {format!r} is not one of {list(FORMATS)}")
    if not time_scale > 0:
        raise ValueError(f"time_scale must be > 0, got {time_scale}")
    if not rate_scale > 0:
        raise ValueError(f"rate_scale must be > 0, got {rate_scale}")
    if start_s < 0:
        raise ValueError(f"start_s must be >= 0, got {start_s}")
    if duration_s is not None and not duration_s > 0:
        raise ValueError(f"duration_s must be > 0, got {duration_s}")
    df = _LOADERS[format](path)
    if df.empty:
        raise TraceError(path, "no requests")
    t = (df["arrival_s"].to_numpy(dtype=float) - start_s) / time_scale
    keep = t >= 0
    if duration_s is not None:
        keep &= t < duration_s
    df = df[keep].copy()
    df["arrival_s"] = t[keep]
    if rate_scale != 1.0:
        rng = np.random.default_rng(seed)
        k = np.floor(rate_scale).astype(int) + (rng.random(len(df)) < (rate_scale % 1)).astype(int)
        df = df.loc[df.index.repeat(k)].copy()
        jitter = rng.uniform(-0.5, 0.5, len(df))
        first = ~df.index.duplicated(keep="first")
        df["arrival_s"] = np.maximum(df["arrival_s"].to_numpy() + np.where(first, 0.0, jitter), 0.0)
    if df.empty:
        raise TraceError(path, f"no requests in the window start_s={start_s}, duration_s={duration_s}")
    out = _finish(df, rebase=False)  # arrivals are already (t - start_s) / time_scale >= 0
    return Trace(out, source=str(path), format=format)
