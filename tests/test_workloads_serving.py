"""The inference server as a real HTTP server on 127.0.0.1: answers, batching, latency by
batch size, clear 4xx for bad requests, its Prometheus exposition, and the process form
(ready file, stopped by PID with SIGTERM)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiinfra_pipelines.telemetry import metrics as M
from aiinfra_pipelines.workloads.datasets import load_dataset
from aiinfra_pipelines.workloads.serving import InferenceClient, InferenceServer, token_work
from aiinfra_pipelines.workloads.training import load_model

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def server(model_path):
    srv = InferenceServer(model_path, replica="r-test", max_batch_size=8).start()
    yield srv
    srv.stop()


def _raw(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _samples(port: int) -> dict[tuple[str, tuple], float]:
    status, text = _raw(port, "GET", "/metrics")
    assert status == 200
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _batch_bucket(samples, le: str) -> float:
    return samples[(M.INFERENCE_BATCH_SIZE + "_bucket", (("le", le), ("replica", "r-test")))]


def test_predictions_are_the_models_on_real_digits(server, model_path):
    X, _ = load_dataset("digits")
    rows = X[:20]
    expected = load_model(model_path).predict_logits(rows).argmax(axis=1).tolist()
    client = InferenceClient(server.port)
    try:
        out = client.predict({"inputs": rows.tolist()})
        assert out["predictions"] == expected
        assert out["replica"] == "r-test" and out["prefill_rows"] == 20 and out["decode_steps"] == 0
        assert out["queue_s"] >= 0 and out["service_s"] > 0 and out["server_s"] >= out["service_s"]
        status, body = client.get("/healthz")  # same keep-alive connection
        assert status == 200 and json.loads(body)["queue_length"] == 0
    finally:
        client.close()
    # 20 rows at max_batch_size 8: forward passes of 8, 8 and 4 rows
    s = _samples(server.port)
    assert s[(M.INFERENCE_BATCH_SIZE + "_count", (("replica", "r-test"),))] == 3
    assert s[(M.INFERENCE_BATCH_SIZE + "_sum", (("replica", "r-test"),))] == 20
    assert _batch_bucket(s, "4.0") == 1 and _batch_bucket(s, "8.0") == 3
    assert s[(M.INFERENCE_REQUESTS_TOTAL, (("replica", "r-test"), ("status", "ok")))] == 1
    assert s[(M.INFERENCE_BUSY_SECONDS_TOTAL, (("replica", "r-test"),))] > 0


def test_token_requests_cost_prefill_rows_and_decode_steps(server):
    assert token_work(1155, 211) == (73, 211)  # the mean Azure conversation request
    assert token_work(0, 0, rows=3) == (3, 0)
    client = InferenceClient(server.port)
    try:
        small = min((client.predict({"input_tokens": 16, "output_tokens": 1}) for _ in range(5)),
                    key=lambda r: r["service_s"])
        big = client.predict({"input_tokens": 16 * 4096, "output_tokens": 300})
    finally:
        client.close()
    assert (small["prefill_rows"], small["decode_steps"]) == (1, 1)
    assert (big["prefill_rows"], big["decode_steps"]) == (4096, 300)
    assert len(big["predictions"]) == 1 and 0 <= big["predictions"][0] < 10
    # 512 prefill passes + 300 decode passes against 2 passes: latency grows with the work
    assert big["service_s"] > 20 * small["service_s"]
    assert 0 < big["ttft_s"] < big["server_s"]


def test_queued_requests_are_batched_together(model_path):
    """Requests that queue while the model worker is busy run as one batch when it is next free.

    The worker's next batch is held back until six HTTP requests are queued (as if a long batch
    were running), so the test does not depend on how fast this machine is."""
    srv = InferenceServer(model_path, replica="r-test", max_batch_size=8)
    free = threading.Event()
    take_batch = srv.worker._take_batch

    def busy_then_take():
        free.wait(20)
        return take_batch()

    srv.worker._take_batch = busy_then_take
    srv.start()
    results: list[dict] = []

    def one():
        c = InferenceClient(srv.port)
        try:
            results.append(c.predict({"input_tokens": 16, "output_tokens": 50}))
        finally:
            c.close()

    try:
        clients = [threading.Thread(target=one) for _ in range(6)]
        for t in clients:
            t.start()
        deadline = time.monotonic() + 20
        while srv.worker.queue_length() < 6 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert srv.worker.queue_length() == 6
        free.set()
        for t in clients:
            t.join(30)
        assert len(results) == 6
        s = _samples(srv.port)
    finally:
        srv.stop()
    # six single-sequence requests, one prefill pass and 50 decode passes of six rows each
    assert s[(M.INFERENCE_BATCH_SIZE + "_count", (("replica", "r-test"),))] == 51
    assert _batch_bucket(s, "4.0") == 0 and _batch_bucket(s, "8.0") == 51
    assert all(r["decode_steps"] == 50 for r in results)
    # the requests waited in the queue together and were served in the same batch
    assert min(r["queue_s"] for r in results) > 0.0
    assert max(r["service_s"] for r in results) - min(r["service_s"] for r in results) < 0.05


@pytest.mark.parametrize(
    "body, needle",
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b"[" * 50000, "nested too deeply"),
        (json.dumps({"inputs": [[0.0] * 63]}).encode(), "64 features"),
        (json.dumps({"inputs": []}).encode(), "non-empty"),
        (json.dumps({"inputs": [["a"] * 64]}).encode(), "numbers"),
        (json.dumps({"input_tokens": 10, "prompt": "hi"}).encode(), "prompt: unknown field"),
        (json.dumps({"output_tokens": 10}).encode(), "input_tokens: required"),
        (json.dumps({"input_tokens": True}).encode(), "input_tokens: expected an integer"),
        (json.dumps({"input_tokens": 10, "rows": 0}).encode(), "rows: expected an integer"),
    ],
)
def test_bad_request_is_a_clear_400(server, body, needle):
    status, payload = _raw(server.port, "POST", "/v1/predict", body, {"Content-Type": "application/json"})
    assert status == 400
    assert needle in json.loads(payload)["error"]
    assert _samples(server.port)[(M.INFERENCE_REQUESTS_TOTAL, (("replica", "r-test"), ("status", "error")))] == 1


def test_keep_alive_connection_survives_4xx(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("POST", "/v1/nope", body=json.dumps({"inputs": [[0.0] * 64]}))
        resp = conn.getresponse()
        assert resp.status == 404 and "not found" in json.loads(resp.read())["error"]
        conn.request("POST", "/v1/predict", body=b"{oops")
        resp = conn.getresponse()
        assert resp.status == 400 and resp.read()
        conn.request("POST", "/v1/predict", body=json.dumps({"input_tokens": 32}))
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["prefill_rows"] == 2
    finally:
        conn.close()
    # no body at all: 400, and the server says it closes the connection
    status, payload = _raw(server.port, "POST", "/v1/predict")
    assert status == 400 and "Content-Length" in json.loads(payload)["error"]
    assert _raw(server.port, "GET", "/nope")[0] == 404


def test_server_process_listens_serves_and_stops_on_sigterm(model_path, tmp_path):
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiinfra_pipelines.workloads.serving", "--model", str(model_path), "--port", "0",
         "--replica", "proc-1", "--max-batch-size", "4", "--ready-file", str(ready)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no ready file"
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        assert info["pid"] == proc.pid and info["replica"] == "proc-1"
        status, body = _raw(info["port"], "POST", "/v1/predict", json.dumps({"input_tokens": 100, "output_tokens": 5}).encode())
        assert status == 200 and json.loads(body)["replica"] == "proc-1"
        assert 'replica="proc-1"' in _raw(info["port"], "GET", "/metrics")[1].decode()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        rc = proc.wait(timeout=15)
    assert rc == 0
    with pytest.raises(OSError):
        _raw(info["port"], "GET", "/healthz")


def test_server_process_refuses_a_missing_model(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "aiinfra_pipelines.workloads.serving", "--model", str(tmp_path / "none.npz")],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 2 and "none.npz" in out.stderr and "not found" in out.stderr
