"""A local AWS API (moto in server mode) on a free loopback port, for applying the AWS modules
without an account. Started as a subprocess and stopped by its PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """``with MotoServer() as moto: moto.endpoint`` -> ``http://127.0.0.1:<port>``."""

    def __init__(self, port: int | None = None, log_path: str | os.PathLike | None = None, startup_timeout_s: float = 60):
        self.port = port or _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout_s = startup_timeout_s
        self.pid: int | None = None
        self._proc: subprocess.Popen | None = None

    def start(self) -> "MotoServer":
        try:
            import moto.server  # noqa: F401
        except ImportError as err:
            raise RuntimeError("the local AWS API needs moto[server] (a development dependency: pip install 'moto[server]')") from err
        env = dict(os.environ)
        # The EKS cluster and node roles attach AWS managed policies; moto loads them only on request.
        env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        self.pid = self._proc.pid
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self._proc.returncode} on port {self.port}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/data.json", timeout=2):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"moto server did not answer on {self.endpoint} within {self.startup_timeout_s}s")

    def stop(self) -> None:
        if self.pid is None:
            return
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self._proc.wait(timeout=5)
        self.pid = None

    def __enter__(self) -> "MotoServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
