"""`aiinfra provision`, `aiinfra teardown` and `aiinfra manifests`.

Where the hardware plan comes from (first that applies):

1. ``--plan FILE``: a saved plan (the planner's JSON, ``aiinfra plan`` output, or the
   ``plan.json`` that provision keeps next to a deployment's state; ``--plan last`` reads that one);
2. ``--profile FILE``: a measured profile (the profiler's JSON), planned with the catalog;
3. otherwise a profile estimated from the spec's model size (see
   :mod:`aiinfra_pipelines.provisioning.estimate`): cheap, deterministic, and marked as an
   estimate in the plan's provenance. The real profiler never runs inside ``provision``.

For a cloud target the spec is planned for that cloud in one region (``--region``, else the
spec's only allowed region, else us-east-1): one cluster lives in one region.
With ``--json`` the last line of stdout is one JSON object; notes go to stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

DEFAULT_REGION = "us-east-1"


def _common(fn):
    options = [
        click.option("--target", type=click.Choice(["local", "aws"]), default=None,
                     help="Where to provision; default: the spec's target."),
        click.option("--spec", "spec_path", required=True, type=click.Path(exists=True, dir_okay=False),
                     help="The workload spec (YAML)."),
        click.option("--aws-endpoint", default=None, envvar="AIINFRA_AWS_ENDPOINT",
                     help="Send every AWS API call to this endpoint (a local AWS API such as moto server)."),
        click.option("--state-dir", default=None, type=click.Path(file_okay=False),
                     help="Deployment state folder (default: AIINFRA_HOME or ./.aiinfra)."),
        click.option("--plugin-dir", default=None, envvar="AIINFRA_TF_PLUGIN_DIR",
                     help="Terraform provider mirror; 'registry' allows downloads."),
        click.option("--json", "as_json", is_flag=True, help="Last stdout line: {changes, outputs} as JSON."),
        click.option("--approve-stateful-changes", is_flag=True,
                     help="Allow a plan that destroys or replaces a cluster, file system or bucket."),
        click.option("--plan", "plan_path", default=None,
                     help="A saved hardware plan JSON ('last': this deployment's last applied plan)."),
        click.option("--profile", "profile_path", default=None, type=click.Path(exists=True, dir_okay=False),
                     help="A measured profile JSON to plan from (default: an estimate from the spec)."),
        click.option("--region", default=None, help="Region of the cluster (cloud targets)."),
        click.option("--iteration", type=int, default=0, show_default=True, help="Iteration number recorded in the deployment."),
        click.option("--shared-fs", type=click.Choice(["efs", "fsx_lustre"]), default="efs", show_default=True,
                     help="File system of the shared storage tier (aws)."),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


def _note(msg: str, as_json: bool) -> None:
    click.echo(msg, err=as_json)


def load_spec_for(spec_path: str, target: str | None, region: str | None):
    """The spec, retargeted, and for a cloud target restricted to one region."""
    from aiinfra_pipelines.spec import SpecError, load_spec

    try:
        spec = load_spec(spec_path)
    except SpecError as err:
        raise click.ClickException(str(err)) from None
    target = target or spec.target
    update = {"target": target}
    if target != "local":
        regions = list(spec.placement.regions)
        if region:
            regions = [region]
        elif len(regions) != 1:
            regions = [DEFAULT_REGION]
        update["placement"] = spec.placement.model_copy(update={"regions": regions})
    return spec.model_copy(update=update), target


def resolve_plan(spec, target: str, *, plan_path: str | None, profile_path: str | None, state_dir=None):
    """(hardware plan, where it came from)."""
    if plan_path:
        if plan_path == "last":
            from aiinfra_pipelines.provisioning import deployment_dir

            path = deployment_dir(target, spec.name, state_dir) / "plan.json"
            if not path.exists():
                raise click.ClickException(f"--plan last: {path} does not exist (no apply of {spec.name} on {target} yet)")
        else:
            path = Path(plan_path)
        try:
            return json.loads(path.read_text()), f"saved plan {path}"
        except (OSError, json.JSONDecodeError) as err:
            raise click.ClickException(f"--plan {path}: {err}") from None
    from aiinfra_pipelines.planning import plan_hardware

    if profile_path:
        try:
            profile = json.loads(Path(profile_path).read_text())
        except json.JSONDecodeError as err:
            raise click.ClickException(f"--profile {profile_path}: not valid JSON: line {err.lineno}: {err.msg}") from None
        source = f"measured profile {profile_path}"
    else:
        from aiinfra_pipelines.provisioning.estimate import estimated_profile

        profile = estimated_profile(spec)
        source = "profile estimated from the spec's model size (no profiler run)"
    try:
        return plan_hardware(spec, profile), source
    except ValueError as err:
        raise click.ClickException(f"planning {spec.name}: {err}") from None


def _emit(result, as_json: bool, extra: dict | None = None) -> None:
    if as_json:
        payload = result.as_json()
        if extra:
            payload.update(extra)
        click.echo(json.dumps(payload, sort_keys=True, default=str))
        return
    c = result.changes
    click.echo(f"changes: {c.get('add', 0)} to add, {c.get('change', 0)} to change, {c.get('destroy', 0)} to destroy")
    for k, v in sorted(result.outputs.items()):
        click.echo(f"  {k} = {json.dumps(v, default=str)}")


@click.command("provision")
@_common
def provision(target, spec_path, aws_endpoint, state_dir, plugin_dir, as_json, approve_stateful_changes, plan_path,
              profile_path, region, iteration, shared_fs):
    """Plan and apply the target's Terraform for the spec's hardware plan."""
    from aiinfra_pipelines.provisioning import PlanError, StatefulChangeRefused, TerraformError
    from aiinfra_pipelines.provisioning import provision as do_provision
    from aiinfra_pipelines.provisioning.plan_view import adapt_plan_for_target

    spec, target = load_spec_for(spec_path, target, region)
    plan, source = resolve_plan(spec, target, plan_path=plan_path, profile_path=profile_path, state_dir=state_dir)
    _note(f"hardware plan: {source}", as_json)
    try:
        _, notes = adapt_plan_for_target(plan, target)
        for n in notes:
            _note(f"note: {n}", as_json)
        result = do_provision(target, plan, spec, iteration=iteration, state_dir=state_dir, aws_endpoint=aws_endpoint,
                              approve_stateful_changes=approve_stateful_changes, plugin_dir=plugin_dir,
                              shared_fs_kind=shared_fs)
    except StatefulChangeRefused as err:
        click.echo(f"refused: {err}", err=True)
        if as_json:
            click.echo(json.dumps({"refused": err.addresses, "changes": {"add": err.summary.add, "change": err.summary.change,
                                                                        "destroy": err.summary.destroy}}))
        sys.exit(3)
    except (PlanError, TerraformError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    _emit(result, as_json)


@click.command("teardown")
@_common
def teardown(target, spec_path, aws_endpoint, state_dir, plugin_dir, as_json, approve_stateful_changes, plan_path,
             profile_path, region, iteration, shared_fs):
    """Destroy the deployment of the spec on the target (with the variables of its last apply)."""
    from aiinfra_pipelines.provisioning import TerraformError
    from aiinfra_pipelines.provisioning import teardown as do_teardown

    spec, target = load_spec_for(spec_path, target, region)
    try:
        result = do_teardown(target, spec, state_dir=state_dir, aws_endpoint=aws_endpoint, plugin_dir=plugin_dir)
    except (TerraformError, FileNotFoundError) as err:
        raise click.ClickException(str(err)) from None
    _emit(result, as_json)


@click.command("manifests")
@click.option("--spec", "spec_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write the YAML into.")
@click.option("--target", type=click.Choice(["aws"]), default="aws", show_default=True)
@click.option("--plan", "plan_path", default=None, help="A saved hardware plan JSON ('last': the last applied plan).")
@click.option("--profile", "profile_path", default=None, type=click.Path(exists=True, dir_okay=False))
@click.option("--region", default=None)
@click.option("--iteration", type=int, default=0, show_default=True)
@click.option("--image", default=None, help="Container image of the workload (default: the project's image name).")
@click.option("--outputs", "outputs_path", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Terraform outputs JSON (provision --json) for the bucket, file system and zones.")
@click.option("--state-dir", default=None, type=click.Path(file_okay=False))
@click.option("--no-validate", is_flag=True, help="Skip the offline validation (not recommended).")
def manifests(spec_path, out_dir, target, plan_path, profile_path, region, iteration, image, outputs_path, state_dir,
              no_validate):
    """Write the Kubernetes manifests of one iteration (jobs, telemetry, autoscaling), validated offline."""
    from aiinfra_pipelines.k8s import ManifestInvalid, build_manifests, validate_manifests, write_manifests

    spec, target = load_spec_for(spec_path, target, region)
    plan, source = resolve_plan(spec, target, plan_path=plan_path, profile_path=profile_path, state_dir=state_dir)
    outputs = None
    if outputs_path:
        data = json.loads(Path(outputs_path).read_text().strip().splitlines()[-1])
        outputs = data.get("outputs", data)
    kw = {"image": image} if image else {}
    bundle = build_manifests(spec, plan, iteration=iteration, infra_outputs=outputs, **kw)
    if not no_validate:
        try:
            validate_manifests(bundle.all())
        except ManifestInvalid as err:
            raise click.ClickException(str(err)) from None
    paths = write_manifests(bundle, out_dir)
    click.echo(f"hardware plan: {source}", err=True)
    for p in paths:
        click.echo(str(p))
