"""`aiinfra catalog` (list and filter instance types) and `aiinfra plan` (plan a spec from a profile)."""

from __future__ import annotations

import json

import click


@click.command("catalog")
@click.option("--accelerator", default=None, help="e.g. A100, H100, tpu-v5e, Inferentia2, cpu")
@click.option("--cloud", default=None, type=click.Choice(["aws", "gcp", "azure"]))
@click.option("--max-price", type=float, default=None, help="USD per hour, on-demand")
@click.option("--region", "regions", multiple=True)
@click.option("--limit", type=int, default=50)
@click.option("--json", "as_json", is_flag=True)
def catalog(accelerator, cloud, max_price, regions, limit, as_json):
    """List catalog instance types, cheapest first."""
    from aiinfra_pipelines.planning.catalog import load_catalog

    cat = load_catalog()
    df = cat.filter(accelerator=accelerator, cloud=cloud, max_price=max_price, regions=list(regions) or None)
    df = df.sort_values("price_per_hour").head(limit)
    cols = ["cloud", "region", "instance_type", "accelerator", "accelerator_count", "vcpus", "memory_gib",
            "price_per_hour", "spot_price_per_hour", "peak_tflops_bf16", "hbm_gib"]
    if as_json:
        click.echo(df[cols].to_json(orient="records"))
    else:
        click.echo(f"catalog snapshot {cat.snapshot}: {len(df)} rows shown")
        click.echo(df[cols].to_string(index=False))


@click.command("plan")
@click.argument("spec_path", type=click.Path(exists=True, dir_okay=False))
@click.option("--profile", "profile_path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="A profile JSON (the profiler's output).")
def plan(spec_path, profile_path):
    """Print the hardware plan (JSON) for a spec and its profile."""
    from aiinfra_pipelines.planning import plan_hardware
    from aiinfra_pipelines.spec import load_spec

    spec = load_spec(spec_path)
    with open(profile_path) as fh:
        try:
            profile = json.load(fh)
        except json.JSONDecodeError as err:
            raise click.ClickException(f"{profile_path}: not valid JSON: line {err.lineno}: {err.msg}") from None
    click.echo(plan_hardware(spec, profile).model_dump_json(indent=2))
