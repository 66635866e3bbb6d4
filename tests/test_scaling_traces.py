"""Trace loaders on the real public traces, and errors that name the line and the column."""

from __future__ import annotations

import numpy as np
import pytest

from aiinfra_pipelines.scaling.traces import Trace, TraceError, load_trace


@pytest.fixture(scope="module")
def traces_dir(shared_data):
    return shared_data / "inference_traces"


def test_azure_conv_loads_every_request_sorted_from_zero(traces_dir):
    t = load_trace(traces_dir / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv", "azure")
    df = t.df
    assert len(t) == 19366
    assert df["arrival_s"].iloc[0] == 0.0
    assert np.all(np.diff(df["arrival_s"].to_numpy()) >= 0)
    assert 58 * 60 < t.duration_s < 59 * 60  # 18:15:46 -> 19:14:08
    assert df["input_tokens"].mean() == pytest.approx(1155, rel=0.01)
    assert df["output_tokens"].mean() == pytest.approx(211, rel=0.01)
    assert df["work_s"].isna().all()


def test_alibaba_lora_keeps_requests_that_ran(traces_dir):
    path = traces_dir / "alibaba_genai_2026" / "lora_request_trace.csv"
    t = load_trace(path, "alibaba-lora")
    import pandas as pd

    raw = pd.read_csv(path)
    ran = raw["predict_status"].isin(["SUCCEED", "FAILED"])
    assert len(t) == int(ran.sum()) and len(t) < len(raw)
    assert t.df["work_s"].sum() == pytest.approx(raw.loc[ran, "exec_time_seconds"].sum())
    assert 22 * 86400 < t.duration_s < 24 * 86400


def test_time_and_rate_scaling(traces_dir):
    path = traces_dir / "azure_llm_2023" / "AzureLLMInferenceTrace_code.csv"
    base = load_trace(path, "azure")
    fast = load_trace(path, "azure", time_scale=2.0)
    assert fast.duration_s == pytest.approx(base.duration_s / 2)
    window = load_trace(path, "azure", start_s=600, duration_s=300)
    assert window.df["arrival_s"].max() < 300
    assert len(window) == int(((base.df["arrival_s"] >= 600) & (base.df["arrival_s"] < 900)).sum())
    double = load_trace(path, "azure", rate_scale=2.0, seed=1)
    assert len(double) == 2 * len(base)
    half = load_trace(path, "azure", rate_scale=0.5, seed=1)
    assert abs(len(half) - len(base) / 2) < 4 * np.sqrt(len(base))


def test_generic_tokens_and_work(tmp_path):
    p = tmp_path / "tokens.csv"
    p.write_text("timestamp_s,input_tokens,output_tokens\n10.5,100,20\n10.0,50,5\n")
    t = load_trace(p, "generic")
    assert t.df["arrival_s"].tolist() == [0.0, 0.5]  # sorted, re-based
    assert t.df["input_tokens"].tolist() == [50, 100]
    w = tmp_path / "work.csv"
    w.write_text("timestamp_s,work_s\n0,1.5\n2,0.25\n")
    assert load_trace(w, "generic").df["work_s"].tolist() == [1.5, 0.25]


@pytest.mark.parametrize("body,line,column", [
    ("timestamp_s,input_tokens,output_tokens\n0,10,5\n1,ten,5\n", 3, "input_tokens"),
    ("timestamp_s,input_tokens,output_tokens\n0,10,5\n1,10,5\n-2,1,1\n", 4, "timestamp_s"),
    ("timestamp_s,input_tokens,output_tokens\n0,10,5.5\n", 2, "output_tokens"),
    ("timestamp_s,input_tokens\n0,10\n", 1, "output_tokens"),
])
def test_bad_generic_file_names_line_and_column(tmp_path, body, line, column):
    p = tmp_path / "bad.csv"
    p.write_text(body)
    with pytest.raises(TraceError) as e:
        load_trace(p, "generic")
    assert e.value.line == line and e.value.column == column
    assert f"line {line}" in str(e.value) and repr(column) in str(e.value) and "bad.csv" in str(e.value)


def test_bad_azure_timestamp_names_line_and_column(tmp_path, traces_dir):
    src = (traces_dir / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv").read_text().splitlines()
    src[5] = "not-a-time," + src[5].split(",", 1)[1]
    p = tmp_path / "azure.csv"
    p.write_text("\n".join(src[:50]) + "\n")
    with pytest.raises(TraceError, match=r"line 6, column 'TIMESTAMP'"):
        load_trace(p, "azure")


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(TraceError, match="file not found"):
        load_trace(tmp_path / "nope.csv", "azure")
    with pytest.raises(ValueError, match="format"):
        load_trace(tmp_path / "nope.csv", "parquet")


def test_split_is_by_time_and_rebased(traces_dir):
    t = load_trace(traces_dir / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv", "azure")
    a, b = t.split(0.5)
    assert len(a) + len(b) == len(t)
    assert a.df["arrival_s"].max() < t.duration_s / 2 <= b.df["arrival_s"].min() + t.duration_s / 2
    assert b.df["arrival_s"].min() >= 0


def test_from_frame_rejects_negative_values():
    import pandas as pd

    with pytest.raises(TraceError, match="column 'arrival_s'"):
        Trace.from_frame(pd.DataFrame({"arrival_s": [0.0, -1.0], "work_s": [1.0, 1.0]}))
