"""The `aiinfra` command line. Each command group lives in its own module and is imported lazily,
so `aiinfra --help` stays fast and a command pays only for what it uses."""

from __future__ import annotations

import importlib

import click

# command name -> "module:attribute" of a click command or group
_COMMANDS = {
    "iterate": "aiinfra_pipelines.cli.iterate:iterate",
    "demo": "aiinfra_pipelines.cli.iterate:demo",
    "teardown": "aiinfra_pipelines.cli.provision:teardown",
    "provision": "aiinfra_pipelines.cli.provision:provision",
    "bench": "aiinfra_pipelines.cli.bench:bench",
    "catalog": "aiinfra_pipelines.cli.catalog:catalog",
    "profile": "aiinfra_pipelines.cli.profile:profile",
    "plan": "aiinfra_pipelines.cli.catalog:plan",
    "manifests": "aiinfra_pipelines.cli.provision:manifests",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(_COMMANDS)

    def get_command(self, ctx, name):
        target = _COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:  # a command whose module is not built yet
            raise click.ClickException(f"command {name!r} is unavailable: {err}") from err


@click.group(cls=_LazyGroup)
@click.version_option(package_name="aiinfra-pipelines")
def main():
    """Profile, plan, provision, observe, autoscale, run, analyse and retune AI infrastructure."""


if __name__ == "__main__":
    main()
