"""Errors of the telemetry stage. Each message says what failed and what to do about it."""

from __future__ import annotations


class TelemetryError(RuntimeError):
    """Base class of everything the telemetry stage raises on purpose."""


class MissingBinaryError(TelemetryError):
    """A system tool (prometheus, promtool) is not installed or not where it was said to be."""

    def __init__(self, tool: str, looked_at: list[str], env_var: str):
        self.tool = tool
        self.looked_at = looked_at
        self.env_var = env_var
        where = ", ".join(looked_at) if looked_at else "PATH"
        super().__init__(
            f"the `{tool}` binary was not found (looked at: {where}). Install it: "
            f"`sudo apt-get install prometheus` on Debian/Ubuntu (brings `prometheus` and `promtool`; "
            f"`make system-deps` does this), or download the release from https://prometheus.io/download/ "
            f"and put `prometheus` and `promtool` on PATH, or set {env_var} to the binary's path."
        )


class TelemetryConfigError(TelemetryError, ValueError):
    """A generated or given Prometheus config / rule file that promtool rejects.

    ``path`` is the checked file, ``line`` the first line number promtool names (when it names one),
    and the message carries promtool's own output.
    """

    def __init__(self, path: str, message: str, line: int | None = None):
        self.path = path
        self.line = line
        self.promtool_output = message
        at = f" (line {line})" if line is not None else ""
        super().__init__(f"promtool rejected {path}{at}:\n{message}")


class PrometheusStartError(TelemetryError):
    """The Prometheus server exited or did not become ready; the message carries its log tail."""


class PrometheusQueryError(TelemetryError):
    """The Prometheus HTTP API answered with an error (bad PromQL, server gone)."""


class TargetsDownError(TelemetryError):
    """Scrape targets that did not come up in time; ``targets`` holds each one's health and lastError."""

    def __init__(self, message: str, targets: list[dict]):
        self.targets = targets
        super().__init__(message)
