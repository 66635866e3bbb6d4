"""Planning: the hardware catalog, the performance model and the mix optimizer (no Dagster here).

The public names are imported on first use, so a command that only needs the catalog does not
pay for the optimizer's imports.
"""

from __future__ import annotations

import importlib

_PUBLIC = {
    "plan_hardware": "planner",
    "HardwarePlan": "planner",
    "NodePool": "planner",
    "PlanOverrides": "planner",
    "StoragePlan": "optimizer",
}


def __getattr__(name):
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"aiinfra_pipelines.planning.{module}"), name)
