"""Profiling: where a workload's time, memory and capacity go, measured on the real workload.

``profile_workload(spec, workdir)`` runs the reference workload and returns a typed
``WorkloadProfile`` and a samples table; ``compare_profiles`` is the CI regression gate.
The phase API (``Profiler``, ``phase``, ``phased``) works for any Python workload.
"""

from aiinfra_pipelines.profiling.compare import compare_profiles, load_profile
from aiinfra_pipelines.profiling.phases import Profiler, active_profiler, phase, phased
from aiinfra_pipelines.profiling.profile import ProfileResult, profile_workload
from aiinfra_pipelines.profiling.schema import (
    HostInfo,
    InferenceProfile,
    LatencyPoint,
    Regression,
    TrainingProfile,
    WorkloadProfile,
)

__all__ = [
    "HostInfo",
    "InferenceProfile",
    "LatencyPoint",
    "ProfileResult",
    "Profiler",
    "Regression",
    "TrainingProfile",
    "WorkloadProfile",
    "active_profiler",
    "compare_profiles",
    "load_profile",
    "phase",
    "phased",
    "profile_workload",
]
