"""`aiinfra iterate` / `aiinfra demo`: one lifecycle iteration outside the UI, from the same Definitions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import click

from aiinfra_pipelines.paths import REPO_ROOT

DEFAULT_SPEC = REPO_ROOT / "examples" / "lifecycle.yaml"


def _ensure_dagster_home() -> Path:
    """DAGSTER_HOME, or ./.dagster_home (the one `make ui` uses), with outside telemetry off."""
    home = Path(os.environ.get("DAGSTER_HOME") or (Path.cwd() / ".dagster_home")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text((REPO_ROOT / "dagster.yaml").read_text() if (REPO_ROOT / "dagster.yaml").exists()
                       else "telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def code_location_load_seconds() -> float:
    """Wall time of a fresh Python process loading the code location (what the webserver pays)."""
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import aiinfra_pipelines.definitions as d; d.defs.get_repository_def()"],
        check=True, capture_output=True,
    )
    return time.perf_counter() - t0


def run_iteration(spec_path: Path, *, target: str | None = None) -> dict:
    """Materialize one iteration (the next partition, with the last proposal); returns the summary."""
    from aiinfra_pipelines.spec import load_spec

    spec = load_spec(spec_path)  # a bad spec stops here, before any partition is added
    if target is not None and target != spec.target:
        raise click.UsageError(f"--target {target}: the spec {spec_path} targets {spec.target!r}")
    _ensure_dagster_home()
    import dagster as dg
    from dagster_duckdb import DuckDBResource

    from aiinfra_pipelines.analytics.report import build_report
    from aiinfra_pipelines.assets.partitions import ITERATIONS
    from aiinfra_pipelines.automation import ITERATION_JOB, next_iteration_request
    from aiinfra_pipelines.defs import build_defs

    t_load = time.perf_counter()
    defs = build_defs(spec_path=spec_path)
    job = defs.resolve_job_def(ITERATION_JOB)
    load_s = time.perf_counter() - t_load

    instance = dg.DagsterInstance.get()
    key, run_config, last = next_iteration_request(instance)
    if last is not None and not last.continue_loop:
        click.echo(f"note: the loop had stopped after iteration {last.iteration} ({last.stop_reason}); "
                   f"running iteration {key} with its proposal anyway", err=True)
    instance.add_dynamic_partitions(ITERATIONS, [key])
    t0 = time.perf_counter()
    result = job.execute_in_process(instance=instance, partition_key=key, run_config=run_config,
                                    raise_on_error=False, tags={"aiinfra/trigger": "cli"})
    wall_s = time.perf_counter() - t0
    materialized = sorted(
        {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} if result.success
        else {e.event_specific_data.materialization.asset_key.to_user_string()
              for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    )
    if not result.success:
        failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
        detail = "; ".join(f"{e.step_key}: {e.event_specific_data.error.message.strip()[:1500]}" for e in failures)
        raise click.ClickException(f"iteration {key} failed (nothing recorded for it): {detail}")

    duck = defs.resources["duckdb"]
    assert isinstance(duck, DuckDBResource)
    with duck.get_connection() as con:
        report = build_report(con, key)
        rows = con.execute("SELECT count(*) FROM telemetry_series WHERE iteration = ?", [key]).fetchone()[0]
    proposal = result.output_for_node("retuning_proposal")
    return {
        "iteration": key,
        "materialized": materialized,
        "cost_per_epoch_usd": report.cost_per_epoch_usd,
        "cost_per_1k_requests_usd": report.cost_per_1k_requests_usd,
        "slo_attainment": report.slo_attainment,
        "p99_latency_s": report.p99_latency_s,
        "priced_as": f"{report.cloud} {report.instance_type} ${report.price_per_hour}/h",
        "replica_seconds": report.replica_seconds,
        "requests": report.requests,
        "telemetry_samples": rows,
        "policy_source": result.output_for_node("scaling_policy").source,
        "proposal": proposal.run_config(),
        "continue_loop": proposal.continue_loop,
        "stop_reason": proposal.stop_reason,
        "reason": proposal.reason,
        "iteration_wall_s": round(wall_s, 2),
        "definitions_build_s": round(load_s, 3),
        "database": str(Path(duck.database)),
        "dagster_home": os.environ["DAGSTER_HOME"],
    }


def _print_summary(s: dict) -> None:
    def f(v, fmt="{:.6f}"):
        return "n/a" if v is None else fmt.format(v)

    click.echo(f"iteration {s['iteration']}: {len(s['materialized'])} assets materialized in {s['iteration_wall_s']:.1f}s")
    click.echo(f"  priced as            {s['priced_as']}")
    click.echo(f"  cost per epoch       ${f(s['cost_per_epoch_usd'])}")
    click.echo(f"  cost per 1k requests ${f(s['cost_per_1k_requests_usd'])}")
    click.echo(f"  SLO attainment       {f(s['slo_attainment'], '{:.2%}')}   p99 latency {f(s['p99_latency_s'], '{:.3f}')}s")
    click.echo(f"  requests             {s['requests']}   replica-seconds {f(s['replica_seconds'], '{:.1f}')}")
    click.echo(f"  proposal             {s['proposal'].get('policy_family')} {s['proposal'].get('policy_params')}")
    if s["continue_loop"]:
        click.echo(f"  next iteration proposed: {s['reason']}")
    else:
        click.echo(f"  loop stops: {s['stop_reason']}")
    click.echo(f"  history in           {s['database']}")


@click.command()
@click.option("--target", type=click.Choice(["local", "aws", "gcp"]), default=None, help="Must match the spec's target.")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_SPEC,
              show_default=True, help="Workload spec YAML.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object as the last line.")
def iterate(target, spec_path, as_json):
    """Run the next lifecycle iteration (all nine assets) with the last proposal applied."""
    from aiinfra_pipelines.spec import SpecError

    try:
        summary = run_iteration(spec_path, target=target)
    except SpecError as err:
        raise click.ClickException(str(err)) from None
    if as_json:
        click.echo(json.dumps(summary, default=str))
    else:
        _print_summary(summary)


@click.command()
@click.option("--target", type=click.Choice(["local"]), default="local")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_SPEC,
              show_default=True)
def demo(target, spec_path):
    """One iteration on the local target, with a printed summary (run it again for the next iteration)."""
    load_s = code_location_load_seconds()
    summary = run_iteration(spec_path, target=target)
    _print_summary(summary)
    click.echo(f"  code location loads in {load_s:.2f}s (target <= 5s); "
               f"iteration wall time {summary['iteration_wall_s']:.1f}s (target <= 120s)")


@click.command("iteration")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_SPEC)
@click.option("--json", "as_json", is_flag=True)
def bench_iteration(spec_path, as_json):
    """Code-location load time and one iteration's wall time."""
    load_s = code_location_load_seconds()
    summary = run_iteration(spec_path)
    out = {"code_location_load_s": round(load_s, 3), "iteration_wall_s": summary["iteration_wall_s"],
           "iteration": summary["iteration"]}
    click.echo(f"{'metric':<24}{'value':>10}{'target':>10}")
    click.echo(f"{'code_location_load_s':<24}{out['code_location_load_s']:>10.2f}{'<= 5':>10}")
    click.echo(f"{'iteration_wall_s':<24}{out['iteration_wall_s']:>10.1f}{'<= 120':>10}")
    if as_json:
        click.echo(json.dumps(out))
