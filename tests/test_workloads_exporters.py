"""Exporters scraped over HTTP: the trainer process while it trains (stopped by PID), the
training series' known values, and the host exporter in-process and as a process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from types import SimpleNamespace

import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from aiinfra_pipelines.telemetry import metrics as M
from aiinfra_pipelines.telemetry.host_exporter import start_host_exporter
from aiinfra_pipelines.workloads.datasets import DATASETS, load_dataset, train_test_split
from aiinfra_pipelines.workloads.trainer_process import TrainingExporter

pytestmark = pytest.mark.timeout(90)


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _wait_file(path, proc, timeout_s=45.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"{path} not written"
        time.sleep(0.05)
    return json.loads(path.read_text())


def test_training_exporter_series_have_known_values():
    ex = TrainingExporter("job-a")
    port = ex.serve(0)
    try:
        ex.observe_epoch(SimpleNamespace(samples=1000, seconds=0.2, loss=0.7), {"forward": 1.0, "backward": 2.0})
        ex.observe_epoch(SimpleNamespace(samples=1000, seconds=0.3, loss=0.4), {"forward": 2.5, "backward": 2.0})
        s = _scrape(port)
    finally:
        ex.close()
    job = (("job_name", "job-a"),)
    assert s[(M.TRAINING_EPOCHS_TOTAL, job)] == 2
    assert s[(M.TRAINING_SAMPLES_TOTAL, job)] == 2000
    assert s[(M.TRAINING_LOSS, job)] == pytest.approx(0.4)
    assert s[(M.TRAINING_EPOCH_SECONDS + "_sum", job)] == pytest.approx(0.5)
    assert s[(M.TRAINING_EPOCH_SECONDS + "_bucket", (("job_name", "job-a"), ("le", "0.25")))] == 1
    # phase counters take the increase of the profiler's running totals
    assert s[(M.TRAINING_PHASE_SECONDS_TOTAL, (("job_name", "job-a"), ("phase", "forward")))] == pytest.approx(2.5)
    assert s[(M.TRAINING_PHASE_SECONDS_TOTAL, (("job_name", "job-a"), ("phase", "backward")))] == pytest.approx(2.0)


def test_trainer_process_exports_while_training_and_stops_on_sigterm(examples_dir, tmp_path):
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "aiinfra_pipelines.workloads.trainer_process", "--spec",
         str(examples_dir / "training.yaml"), "--epochs", "10000", "--ready-file", str(ready)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        info = _wait_file(ready, proc)
        assert info["pid"] == proc.pid
        deadline = time.monotonic() + 45
        epochs = 0.0
        while epochs < 2 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            epochs = _scrape(info["port"]).get((M.TRAINING_EPOCHS_TOTAL, (("job_name", "digits-train"),)), 0.0)
            time.sleep(0.2)
        s = _scrape(info["port"])
        assert epochs >= 2
        job = (("job_name", "digits-train"),)
        assert s[(M.TRAINING_SAMPLES_TOTAL, job)] > 0 and 0 < s[(M.TRAINING_LOSS, job)] < 10
        assert any(k[0] == M.TRAINING_PHASE_SECONDS_TOTAL and v > 0 for k, v in s.items())
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert len(lines) >= 2 and lines[0]["epoch"] == 1 and 0 <= lines[-1]["accuracy"] <= 1


def test_trainer_process_refuses_a_bad_spec(tmp_path):
    bad = tmp_path / "spec.yaml"
    bad.write_text("name: x\n  bad: [\n")
    out = subprocess.run([sys.executable, "-m", "aiinfra_pipelines.workloads.trainer_process", "--spec", str(bad)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "error:" in out.stderr and "spec.yaml" in out.stderr


def test_host_exporter_reports_this_machine():
    server, port = start_host_exporter(0, gpus=False)
    try:
        _scrape(port)
        sum(i * i for i in range(200_000))  # some CPU between two scrapes
        s = _scrape(port)
    finally:
        server.shutdown()
        server.server_close()
    assert 0.0 <= s[(M.HOST_CPU_UTILIZATION, ())] <= 1.0
    assert s[(M.HOST_MEMORY_TOTAL_BYTES, ())] == psutil.virtual_memory().total
    assert 0 < s[(M.HOST_MEMORY_USED_BYTES, ())] < s[(M.HOST_MEMORY_TOTAL_BYTES, ())]
    assert not any(k[0] == M.GPU_UTILIZATION for k in s)  # GPU series only with gpus=True and a GPU


def test_host_exporter_process_writes_ready_file_and_exits_on_sigterm(tmp_path):
    ready = tmp_path / "host.json"
    proc = subprocess.Popen([sys.executable, "-m", "aiinfra_pipelines.telemetry.host_exporter", "--port", "0",
                             "--ready-file", str(ready)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = _wait_file(ready, proc)
        assert info["pid"] == proc.pid and info["host"] == "127.0.0.1"
        assert (M.HOST_CPU_UTILIZATION, ()) in _scrape(info["port"])
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.communicate(timeout=15)
    assert proc.returncode == 0


def test_datasets_split_is_fixed_stratified_and_standardised_on_training_rows():
    a, b = train_test_split("digits", 0.25, seed=0), train_test_split("digits", 0.25, seed=0)
    assert (a.y_test == b.y_test).all() and (a.X_test == b.X_test).all()
    assert a.n_features == 64 and a.n_classes == 10 and a.X_train.dtype.name == "float32"
    assert a.train_samples + len(a.y_test) == 1797
    assert a.raw_bytes == 1797 * 64 * 4 + 1797 * 8
    # every class in the test split, in proportion
    for cls in range(10):
        n = int((a.y_train == cls).sum() + (a.y_test == cls).sum())
        assert int((a.y_test == cls).sum()) == max(1, round(n * 0.25))
    # training statistics only: the training columns are standardised, constant ones left at 0
    mean = a.X_train.mean(axis=0)
    assert abs(mean).max() < 1e-4
    X, _ = load_dataset("digits")
    assert X.shape == (1797, 64) and abs(X.mean(axis=0)).max() < 1e-4
    with pytest.raises(ValueError, match="dataset.name"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="test_fraction"):
        train_test_split("iris", 1.0)
    assert set(DATASETS) == {"digits", "breast_cancer", "wine", "iris"}
