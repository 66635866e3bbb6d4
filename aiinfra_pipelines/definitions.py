"""This repository's code location (`workspace.yaml` points here)."""

from aiinfra_pipelines.defs import build_defs

defs = build_defs()
