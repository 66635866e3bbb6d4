"""Scrape targets as Prometheus file_sd JSON files, one per job, changed at run time.

The controller that starts and stops inference replicas calls :meth:`TargetRegistry.add` /
:meth:`TargetRegistry.remove`; Prometheus notices the change (inotify on the directory) and
starts or stops scraping without a reload. Each write goes to a temporary file in the same
directory and is renamed over the target file, so Prometheus never reads half a file; a
per-job lock file (``fcntl.flock``) serialises read-modify-write across processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from .config import file_sd_path

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_JOB = re.compile(r"^[A-Za-z0-9_-]+$")


def _check_job(job: str) -> str:
    if not isinstance(job, str) or not _JOB.match(job):
        raise ValueError(f"job: {job!r} must be non-empty letters, digits, '_' or '-'")
    return job


def _check_address(address: str) -> str:
    host, sep, port = str(address).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address: {address!r} must be host:port with a port in 1..65535")
    return str(address)


def _check_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (labels or {}).items():
        if not isinstance(k, str) or not _LABEL_NAME.match(k) or k.startswith("__"):
            raise ValueError(f"labels: label name {k!r} must match [a-zA-Z_][a-zA-Z0-9_]* and not start with '__'")
        if k in ("job", "instance"):
            raise ValueError(f"labels: {k!r} is set by Prometheus from the job and address")
        out[k] = str(v)
    return out


class TargetRegistry:
    """The file_sd directory the server's scrape jobs read (`<dir>/<job>.json`)."""

    def __init__(self, file_sd_dir: str | os.PathLike):
        self.file_sd_dir = Path(file_sd_dir)
        self.file_sd_dir.mkdir(parents=True, exist_ok=True)

    def path(self, job: str) -> Path:
        return file_sd_path(self.file_sd_dir, _check_job(job))

    # --- reading ------------------------------------------------------------------------
    def targets(self, job: str) -> list[dict]:
        """The job's targets as ``[{"address": "host:port", "labels": {...}}]`` (empty when no file)."""
        p = self.path(job)
        try:
            groups = json.loads(p.read_text())
        except FileNotFoundError:
            return []
        except json.JSONDecodeError as err:
            raise ValueError(f"{p}: not valid file_sd JSON (line {err.lineno}): {err.msg}") from err
        out = []
        for g in groups:
            for t in g.get("targets", []):
                out.append({"address": t, "labels": dict(g.get("labels", {}))})
        return out

    def addresses(self, job: str) -> list[str]:
        return [t["address"] for t in self.targets(job)]

    # --- writing ------------------------------------------------------------------------
    def add(self, job: str, address: str, labels: Mapping[str, str] | None = None) -> None:
        """Adds (or replaces, by address) one target of ``job``."""
        entry = {"address": _check_address(address), "labels": _check_labels(labels)}
        with self._locked(job):
            current = [t for t in self.targets(job) if t["address"] != entry["address"]]
            self._write(job, current + [entry])

    def remove(self, job: str, address: str) -> bool:
        """Removes one target; returns whether it was there."""
        with self._locked(job):
            current = self.targets(job)
            kept = [t for t in current if t["address"] != address]
            self._write(job, kept)
            return len(kept) != len(current)

    def set(self, job: str, targets: Iterable[str | Mapping]) -> None:
        """Replaces all targets of ``job``: addresses, or ``{"address":..., "labels":{...}}`` mappings."""
        entries: list[dict] = []
        seen: set[str] = set()
        for t in targets:
            if isinstance(t, str):
                entry = {"address": _check_address(t), "labels": {}}
            elif isinstance(t, Mapping) and "address" in t:
                entry = {"address": _check_address(t["address"]), "labels": _check_labels(t.get("labels"))}
            else:
                raise ValueError(f"targets: {t!r} must be 'host:port' or a mapping with 'address' (and 'labels')")
            if entry["address"] in seen:
                raise ValueError(f"targets: address {entry['address']!r} is listed twice for job {job!r}")
            seen.add(entry["address"])
            entries.append(entry)
        with self._locked(job):
            self._write(job, entries)

    def ensure(self, job: str) -> None:
        """Creates an empty target file for ``job`` when none exists (so the scrape job has a file to watch)."""
        with self._locked(job):
            if not self.path(job).exists():
                self._write(job, [])

    # --- internals ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, job: str) -> Iterator[None]:
        lock = self.file_sd_dir / f".{_check_job(job)}.lock"
        with open(lock, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _write(self, job: str, entries: list[dict]) -> None:
        # one group per target, so each replica keeps its own labels
        groups = [{"targets": [e["address"]], "labels": e["labels"]} for e in entries]
        final = self.path(job)
        fd, tmp = tempfile.mkstemp(dir=self.file_sd_dir, prefix=f".{job}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(groups, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
