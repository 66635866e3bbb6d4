"""Finding the Prometheus server and promtool: an explicit path, an environment variable, or PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from .errors import MissingBinaryError

PROMETHEUS_ENV = "AIINFRA_PROMETHEUS_BIN"
PROMTOOL_ENV = "AIINFRA_PROMTOOL_BIN"


def _executable(p: Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def resolve_prometheus(binary: str | os.PathLike | None = None) -> Path:
    """The prometheus server binary: ``binary`` when given, else $AIINFRA_PROMETHEUS_BIN, else PATH."""
    return _resolve("prometheus", binary, PROMETHEUS_ENV, sibling_of=None)


def resolve_promtool(binary: str | os.PathLike | None = None) -> Path:
    """promtool: ``binary``, else $AIINFRA_PROMTOOL_BIN, else next to $AIINFRA_PROMETHEUS_BIN, else PATH."""
    return _resolve("promtool", binary, PROMTOOL_ENV, sibling_of=os.environ.get(PROMETHEUS_ENV))


def _resolve(tool: str, binary, env_var: str, sibling_of: str | None) -> Path:
    if binary is not None:
        p = Path(binary).expanduser()
        if _executable(p):
            return p.resolve()
        raise MissingBinaryError(tool, [str(p)], env_var)
    env = os.environ.get(env_var)
    if env:
        p = Path(env).expanduser()
        if _executable(p):
            return p.resolve()
        raise MissingBinaryError(tool, [f"{env_var}={env}"], env_var)
    looked = []
    if sibling_of:
        p = Path(sibling_of).expanduser().parent / tool
        looked.append(str(p))
        if _executable(p):
            return p.resolve()
    found = shutil.which(tool)
    if found:
        return Path(found).resolve()
    looked.append("PATH")
    raise MissingBinaryError(tool, looked, env_var)
