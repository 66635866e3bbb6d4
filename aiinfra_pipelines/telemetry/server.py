"""A real Prometheus server on loopback, started as a detached process and stopped by PID.

The server must outlive the Python process that starts it (the `telemetry_stack` asset
starts it, later steps query it), so its whereabouts live in a JSON state file
(``{pid, port, url, config, tsdb, ...}``) that :meth:`PrometheusServer.attach` reads back in
any process.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import requests

from .binaries import resolve_prometheus
from .errors import PrometheusStartError

_BIND_ERRORS = ("address already in use", "bind: permission denied", "cannot assign requested address")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``port`` now (connections in TIME_WAIT do not count, as for
    Prometheus itself, which binds with SO_REUSEADDR)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    os.replace(tmp, path)


def pid_alive(pid: int | None) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as gone; our own zombie child is reaped)."""
    if not pid:
        return False
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def terminate_pid(pid: int, *, timeout_s: float = 5.0, must_contain: str | None = None) -> bool:
    """SIGTERM, then SIGKILL, one process by PID; waits for it to exit. Returns whether it was running.

    ``must_contain``: only signal the process when its command line contains this text, so a
    PID reused by an unrelated process after ours exited is left alone.
    """
    if not pid_alive(pid):
        return False
    if must_contain is not None:
        try:
            if must_contain not in " ".join(psutil.Process(pid).cmdline()):
                return False
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False
    for sig, wait in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, timeout_s)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return True
            time.sleep(0.02)
    return not pid_alive(pid)


class PrometheusServer:
    """One Prometheus server process.

    ``tsdb_dir=None`` gives a temporary TSDB directory that :meth:`stop` removes. ``port=None``
    (or a port that is busy) means a free port is picked; when the server still fails to bind
    (another process took the port in between) it is restarted on another port.
    """

    def __init__(
        self,
        config_path: str | os.PathLike,
        tsdb_dir: str | os.PathLike | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        retention: str = "2h",
        binary: str | os.PathLike | None = None,
        state_file: str | os.PathLike | None = None,
        log_file: str | os.PathLike | None = None,
    ):
        self.config_path = Path(config_path).resolve()
        self.tsdb_dir = Path(tsdb_dir).resolve() if tsdb_dir is not None else None
        self.tsdb_temporary = tsdb_dir is None
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.retention = retention
        self.binary = binary
        self.state_file = Path(state_file) if state_file else self.config_path.parent / "prometheus-server.json"
        self.log_file = Path(log_file) if log_file else self.config_path.parent / "prometheus.log"
        self.pid: int | None = None
        self.port_attempts: list[int] = []
        self._proc: subprocess.Popen | None = None

    # --- where it is ----------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self.port is None:
            raise PrometheusStartError("the server has not been started (no port yet)")
        return f"http://{self.host}:{self.port}"

    @property
    def listen_address(self) -> str:
        return f"{self.host}:{self.port}"

    def state(self) -> dict:
        return {
            "pid": self.pid,
            "port": self.port,
            "url": self.url,
            "host": self.host,
            "config": str(self.config_path),
            "tsdb": str(self.tsdb_dir) if self.tsdb_dir else None,
            "tsdb_temporary": self.tsdb_temporary,
            "retention": self.retention,
            "log": str(self.log_file),
        }

    @classmethod
    def attach(cls, state_file: str | os.PathLike) -> PrometheusServer:
        """The server described by a state file written by :meth:`start` (possibly in another process)."""
        state_file = Path(state_file)
        try:
            st = json.loads(state_file.read_text())
        except FileNotFoundError as err:
            raise PrometheusStartError(f"no Prometheus state file at {state_file}: the server was not started or was stopped") from err
        missing = [k for k in ("pid", "port", "config", "tsdb") if k not in st]
        if missing:
            raise PrometheusStartError(f"{state_file}: state file lacks {', '.join(missing)}")
        srv = cls(
            st["config"],
            st["tsdb"],
            host=st.get("host", "127.0.0.1"),
            port=st["port"],
            retention=st.get("retention", "2h"),
            state_file=state_file,
            log_file=st.get("log"),
        )
        srv.tsdb_temporary = bool(st.get("tsdb_temporary", False))
        srv.port = int(st["port"])
        srv.pid = int(st["pid"])
        return srv

    # --- lifecycle ------------------------------------------------------------------------
    def start(self, *, timeout_s: float = 15.0, max_port_attempts: int = 5) -> PrometheusServer:
        """Starts the server and returns once it listens (see :meth:`wait_ready` for "ready")."""
        if self.is_running():
            return self
        binary = resolve_prometheus(self.binary)
        if not self.config_path.is_file():
            raise PrometheusStartError(f"config file {self.config_path} does not exist")
        if self.tsdb_dir is None:
            self.tsdb_dir = Path(tempfile.mkdtemp(prefix="aiinfra-prometheus-tsdb-"))
            self.tsdb_temporary = True
        self.tsdb_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)

        deadline = time.monotonic() + timeout_s
        for attempt in range(max_port_attempts):
            # the requested port first; when Prometheus reports it busy (or it was taken between
            # our pick and its bind), the kernel's pick of a free one
            port = self.requested_port if attempt == 0 and self.requested_port else free_port(self.host)
            self.port_attempts.append(port)
            outcome, log_tail = self._launch(binary, port, deadline)
            if outcome == "listening":
                self.port = port
                _write_json_atomic(self.state_file, self.state())
                return self
            if outcome == "bind-failed":
                continue
            raise PrometheusStartError(f"Prometheus ({binary}) {outcome}; log {self.log_file}:\n{log_tail}")
        raise PrometheusStartError(
            f"Prometheus could not bind a port after {max_port_attempts} tries ({self.port_attempts}); "
            f"log {self.log_file}:\n{log_tail}"
        )

    def _launch(self, binary: Path, port: int, deadline: float) -> tuple[str, str]:
        args = [
            str(binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.tsdb_dir}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address={self.host}:{port}",
            "--web.enable-lifecycle",
            "--log.level=info",
        ]
        with open(self.log_file, "ab") as log:
            offset = log.tell()
            # own session: no terminal signal (Ctrl-C of a dev run) reaches it, and it outlives us
            proc = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._proc, self.pid = proc, proc.pid
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = self._log_since(offset)
                self._proc, self.pid = None, None
                if any(e in tail.lower() for e in _BIND_ERRORS):
                    return "bind-failed", tail
                return f"exited with status {proc.returncode}", tail
            if self._listens_on(proc.pid, port):
                return "listening", ""
            time.sleep(0.02)
        tail = self._log_since(offset)
        terminate_pid(proc.pid)
        self._proc, self.pid = None, None
        return "did not listen before the timeout", tail

    def _log_since(self, offset: int, limit: int = 4000) -> str:
        try:
            with open(self.log_file, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode("utf-8", "replace")[-limit:]
        except FileNotFoundError:
            return ""

    @staticmethod
    def _listens_on(pid: int, port: int) -> bool:
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            return False
        return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in conns)

    def is_running(self) -> bool:
        """Whether our server process is alive (checked by PID and by its command line)."""
        if not pid_alive(self.pid):
            return False
        try:
            cmd = " ".join(psutil.Process(self.pid).cmdline())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False
        return f"--web.listen-address={self.listen_address}" in cmd

    def wait_ready(self, timeout_s: float = 30.0) -> float:
        """Waits for ``GET /-/ready`` to answer 200 (TSDB open, config loaded); returns the seconds waited."""
        t0 = time.monotonic()
        last = "no answer yet"
        while time.monotonic() - t0 < timeout_s:
            if not self.is_running():
                raise PrometheusStartError(
                    f"Prometheus (pid {self.pid}) exited before it was ready; log {self.log_file}:\n{self._log_since(0)[-4000:]}"
                )
            try:
                r = requests.get(f"{self.url}/-/ready", timeout=1.0)
                if r.status_code == 200:
                    return time.monotonic() - t0
                last = f"HTTP {r.status_code}: {r.text.strip()[:200]}"
            except requests.RequestException as err:
                last = str(err)
            time.sleep(0.05)
        raise PrometheusStartError(f"Prometheus at {self.url} not ready after {timeout_s:.0f} s (last: {last})")

    def reload(self) -> None:
        """Re-reads the config and rule files (``POST /-/reload``); raises with the server's reason on failure."""
        r = requests.post(f"{self.url}/-/reload", timeout=10)
        if r.status_code != 200:
            raise PrometheusStartError(f"Prometheus at {self.url} rejected the reload (HTTP {r.status_code}): {r.text.strip()}")

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stops the server (``POST /-/quit``, then SIGTERM/SIGKILL by PID), waits for it to exit,
        removes a temporary TSDB and the state file. Returns whether it was running."""
        was_running = self.is_running()
        if was_running:
            with contextlib.suppress(requests.RequestException):
                requests.post(f"{self.url}/-/quit", timeout=2)
            deadline = time.monotonic() + timeout_s / 2
            while time.monotonic() < deadline and pid_alive(self.pid):
                time.sleep(0.02)
            if pid_alive(self.pid):
                terminate_pid(self.pid, timeout_s=timeout_s / 4, must_contain="--web.listen-address")
            if pid_alive(self.pid):
                raise PrometheusStartError(f"Prometheus (pid {self.pid}) did not exit after SIGKILL")
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=1)
            self._proc = None
        if self.tsdb_temporary and self.tsdb_dir is not None:
            shutil.rmtree(self.tsdb_dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()
        return was_running

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
