"""Generated Prometheus config, recording rules and file_sd targets, checked by the real promtool;
the missing-binary message; the host exporter in-process. No server is started here."""

from __future__ import annotations

import json
import multiprocessing
import urllib.request

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from aiinfra_pipelines.telemetry import metrics as m
from aiinfra_pipelines.telemetry.config import prometheus_duration, render_prometheus_config, render_recording_rules
from aiinfra_pipelines.telemetry.errors import MissingBinaryError, TelemetryConfigError
from aiinfra_pipelines.telemetry.host_exporter import start_host_exporter
from aiinfra_pipelines.telemetry.promtool import check_config, check_rules
from aiinfra_pipelines.telemetry.server import PrometheusServer
from aiinfra_pipelines.telemetry.stack import deploy_local_stack
from aiinfra_pipelines.telemetry.targets import TargetRegistry

RULES = [m.RULE_REQUEST_RATE, m.RULE_UTILIZATION, m.RULE_QUEUE_PER_REPLICA, m.RULE_LATENCY_P99, m.RULE_READY_REPLICAS]


def _write_stack_files(tmp_path, **kw):
    rules = tmp_path / "rules.yml"
    rules.write_text(render_recording_rules(window_s=kw.pop("window_s", 30.0), evaluation_interval_s=1.0))
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        render_prometheus_config(
            scrape_interval_s=kw.pop("scrape_interval_s", 1.0), evaluation_interval_s=1.0,
            file_sd_dir=tmp_path / "file_sd", rule_files=[rules], **kw,
        )
    )
    return cfg, rules


def test_config_and_rules_pass_promtool(tmp_path):
    cfg, rules = _write_stack_files(tmp_path)
    reg = TargetRegistry(tmp_path / "file_sd")
    reg.add(m.JOB_INFERENCE, "127.0.0.1:9101", {"replica": "r0"})
    assert "SUCCESS" in check_rules(rules)
    report = check_config(cfg)  # also checks the rule file and the file_sd files it names
    assert "SUCCESS" in report

    doc = yaml.safe_load(cfg.read_text())
    assert doc["global"]["scrape_interval"] == "1s" and doc["global"]["scrape_timeout"] == "1s"
    jobs = {j["job_name"]: j for j in doc["scrape_configs"]}
    assert set(jobs) == {m.JOB_INFERENCE, m.JOB_TRAINING, m.JOB_HOST, m.JOB_PROMETHEUS}
    sd = jobs[m.JOB_INFERENCE]["file_sd_configs"][0]
    assert sd["files"] == [str((tmp_path / "file_sd" / "inference.json").resolve())]
    assert sd["refresh_interval"] == "1s"

    recorded = [r["record"] for g in yaml.safe_load(rules.read_text())["groups"] for r in g["rules"]]
    assert recorded == RULES
    text = rules.read_text()
    assert "[30s]" in text and f'histogram_quantile(0.99, sum by (le) (rate({m.INFERENCE_REQUEST_DURATION}_bucket' in text


def test_rule_window_and_intervals_are_configurable(tmp_path):
    rules = render_recording_rules(window_s=10, evaluation_interval_s=0.5)
    assert "[10s]" in rules and "[30s]" not in rules and "interval: 500ms" in rules
    assert prometheus_duration(90) == "90s" and prometheus_duration(0.25) == "250ms"
    with pytest.raises(ValueError, match="scrape_interval_s"):
        render_prometheus_config(scrape_interval_s=0, evaluation_interval_s=1, file_sd_dir=tmp_path, rule_files=[])
    with pytest.raises(ValueError, match="jobs: job name 'bad/name'"):
        render_prometheus_config(scrape_interval_s=1, evaluation_interval_s=1, file_sd_dir=tmp_path, rule_files=[], jobs=["bad/name"])


def test_broken_rule_file_fails_promtool_with_its_line(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "groups:\n"
        "  - name: g\n"
        "    rules:\n"
        "      - record: aiinfra:ok\n"
        "        expr: vector(1)\n"
        "      - record: aiinfra:broken\n"
        f"        expr: sum(rate({m.INFERENCE_REQUESTS_TOTAL}[30s])\n"
    )
    with pytest.raises(TelemetryConfigError) as err:
        check_rules(broken)
    assert err.value.line == 7
    assert "line 7" in str(err.value) and "unclosed left parenthesis" in str(err.value)
    # a config naming the broken rule file fails too
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(render_prometheus_config(scrape_interval_s=1, evaluation_interval_s=1, file_sd_dir=tmp_path, rule_files=[broken]))
    with pytest.raises(TelemetryConfigError, match="unclosed left parenthesis"):
        check_config(cfg)


def test_broken_file_sd_file_fails_promtool(tmp_path):
    cfg, _ = _write_stack_files(tmp_path)
    (tmp_path / "file_sd").mkdir(exist_ok=True)
    (tmp_path / "file_sd" / "host.json").write_text('[{"targets": ["127.0.0.1:1"], "labels": {"bad-label": "x"}}]')
    with pytest.raises(TelemetryConfigError, match='host.json.*"bad-label" is not a valid label name'):
        check_config(cfg)


def test_target_registry_round_trip_and_atomic_files(tmp_path):
    reg = TargetRegistry(tmp_path / "sd")
    assert reg.targets(m.JOB_INFERENCE) == []
    reg.add(m.JOB_INFERENCE, "127.0.0.1:9101", {"replica": "r0"})
    reg.add(m.JOB_INFERENCE, "127.0.0.1:9102", {"replica": "r1"})
    reg.add(m.JOB_INFERENCE, "127.0.0.1:9101", {"replica": "r0b"})  # same address: replaced
    assert reg.targets(m.JOB_INFERENCE) == [
        {"address": "127.0.0.1:9102", "labels": {"replica": "r1"}},
        {"address": "127.0.0.1:9101", "labels": {"replica": "r0b"}},
    ]
    # the Prometheus file_sd format: a list of {targets, labels} groups
    groups = json.loads((tmp_path / "sd" / "inference.json").read_text())
    assert groups == [
        {"targets": ["127.0.0.1:9102"], "labels": {"replica": "r1"}},
        {"targets": ["127.0.0.1:9101"], "labels": {"replica": "r0b"}},
    ]
    assert reg.remove(m.JOB_INFERENCE, "127.0.0.1:9102") is True
    assert reg.remove(m.JOB_INFERENCE, "127.0.0.1:9102") is False
    reg.set(m.JOB_HOST, ["127.0.0.1:9200", {"address": "127.0.0.1:9201", "labels": {"hostname": "a"}}])
    assert reg.addresses(m.JOB_HOST) == ["127.0.0.1:9200", "127.0.0.1:9201"]
    reg.set(m.JOB_HOST, [])
    assert reg.addresses(m.JOB_HOST) == []
    # writes go through a temporary file and a rename: none is left behind
    assert sorted(p.name for p in (tmp_path / "sd").iterdir() if not p.name.endswith(".lock")) == ["host.json", "inference.json"]


def test_target_registry_rejects_bad_input(tmp_path):
    reg = TargetRegistry(tmp_path)
    with pytest.raises(ValueError, match="address: 'localhost'"):
        reg.add(m.JOB_INFERENCE, "localhost")
    with pytest.raises(ValueError, match="address: '127.0.0.1:70000'"):
        reg.add(m.JOB_INFERENCE, "127.0.0.1:70000")
    with pytest.raises(ValueError, match="labels: label name '__meta'"):
        reg.add(m.JOB_INFERENCE, "127.0.0.1:1", {"__meta": "x"})
    with pytest.raises(ValueError, match="labels: 'instance'"):
        reg.add(m.JOB_INFERENCE, "127.0.0.1:1", {"instance": "x"})
    with pytest.raises(ValueError, match="job: '../x'"):
        reg.add("../x", "127.0.0.1:1")
    with pytest.raises(ValueError, match="listed twice"):
        reg.set(m.JOB_INFERENCE, ["127.0.0.1:1", "127.0.0.1:1"])
    (tmp_path / "training.json").write_text("[{")
    with pytest.raises(ValueError, match="training.json: not valid file_sd JSON"):
        reg.targets(m.JOB_TRAINING)


def _add_many(sd_dir, worker, n):
    reg = TargetRegistry(sd_dir)
    for i in range(n):
        reg.add(m.JOB_INFERENCE, f"127.0.0.{worker + 1}:{9000 + i}", {"replica": f"w{worker}-{i}"})


def test_target_registry_concurrent_writers_lose_nothing(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_add_many, args=(tmp_path, w, 25)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert len(TargetRegistry(tmp_path).targets(m.JOB_INFERENCE)) == 75


def test_missing_binary_names_what_to_install(tmp_path, monkeypatch):
    cfg, rules = _write_stack_files(tmp_path)
    missing = tmp_path / "no-such-dir" / "prometheus"
    with pytest.raises(MissingBinaryError) as err:
        PrometheusServer(cfg, binary=missing).start()
    msg = str(err.value)
    assert str(missing) in msg
    assert "apt-get install prometheus" in msg and "prometheus.io" in msg and "AIINFRA_PROMETHEUS_BIN" in msg
    with pytest.raises(MissingBinaryError, match="promtool"):
        check_rules(rules, binary=tmp_path / "promtool")
    monkeypatch.setenv("AIINFRA_PROMETHEUS_BIN", str(missing))
    with pytest.raises(MissingBinaryError, match=f"AIINFRA_PROMETHEUS_BIN={missing}"):
        PrometheusServer(cfg).start()
    with pytest.raises(MissingBinaryError, match="AIINFRA_PROMETHEUS_BIN"):
        deploy_local_stack(tmp_path / "stack")  # fails before starting anything
    assert not (tmp_path / "stack").exists()
    monkeypatch.delenv("AIINFRA_PROMETHEUS_BIN")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingBinaryError, match="looked at: PATH"):
        PrometheusServer(cfg).start()


def _gpu_count() -> int:
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetCount()
    except Exception:
        return 0


def test_host_exporter_in_process_serves_this_machine():
    import psutil

    server, port = start_host_exporter(port=0)
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
        server.server_close()
    samples = {s.name: s for fam in text_string_to_metric_families(body) for s in fam.samples}
    assert 0.0 <= samples[m.HOST_CPU_UTILIZATION].value <= 1.0
    total = samples[m.HOST_MEMORY_TOTAL_BYTES].value
    assert total == psutil.virtual_memory().total
    assert 0 < samples[m.HOST_MEMORY_USED_BYTES].value < total
    gpu_lines = [ln for ln in body.splitlines() if ln.startswith(m.GPU_UTILIZATION + "{")]
    assert len(gpu_lines) == _gpu_count()  # one series per GPU, none without one
