"""The inference server: a saved model behind HTTP, with one model worker and dynamic batching.

One worker thread executes queued requests in batches of up to ``max_batch_size`` rows, so a
replica has a real, limited capacity, as an accelerator replica does; the HTTP threads only
parse, enqueue and wait. Endpoints (127.0.0.1 only):

* ``POST /v1/predict`` with ``{"inputs": [[...], ...]}``: class predictions for the rows;
  or, the trace replay form, ``{"rows": n, "input_tokens": i, "output_tokens": o}``
  (``rows`` optional, default 1). Its compute derives from the token counts:

  - prefill: ``rows * ceil(input_tokens / TOKENS_PER_ROW)`` rows, run as batched forward passes
    of at most ``max_batch_size`` rows;
  - decode: ``ceil(output_tokens / TOKENS_PER_STEP)`` steps, each one row per sequence
    (``rows`` sequences), the sequences of all requests in the batch decoding in the same
    passes, each step's input chosen from the previous step's prediction.

  A batch holds up to ``max_batch_size`` rows of the ``inputs`` form, or sequences of the
  token form (as an LLM server batches sequences), and runs to completion before the next.

  With TOKENS_PER_ROW = 16 and TOKENS_PER_STEP = 1, an average Azure conversation request
  (1155 input, 211 output tokens) is 73 prefill rows and 211 decode passes: a few
  milliseconds of compute for the [128, 64] digits MLP on one CPU core.

  The reply carries predictions and server-side timings: ``queue_s`` (enqueued to batch start),
  ``service_s`` (batch start to done), ``ttft_s`` (enqueued to the end of prefill).
* ``GET /healthz``; ``GET /metrics``: Prometheus exposition with the names of
  :mod:`aiinfra_pipelines.telemetry.metrics`, all with the label ``replica``.

Run as a process::

    python -m aiinfra_pipelines.workloads.serving --model FILE --port 0 --replica NAME \\
        --max-batch-size N --ready-file PATH

Port 0 picks a free port; once listening it writes ``{"port": P, "pid": ...}`` to the ready file.
SIGTERM or SIGINT stops it cleanly (exit status 0).
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import math
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from aiinfra_pipelines.telemetry import metrics as M

TOKENS_PER_ROW = 16
TOKENS_PER_STEP = 1
MAX_ROWS_PER_REQUEST = 4096
MAX_INPUT_TOKENS = 1_000_000
MAX_OUTPUT_TOKENS = 65_536
MAX_BODY_BYTES = 64 * 2**20
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
TRACE_INPUT_TOKENS = 1155  # mean of the Azure LLM 2023 conversation trace
TRACE_OUTPUT_TOKENS = 211


def token_work(input_tokens: int, output_tokens: int, rows: int = 1) -> tuple[int, int]:
    """(prefill rows, decode steps) of a trace request."""
    return rows * max(1, math.ceil(input_tokens / TOKENS_PER_ROW)), math.ceil(output_tokens / TOKENS_PER_STEP)


class RequestError(ValueError):
    pass


class _Request:
    __slots__ = ("X", "seqs", "prefill_rows", "decode_steps", "t_enqueue", "t_start", "t_first", "t_done", "done",
                 "predictions", "error")

    def __init__(self, X: np.ndarray | None, prefill_rows: int, decode_steps: int, seqs: int | None = None):
        self.X = X
        self.seqs = prefill_rows if seqs is None else seqs  # what the request weighs in a batch
        self.prefill_rows = prefill_rows
        self.decode_steps = decode_steps
        self.t_enqueue = time.perf_counter()
        self.t_start = self.t_first = self.t_done = 0.0
        self.done = threading.Event()
        self.predictions: list[int] = []
        self.error: str | None = None


class _Metrics:
    def __init__(self, replica: str):
        self.registry = CollectorRegistry()
        lab = ["replica"]
        self.requests = Counter(M.INFERENCE_REQUESTS_TOTAL, "Inference requests served.", ["replica", "status"],
                                registry=self.registry)
        self.duration = Histogram(M.INFERENCE_REQUEST_DURATION, "Request latency, queueing plus service.", lab,
                                  buckets=LATENCY_BUCKETS, registry=self.registry).labels(replica=replica)
        self.queue = Gauge(M.INFERENCE_QUEUE_LENGTH, "Requests waiting or in service.", lab,
                           registry=self.registry).labels(replica=replica)
        self.busy = Counter(M.INFERENCE_BUSY_SECONDS_TOTAL, "Seconds the model worker computed.", lab,
                            registry=self.registry).labels(replica=replica)
        self.batch = Histogram(M.INFERENCE_BATCH_SIZE, "Rows per executed forward pass.", lab,
                               buckets=BATCH_BUCKETS, registry=self.registry).labels(replica=replica)
        self.ok = self.requests.labels(replica=replica, status="ok")
        self.err = self.requests.labels(replica=replica, status="error")


class ModelWorker:
    """The single model thread: forms dynamic batches from the queue and runs them."""

    def __init__(self, model, max_batch_size: int, metrics: _Metrics, seed: int = 0):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size: must be at least 1, got {max_batch_size}")
        self.model = model
        self.max_batch_size = int(max_batch_size)
        self.m = metrics
        self._q: collections.deque[_Request] = collections.deque()
        self._cv = threading.Condition()
        self._stop = False
        self._in_service = 0
        pool = np.random.default_rng(seed).standard_normal((max(256, self.max_batch_size * 4), model.n_features))
        self._pool = pool.astype(np.float32)
        self._thread = threading.Thread(target=self._run, name="model-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        self._thread.join(timeout=10)
        for r in list(self._q):
            r.error = "server stopping"
            r.done.set()

    def submit(self, req: _Request) -> None:
        with self._cv:
            if self._stop:
                raise RequestError("server stopping")
            self._q.append(req)
            self.m.queue.inc()
            self._cv.notify()

    def queue_length(self) -> int:
        return len(self._q) + self._in_service

    def _take_batch(self) -> list[_Request]:
        with self._cv:
            while not self._q and not self._stop:
                self._cv.wait(0.5)
            if self._stop:
                return []
            batch = [self._q.popleft()]
            weight = batch[0].seqs
            while self._q and weight + self._q[0].seqs <= self.max_batch_size:
                r = self._q.popleft()
                weight += r.seqs
                batch.append(r)
            self._in_service = len(batch)
            return batch

    def _forward(self, X: np.ndarray) -> np.ndarray:
        self.m.batch.observe(X.shape[0])
        return self.model.predict_logits(X).argmax(axis=1)

    def _run_batch(self, batch: list[_Request]) -> None:
        t0 = time.perf_counter()
        for r in batch:
            r.t_start = t0
        # prefill: every request's rows, in passes of at most max_batch_size rows
        parts = []
        for r in batch:
            if r.X is not None:
                parts.append(r.X)
            else:
                k = r.prefill_rows
                reps = -(-k // self._pool.shape[0])
                parts.append(np.tile(self._pool, (reps, 1))[:k] if reps > 1 else self._pool[:k])
        X = np.concatenate(parts) if len(parts) > 1 else parts[0]
        preds = np.concatenate(
            [self._forward(X[i : i + self.max_batch_size]) for i in range(0, X.shape[0], self.max_batch_size)]
        )
        t1 = time.perf_counter()
        off = 0
        decoding = []
        last = {}
        for r in batch:
            p = preds[off : off + r.prefill_rows]
            off += r.prefill_rows
            r.t_first = t1
            if r.X is not None:
                r.predictions = p.tolist()
            last[id(r)] = int(p[-1])
            if r.decode_steps > 0:
                decoding.append(r)
            else:
                r.t_done = t1
        # decode: one row per active request per step, batched across requests
        remaining = {id(r): r.decode_steps for r in decoding}
        npool = self._pool.shape[0]
        while decoding:
            idx = [(last[id(r)] * 7919 + remaining[id(r)] + j) % npool for r in decoding for j in range(r.seqs)]
            rows = self._pool[np.asarray(idx)]
            out = np.concatenate(
                [self._forward(rows[i : i + self.max_batch_size]) for i in range(0, rows.shape[0], self.max_batch_size)]
            )
            now = time.perf_counter()
            finished = False
            off = 0
            for r in decoding:
                o = out[off + r.seqs - 1]
                off += r.seqs
                last[id(r)] = int(o)
                remaining[id(r)] -= 1
                if remaining[id(r)] == 0:
                    r.t_done = now
                    r.predictions.append(int(o))
                    finished = True
            if finished:
                decoding = [r for r in decoding if remaining[id(r)] > 0]
        self.m.busy.inc(time.perf_counter() - t0)

    def _run(self) -> None:
        from aiinfra_pipelines.workloads.training import blas_threads

        with blas_threads(1):  # one model worker computes on one core, like one accelerator
            self._loop()

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                return
            try:
                self._run_batch(batch)
            except Exception as err:  # a bad batch fails its requests, not the replica
                for r in batch:
                    r.error = f"model error: {err}"
                    r.t_done = time.perf_counter()
            finally:
                with self._cv:
                    self._in_service = 0
                for r in batch:
                    self.m.queue.dec()
                    r.done.set()


def parse_request(body: dict, n_features: int) -> _Request:
    """Validate a predict body; errors name the field."""
    if not isinstance(body, dict):
        raise RequestError("body: expected a JSON object")
    if "inputs" in body:
        rows = body["inputs"]
        if not isinstance(rows, list) or not rows:
            raise RequestError("inputs: expected a non-empty list of rows")
        if len(rows) > MAX_ROWS_PER_REQUEST:
            raise RequestError(f"inputs: at most {MAX_ROWS_PER_REQUEST} rows per request, got {len(rows)}")
        try:
            X = np.asarray(rows, dtype=np.float32)
        except (ValueError, TypeError):
            raise RequestError("inputs: rows must be lists of numbers of equal length") from None
        if X.ndim != 2 or X.shape[1] != n_features:
            raise RequestError(f"inputs: expected rows of {n_features} features, got shape {list(X.shape)}")
        if not np.isfinite(X).all():
            raise RequestError("inputs: values must be finite")
        return _Request(X, X.shape[0], 0)

    def _int(name: str, default: int | None, lo: int, hi: int) -> int:
        v = body.get(name, default)
        if v is None:
            raise RequestError(f"{name}: required (or send 'inputs')")
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise RequestError(f"{name}: expected an integer in [{lo}, {hi}], got {v!r}")
        return v

    unknown = set(body) - {"rows", "input_tokens", "output_tokens"}
    if unknown:
        raise RequestError(f"{sorted(unknown)[0]}: unknown field")
    rows = _int("rows", 1, 1, MAX_ROWS_PER_REQUEST)
    it = _int("input_tokens", None, 0, MAX_INPUT_TOKENS)
    ot = _int("output_tokens", 0, 0, MAX_OUTPUT_TOKENS)
    prefill, decode = token_work(it, ot, rows)
    return _Request(None, prefill, decode, seqs=rows)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall
    server_version = "aiinfra-inference/1"

    def log_message(self, fmt, *args):  # requests are counted in /metrics, not logged
        return

    def _send(self, code: int, payload: bytes, ctype: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, code: int, obj: dict) -> None:
        self._send(code, json.dumps(obj).encode())

    def do_GET(self):
        srv: InferenceServer = self.server.owner  # type: ignore[attr-defined]
        if self.path == "/healthz":
            self._json(200, {"status": "ok", "replica": srv.replica, "queue_length": srv.worker.queue_length()})
        elif self.path == "/metrics":
            self._send(200, generate_latest(srv.metrics.registry), CONTENT_TYPE_LATEST)
        else:
            self._json(404, {"error": f"path {self.path}: not found"})

    def do_POST(self):
        srv: InferenceServer = self.server.owner  # type: ignore[attr-defined]
        if self.path != "/v1/predict":
            # read the body off the connection, or the next request on it would start inside it
            try:
                n = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                n = -1
            if 0 <= n <= MAX_BODY_BYTES:
                self.rfile.read(n)
            else:
                self.close_connection = True
            self._json(404, {"error": f"path {self.path}: not found"})
            return
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            n = -1
        if n <= 0 or n > MAX_BODY_BYTES:
            srv.metrics.err.inc()
            self.close_connection = True
            self._json(400, {"error": "body: a JSON body with Content-Length is required"})
            return
        t_arrive = time.perf_counter()
        try:
            body = json.loads(self.rfile.read(n))
            req = parse_request(body, srv.worker.model.n_features)
            req.t_enqueue = t_arrive
            srv.worker.submit(req)
        except (RequestError, json.JSONDecodeError, UnicodeDecodeError) as err:
            srv.metrics.err.inc()
            self._json(400, {"error": str(err) if isinstance(err, RequestError) else f"body: not JSON: {err}"})
            return
        except RecursionError:
            srv.metrics.err.inc()
            self._json(400, {"error": "body: JSON nested too deeply"})
            return
        req.done.wait()
        if req.error:
            srv.metrics.err.inc()
            self._json(503, {"error": req.error})
            return
        total = time.perf_counter() - t_arrive
        srv.metrics.ok.inc()
        srv.metrics.duration.observe(total)
        self._json(
            200,
            {
                "predictions": req.predictions,
                "replica": srv.replica,
                "prefill_rows": req.prefill_rows,
                "decode_steps": req.decode_steps,
                "queue_s": req.t_start - req.t_enqueue,
                "service_s": req.t_done - req.t_start,
                "ttft_s": req.t_first - req.t_enqueue,
                "server_s": total,
            },
        )


class InferenceServer:
    """An in-process replica: ``start()``, then ``.port``; ``stop()`` when done."""

    def __init__(self, model, *, replica: str = "replica-0", max_batch_size: int = 32, host: str = "127.0.0.1",
                 port: int = 0):
        if isinstance(model, (str, Path)):
            from aiinfra_pipelines.workloads.training import load_model

            model = load_model(model)
        self.replica = replica
        self.host = host
        self._want_port = port
        self.metrics = _Metrics(replica)
        self.worker = ModelWorker(model, max_batch_size, self.metrics)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "InferenceServer":
        httpd = ThreadingHTTPServer((self.host, self._want_port), _Handler)
        httpd.daemon_threads = True
        httpd.owner = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self.worker.start()
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"http-{self.replica}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        self.worker.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "InferenceServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class InferenceClient:
    """A keep-alive HTTP client for one replica (one connection; use one per thread)."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 30.0):
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def predict(self, body: dict) -> dict:
        payload = json.dumps(body).encode()
        self.conn.request("POST", "/v1/predict", body=payload, headers={"Content-Type": "application/json"})
        resp = self.conn.getresponse()
        data = json.loads(resp.read())
        if resp.status != 200:
            raise RuntimeError(f"predict failed ({resp.status}): {data.get('error')}")
        return data

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path)
        resp = self.conn.getresponse()
        return resp.status, resp.read()

    def close(self) -> None:
        self.conn.close()


def _write_ready(path: Path, info: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m aiinfra_pipelines.workloads.serving", description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, type=Path, help="saved model (.npz or .pt)")
    ap.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    ap.add_argument("--host", default="127.0.0.1",
                    help="address to listen on: loopback on one machine, 0.0.0.0 in a pod behind a Service")
    ap.add_argument("--replica", default="replica-0", help="value of the 'replica' label")
    ap.add_argument("--max-batch-size", type=int, default=32)
    ap.add_argument("--ready-file", type=Path, help="written with {port, pid} once listening")
    args = ap.parse_args(argv)
    if args.max_batch_size < 1:
        ap.error("--max-batch-size: must be at least 1")
    try:
        server = InferenceServer(args.model, replica=args.replica, max_batch_size=args.max_batch_size, port=args.port,
                                 host=args.host)
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: --model {args.model}: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    info = {"port": server.port, "pid": os.getpid(), "replica": args.replica}
    if args.ready_file:
        _write_ready(args.ready_file, info)
    print(json.dumps(info), flush=True)
    while not stop.wait(0.5):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
