"""Each policy's behaviour on hand-made observations, and the service models."""

from __future__ import annotations

import numpy as np
import pytest

from aiinfra_pipelines.scaling.policies import (
    ClairvoyantPolicy,
    HybridPolicy,
    Observation,
    PredictivePolicy,
    ReactivePolicy,
    StaticPolicy,
    plan_min_replicas,
    policy_from_settings,
)
from aiinfra_pipelines.scaling.service_model import (
    FixedWorkServiceModel,
    LLMServiceModel,
    ServiceModel,
    ServiceModelError,
    gpu_price_per_hour,
)
from aiinfra_pipelines.scaling.traces import Trace


def obs(t, *, rate=0.0, queue=0, util=0.0, ready=1, pending=0):
    return Observation(t, rate, queue, util, ready, pending)


def test_static_is_constant():
    p = StaticPolicy(replicas=3)
    assert {p.desired_replicas(obs(t, queue=q), t) for t, q in [(0, 0), (15, 500), (30, 0)]} == {3}


def test_reactive_scales_up_by_queue_with_step_limit():
    p = ReactivePolicy(metric="queue", target=4, scale_up_step=2, min_replicas=1, max_replicas=10)
    p.reset()
    assert p.desired_replicas(obs(0, queue=4, ready=1), 0) == 1  # on target
    assert p.desired_replicas(obs(15, queue=40, ready=1), 15) == 3  # wants 10, +2 per step
    assert p.desired_replicas(obs(30, queue=40, ready=1, pending=2), 30) == 5
    assert p.desired_replicas(obs(45, queue=400, ready=5), 45) == 7
    for t in range(60, 200, 15):
        n = p.desired_replicas(obs(t, queue=400, ready=10), t)
    assert n == 10  # max_replicas


def test_reactive_scale_down_waits_for_the_stabilization_window():
    p = ReactivePolicy(metric="queue", target=4, scale_down_stabilization_s=60, scale_down_step=8, min_replicas=1)
    p.reset()
    assert p.desired_replicas(obs(0, queue=32, ready=8), 0) == 8
    # load drops: the window still holds the recommendation of 8
    assert p.desired_replicas(obs(15, queue=4, ready=8), 15) == 8
    assert p.desired_replicas(obs(45, queue=4, ready=8), 45) == 8
    assert p.desired_replicas(obs(75, queue=4, ready=8), 75) == 1


def test_reactive_tolerance_and_scale_to_zero():
    p = ReactivePolicy(metric="queue", target=10, tolerance=0.1, min_replicas=0, scale_down_stabilization_s=0)
    p.reset()
    assert p.desired_replicas(obs(0, queue=21, ready=2), 0) == 2  # 1.05x target: within tolerance
    assert p.desired_replicas(obs(15, queue=0, ready=2), 15) == 0  # scales to zero
    assert p.desired_replicas(obs(30, queue=1, ready=0), 30) == 1  # activation on the first request
    with pytest.raises(ValueError, match="metric"):
        ReactivePolicy(metric="gpu")


def test_reactive_rps_metric():
    p = ReactivePolicy(metric="rps", target=2.0, scale_down_stabilization_s=0)
    p.reset()
    assert p.desired_replicas(obs(0, rate=9.0, ready=1), 0) == 5


def test_predictive_provisions_ahead_of_a_rising_rate():
    p = PredictivePolicy(capacity_rps=1.0, headroom=0.0, horizon_s=120, bucket_s=15, refit_s=1e9,
                         scale_down_stabilization_s=0, min_replicas=0)
    p.reset()
    out = [p.desired_replicas(obs(t, rate=0.05 * t), t) for t in np.arange(15, 1200, 15.0)]
    now_rate = 0.05 * 1185
    assert out[-1] > now_rate  # more than the current rate needs: a trend, extrapolated over the horizon
    assert out == sorted(out)


def test_predictive_scales_to_zero_when_idle_and_wakes_on_a_request():
    p = PredictivePolicy(capacity_rps=1.0, headroom=0.0, bucket_s=15, scale_down_stabilization_s=30, min_replicas=0)
    p.reset()
    for t in np.arange(15, 600, 15.0):
        n = p.desired_replicas(obs(t, rate=0.0), t)
    assert n == 0
    assert p.desired_replicas(obs(615, rate=0.0, queue=1, ready=0), 615) == 1


def test_hybrid_panics_on_a_burst_and_holds_it():
    kw = dict(capacity_rps=10.0, headroom=0.0, bucket_s=15, scale_down_stabilization_s=0, min_replicas=1,
              target_queue_per_replica=4, panic_threshold=2.0, panic_window_s=60)
    h, p = HybridPolicy(**kw), PredictivePolicy(**{k: v for k, v in kw.items() if k in PredictivePolicy.__dataclass_fields__})
    h.reset(); p.reset()
    for t in (15.0, 30.0):
        assert h.desired_replicas(obs(t, rate=1.0, queue=1), t) == p.desired_replicas(obs(t, rate=1.0, queue=1), t) == 1
    assert h.desired_replicas(obs(45, rate=1.0, queue=40, ready=1), 45) == 10  # 40 queued / 4 per replica
    assert p.desired_replicas(obs(45, rate=1.0, queue=40, ready=1), 45) == 1  # the forecast alone does not see it
    assert h.desired_replicas(obs(90, rate=1.0, queue=0, ready=10), 90) == 10  # panic window holds
    assert h.desired_replicas(obs(120, rate=1.0, queue=0, ready=10), 120) == 1  # and ends


def test_clairvoyant_plan_is_the_fewest_replicas_meeting_deadlines():
    # 4 requests of 10 s at t=0, one slot per replica, no slack: 4 replicas in interval 0
    a = np.array([0.0, 0.0, 0.0, 0.0, 100.0])
    s = np.full(5, 10.0)
    r = plan_min_replicas(a, s, s, a, batch_slots=1, control_interval_s=15.0)
    assert r[0] == 4 and r[6] == 1 and r[1:6].sum() == 0
    # 25 s of slack lets them queue two deep on 2 replicas (starts at 0, 0, 10, 10)
    r = plan_min_replicas(a, s, s, a + 25.0, batch_slots=1, control_interval_s=15.0)
    assert r[0] == 2
    # batch slots: one replica of 4 slots
    assert plan_min_replicas(a, s, s, a, batch_slots=4, control_interval_s=15.0)[0] == 1


def test_clairvoyant_looks_ahead_by_the_provisioning_delay():
    a = np.array([300.0])
    s = np.array([5.0])
    p = ClairvoyantPolicy(min_replicas=0)
    p.bind_future(a, s, batch_slots=1, provisioning_delay_s=120.0, control_interval_s=15.0, prefill_s=s, slo_ttft_s=10.0)
    want = {t: p.desired_replicas(obs(t), t) for t in np.arange(0, 450, 15.0)}
    assert want[165.0] == 0 and want[180.0] == 1 and want[300.0] == 1 and want[315.0] == 0


def test_policy_from_settings_round_trips_and_rejects_unknowns():
    for pol in (StaticPolicy(replicas=2), ReactivePolicy(target=3.0), PredictivePolicy(capacity_rps=2.0),
                HybridPolicy(capacity_rps=2.0), ClairvoyantPolicy(slack_fraction=0.5)):
        again = policy_from_settings(pol.family, **pol.params())
        assert again.params() == pol.params() and type(again) is type(pol)
    with pytest.raises(ValueError, match="unknown parameter"):
        policy_from_settings("reactive", targte=3)
    with pytest.raises(ValueError, match="family"):
        policy_from_settings("magic")


# --- service models ------------------------------------------------------------------------

def _tokens(p, o):
    import pandas as pd

    return Trace(pd.DataFrame({"arrival_s": np.arange(len(p), dtype=float), "input_tokens": p,
                               "output_tokens": o, "work_s": np.nan}))


@pytest.mark.parametrize("gpu", ["a100", "h100", "a40"])
def test_llm_model_from_vidur_profiles(shared_data, gpu):
    m = LLMServiceModel.from_vidur(gpu, "meta-llama/Llama-2-7b-hf", tensor_parallel=1, max_batch_size=8)
    pre, svc = m.service_times(_tokens(np.array([128, 1024, 4096]), np.array([1, 100, 400])))
    assert np.all(np.diff(pre) > 0)  # longer prompts take longer
    assert svc[0] == pytest.approx(pre[0])  # one output token: nothing to decode
    assert np.all(svc >= pre)
    # plausible magnitudes for a 7B model: prefill of 1k tokens in 20-400 ms, decode step 5-60 ms
    assert 0.02 < pre[1] < 0.4
    assert 0.005 < m.decode_step_s(8, 1024) < 0.06


def test_llm_model_orders_gpus_and_batching(shared_data):
    t = _tokens(np.array([1000]), np.array([200]))
    h100 = LLMServiceModel.from_vidur("h100", "meta-llama/Llama-2-70b-hf", tensor_parallel=4, max_batch_size=8)
    a100 = LLMServiceModel.from_vidur("a100", "meta-llama/Llama-2-70b-hf", tensor_parallel=4, max_batch_size=8)
    assert h100.service_times(t)[1][0] < a100.service_times(t)[1][0]
    big = LLMServiceModel.from_vidur("a100", "meta-llama/Llama-2-70b-hf", tensor_parallel=4, max_batch_size=32)
    # a larger batch: each step is slower, but more requests per second per replica
    assert big.service_times(t)[1][0] > a100.service_times(t)[1][0]
    assert big.capacity_rps(t) > a100.capacity_rps(t)
    with pytest.raises(ServiceModelError, match="tensor_parallel"):
        LLMServiceModel.from_vidur("a100", "meta-llama/Llama-2-70b-hf", tensor_parallel=3)


def test_fixed_work_and_measured_models():
    import pandas as pd

    t = Trace(pd.DataFrame({"arrival_s": [0.0, 1.0], "input_tokens": 0, "output_tokens": 0, "work_s": [2.0, 30.0]}))
    pre, svc = FixedWorkServiceModel(max_batch_size=1).service_times(t)
    assert svc.tolist() == [2.0, 30.0] and pre.tolist() == svc.tolist()
    with pytest.raises(ServiceModelError, match="work_s"):
        FixedWorkServiceModel().service_times(_tokens(np.array([1]), np.array([1])))
    m = ServiceModel.from_measurements([(1, 0.05), (4, 0.08)], saturation_rps=40.0, max_batch_size=8)
    assert m.slot_time_s() == pytest.approx(0.2)  # 8 / 40 rps beats the extrapolated 0.12 s
    assert m.capacity_rps(_tokens(np.array([1]), np.array([1]))) == pytest.approx(40.0)


def test_prices_come_from_the_catalog(shared_data):
    a100 = gpu_price_per_hour("A100")
    h100 = gpu_price_per_hour("H100")
    assert 0.5 < a100 < h100 < 15
    with pytest.raises(ServiceModelError):
        gpu_price_per_hour("NoSuchGPU")


def test_forecaster_refits_are_bounded_on_long_histories():
    from aiinfra_pipelines.scaling.policies import _RateForecaster

    calls = []
    fc = _RateForecaster(bucket_s=60.0, refit_s=900.0)
    fc._refit = lambda: calls.append(len(fc.buckets))  # count, do not fit
    for k in range(1, 4 * 60 * 2):  # two hours of 15-s ticks: every 15 minutes
        fc.observe(k * 15.0, 1.0)
    short = len(calls)
    assert 6 <= short <= 8
    for k in range(4 * 60 * 2, 4 * 60 * 24 * 23):  # 23 days
        fc.observe(k * 15.0, 1.0)
    assert len(calls) < 80  # O(log age), not one per 15 minutes (2,200)


def test_predictive_can_forecast_the_requests_in_flight():
    p = PredictivePolicy(signal="inflight", target_inflight=4.0, capacity_rps=1e-3, headroom=0.0, horizon_s=120,
                         bucket_s=15, refit_s=1e9, scale_down_stabilization_s=0, min_replicas=0)
    p.reset()
    # a high arrival rate but few requests in flight: sized by the work in the system, not the rate
    out = [p.desired_replicas(obs(t, rate=50.0, queue=16), t) for t in np.arange(15, 600, 15.0)]
    assert out[-1] == 4
    q = policy_from_settings("predictive", **p.params())
    assert q.params() == p.params() and q.signal == "inflight"
    with pytest.raises(ValueError, match="signal"):
        PredictivePolicy(signal="tokens")
    from aiinfra_pipelines.scaling.manifests import render_scaled_object

    so = render_scaled_object(PredictivePolicy(signal="inflight", target_inflight=6.0, headroom=0.2), name="x",
                              deployment="d")
    assert so["spec"]["triggers"][0]["name"] == "queue-per-replica"
    assert float(so["spec"]["triggers"][0]["metadata"]["threshold"]) == pytest.approx(5.0)
