"""The load generator replaying a slice of the real Azure conversation trace against a live
replica (every request recorded), requests that find no replica, and a workload process
that fails surfacing its log."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from aiinfra_pipelines.execution.loadgen import replay
from aiinfra_pipelines.execution.replicas import ReplicaSet
from aiinfra_pipelines.execution.runner import RunPlan
from aiinfra_pipelines.scaling.traces import load_trace
from aiinfra_pipelines.spec import load_spec

pytestmark = pytest.mark.timeout(90)

TIME_SCALE = 20.0  # 20 trace seconds per replayed second
DURATION_S = 3.0   # replayed seconds: the trace's first minute


@pytest.fixture(scope="module")
def conv_csv(shared_data):
    path = shared_data / "inference_traces" / "azure_llm_2023" / "AzureLLMInferenceTrace_conv.csv"
    assert path.exists(), path
    return path


def test_replays_a_slice_of_the_azure_conv_trace_and_records_every_request(model_path, conv_csv, tmp_path):
    trace = load_trace(conv_csv, "azure", time_scale=TIME_SCALE, duration_s=DURATION_S).df
    raw = pd.read_csv(conv_csv, nrows=len(trace) + 50)
    t = pd.to_datetime(raw["TIMESTAMP"])
    in_slice = raw[((t - t.iloc[0]).dt.total_seconds() / TIME_SCALE) < DURATION_S]
    # the slice is the trace's own first requests, in order, with their token counts
    assert len(trace) == len(in_slice) > 100
    assert trace["input_tokens"].tolist() == in_slice["ContextTokens"].tolist()
    assert trace["output_tokens"].tolist() == in_slice["GeneratedTokens"].tolist()

    replicas = ReplicaSet(model_path=model_path, workdir=tmp_path, max_batch_size=32)
    try:
        replicas.scale_to(2)
        replicas.wait_ready(2, timeout_s=30)
        result = replay(trace, replicas, request_timeout_s=20)
    finally:
        replicas.stop_all()
    req = result.requests.sort_values("request_id").reset_index(drop=True)
    assert req["request_id"].tolist() == list(range(len(trace)))
    assert (req["status"] == "ok").all(), req["status"].value_counts()
    assert set(req["replica"]) == {"replica-1", "replica-2"}
    assert req["input_tokens"].tolist() == trace["input_tokens"].tolist()
    # open loop: each request is scheduled at its trace time, measured from that time
    assert (req["arrival_s"] - result.started_at).to_numpy() == pytest.approx(trace["arrival_s"].to_numpy())
    assert (req["sent_s"] >= req["arrival_s"] - 1e-6).all()
    assert (req["latency_s"] >= req["service_s"]).all() and (req["service_s"] > 0).all()
    assert ((req["ttft_s"] > 0) & (req["ttft_s"] <= req["latency_s"] + 1e-6)).all()
    assert result.finished_at - result.started_at >= trace["arrival_s"].max()
    assert result.max_lateness_s < 0.5
    # the columns are those of the DuckDB `requests` table
    from aiinfra_pipelines.analytics.store import TABLES

    assert set(req.columns) <= {c for c, _ in TABLES["requests"]}


def test_requests_with_no_ready_replica_wait_then_fail_as_no_replica(model_path, tmp_path):
    replicas = ReplicaSet(model_path=model_path, workdir=tmp_path, max_batch_size=4)  # none started
    trace = pd.DataFrame({"arrival_s": [0.0, 0.05, 0.1], "input_tokens": [10, 20, 30], "output_tokens": [1, 2, 3]})
    result = replay(trace, replicas, request_timeout_s=0.3)
    req = result.requests.sort_values("request_id")
    assert req["status"].tolist() == ["no_replica"] * 3
    assert (req["latency_s"] >= 0.3).all() and req["replica"].isna().all()


def _write_plan(tmp_path, spec, **kw) -> tuple:
    plan = RunPlan(iteration="0001", iteration_dir=str(tmp_path / "it"), spec=spec.model_dump(mode="json"), **kw)
    path = tmp_path / "plan.json"
    path.write_text(plan.model_dump_json())
    return path, tmp_path / "runner.log"


def test_a_failing_workload_process_exits_nonzero_and_its_log_says_why(examples_dir, tmp_path):
    spec = load_spec(examples_dir / "inference.yaml")
    plan, log = _write_plan(tmp_path, spec)  # inference only, and no model from the profile stage
    out = subprocess.run([sys.executable, "-m", "aiinfra_pipelines.execution.runner", "--plan", str(plan),
                          "--log", str(log)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    text = log.read_text()
    assert "Traceback" in text and "an inference-only workload needs the model saved by the profile stage" in text
    assert not (tmp_path / "it" / "run" / "summary.json").exists()


def test_a_replica_that_cannot_start_fails_the_run_with_the_replicas_log(examples_dir, tmp_path):
    spec = load_spec(examples_dir / "inference.yaml")
    bad = tmp_path / "model.npz"
    bad.write_text("corrupt")
    plan, log = _write_plan(tmp_path, spec, model_path=str(bad))
    out = subprocess.run([sys.executable, "-m", "aiinfra_pipelines.execution.runner", "--plan", str(plan),
                          "--log", str(log)], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    text = log.read_text()
    assert "ReplicaStartError" in text and "replica-1 exited with" in text
    assert json.loads((tmp_path / "plan.json").read_text())["model_path"] == str(bad)
