"""The workload spec and the deployment's state folder, as Dagster resources."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from aiinfra_pipelines.paths import REPO_ROOT, state_dir
from aiinfra_pipelines.spec import WorkloadSpec, load_spec

DEFAULT_SPEC = REPO_ROOT / "examples" / "lifecycle.yaml"


class WorkloadSpecResource(dg.ConfigurableResource):
    """The workload spec this deployment iterates on (a YAML file, validated on load)."""

    spec_path: str = Field(
        default_factory=lambda: os.environ.get("AIINFRA_SPEC", str(DEFAULT_SPEC)),
        description="Path of the workload spec YAML (AIINFRA_SPEC, else examples/lifecycle.yaml).",
    )

    def load(self) -> WorkloadSpec:
        return load_spec(self.spec_path)


class DeploymentResource(dg.ConfigurableResource):
    """Where this deployment keeps its state: iteration folders, Terraform state, the DuckDB history."""

    state_dir: str = Field(
        default_factory=lambda: str(state_dir()),
        description="State folder (AIINFRA_HOME, else ./.aiinfra); outside the source tree.",
    )

    @property
    def root(self) -> Path:
        p = Path(self.state_dir).expanduser().resolve()
        p.mkdir(parents=True, exist_ok=True)
        return p

    def iteration_dir(self, workload: str, iteration: str) -> Path:
        p = self.root / "deployments" / workload / "iterations" / iteration
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def database_path(self) -> Path:
        return self.root / "aiinfra.duckdb"
