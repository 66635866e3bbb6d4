"""`promtool check config` / `promtool check rules` on every file the pipeline generates."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from .binaries import resolve_promtool
from .errors import TelemetryConfigError


def _run(args: list[str], path: Path, binary) -> str:
    tool = resolve_promtool(binary)
    path = Path(path)
    if not path.is_file():
        raise TelemetryConfigError(str(path), "file does not exist")
    proc = subprocess.run([str(tool), *args, str(path)], capture_output=True, text=True, timeout=60)
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        # promtool writes "<file>: <line>:<col>: ..." for rule errors
        line_re = re.compile(re.escape(path.name) + r":\s*(\d+):\d+:")
        m = line_re.search(proc.stderr) or line_re.search(proc.stdout)
        raise TelemetryConfigError(str(path), output, line=int(m.group(1)) if m else None)
    return output


def check_config(path: str | os.PathLike, *, binary: str | os.PathLike | None = None) -> str:
    """Checks a prometheus.yml (and the rule files it names); returns promtool's report."""
    return _run(["check", "config"], Path(path), binary)


def check_rules(path: str | os.PathLike, *, binary: str | os.PathLike | None = None) -> str:
    """Checks a rule file; raises :class:`TelemetryConfigError` with promtool's message and line."""
    return _run(["check", "rules"], Path(path), binary)
