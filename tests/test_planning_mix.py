"""The mix optimizer on small hand-checked catalogs: CPU helper nodes, LLM serving ILP, spot pricing."""

import numpy as np
import pandas as pd
import pytest

from aiinfra_pipelines.planning.optimizer import (
    PREPROCESS_VCPU_FRACTION,
    cpu_step_s,
    llm_replica_rps,
    plan_llm_serving,
    plan_training,
    request_buckets,
    spot_inflation,
)
from aiinfra_pipelines.planning.perf_model import Device


def _row(**kw):
    base = dict(cloud="aws", region="r1", accelerator=None, accelerator_count=0.0, vcpus=8.0, memory_gib=32.0,
                spot_price_per_hour=None, spot_interruption_rate=None)
    return {**base, **kw}


def test_cpu_helper_nodes_lift_an_input_bound_gpu():
    frame = pd.DataFrame([
        _row(instance_type="gpu", accelerator="H100", accelerator_count=1.0, vcpus=4.0, price_per_hour=10.0),
        _row(instance_type="cpu16", vcpus=16.0, price_per_hour=0.5),
    ])
    pre = 0.01  # 10 ms of one vCPU per sample
    w = {"flops_per_sample": 1e9, "parameters": 1e6, "preprocess_cpu_s_per_sample": pre}
    res = plan_training(w, frame, epochs=1, batch_size=256, samples_per_epoch=1e6, node_counts=(1,), allow_spot=False)
    gpu = [r for r in res["rows"] if r["instance_type"] == "gpu"]
    alone = [r for r in gpu if r["helper_nodes"] == 0][0]
    # by hand: 0.75 x 4 vCPUs / 10 ms = 300 samples/s feeds the GPU; 1e6 samples take 3333 s
    assert alone["input_bound"] and alone["epoch_time_s"] == pytest.approx(1e6 / (PREPROCESS_VCPU_FRACTION * 4 / pre))
    two = [r for r in gpu if r["helper_nodes"] == 2][0]
    # + 2 x 16 vCPUs: 300 + 2400 = 2700 samples/s; $10 + 2 x $0.5 per hour
    assert two["epoch_time_s"] == pytest.approx(1e6 / 2700)
    assert two["training_cost_usd"] == pytest.approx(11.0 * two["training_time_s"] / 3600)
    assert two["helper_instance_type"] == "cpu16"
    cpu = [r for r in res["rows"] if r["instance_type"] == "cpu16"][0]
    # CPU-only: every sample costs 1 GFLOP at 16 GFLOP/s per vCPU plus its preprocessing; a 256-sample
    # step takes 256 x 72.5 ms on one vCPU, and 1 ms of it stays serial over 16 vCPUs
    one = 256 * (1e9 / 16e9 + pre)
    assert cpu["epoch_time_s"] == pytest.approx(1e6 / 256 * (1e-3 + (one - 1e-3) / 16))
    fastest = min(res["rows"], key=lambda r: r["training_time_s"])
    assert fastest["helper_nodes"] > 0


def test_spot_interruption_is_priced_in():
    frame = pd.DataFrame([_row(instance_type="g", accelerator="A10G", accelerator_count=1.0, price_per_hour=1.0,
                               spot_price_per_hour=0.3, spot_interruption_rate=0.5)])
    res = plan_training({"flops_per_sample": 1e11, "parameters": 1e6}, frame, epochs=10, batch_size=64,
                        samples_per_epoch=1e5, node_counts=(1,))
    od = [r for r in res["rows"] if not r["spot"]][0]
    sp = [r for r in res["rows"] if r["spot"]][0]
    hours = od["training_time_s"] / 3600
    assert sp["training_time_s"] == pytest.approx(od["training_time_s"] * spot_inflation(hours, 0.5))
    assert sp["training_time_s"] > od["training_time_s"]
    # by hand: 0.5/730 interruptions per hour, each losing 0.1 h restart + 0.25 h of work
    assert spot_inflation(10.0, 0.5) == pytest.approx(1 + 10 * 0.5 / 730 * 0.35 / 10)


def test_llm_replica_memory_and_slo_bounds():
    w = {"parameters": 7e9, "kv_bytes_per_token": 524288}
    small = Device("S", 100, 300, hbm_gib=12)
    assert llm_replica_rps(w, small, 1, 1000, 200, 0.1, 2.0) == 0.0  # 14 GB of weights do not fit 0.9 x 12 GiB = 11.6 GB
    big = Device("B", 300, 2000, hbm_gib=80)
    r = llm_replica_rps(w, big, 1, 1000, 200, 0.1, 2.0)
    assert r > 0
    assert llm_replica_rps(w, big, 1, 1000, 200, 0.1, 1e-4) == 0.0  # TTFT SLO out of reach
    assert llm_replica_rps(w, big, 1, 1000, 200, 0.005, 2.0) == 0.0  # 14 GB per token at 2 TB/s > 5 ms


def test_llm_mix_never_costs_more_than_best_single_and_splits_by_size():
    # two GPU types: a small cheap one that only holds short contexts, and a large one that holds all
    frame = pd.DataFrame([
        _row(instance_type="small", accelerator="A10G", accelerator_count=1.0, price_per_hour=1.0),
        _row(instance_type="large", accelerator="A100-80GB", accelerator_count=1.0, price_per_hour=4.0),
    ])
    rng = np.random.default_rng(0)
    i = np.concatenate([rng.integers(50, 250, 900), rng.integers(4200, 8000, 100)])
    o = np.concatenate([rng.integers(20, 120, 900), rng.integers(600, 900, 100)])
    b = request_buckets(i, o, 20.0)
    assert b.rate_rps.sum() == pytest.approx(20.0)
    w = {"parameters": 6.74e9, "kv_bytes_per_token": 524288}
    r = plan_llm_serving(w, frame, b)
    assert r["cost_per_hour_usd"] <= r["best_single"]["cost_per_hour_usd"] + 1e-9
    # long requests only fit the large GPU's memory
    long_bucket = [k for k in range(len(b)) if b.input_tokens.iloc[k] > 4000]
    assert long_bucket
    types = {m["instance_type"] for m in r["mix"]}
    assert "large" in types
    assert r["best_single"]["instance_type"] == "large"


def test_fastest_within_budget_takes_the_cheapest_of_equally_fast_plans():
    # a tiny model: a 64-sample step takes 64 ms on one vCPU, 1 ms of it serial; 96 vCPUs make it
    # 1.66 ms, but both plans finish within a minute and bill the one-minute minimum, so the budget
    # objective takes the cheaper one.
    frame = pd.DataFrame([
        _row(instance_type="cpu2", vcpus=2.0, price_per_hour=0.05),
        _row(instance_type="cpu96", vcpus=96.0, price_per_hour=3.0),
    ])
    w = {"flops_per_sample": 1e6, "parameters": 1e5}
    res = plan_training(w, frame, epochs=3, batch_size=64, samples_per_epoch=1e4, budget_usd=100.0,
                        cpu_samples_per_s_per_vcpu=1e3, node_counts=(1,), allow_spot=False)
    by_type = {r["instance_type"]: r for r in res["rows"]}
    assert cpu_step_s(0.064, 96) == pytest.approx(0.001 + 0.063 / 96)
    assert by_type["cpu96"]["epoch_time_s"] == pytest.approx(1e4 / 64 * cpu_step_s(0.064, 96))
    assert by_type["cpu2"]["training_cost_usd"] == pytest.approx(0.05 * 60 / 3600)  # the billing minimum
    assert res["chosen"]["instance_type"] == "cpu2" and res["objective"] == "min time within budget"
    # a long job: the 96-vCPU type saves hours and wins the same objective
    long = plan_training(w, frame, epochs=3000, batch_size=64, samples_per_epoch=1e4, budget_usd=100.0,
                         cpu_samples_per_s_per_vcpu=1e3, node_counts=(1,), allow_spot=False)
    assert long["chosen"]["instance_type"] == "cpu96"
