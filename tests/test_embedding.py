"""Embedding the lifecycle in an existing Dagster deployment: `build_defs` merged with a platform's
own definitions, the `AiinfraLifecycle` Component loaded from its YAML attributes, and the layer
rule (the domain packages import nothing from Dagster)."""

from __future__ import annotations

import ast
from pathlib import Path

import dagster as dg

from aiinfra_pipelines.component import AiinfraLifecycle
from aiinfra_pipelines.defs import LIFECYCLE_ASSETS, build_defs

PACKAGE = Path(__file__).resolve().parents[1] / "aiinfra_pipelines"
DOMAIN = ["profiling", "planning", "provisioning", "telemetry", "scaling", "execution", "analytics",
          "retuning", "workloads", "spec.py", "paths.py"]
# dagster-pipes is the dependency-free protocol a workload process speaks; it is no Dagster import.
PIPES = "dagster_pipes"


def test_merged_with_a_platforms_own_definitions(tmp_path, examples_dir):
    ours = build_defs(spec_path=examples_dir / "lifecycle.yaml", state_dir=tmp_path)

    @dg.asset(group_name="platform")
    def gpu_inventory() -> int:
        return 8

    merged = dg.Definitions.merge(ours, dg.Definitions(assets=[gpu_inventory]))
    with dg.instance_for_test():  # loading reads the instance's definitions-state storage
        dg.Definitions.validate_loadable(merged)
    keys = {k.to_user_string() for k in merged.resolve_all_asset_keys()}
    assert {a.key.to_user_string() for a in LIFECYCLE_ASSETS} | {"gpu_inventory"} == keys
    assert merged.resolve_job_def("iteration") is not None
    assert {s.name for s in merged.sensors} == {"retuning_sensor"}


def test_component_from_yaml_attributes(tmp_path, examples_dir):
    component = AiinfraLifecycle.resolve_from_yaml(
        f"spec_path: {examples_dir / 'lifecycle.yaml'}\nstate_dir: {tmp_path / 'state'}\n"
    )
    defs = component.build_defs(dg.ComponentTree.for_test().load_context)
    with dg.instance_for_test():
        dg.Definitions.validate_loadable(defs)
    assert defs.resources["deployment"].state_dir == str(tmp_path / "state")
    assert len(list(defs.resolve_all_asset_keys())) == len(LIFECYCLE_ASSETS)


def test_domain_layer_imports_no_dagster():
    offenders = []
    for entry in DOMAIN:
        root = PACKAGE / entry
        for f in [root] if root.is_file() else sorted(root.rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                if any(n == "dagster" or (n.startswith(("dagster.", "dagster_")) and n != PIPES) for n in names):
                    offenders.append(f"{f.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, f"the domain layer imports Dagster: {offenders}"
