"""`aiinfra bench ...`: benchmarks that print their figures (speed and quality targets live here)."""

from __future__ import annotations

import importlib

import click

# subcommand -> "module:attribute"; each benchmark module owns its command.
_BENCHES = {
    "autoscaling": "aiinfra_pipelines.scaling.bench:autoscaling_command",
    "perf-model": "aiinfra_pipelines.planning.bench:perf_model_command",
    "planner": "aiinfra_pipelines.planning.bench:planner_command",
    "profiler-overhead": "aiinfra_pipelines.profiling.bench:profiler_overhead_command",
    "iteration": "aiinfra_pipelines.cli.iterate:bench_iteration",
}


class _LazyBench(click.Group):
    def list_commands(self, ctx):
        return sorted(_BENCHES)

    def get_command(self, ctx, name):
        target = _BENCHES.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyBench)
def bench():
    """Benchmarks; each prints a table, and with --json one JSON object on its last line."""
