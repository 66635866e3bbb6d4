import time

import pytest

from aiinfra_pipelines.planning import plan_hardware
from aiinfra_pipelines.planning.catalog import load_catalog
from aiinfra_pipelines.planning.planner import PlanOverrides
from aiinfra_pipelines.spec import parse_spec

PROFILE = {"host": {"logical_cpus": 2, "memory_gib": 8},
           "training": {"samples_per_s": 5000, "flops_per_sample": 3e5, "bytes_per_sample": 2e3, "parameters": 5e4,
                        "dataset_bytes": 1e6, "io_read_bytes_per_s_needed": 1e6, "epoch_s": 0.4},
           "inference": {"saturation_rps": 800, "flops_per_request": 1e5,
                         "latency_by_batch": [{"batch_size": 1, "p50_s": 0.001, "p99_s": 0.003, "throughput_rps": 700}]}}


def _spec(**kw):
    d = {"name": "mlp-demo", "target": "aws", "model": {"name": "mlp"}, "training": {"epochs": 5}, "inference": {},
         "traffic": {"trace": "x.csv"}, "targets": {"deadline_hours": 1}}
    d.update(kw)
    return parse_spec(d)


def test_plan_hardware_pools_and_speed():
    load_catalog()
    t = time.perf_counter()
    p = plan_hardware(_spec(), PROFILE)
    assert time.perf_counter() - t < 2.0
    roles = [x.role for x in p.pools]
    assert roles.count("system") == 1 and "training" in roles and "inference" in roles
    train = [x for x in p.pools if x.role == "training"][0]
    assert train.cloud == "aws" and train.price_per_hour > 0
    assert p.predicted["training_time_s"] <= 3600
    assert p.storage.tier in ("memory", "nvme", "shared_fs", "object")
    assert p.local_equivalent.vcpus >= 2 and p.catalog_snapshot == "2025-11-30"
    assert p.pareto and p.predicted["cost_per_1k_requests_usd"] > 0


def test_overrides_and_bad_profile():
    p = plan_hardware(_spec(), PROFILE, overrides=PlanOverrides(training_instance_type="g5.xlarge", allow_spot=False))
    train = [x for x in p.pools if x.role == "training"][0]
    assert train.instance_type == "g5.xlarge" and not train.spot
    with pytest.raises(ValueError, match="training_instance_type"):
        plan_hardware(_spec(), PROFILE, overrides=PlanOverrides(training_instance_type="nope.large"))
    bad = {**PROFILE, "training": {**PROFILE["training"], "flops_per_sample": None}}
    with pytest.raises(ValueError, match="flops_per_sample"):
        plan_hardware(_spec(), bad)
