"""A profile estimated from the spec's model size, for provisioning without running the profiler.

``aiinfra provision`` needs a hardware plan, and the planner needs a profile. Running the real
profiler (training and serving the model on this machine) takes minutes; when no measured
profile or saved plan is given, this module derives the numbers the planner reads from the
spec alone: parameters and FLOPs from the MLP's layer widths and the bundled data set's shape,
and CPU throughput from one stated assumption (``CPU_FLOPS_PER_CORE`` sustained FLOP/s per
core for small dense layers, ``REQUEST_OVERHEAD_S`` per served request). The result is marked
``profile_id = "estimated-from-spec"`` so a plan built from it says so in its provenance.
The estimate is deterministic: the same spec gives the same plan, so a second provision with
an unchanged spec plans no changes.
"""

from __future__ import annotations

from typing import Any

# (features, classes, samples) of the scikit-learn data sets a spec may name (bundled, no download)
DATASET_SHAPES = {
    "digits": (64, 10, 1797),
    "breast_cancer": (30, 2, 569),
    "wine": (13, 3, 178),
    "iris": (4, 3, 150),
}
# Assumptions of the estimate (a measured profile replaces all of them).
CPU_FLOPS_PER_CORE = 2e9  # sustained FLOP/s of one core on small dense layers (numpy, batch 64)
REQUEST_OVERHEAD_S = 1e-3  # HTTP parse, queueing and serialisation per request on one core
ESTIMATE_HOST = {"cpu_model": "estimate", "logical_cpus": 2, "memory_gib": 8.0}


def mlp_parameters(features: int, hidden: list[int], classes: int) -> int:
    widths = [features, *hidden, classes]
    return sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:]))


def estimated_profile(spec: Any) -> dict:
    """The planner's profile fields, derived from the spec (see the module docstring for the assumptions)."""
    features, classes, samples = DATASET_SHAPES[spec.dataset.name]
    params = float(spec.model.parameters or mlp_parameters(features, list(spec.model.hidden_units), classes))
    # forward 2 FLOPs per parameter, backward twice that
    flops_per_sample = float(spec.model.flops_per_sample or 6.0 * params)
    cores = ESTIMATE_HOST["logical_cpus"]
    bytes_per_sample = features * 8.0
    dataset_bytes = (spec.dataset.size_gb or 0) * 1e9 or samples * bytes_per_sample
    profile: dict[str, Any] = {"profile_id": "estimated-from-spec", "host": dict(ESTIMATE_HOST)}
    if spec.training is not None:
        sps = cores * CPU_FLOPS_PER_CORE / flops_per_sample
        profile["training"] = {
            "samples_per_s": sps,
            "epoch_s": samples / sps,
            "samples_per_epoch": samples,
            "flops_per_sample": flops_per_sample,
            "bytes_per_sample": bytes_per_sample,
            "parameters": params,
            "dataset_bytes": dataset_bytes,
            "io_read_bytes_per_s_needed": bytes_per_sample * sps,
        }
    if spec.inference is not None:
        flops_per_request = 2.0 * params
        service_s = REQUEST_OVERHEAD_S + flops_per_request / CPU_FLOPS_PER_CORE
        rps = cores / service_s
        profile["inference"] = {
            "saturation_rps": rps,
            "flops_per_request": flops_per_request,
            "max_batch_size": spec.inference.max_batch_size,
            "trace_request_service_s": service_s,
            "latency_by_batch": [{"batch_size": 1, "p50_s": service_s, "p99_s": 2 * service_s, "throughput_rps": rps}],
        }
    return profile
