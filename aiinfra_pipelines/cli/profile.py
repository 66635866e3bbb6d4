"""`aiinfra profile`: profile a workload, write the profile, and gate on a saved baseline.

    aiinfra profile --spec examples/lifecycle.yaml --output profile.json
    aiinfra profile --spec examples/lifecycle.yaml --output - --baseline baseline.json
    aiinfra profile --profile new.json --baseline baseline.json --tolerance 0.1

Exit status 1 when a figure is worse than the baseline by more than the tolerance (the
CI/CD profiling gate), 2 on bad input.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click


@click.command("profile")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path), help="Workload spec to profile.")
@click.option("--profile", "profile_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Use a saved profile instead of running the workload.")
@click.option("--output", "-o", help="Write the profile JSON here ('-' for stdout).")
@click.option("--samples", "samples_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the samples table here (.csv or .parquet).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), help="Where the model is saved.")
@click.option("--baseline", type=click.Path(dir_okay=False, path_type=Path), help="Saved profile to compare with.")
@click.option("--tolerance", default=0.1, show_default=True, type=click.FloatRange(0, 10),
              help="Relative change in the bad direction that counts as a regression.")
@click.option("--overhead/--no-overhead", default=False, help="Also measure the profiler's overhead ratio.")
def profile(spec_path, profile_path, output, samples_path, workdir, baseline, tolerance, overhead):
    """Profile a workload (or load a profile) and compare it with a baseline."""
    from aiinfra_pipelines.profiling import compare_profiles, load_profile, profile_workload
    from aiinfra_pipelines.spec import SpecError, load_spec

    if (spec_path is None) == (profile_path is None):
        raise click.UsageError("give exactly one of --spec (run the workload) or --profile (a saved profile)")
    if profile_path is not None:
        try:
            new = load_profile(profile_path)
        except (FileNotFoundError, ValueError) as err:
            raise click.UsageError(f"--profile: {err}") from None
        samples = None
    else:
        try:
            spec = load_spec(spec_path)
        except SpecError as err:
            raise click.UsageError(str(err)) from None
        wd = workdir or Path(tempfile.mkdtemp(prefix="aiinfra-profile-"))
        res = profile_workload(spec, wd, measure_overhead=overhead)
        new, samples = res.profile, res.samples
    if output:
        text = new.model_dump_json(indent=2)
        if output == "-":
            click.echo(text)
        else:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            Path(output).write_text(text + "\n")
    if samples_path and samples is not None:
        if samples_path.suffix == ".parquet":
            samples.to_parquet(samples_path, index=False)
        else:
            samples.to_csv(samples_path, index=False)
    err = sys.stderr
    if new.training is not None:
        t = new.training
        shares = ", ".join(f"{k} {v.share:.0%}" for k, v in t.phases.items() if k in ("data_load", "compute", "optimizer"))
        click.echo(f"training: {t.samples_per_s:.0f} samples/s, epoch {t.epoch_s * 1e3:.1f} ms ({shares})", file=err)
    if new.inference is not None:
        i = new.inference
        click.echo(f"inference: saturation {i.saturation_rps:.0f} req/s (rows), {i.trace_saturation_rps:.0f} req/s "
                   f"(trace), trace request service {i.trace_request_service_s * 1e3:.2f} ms", file=err)
    if baseline is not None:
        try:
            base = load_profile(baseline)
        except (FileNotFoundError, ValueError) as e:
            raise click.UsageError(f"--baseline: {e}") from None
        regressions = compare_profiles(new, base, tolerance=tolerance)
        if regressions:
            click.echo(f"{len(regressions)} regression(s) against {baseline}:", file=err)
            for r in regressions:
                click.echo(f"  {r}", file=err)
            sys.exit(1)
        click.echo(f"no regression against {baseline} (tolerance {tolerance:.0%})", file=err)
