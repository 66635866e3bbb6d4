"""`aiinfra iterate` as a user runs it: two iterations in a row, then a bad spec that records nothing.

Real processes all the way: the CLI in a subprocess, with its own DAGSTER_HOME and state folder,
so the second call must find the first iteration's partition, proposal, Terraform state and
DuckDB history on disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import yaml

REPO = Path(__file__).resolve().parents[1]
NINE = ["hardware_plan", "infrastructure", "iteration_report", "retuning_proposal", "run_metrics",
        "scaling_policy", "telemetry_stack", "workload_profile", "workload_run"]


def _cli(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    aiinfra = Path(sys.executable).with_name("aiinfra")
    return subprocess.run([str(aiinfra), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=400)


def _env(tmp: Path) -> dict:
    env = dict(os.environ)
    env.update(AIINFRA_HOME=str(tmp / "state"), DAGSTER_HOME=str(tmp / "dagster_home"))
    return env


def test_iterate_json_twice_is_the_next_iteration(tmp_path, short_spec):
    env, spec = _env(tmp_path), short_spec
    results = []
    for expected in ("0001", "0002"):
        proc = _cli(["iterate", "--target", "local", "--spec", str(spec), "--json"], env, tmp_path)
        assert proc.returncode == 0, proc.stderr[-4000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        assert out["iteration"] == expected
        assert out["materialized"] == NINE
        for key in ("cost_per_epoch_usd", "cost_per_1k_requests_usd", "slo_attainment", "p99_latency_s"):
            assert isinstance(out[key], float) and out[key] > 0, key
        assert out["proposal"]["source_iteration"] == expected
        results.append(out)
    # the second iteration ran with the first one's proposal
    assert results[1]["policy_source"] == "proposal from iteration 0001"

    con = duckdb.connect(str(tmp_path / "state" / "aiinfra.duckdb"), read_only=True)
    iterations = [r[0] for r in con.execute("SELECT iteration FROM iterations ORDER BY 1").fetchall()]
    per_iter = dict(con.execute("SELECT iteration, count(*) FROM telemetry_series GROUP BY 1").fetchall())
    con.close()
    assert iterations == ["0001", "0002"]
    assert per_iter["0001"] > 0 and per_iter["0002"] > 0
    # Terraform state of the deployment persisted between the two runs
    assert list((tmp_path / "state" / "terraform" / "local").rglob("terraform.tfstate"))


def test_iterate_with_bad_spec_names_fields_and_records_nothing(tmp_path, shared_data):
    env = _env(tmp_path)
    spec = yaml.safe_load((REPO / "examples" / "lifecycle.yaml").read_text())
    spec["traffic"]["trace"] = str(shared_data / "inference_traces/azure_llm_2023/AzureLLMInferenceTrace_conv.csv")
    spec["scaling"]["min_replicas"] = 5  # above max_replicas
    spec["training"]["epochs"] = 0
    spec["targets"]["latency_slo"]["p99_latency"] = 0.2  # misspelt field
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(spec))
    proc = _cli(["iterate", "--target", "local", "--spec", str(bad), "--json"], env, tmp_path)
    assert proc.returncode != 0
    assert "training.epochs" in proc.stderr
    assert "targets.latency_slo.p99_latency: unknown field" in proc.stderr
    assert "scaling" in proc.stderr and "min_replicas" in proc.stderr
    assert not (tmp_path / "state" / "aiinfra.duckdb").exists()
    assert not (tmp_path / "dagster_home").exists()  # refused before any partition was added
