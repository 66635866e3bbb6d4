"""Simulator invariants, and agreement with the independent SimPy implementation on real traces."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from aiinfra_pipelines.scaling.policies import (
    ClairvoyantPolicy,
    HybridPolicy,
    PredictivePolicy,
    ReactivePolicy,
    StaticPolicy,
)
from aiinfra_pipelines.scaling.service_model import FixedWorkServiceModel, LLMServiceModel
from aiinfra_pipelines.scaling.simpy_reference import simulate_simpy
from aiinfra_pipelines.scaling.simulator import simulate
from aiinfra_pipelines.scaling.traces import Trace, load_trace

PRICE = 3600.0  # $1 per replica-second: cost == billed replica-seconds


@pytest.fixture(scope="module")
def conv_slice(shared_data):
    return load_trace(shared_data / "inference_traces/azure_llm_2023/AzureLLMInferenceTrace_conv.csv", "azure",
                      start_s=1200, duration_s=900)


@pytest.fixture(scope="module")
def code_slice(shared_data):
    return load_trace(shared_data / "inference_traces/azure_llm_2023/AzureLLMInferenceTrace_code.csv", "azure",
                      start_s=600, duration_s=900)


@pytest.fixture(scope="module")
def lora_slice(shared_data):
    return load_trace(shared_data / "inference_traces/alibaba_genai_2026/lora_request_trace.csv", "alibaba-lora",
                      start_s=3 * 86400, duration_s=86400)


@pytest.fixture(scope="module")
def llm(shared_data):
    return LLMServiceModel.from_vidur("a100", "meta-llama/Llama-2-70b-hf", tensor_parallel=4, max_batch_size=8)


def _work_trace(arrivals, work):
    return Trace(pd.DataFrame({"arrival_s": np.asarray(arrivals, float), "input_tokens": 0, "output_tokens": 0,
                               "work_s": np.asarray(work, float)}))


def test_hand_computed_queueing_and_billing():
    # one replica with one slot; three 10-s requests at t=0, 1, 2 queue behind each other
    t = _work_trace([0.0, 1.0, 2.0], [10.0, 10.0, 10.0])
    r = simulate(t, StaticPolicy(replicas=1), FixedWorkServiceModel(max_batch_size=1), price_per_replica_hour=PRICE,
                 initial_replicas=1, slo_ttft_s=15.0)
    q = r.requests
    assert q["start_s"].tolist() == [0.0, 10.0, 20.0]
    assert q["queueing_delay_s"].tolist() == [0.0, 9.0, 18.0]
    assert q["ttft_s"].tolist() == [10.0, 19.0, 28.0]
    assert q["meets_slo"].tolist() == [True, False, False]
    # the run ends at the first tick strictly after the last completion (t=30 -> tick 45)
    assert r.summary["cost_usd"] == pytest.approx(45.0)
    assert r.summary["slo_attainment"] == pytest.approx(1 / 3)


def test_provisioning_delay_and_scale_to_zero():
    # nothing ready; one request at t=100: reactive with min 0 wakes one replica at the next tick,
    # ready after the 120 s provisioning delay
    t = _work_trace([100.0], [5.0])
    pol = ReactivePolicy(metric="queue", target=1, min_replicas=0, scale_down_stabilization_s=0)
    r = simulate(t, pol, FixedWorkServiceModel(max_batch_size=1), price_per_replica_hour=PRICE, initial_replicas=0,
                 provisioning_delay_s=120.0, control_interval_s=15.0, hold_s=0.0)
    assert r.requests["start_s"].iloc[0] == 105.0 + 120.0
    # billed from the request (t=105) to the first tick after it finished (t=240)
    assert r.summary["cost_usd"] == pytest.approx(240.0 - 105.0)


class _Script:
    """Desires ``before`` replicas until ``switch_s``, then ``after``."""
    family = "script"

    def __init__(self, before, after, switch_s):
        self.before, self.after, self.switch_s = before, after, switch_s

    def reset(self):
        pass

    def desired_replicas(self, obs, now):
        return self.before if now < self.switch_s else self.after


def test_scale_down_drains_the_replica_that_frees_soonest():
    # two one-slot replicas; at t=0 the older takes a 5-s request, the newer a 300-s one.
    # Scaling to one at t=240 drains the older (idle: billed to 240), not the newer
    # (busy until 300); the newer runs to the end (first tick after 300: 315).
    t = _work_trace([0.0, 0.0], [5.0, 300.0])
    kw = dict(price_per_replica_hour=PRICE, initial_replicas=2, hold_s=0.0, slo_ttft_s=1.0)
    model = FixedWorkServiceModel(max_batch_size=1)
    r = simulate(t, _Script(2, 1, 240.0), model, **kw)
    assert r.summary["cost_usd"] == pytest.approx(240.0 + 315.0)
    ends = sorted(r.replicas["end_s"].tolist())
    assert ends == [240.0, 315.0]
    ref = simulate_simpy(t, _Script(2, 1, 240.0), model, **kw)
    assert ref["cost_usd"] == pytest.approx(240.0 + 315.0)


@pytest.mark.parametrize("policy", [
    StaticPolicy(replicas=6),
    ReactivePolicy(metric="queue", target=6, min_replicas=1),
    HybridPolicy(capacity_rps=1.0, headroom=0.2, target_queue_per_replica=6, min_replicas=1),
    ClairvoyantPolicy(),
], ids=lambda p: p.family)
def test_invariants(conv_slice, llm, policy):
    init = 6 if policy.family == "static" else None
    r = simulate(conv_slice, policy, llm, price_per_replica_hour=PRICE, slo_ttft_s=2.0, initial_replicas=init)
    q, iv, s = r.requests, r.intervals, r.summary
    assert s["unserved_requests"] == 0 and s["requests"] == len(conv_slice)
    assert (q["start_s"] >= q["arrival_s"] - 1e-9).all()  # causality
    assert (q["ttft_s"] <= q["latency_s"] + 1e-9).all()
    # slots: at no time more requests in service than ready slots (check at each start)
    st = q["start_s"].to_numpy()
    en = st + (q["latency_s"] - q["queueing_delay_s"]).to_numpy()
    order = np.argsort(st)
    busy = np.searchsorted(np.sort(st), st[order], side="right") - np.searchsorted(np.sort(en), st[order], side="right")
    rep = r.replicas
    rs, re_ = rep["ready_s"].to_numpy(), rep["end_s"].to_numpy()
    ready_at = ((rs[None, :] <= st[order][:, None]) & (re_[None, :] > st[order][:, None])).sum(axis=1)
    assert (busy <= ready_at * llm.max_batch_size).all()
    # cost: per-interval replica-seconds add up to the billed total (per-second rounding aside)
    assert iv["replica_seconds"].sum() == pytest.approx(s["replica_seconds"], rel=0.01)
    assert s["cost_usd"] == pytest.approx(s["replica_seconds"], rel=1e-9)
    assert 0 < s["mean_utilization"] <= 1.0
    assert (iv["replicas_ready"] >= 0).all()


def test_observations_never_see_the_future(conv_slice, llm):
    seen = []

    class Spy(StaticPolicy):
        def desired_replicas(self, observation, now):
            seen.append((now, observation.request_rate_rps, observation.queue_length))
            return super().desired_replicas(observation, now)

    simulate(conv_slice, Spy(replicas=6), llm, price_per_replica_hour=PRICE, initial_replicas=6)
    a = conv_slice.df["arrival_s"].to_numpy()
    for now, rate, queue in seen[1:]:
        arrived = np.searchsorted(a, now, side="left")  # strictly before the tick
        assert queue <= arrived
        assert rate == pytest.approx((arrived - np.searchsorted(a, now - 30, side="left")) / min(30, now))


def test_more_replicas_never_hurt_and_cost_more(conv_slice, llm):
    prev = None
    for n in (2, 3, 4, 6):
        s = simulate(conv_slice, StaticPolicy(replicas=n), llm, price_per_replica_hour=PRICE, slo_ttft_s=2.0,
                     initial_replicas=n).summary
        if prev:
            assert s["slo_attainment"] >= prev["slo_attainment"] and s["cost_usd"] > prev["cost_usd"]
        prev = s


def test_score_from_counts_only_the_later_part(conv_slice, llm):
    full = simulate(conv_slice, StaticPolicy(replicas=5), llm, price_per_replica_hour=PRICE, initial_replicas=5)
    half = simulate(conv_slice, StaticPolicy(replicas=5), llm, price_per_replica_hour=PRICE, initial_replicas=5,
                    score_from_s=450.0)
    assert half.summary["requests"] == int((conv_slice.df["arrival_s"] >= 450).sum())
    assert half.summary["cost_usd"] == pytest.approx(full.summary["cost_usd"] * (1 - 450 / full.summary["duration_s"]),
                                                     rel=0.01)


CASES = [
    ("conv", StaticPolicy(replicas=5), 2.0),
    ("conv", ReactivePolicy(metric="queue", target=5, min_replicas=1, scale_down_stabilization_s=60), 2.0),
    ("conv", HybridPolicy(capacity_rps=1.0, headroom=0.1, target_queue_per_replica=6, scale_down_stabilization_s=60), 2.0),
    ("code", ReactivePolicy(metric="rps", target=3.0, min_replicas=1, scale_down_stabilization_s=60), 2.0),
    ("code", ClairvoyantPolicy(slack_fraction=0.9), 2.0),
    ("lora", ReactivePolicy(metric="queue", target=1, min_replicas=0, cooldown_s=600, scale_down_stabilization_s=600), 150.0),
    ("lora", PredictivePolicy(capacity_rps=0.03, headroom=0.3, min_replicas=0, refit_s=6 * 3600), 150.0),
]


@pytest.mark.parametrize("which,policy,slo", CASES, ids=[f"{c[0]}-{c[1].family}" for c in CASES])
def test_agrees_with_simpy(request, which, policy, slo, llm):
    trace = request.getfixturevalue(f"{which}_slice")
    model = FixedWorkServiceModel(max_batch_size=1) if which == "lora" else llm
    kw = dict(price_per_replica_hour=10.0, slo_ttft_s=slo, provisioning_delay_s=120.0, control_interval_s=15.0)
    fast = simulate(trace, policy, model, **kw).summary
    ref = simulate_simpy(trace, policy, model, **kw)
    assert ref["requests"] == fast["requests"]
    assert fast["cost_usd"] == pytest.approx(ref["cost_usd"], rel=0.01)
    assert fast["slo_attainment"] == pytest.approx(ref["slo_attainment"], rel=0.01)
    assert fast["cost_usd"] > 0 and not math.isnan(fast["slo_attainment"])


def test_clairvoyant_repair_reaches_the_target_where_the_plan_alone_misses(shared_data):
    # one request per replica and jobs of minutes: the pool the simulator runs differs from
    # the plan (held across gaps, drained later), and the plan alone misses the objective
    lora_slice = load_trace(shared_data / "inference_traces/alibaba_genai_2026/lora_request_trace.csv", "alibaba-lora",
                            start_s=12 * 86400, duration_s=43200)
    model = FixedWorkServiceModel(max_batch_size=1)
    kw = dict(price_per_replica_hour=PRICE, slo_ttft_s=150.0)
    p_plain = ClairvoyantPolicy(slack_fraction=1.0, packing=0.8, repair_rounds=0)
    p_fixed = ClairvoyantPolicy(slack_fraction=1.0, packing=0.8, repair_target=0.99)
    plain = simulate(lora_slice, p_plain, model, **kw)
    fixed = simulate(lora_slice, p_fixed, model, **kw)
    assert plain.summary["slo_attainment"] < 0.99 <= fixed.summary["slo_attainment"]
    assert fixed.summary["cost_usd"] > plain.summary["cost_usd"]
    # the repair only adds replicas to the plan
    assert (p_fixed._need >= p_plain._need).all() and p_fixed._need.sum() > p_plain._need.sum()
    # the SimPy reference replays the same (cached) repaired schedule
    ref = simulate_simpy(lora_slice, ClairvoyantPolicy(slack_fraction=1.0, packing=0.8, repair_target=0.99), model, **kw)
    assert ref["cost_usd"] == pytest.approx(fixed.summary["cost_usd"], rel=0.01)
    assert ref["slo_attainment"] == pytest.approx(fixed.summary["slo_attainment"], rel=0.01)


@pytest.mark.parametrize("which,policy,slo", CASES + [
    ("conv", ClairvoyantPolicy(slack_fraction=0.5), 2.0),
    ("conv", PredictivePolicy(signal="inflight", target_inflight=6.0, headroom=0.0, scale_down_stabilization_s=60), 2.0),
], ids=[f"{c[0]}-{c[1].family}" for c in CASES] + ["conv-clairvoyant", "conv-predictive-inflight"])
def test_compiled_and_python_slot_pools_replay_identically(request, which, policy, slo, llm):
    from aiinfra_pipelines.scaling.slots import compiled_available

    if not compiled_available():
        pytest.skip("numba (the fast extra) is not installed")
    trace = request.getfixturevalue(f"{which}_slice")
    model = FixedWorkServiceModel(max_batch_size=1) if which == "lora" else llm
    kw = dict(price_per_replica_hour=10.0, slo_ttft_s=slo, provisioning_delay_s=120.0, control_interval_s=15.0,
              score_from_s=300.0)
    py = simulate(trace, policy, model, _compiled=False, **kw)
    nb = simulate(trace, policy, model, _compiled=True, **kw)
    assert nb.summary == py.summary
    pd.testing.assert_frame_equal(nb.requests, py.requests)
    pd.testing.assert_frame_equal(nb.replicas, py.replicas)


def test_compiled_pool_grows_past_its_first_guess(llm):
    from aiinfra_pipelines.scaling.slots import compiled_available

    if not compiled_available():
        pytest.skip("numba (the fast extra) is not installed")
    # one slot, forty 100-s jobs at t=0: completions run to t=4000, far past the pool's first
    # guess of the ticks it needs (last arrival + longest job)
    t = _work_trace([0.0] * 40, [100.0] * 40)
    kw = dict(price_per_replica_hour=PRICE, initial_replicas=1, slo_ttft_s=1000.0)
    model = FixedWorkServiceModel(max_batch_size=1)
    py = simulate(t, StaticPolicy(replicas=1), model, _compiled=False, **kw)
    nb = simulate(t, StaticPolicy(replicas=1), model, _compiled=True, **kw)
    assert nb.summary == py.summary
    assert nb.requests["start_s"].tolist() == [100.0 * i for i in range(40)]
