"""Prometheus configuration and recording rules for the `local` target, as YAML text.

Targets are not written into the config: every scrape job reads a file_sd JSON file
(`<file_sd_dir>/<job>.json`, see :mod:`.targets`). Inference replicas that the autoscaling
controller starts and stops, and the server's own port (known only once it listens), are
then picked up without a restart or a reload.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from . import metrics as m

DEFAULT_JOBS = (m.JOB_INFERENCE, m.JOB_TRAINING, m.JOB_HOST)


def prometheus_duration(seconds: float, *, field: str = "duration") -> str:
    """Seconds as a Prometheus duration string ("1s", "250ms", "1m30s" is written as "90s")."""
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{field} must be a positive number of seconds, got {seconds!r}")
    ms = round(seconds * 1000)
    if ms < 1:
        raise ValueError(f"{field} must be at least 1 ms, got {seconds!r} s")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def file_sd_path(file_sd_dir: Path, job: str) -> Path:
    """The file_sd target file of one job."""
    return Path(file_sd_dir) / f"{job}.json"


def _check_job_names(jobs: Iterable[str]) -> list[str]:
    out = []
    for j in jobs:
        if not isinstance(j, str) or not j or not all(c.isalnum() or c in "_-" for c in j):
            raise ValueError(f"jobs: job name {j!r} must be non-empty letters, digits, '_' or '-'")
        if j in out:
            raise ValueError(f"jobs: job name {j!r} is listed twice")
        out.append(j)
    return out


def render_prometheus_config(
    *,
    scrape_interval_s: float,
    evaluation_interval_s: float,
    file_sd_dir: Path,
    rule_files: Sequence[Path],
    jobs: Sequence[str] = DEFAULT_JOBS,
    self_scrape: bool = True,
    file_sd_refresh_s: float | None = None,
) -> str:
    """The server's prometheus.yml.

    One scrape job per name in ``jobs``, each reading ``<file_sd_dir>/<job>.json``. Prometheus
    watches those files (inotify) and also re-reads them every ``file_sd_refresh_s`` (default:
    the scrape interval, at least 1 s), so a target added at run time is scraped within about
    one interval. With ``self_scrape`` the server scrapes itself through
    ``<file_sd_dir>/prometheus.json`` as job ``prometheus``.
    """
    scrape = prometheus_duration(scrape_interval_s, field="scrape_interval_s")
    evaluation = prometheus_duration(evaluation_interval_s, field="evaluation_interval_s")
    refresh = prometheus_duration(
        file_sd_refresh_s if file_sd_refresh_s is not None else max(1.0, scrape_interval_s), field="file_sd_refresh_s"
    )
    names = _check_job_names(jobs)
    if self_scrape and m.JOB_PROMETHEUS in names:
        raise ValueError(f"jobs: {m.JOB_PROMETHEUS!r} is the server's own job; pass self_scrape=True instead")
    if self_scrape:
        names.append(m.JOB_PROMETHEUS)
    file_sd_dir = Path(file_sd_dir).resolve()
    config = {
        "global": {
            "scrape_interval": scrape,
            # A timeout longer than the interval is a config error; a local scrape takes milliseconds.
            "scrape_timeout": scrape,
            "evaluation_interval": evaluation,
        },
        "rule_files": [str(Path(p).resolve()) for p in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                # the exporter's own labels (a replica's `replica`) win over same-named target labels
                "honor_labels": True,
                "file_sd_configs": [{"files": [str(file_sd_path(file_sd_dir, job))], "refresh_interval": refresh}],
            }
            for job in names
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


def render_recording_rules(
    *,
    window_s: float = 30.0,
    evaluation_interval_s: float | None = None,
    inference_job: str = m.JOB_INFERENCE,
    quantile: float = 0.99,
) -> str:
    """The recording rules that turn the replicas' raw series into the RULE_* signals.

    Rates are taken over ``window_s`` (30 s by default, as the rule names say: with a 1 s
    scrape that is ~30 samples, enough to smooth one slow request yet short enough for a
    controller to react within a fast local run). A window must cover at least two scrapes.
    ``evaluation_interval_s`` sets the group's interval (the global one when None).
    """
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
    w = prometheus_duration(window_s, field="window_s")
    _check_job_names([inference_job])
    sel = f'{{job="{inference_job}"}}'
    rules = [
        {
            "record": m.RULE_REQUEST_RATE,
            # all statuses, all replicas: the offered load the fleet served (req/s)
            "expr": f"sum(rate({m.INFERENCE_REQUESTS_TOTAL}{sel}[{w}]))",
        },
        {
            "record": m.RULE_UTILIZATION,
            # busy seconds per second is the busy fraction of one replica; averaged over replicas
            "expr": f"avg(rate({m.INFERENCE_BUSY_SECONDS_TOTAL}{sel}[{w}]))",
        },
        {
            "record": m.RULE_QUEUE_PER_REPLICA,
            "expr": f"avg({m.INFERENCE_QUEUE_LENGTH}{sel})",
        },
        {
            "record": m.RULE_LATENCY_P99,
            "expr": f"histogram_quantile({quantile:g}, sum by (le) (rate({m.INFERENCE_REQUEST_DURATION}_bucket{sel}[{w}])))",
        },
        {
            "record": m.RULE_READY_REPLICAS,
            # `or vector(0)`: zero replicas is a value the controller must see, not an absent series
            "expr": f"count(up{sel} == 1) or vector(0)",
        },
    ]
    group: dict = {"name": "aiinfra-inference", "rules": rules}
    if evaluation_interval_s is not None:
        group["interval"] = prometheus_duration(evaluation_interval_s, field="evaluation_interval_s")
    return yaml.safe_dump({"groups": [group]}, sort_keys=False)
