"""Open-loop replay of a real request trace against the inference replicas.

Requests are sent at their (time-scaled) arrival times whatever the replicas' state, as
real users would send them; a request that finds no ready replica waits at the router
(as behind a Knative activator or a Service with no endpoints) and that wait counts in
its latency. Each request is a real HTTP call; the server reports its queueing and
service time, the client measures the end-to-end latency.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd

from aiinfra_pipelines.execution.replicas import ReplicaSet


@dataclass
class ReplayResult:
    requests: pd.DataFrame  # one row per request (columns match the DuckDB `requests` table)
    started_at: float  # ReplicaSet clock
    finished_at: float
    max_lateness_s: float  # how late the sender ran behind the schedule at worst


class _Connections(threading.local):
    def __init__(self):
        self.by_port: dict[tuple[str, int], http.client.HTTPConnection] = {}


def replay(
    trace: pd.DataFrame,
    replicas: ReplicaSet,
    *,
    request_timeout_s: float = 30.0,
    max_in_flight: int = 256,
) -> ReplayResult:
    """Send every request of ``trace`` (columns arrival_s, input_tokens, output_tokens) at its time."""
    conns = _Connections()
    n = len(trace)
    arrivals = trace["arrival_s"].to_numpy(dtype=float)
    ins = trace["input_tokens"].to_numpy()
    outs = trace["output_tokens"].to_numpy()
    rows: list[dict | None] = [None] * n
    lateness = [0.0]

    def send(i: int, scheduled: float) -> None:
        t0 = replicas.now()
        replica = replicas.acquire(timeout_s=request_timeout_s)
        row = {
            "request_id": i, "arrival_s": scheduled, "sent_s": t0, "input_tokens": int(ins[i]),
            "output_tokens": int(outs[i]), "queue_s": None, "service_s": None, "ttft_s": None,
        }
        if replica is None:
            row.update(latency_s=replicas.now() - scheduled, status="no_replica", replica=None)
            rows[i] = row
            return
        body = json.dumps({"input_tokens": int(ins[i]), "output_tokens": int(outs[i])})
        try:
            # keyed by replica and port: a new replica may get a drained one's port
            key = (replica.name, replica.port)
            conn = conns.by_port.get(key)
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=request_timeout_s)
                conns.by_port[key] = conn
            try:
                conn.request("POST", "/v1/predict", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                payload = resp.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                conn.close()
                conns.by_port.pop(key, None)
                raise
            done = replicas.now()
            status = "ok" if resp.status == 200 else f"http_{resp.status}"
            info = json.loads(payload) if resp.status == 200 else {}
            row.update(
                latency_s=done - scheduled,
                queue_s=info.get("queue_s"),
                service_s=info.get("service_s"),
                # time to first token as the user sees it: everything up to the end of prefill,
                # i.e. the end-to-end latency less the server's time after prefill (router wait included)
                ttft_s=(done - scheduled) - (info["server_s"] - info["ttft_s"])
                if info.get("ttft_s") is not None and info.get("server_s") is not None else None,
                status=status,
                replica=replica.name,
            )
        except Exception as err:  # a refused or broken connection is a failed request, not a crash
            row.update(latency_s=replicas.now() - scheduled, status=f"error:{type(err).__name__}", replica=replica.name)
        finally:
            replicas.release(replica)
        rows[i] = row

    started = replicas.now()
    with ThreadPoolExecutor(max_workers=max_in_flight, thread_name_prefix="loadgen") as pool:
        for i in range(n):
            scheduled = started + arrivals[i]
            delay = scheduled - replicas.now()
            if delay > 0:
                time.sleep(delay)
            else:
                lateness[0] = max(lateness[0], -delay)
            pool.submit(send, i, scheduled)
    finished = replicas.now()
    frame = pd.DataFrame([r for r in rows if r is not None])
    return ReplayResult(frame, started, finished, lateness[0])
