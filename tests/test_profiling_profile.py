"""The profiler on the real reference workload: phases, samples table, NVML presence, the CI gate."""

import json
import time

import pytest
from click.testing import CliRunner

from aiinfra_pipelines.cli.profile import profile as profile_cli
from aiinfra_pipelines.profiling import Profiler, compare_profiles, load_profile, phase, phased, profile_workload
from aiinfra_pipelines.profiling.bench import DEFAULT_SPEC, accounted_overhead
from aiinfra_pipelines.profiling.sampler import Nvml
from aiinfra_pipelines.spec import parse_spec
from aiinfra_pipelines.workloads.datasets import train_test_split
from aiinfra_pipelines.workloads.training import train

SPEC = parse_spec({**DEFAULT_SPEC, "training": {"epochs": 2, "batch_size": 64, "learning_rate": 0.05}}, source="<test>")


def test_phase_api_context_manager_and_decorator():
    with phase("nothing"):  # no active profiler: a no-op
        pass

    @phased("work")
    def work():
        time.sleep(0.02)

    with Profiler(sample_interval_s=None) as prof:
        with phase("block"):
            time.sleep(0.03)
        work()
        work()
    assert prof.phase_seconds["block"] >= 0.03
    assert prof.phase_seconds["work"] >= 0.04 and prof.phase_calls["work"] == 2
    assert "nothing" not in prof.phase_seconds


def test_profiler_on_reference_workload_phases_and_samples():
    split = train_test_split("digits", seed=0)
    with Profiler(sample_interval_s=0.05) as prof:
        r = train(SPEC, profiler=prof, split=split)
    ph = prof.phases()
    assert {"data_load", "forward", "backward", "optimizer"} <= set(ph)
    assert all(ph[k] > 0 for k in ("data_load", "forward", "backward", "optimizer"))
    # the four phases tile the training loop: their sum is the epochs' time, less the per-epoch bookkeeping
    assert 0.8 * r.total_seconds <= sum(ph[k] for k in ("data_load", "forward", "backward", "optimizer")) <= 1.01 * r.total_seconds
    s = prof.samples()
    assert list(s.columns) == ["ts", "source", "metric", "value", "labels"]
    metrics = set(s.metric)
    assert {"gpu_present", "process_rss_bytes", "epoch_seconds", "phase_seconds_total"} <= metrics
    gpu_present = s[s.metric == "gpu_present"].value.iloc[0]
    nv = Nvml.open()
    assert gpu_present == (len(nv.handles) if nv else 0)
    if nv is None:  # absent is recorded as absent, never as a zero utilisation
        assert "gpu_utilization" not in metrics and prof.sampler.mean_gpu_utilization() is None
    else:
        nv.close()
    assert (s[s.metric == "process_rss_bytes"].value > 1e6).all()


@pytest.fixture(scope="module")
def saved_profile(tmp_path_factory):
    d = tmp_path_factory.mktemp("profile")
    res = profile_workload(SPEC, d, sample_interval_s=0.1)
    path = d / "profile.json"
    path.write_text(res.profile.model_dump_json())
    return res, path


def test_profile_is_typed_and_consistent(saved_profile):
    res, path = saved_profile
    t = res.profile.training
    assert t is not None and res.profile.inference is None
    assert abs(sum(t.phases[k].share for k in ("data_load", "compute", "optimizer")) - 1) < 1e-6
    assert t.samples_per_s > 1000 and t.flops_per_sample > 0 and t.arithmetic_intensity > 0
    assert t.flops_source in ("derived", "measured") and t.peak_memory_bytes > 0
    assert t.io_read_bytes_per_s_needed == pytest.approx(t.samples_per_s * (64 * 4 + 8), rel=0.01)  # 64 fp32 pixels + label
    assert (res.profile.framework == "torch") == (t.torch_window is not None)
    assert load_profile(path).training.samples_per_s == t.samples_per_s


def test_baseline_gate_exit_status(saved_profile, tmp_path):
    _, path = saved_profile
    runner = CliRunner()
    same = runner.invoke(profile_cli, ["--profile", str(path), "--baseline", str(path)])
    assert same.exit_code == 0, same.output
    # a baseline that trained 30% faster: the new profile is a regression beyond the 10% tolerance
    base = json.loads(path.read_text())
    base["training"]["samples_per_s"] *= 1.3
    faster = tmp_path / "baseline.json"
    faster.write_text(json.dumps(base))
    bad = runner.invoke(profile_cli, ["--profile", str(path), "--baseline", str(faster), "--tolerance", "0.1"])
    assert bad.exit_code == 1
    regs = compare_profiles(load_profile(path), load_profile(faster), tolerance=0.1)
    assert [r.metric for r in regs] == ["training.samples_per_s"]
    ok = runner.invoke(profile_cli, ["--profile", str(path), "--baseline", str(faster), "--tolerance", "0.5"])
    assert ok.exit_code == 0


def test_always_on_parts_cost_under_one_percent_bottom_up():
    split = train_test_split("digits", seed=0)
    r = train(SPEC, epochs=2, split=split)
    cpu_sps = r.epochs[-1].samples / r.epochs[-1].seconds
    acc = accounted_overhead(SPEC, split, 0.25, 1.0, cpu_sps, calls=100)
    assert acc["accounted_overhead_ratio"] >= 0.99, acc


def test_torch_window_when_torch_is_installed(tmp_path):
    pytest.importorskip("torch")
    spec = parse_spec({**DEFAULT_SPEC, "model": {**DEFAULT_SPEC["model"], "framework": "torch"},
                       "training": {"epochs": 1, "batch_size": 64, "learning_rate": 0.05}}, source="<test>")
    res = profile_workload(spec, tmp_path, sample_interval_s=0.1)
    tw = res.profile.training.torch_window
    assert tw is not None and tw.error is None and tw.operators and tw.overhead_ratio >= 0.5
