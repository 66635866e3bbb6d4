"""Planning: the hardware catalog, the performance model and the mix optimizer (no Dagster here)."""

from __future__ import annotations


def plan_hardware(spec, profile, *, catalog=None, overrides=None):
    """See :func:`aiinfra_pipelines.planning.planner.plan_hardware` (imported lazily to keep CLIs quick)."""
    from aiinfra_pipelines.planning.planner import plan_hardware as _plan

    return _plan(spec, profile, catalog=catalog, overrides=overrides)


def __getattr__(name):
    if name in ("HardwarePlan", "NodePool", "PlanOverrides"):
        from aiinfra_pipelines.planning import planner

        return getattr(planner, name)
    if name in ("StoragePlan",):
        from aiinfra_pipelines.planning import optimizer

        return optimizer.StoragePlan
    raise AttributeError(name)
