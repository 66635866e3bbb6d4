"""Where things live: package data, per-deployment state, and the shared public data."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PACKAGE_DATA = PACKAGE_DIR / "data"
REPO_ROOT = PACKAGE_DIR.parent
TERRAFORM_DIR = REPO_ROOT / "terraform"


def state_dir() -> Path:
    """Per-deployment state (Terraform state, DuckDB history, Prometheus data): AIINFRA_HOME or ./.aiinfra."""
    root = Path(os.environ.get("AIINFRA_HOME", Path.cwd() / ".aiinfra")).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def shared_data_dir() -> Path | None:
    """The public data folder (traces, catalogs, operator profiles) when present: AIINFRA_DATA_DIR or ../shared/data."""
    env = os.environ.get("AIINFRA_DATA_DIR")
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT.parent / "shared" / "data", REPO_ROOT / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None
