"""A small client of the Prometheus HTTP API (``/api/v1``): instant and range queries, targets."""

from __future__ import annotations

import json
import time as _time
from datetime import datetime, timezone

import pandas as pd
import requests

from .errors import PrometheusQueryError, TargetsDownError

RANGE_COLUMNS = ["ts", "metric", "labels", "value"]


def _epoch(t: float | datetime | pd.Timestamp | None) -> float | None:
    if t is None:
        return None
    if isinstance(t, (int, float)):
        return float(t)
    if isinstance(t, datetime):  # pd.Timestamp is a datetime
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        return t.timestamp()
    raise TypeError(f"time must be epoch seconds or a datetime, got {type(t).__name__}")


def _split(metric: dict) -> tuple[str, dict]:
    labels = dict(metric)
    return labels.pop("__name__", ""), labels


class PrometheusClient:
    """``PrometheusClient("http://127.0.0.1:9090")``; every error names the query and the server's reason."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0):
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = requests.Session()

    def _get(self, path: str, params: dict | None = None, *, what: str) -> dict:
        try:
            r = self._session.get(f"{self.base_url}{path}", params=params, timeout=self.timeout_s)
        except requests.RequestException as err:
            raise PrometheusQueryError(f"{what}: Prometheus at {self.base_url} did not answer: {err}") from err
        try:
            body = r.json()
        except ValueError:
            raise PrometheusQueryError(f"{what}: HTTP {r.status_code} from {self.base_url}: {r.text[:300]}") from None
        if body.get("status") != "success":
            raise PrometheusQueryError(f"{what}: {body.get('errorType', 'error')}: {body.get('error', r.text[:300])}")
        return body["data"]

    # --- queries --------------------------------------------------------------------------
    def query(self, expr: str, time: float | datetime | None = None) -> list[dict]:
        """Instant query; the result list as the HTTP API documents it.

        A vector gives ``[{"metric": {"__name__": ..., label: value}, "value": [epoch_s, "1.5"]}]``
        (a range selector gives ``"values"`` instead of ``"value"``); a scalar or string result is
        wrapped as one such sample with no labels, so ``float(r["value"][1])`` always works.
        """
        params = {"query": expr}
        if time is not None:
            params["time"] = _epoch(time)
        data = self._get("/api/v1/query", params, what=f"query {expr!r}")
        rtype, result = data["resultType"], data["result"]
        if rtype in ("scalar", "string"):
            return [{"metric": {}, "value": result}]
        return list(result)

    def query_value(self, expr: str, time: float | datetime | None = None) -> float | None:
        """The value of a query that returns at most one series (None when it returns none)."""
        rows = self.query(expr, time)
        if len(rows) > 1:
            raise PrometheusQueryError(f"query {expr!r} returned {len(rows)} series, expected at most one")
        if not rows:
            return None
        sample = rows[0]["value"] if "value" in rows[0] else rows[0]["values"][-1]
        return float(sample[1])

    def query_range(
        self, expr: str, start: float | datetime, end: float | datetime, step: float | str
    ) -> pd.DataFrame:
        """Range query as a long table: ``ts`` (UTC timestamp), ``metric`` (series name, "" for
        expressions without one), ``labels`` (JSON text of the label set, keys sorted), ``value``."""
        params = {"query": expr, "start": _epoch(start), "end": _epoch(end), "step": step}
        data = self._get("/api/v1/query_range", params, what=f"range query {expr!r}")
        records = []
        for s in data["result"]:
            name, labels = _split(s["metric"])
            lj = json.dumps(labels, sort_keys=True)
            for ts, v in s["values"]:
                records.append((float(ts), name, lj, float(v)))
        df = pd.DataFrame.from_records(records, columns=RANGE_COLUMNS)
        df["ts"] = pd.to_datetime(df["ts"].astype("float64"), unit="s", utc=True)
        df["value"] = df["value"].astype("float64")
        return df

    def series_names(self) -> list[str]:
        """Every metric name the server holds."""
        return list(self._get("/api/v1/label/__name__/values", what="series names"))

    # --- targets --------------------------------------------------------------------------
    def targets(self, job: str | None = None) -> list[dict]:
        """Active targets as the API reports them (``labels``, ``scrapeUrl``, ``health``, ``lastError``...)."""
        data = self._get("/api/v1/targets", {"state": "active"}, what="targets")
        active = data.get("activeTargets", [])
        if job is not None:
            active = [t for t in active if t.get("labels", {}).get("job") == job]
        return active

    def wait_for_targets(
        self, job: str | None = None, *, up: bool = True, min_count: int = 1, timeout_s: float = 30.0, poll_s: float = 0.1
    ) -> list[dict]:
        """Waits until at least ``min_count`` targets (of ``job``) have health "up" (or "down" with
        ``up=False``) and returns those; raises :class:`TargetsDownError` listing every target's
        health and lastError when the time runs out."""
        want = "up" if up else "down"
        deadline = _time.monotonic() + timeout_s
        while True:
            targets = self.targets(job)
            matching = [t for t in targets if t.get("health") == want]
            if len(matching) >= min_count:
                return matching
            if _time.monotonic() >= deadline:
                break
            _time.sleep(poll_s)
        who = f"job {job!r}" if job else "all jobs"
        if not targets:
            detail = "  (no targets discovered: is the target in the job's file_sd file?)"
        else:
            detail = "\n".join(
                f"  - {t.get('labels', {}).get('job')}/{t.get('scrapeUrl')}: health={t.get('health')}"
                f" lastError={t.get('lastError') or '-'}"
                for t in targets
            )
        raise TargetsDownError(
            f"{who}: {len(matching)} of {min_count} required targets {want} after {timeout_s:g} s "
            f"(Prometheus {self.base_url}):\n{detail}",
            targets,
        )

    def healthy(self) -> bool:
        try:
            return self._session.get(f"{self.base_url}/-/healthy", timeout=2).status_code == 200
        except requests.RequestException:
            return False
