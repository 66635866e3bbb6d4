import time

import pandas as pd
import pytest

from aiinfra_pipelines.planning.catalog import load_catalog, local_equivalent
from aiinfra_pipelines.planning.optimizer import pareto_frontier, plan_inference_mix, plan_storage, plan_training
from aiinfra_pipelines.planning.perf_model import Device, predict_inference, predict_training_step, run_perf_model_validation


def test_catalog_loads_and_filters_fast():
    t = time.perf_counter()
    cat = load_catalog()
    a100 = cat.filter(accelerator="A100", cloud="aws", max_price=50)
    assert time.perf_counter() - t < 2.0
    assert len(a100) > 0 and set(a100.cloud) == {"aws"} and (a100.price_per_hour <= 50).all()
    assert {"aws", "gcp", "azure"} <= set(cat.frame.cloud)
    assert cat.frame[cat.frame.accelerator == "tpu-v5e"].shape[0] > 0
    assert cat.snapshot == "2025-11-30"


def test_local_equivalent_is_at_least_as_large_and_cheapest():
    e = local_equivalent(4, 15.0)
    assert e.vcpus >= 4 and e.memory_gib >= 15 and e.accelerator is None
    df = load_catalog().frame
    same = df[df.accelerator.isna() & (df.vcpus == e.vcpus) & (df.memory_gib == e.memory_gib)]
    assert e.price_per_hour == pytest.approx(same.price_per_hour.min())


def test_roofline_known_answer_compute_bound():
    dev = Device("X", peak_tflops=100, bandwidth_gbps=1000)
    big = predict_training_step({"flops_per_sample": 1e12, "parameters": 1e6}, dev, batch_size=100)
    small = predict_training_step({"flops_per_sample": 1e12, "parameters": 1e6}, dev, batch_size=50)
    # by hand: 1e14 FLOP / (100 TFLOPS x 0.737 x 100/(100 + 18.3)) = 1.605 s (the weights' 6 MB are noise)
    assert big["compute_s"] == pytest.approx(1e14 / (100e12 * 0.737 * 100 / 118.3), rel=0.01)
    # and 5e13 FLOP at 50/(50 + 18.3) of the efficiency: 0.927 s
    assert small["compute_s"] == pytest.approx(5e13 / (100e12 * 0.737 * 50 / 68.3), rel=0.01)


def test_inference_decode_is_memory_bound():
    a = predict_inference({"parameters": 7e9}, "A100-80GB", prompt_tokens=1000, output_tokens=100)
    h = predict_inference({"parameters": 7e9}, "H100", prompt_tokens=1000, output_tokens=100)
    assert 0.005 < a["tpot_s"] < 0.02  # 14 GB of weights at ~1.8 TB/s
    assert h["tpot_s"] < a["tpot_s"] and h["ttft_s"] < a["ttft_s"]


def _tiny_catalog():
    return pd.DataFrame([
        dict(cloud="aws", region="r1", instance_type="slow", accelerator="A10G", accelerator_count=1.0, vcpus=8.0,
             memory_gib=32.0, price_per_hour=1.0, spot_price_per_hour=None, spot_interruption_rate=None),
        dict(cloud="aws", region="r1", instance_type="fast", accelerator="H100", accelerator_count=1.0, vcpus=26.0,
             memory_gib=200.0, price_per_hour=10.0, spot_price_per_hour=None, spot_interruption_rate=None),
    ])


def test_training_deadline_and_budget_choices():
    w = {"flops_per_sample": 1e12, "parameters": 1e8}
    args = dict(epochs=1, batch_size=64, samples_per_epoch=1e5, node_counts=(1,), allow_spot=False)
    free = plan_training(w, _tiny_catalog(), **args)
    assert free["chosen"]["instance_type"] in ("slow", "fast")
    slow = [r for r in free["rows"] if r["instance_type"] == "slow"][0]
    fast = [r for r in free["rows"] if r["instance_type"] == "fast"][0]
    assert fast["training_time_s"] < slow["training_time_s"]
    dl = plan_training(w, _tiny_catalog(), deadline_s=(slow["training_time_s"] + fast["training_time_s"]) / 2, **args)
    assert dl["chosen"]["instance_type"] == "fast"
    bud = plan_training(w, _tiny_catalog(), budget_usd=min(slow["training_cost_usd"], fast["training_cost_usd"]) * 1.0001, **args)
    assert bud["chosen"]["training_cost_usd"] <= min(slow["training_cost_usd"], fast["training_cost_usd"]) * 1.0001


def test_pareto_frontier_known_answer():
    rows = [{"training_time_s": 1, "training_cost_usd": 10}, {"training_time_s": 2, "training_cost_usd": 5},
            {"training_time_s": 3, "training_cost_usd": 7}, {"training_time_s": 4, "training_cost_usd": 1}]
    assert [r["training_time_s"] for r in pareto_frontier(rows)] == [1, 2, 4]


def test_inference_mix_beats_single_type_on_granularity():
    cap = pd.DataFrame([
        dict(cloud="aws", region="r", instance_type="big", accelerator="X", accelerators_per_node=1, spot=False,
             price_per_hour=10.0, rps=10.0, latency_s=0.1, vcpus=8, memory_gib=32),
        dict(cloud="aws", region="r", instance_type="small", accelerator="Y", accelerators_per_node=1, spot=False,
             price_per_hour=1.5, rps=1.0, latency_s=0.1, vcpus=2, memory_gib=8),
    ])
    cap["usd_per_rps_hour"] = cap.price_per_hour / cap.rps
    m = plan_inference_mix(cap, 12.0)
    # best single: 2 x big = $20; mix: 1 big + 2 small = $13
    assert m["best_single"]["cost_per_hour_usd"] == pytest.approx(18.0)  # 12 x small = $18 is the best single
    assert m["cost_per_hour_usd"] == pytest.approx(13.0)
    assert m["capacity_rps"] >= 12.0


def test_storage_tier_by_bandwidth_and_size():
    assert plan_storage(1e9, 1e8, node_memory_gib=64).tier == "memory"
    assert plan_storage(500e9, 1e8, node_memory_gib=64).tier == "nvme"
    s = plan_storage(500e9, 1e8, node_memory_gib=64)
    assert s.predicted_load_time_s == pytest.approx(500e9 / 2e9)


def test_perf_model_validation_fast_meets_targets(shared_data):
    r = run_perf_model_validation(shared_data, fast=True)
    assert r["fitted_on"] == "a100"
    for g in ("h100", "a40"):
        assert r["gpus"][g]["median_ape"] <= 0.15, r["gpus"][g]
        assert r["gpus"][g]["operators"] > 1000
    assert r["speedup_median_ape"] <= 0.10
