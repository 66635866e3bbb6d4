"""`aiinfra bench autoscaling` end to end in a subprocess, on a generic CSV cut from the real
Azure conversation trace: the JSON report's shape and consistency, the plot, and a bad file's
error naming its line and column."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aiinfra_pipelines.scaling.traces import load_trace

pytestmark = pytest.mark.timeout(300)

FAMILIES = ("static", "reactive", "predictive", "hybrid", "clairvoyant")
METRICS = ("cost_per_1k_requests", "slo_attainment", "p99_ttft_s", "mean_utilization", "scale_up_response_s",
           "cost_vs_static", "cost_vs_clairvoyant")


def _aiinfra(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("aiinfra")
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=280)


@pytest.fixture(scope="module")
def generic_csv(shared_data, tmp_path_factory):
    trace = load_trace(shared_data / "inference_traces/azure_llm_2023/AzureLLMInferenceTrace_conv.csv", "azure",
                       start_s=0, duration_s=1500)
    path = tmp_path_factory.mktemp("bench") / "conv_25min.csv"
    df = trace.df.rename(columns={"arrival_s": "timestamp_s"})[["timestamp_s", "input_tokens", "output_tokens"]]
    df.to_csv(path, index=False)
    return path, len(df)


def test_bench_autoscaling_json_and_plot(generic_csv, tmp_path):
    path, n = generic_csv
    plot = tmp_path / "load.png"
    p = _aiinfra("bench", "autoscaling", "--trace", str(path), "--format", "generic", "--json", "--plot", str(plot),
                 cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    report = json.loads(p.stdout.strip().splitlines()[-1])
    assert report["requests"] == n and report["trace"] == str(path)
    for fam in FAMILIES:
        pol = report["policies"][fam]
        assert all(k in pol for k in METRICS), (fam, sorted(pol))
        if pol["cost_per_1k_requests"] is not None:
            assert pol["cost_per_1k_requests"] > 0 and 0 <= pol["slo_attainment"] <= 1
    static = report["policies"]["static"]["cost_per_1k_requests"]
    ref = report["policies"]["clairvoyant"]["cost_per_1k_requests"]
    for fam in FAMILIES:
        c = report["policies"][fam]["cost_per_1k_requests"]
        if c is not None:
            assert report["policies"][fam]["cost_vs_static"] == pytest.approx(c / static, rel=1e-6)
            assert report["policies"][fam]["cost_vs_clairvoyant"] == pytest.approx(c / ref, rel=1e-6)
    rec = report["recommended"]
    assert rec["family"] in FAMILIES[:4]
    assert rec["params"] == report["policies"][rec["family"]]["params"]
    # the targets are computed from the figures, not asserted by the benchmark
    mine = report["policies"][rec["family"]]
    assert rec["targets"]["meets_slo"] == (mine["slo_attainment"] >= 0.99)
    assert rec["targets"]["le_static"] == (mine["cost_per_1k_requests"] <= static + 1e-9)
    sim = report["simulator"]
    assert sim["seconds_per_policy"] > 0 and sim["simpy_speed_ratio"] > 1
    assert sim["simpy_max_rel_diff"] <= 0.01
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_autoscaling_bad_file_names_line_and_column(generic_csv, tmp_path):
    path, _ = generic_csv
    lines = path.read_text().splitlines()
    lines[5] = lines[5].split(",")[0] + ",many,12"
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    p = _aiinfra("bench", "autoscaling", "--trace", str(bad), "--format", "generic", "--json", cwd=tmp_path)
    assert p.returncode != 0
    assert "line 6" in p.stderr and "input_tokens" in p.stderr, p.stderr
