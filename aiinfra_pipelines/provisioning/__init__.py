"""Provisioning: the hardware plan becomes infrastructure through Terraform.

``provision(target, plan, spec, iteration=...)`` renders the plan as JSON variables for the
target's root module under ``terraform/`` (``local``: built-in resources only; ``aws``: VPC, EKS,
one managed node group per pool, storage tiers), then runs init/plan/apply with the state of that
deployment under ``<state_dir>/terraform/<target>/<workload>/``. ``teardown`` destroys it.
A plan that destroys or replaces a stateful resource (cluster, file system, bucket) is refused
unless ``approve_stateful_changes=True``."""

from __future__ import annotations

from aiinfra_pipelines.provisioning.plan_view import PlanError, PlanView, PoolView, view_plan
from aiinfra_pipelines.provisioning.terraform import (
    ApplyResult,
    PlanSummary,
    TerraformError,
    TerraformRunner,
    find_plugin_dir,
    stateful_changes,
)
from aiinfra_pipelines.provisioning.tfvars import tfvars_from_plan
from aiinfra_pipelines.provisioning.deploy import (
    StatefulChangeRefused,
    deployment_dir,
    module_dir,
    plan_changes,
    provision,
    runner_for,
    teardown,
)

__all__ = [
    "ApplyResult",
    "PlanError",
    "PlanSummary",
    "PlanView",
    "PoolView",
    "StatefulChangeRefused",
    "TerraformError",
    "TerraformRunner",
    "deployment_dir",
    "find_plugin_dir",
    "module_dir",
    "plan_changes",
    "provision",
    "runner_for",
    "stateful_changes",
    "teardown",
    "tfvars_from_plan",
    "view_plan",
]
