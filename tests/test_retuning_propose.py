"""The retuning proposal's stop rules, and a proposal tuned on an observed request log."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from aiinfra_pipelines.planning.catalog import local_equivalent
from aiinfra_pipelines.planning.planner import NodePool
from aiinfra_pipelines.retuning import Proposal, propose
from aiinfra_pipelines.retuning.propose import observed_trace, peak_rate_rps
from aiinfra_pipelines.scaling.decision import ScalingDecision
from aiinfra_pipelines.spec import load_spec

PROFILE = {"inference": {"latency_by_batch": [{"batch_size": 1, "p50_s": 0.01}, {"batch_size": 32, "p50_s": 0.05}],
                         "saturation_rps": 60.0}}


@pytest.fixture(scope="module")
def spec(examples_dir):
    s = load_spec(examples_dir / "lifecycle.yaml")
    assert s.max_iterations == 3 and s.inference is not None
    return s


def _pool(role: str, instance_type: str) -> NodePool:
    return NodePool(name=f"{role}-pool", role=role, cloud="gcp", region="us-central1", instance_type=instance_type,
                    count=1, min_count=1, max_count=2, price_per_hour=0.1)


@pytest.fixture(scope="module")
def plan():
    # the two fields of a HardwarePlan that a proposal reads, with a real catalog entry
    return types.SimpleNamespace(local_equivalent=local_equivalent(2, 4),
                                 pools=[_pool("training", "n2-standard-8"), _pool("inference", "n2-standard-2")])


def _decision(family="static", **params) -> ScalingDecision:
    params = params or {"replicas": 4}
    return ScalingDecision(family=family, params=params, source="spec", min_replicas=1, max_replicas=4,
                           initial_replicas=1, control_interval_s=2)


def _requests(n=300, span_s=30.0, service_s=0.04, seed=0) -> pd.DataFrame:
    arrivals = np.sort(np.random.default_rng(seed).uniform(0, span_s, n))
    return pd.DataFrame({"arrival_s": arrivals + 100.0, "latency_s": service_s + 0.01, "service_s": service_s,
                         "status": "ok"})


def _propose(spec, plan, *, number=1, targets_met=True, requests=None, current=None) -> Proposal:
    return propose(spec, iteration=f"{number:04d}", iteration_number=number, report={"targets_met": targets_met},
                   requests=requests, profile=PROFILE, plan=plan, current_policy=current or _decision())


def test_stops_at_max_iterations_even_when_targets_are_missed(spec, plan):
    p = _propose(spec, plan, number=3, targets_met=False)
    assert p.continue_loop is False
    assert p.stop_reason == "reached the spec's maximum of 3 iteration(s)" and p.reason == p.stop_reason
    longer = spec.model_copy(update={"max_iterations": 4})
    assert _propose(longer, plan, number=3, targets_met=True).stop_reason.startswith("targets met")


def test_stops_when_targets_met_and_nothing_improves_beyond_tolerance(spec, plan):
    p = _propose(spec, plan, number=1, targets_met=True)
    assert p.continue_loop is False
    assert "within the tolerance of 2%" in p.stop_reason
    # the hardware mix is the plan's, whatever the thresholds
    assert p.inference_instance_types == ["n2-standard-2"] and p.training_instance_type == "n2-standard-8"


def test_continues_when_slo_not_met_and_proposes_tuned_thresholds(spec, plan):
    reqs = _requests()
    p = _propose(spec, plan, number=1, targets_met=False, requests=reqs, current=_decision(replicas=4))
    assert p.continue_loop is True and p.stop_reason is None
    assert p.reason.startswith("targets not met")
    assert p.policy_family in {"static", "reactive", "predictive", "hybrid"}
    assert {s["family"] for s in p.search} == {"static", "reactive", "predictive", "hybrid"}
    # four static replicas for ~10 req/s of 40 ms requests are over-provisioned: the proposal is cheaper
    assert p.predicted_proposed["cost_usd"] < p.predicted_current["cost_usd"]
    assert p.predicted_cost_improvement == pytest.approx(
        1 - p.predicted_proposed["cost_usd"] / p.predicted_current["cost_usd"])
    assert p.predicted_proposed["slo_attainment"] >= spec.targets.latency_slo.attainment
    assert 1 <= p.min_replicas <= p.max_replicas <= spec.scaling.max_replicas
    # the trace's own peak rate: replayed peak / time_scale
    assert p.target_rps == pytest.approx(peak_rate_rps(reqs) / spec.traffic.time_scale)
    cfg = p.run_config()
    assert cfg["policy_family"] == p.policy_family and cfg["source_iteration"] == "0001"
    assert all(isinstance(v, float) for v in cfg["policy_params"].values())


def test_targets_met_but_a_better_setting_continues_the_loop(spec, plan):
    p = _propose(spec, plan, number=2, targets_met=True, requests=_requests(), current=_decision(replicas=4))
    assert p.continue_loop is True and "better on the observed traffic" in p.reason
    assert p.predicted_cost_improvement > spec.improvement_tolerance


def test_training_only_workload_stops_once_targets_are_met(examples_dir, plan):
    spec = load_spec(examples_dir / "training.yaml")
    assert spec.inference is None
    p = _propose(spec, plan, number=1, targets_met=True)
    assert p.continue_loop is False
    missed = _propose(spec, plan, number=1, targets_met=False)
    assert missed.continue_loop is True and missed.reason == "targets not met"


def test_observed_trace_and_peak_rate_have_known_values():
    reqs = pd.DataFrame({
        "arrival_s": [10.0, 10.2, 10.4, 11.5, 13.0],
        "service_s": [0.1, 0.3, None, 0.2, 0.4],
        "status": ["ok", "ok", "http_503", "ok", "ok"],
    })
    assert peak_rate_rps(reqs) == 3.0
    assert peak_rate_rps(reqs, bin_s=2.0) == 2.0
    assert peak_rate_rps(reqs.iloc[:0]) == 0.0
    df = observed_trace(reqs).df
    assert df["arrival_s"].tolist() == pytest.approx([0.0, 0.2, 0.4, 1.5, 3.0])
    # a failed request's work is the median measured one
    assert df["work_s"].tolist() == pytest.approx([0.1, 0.3, 0.25, 0.2, 0.4])
