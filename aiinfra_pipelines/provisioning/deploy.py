"""provision / teardown: one deployment (target, workload) at a time."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aiinfra_pipelines import paths
from aiinfra_pipelines.provisioning.plan_view import adapt_plan_for_target
from aiinfra_pipelines.provisioning.terraform import ApplyResult, PlanSummary, TerraformRunner, stateful_changes
from aiinfra_pipelines.provisioning.tfvars import TARGETS, tfvars_from_plan, workload_name

# test-only credentials that a local AWS API accepts; never used without an endpoint
_EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


class StatefulChangeRefused(RuntimeError):
    """The plan destroys or replaces a stateful resource and the run did not approve it."""

    def __init__(self, addresses: list[str], summary: PlanSummary):
        self.addresses = addresses
        self.summary = summary
        super().__init__(
            "the plan destroys or replaces stateful resources: "
            + ", ".join(addresses)
            + " (data or a cluster would be lost); approve with approve_stateful_changes=True "
            "(CLI: --approve-stateful-changes) to go ahead"
        )


def module_dir(target: str) -> Path:
    if target not in TARGETS:
        raise ValueError(f"target: expected one of {TARGETS}, got {target!r}")
    env = os.environ.get("AIINFRA_TERRAFORM_DIR")
    root = Path(env) if env else paths.TERRAFORM_DIR
    return root / target


def deployment_dir(target: str, workload: str, state_dir: str | os.PathLike | None = None) -> Path:
    """``<state_dir>/terraform/<target>/<workload>``: state, work directory and variables of one deployment."""
    root = Path(state_dir) if state_dir is not None else paths.state_dir()
    d = (root / "terraform" / target / workload).resolve()
    d.mkdir(parents=True, exist_ok=True)
    return d


def runner_for(
    target: str,
    workload: str,
    *,
    state_dir: str | os.PathLike | None = None,
    aws_endpoint: str | None = None,
    plugin_dir: str | os.PathLike | None = None,
    engine: str = "auto",
) -> TerraformRunner:
    env = {}
    if aws_endpoint:
        # The emulator accepts any credentials; real ones in the environment are never sent to it.
        env.update(_EMULATOR_CREDENTIALS)
    return TerraformRunner(
        module_dir(target), deployment_dir(target, workload, state_dir), engine=engine, plugin_dir=plugin_dir, env=env
    )


def _tfvars(target, plan, spec, iteration, runner: TerraformRunner, aws_endpoint, shared_fs_kind="efs") -> dict:
    return tfvars_from_plan(
        plan, spec, target, iteration, deployment_dir=runner.state_dir, aws_endpoint=aws_endpoint, shared_fs_kind=shared_fs_kind
    )


def plan_changes(
    target: str,
    plan: Any,
    spec: Any = None,
    *,
    iteration: int = 0,
    state_dir: str | os.PathLike | None = None,
    aws_endpoint: str | None = None,
    plugin_dir: str | os.PathLike | None = None,
    shared_fs_kind: str = "efs",
) -> PlanSummary:
    """The plan Terraform would apply for this hardware plan, without applying it."""
    view, _ = adapt_plan_for_target(plan, target)
    runner = runner_for(target, view.workload, state_dir=state_dir, aws_endpoint=aws_endpoint, plugin_dir=plugin_dir)
    return runner.plan(_tfvars(target, view, spec, iteration, runner, aws_endpoint, shared_fs_kind))


def provision(
    target: str,
    plan: Any,
    spec: Any = None,
    *,
    iteration: int = 0,
    state_dir: str | os.PathLike | None = None,
    aws_endpoint: str | None = None,
    approve_stateful_changes: bool = False,
    plugin_dir: str | os.PathLike | None = None,
    shared_fs_kind: str = "efs",
) -> ApplyResult:
    """Plan and apply the target's root module for this hardware plan; refuses unapproved stateful changes."""
    view, _ = adapt_plan_for_target(plan, target)
    runner = runner_for(target, view.workload, state_dir=state_dir, aws_endpoint=aws_endpoint, plugin_dir=plugin_dir)
    summary = runner.plan(_tfvars(target, view, spec, iteration, runner, aws_endpoint, shared_fs_kind))
    risky = stateful_changes(summary)
    if risky and not approve_stateful_changes:
        raise StatefulChangeRefused(risky, summary)
    if summary.has_changes or summary.output_changes or not runner.state_path.exists():
        result = runner.apply_plan(summary)
    else:
        # Nothing to change: no apply (and no lock on the infrastructure), the outputs as they are.
        result = ApplyResult(outputs=runner.outputs(), plan=summary, state_path=str(runner.state_path))
    (runner.state_dir / "plan.json").write_text(json.dumps(view.model_dump(mode="json"), indent=2))
    return result


def teardown(
    target: str,
    spec_or_workload: Any,
    *,
    state_dir: str | os.PathLike | None = None,
    aws_endpoint: str | None = None,
    plugin_dir: str | os.PathLike | None = None,
) -> ApplyResult:
    """Destroy a deployment, using the variables of its last apply (kept next to its state)."""
    workload = workload_name(spec_or_workload)
    runner = runner_for(target, workload, state_dir=state_dir, aws_endpoint=aws_endpoint, plugin_dir=plugin_dir)
    if not runner.state_path.exists():
        return ApplyResult(state_path=str(runner.state_path))
    if not runner.tfvars_path.exists():
        raise FileNotFoundError(f"{runner.tfvars_path}: no variables of the last apply; cannot plan the destroy")
    tfvars = json.loads(runner.tfvars_path.read_text())
    if target == "aws":
        tfvars["aws_endpoint"] = aws_endpoint
    return runner.destroy(tfvars)
