"""`make ui` for real: the Dagster webserver and daemon from scripts/ui.sh, an iteration launched
through the UI's GraphQL API (what the Materialize dialog sends), its results read back the way
the asset page reads them, then Ctrl-C (SIGINT) stops both servers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
NINE = {"workload_profile", "hardware_plan", "infrastructure", "telemetry_stack", "scaling_policy",
        "workload_run", "run_metrics", "iteration_report", "retuning_proposal"}
REPO_SELECTOR = {"repositoryLocationName": "aiinfra_pipelines", "repositoryName": "__repository__"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _UI:
    def __init__(self, port: int):
        self.url = f"http://127.0.0.1:{port}/graphql"

    def gql(self, query: str, variables: dict | None = None) -> dict:
        r = requests.post(self.url, json={"query": query, "variables": variables or {}}, timeout=60)
        r.raise_for_status()
        body = r.json()
        assert "errors" not in body, body["errors"]
        return body["data"]


@pytest.fixture
def ui(tmp_path, short_spec):
    spec_path = short_spec
    port = _free_port()
    env = dict(os.environ, DAGSTER_HOME=str(tmp_path / "dagster_home"), AIINFRA_HOME=str(tmp_path / "state"),
               AIINFRA_SPEC=str(spec_path), AIINFRA_UI_PORT=str(port))
    log = open(tmp_path / "ui.log", "w")
    proc = subprocess.Popen(["bash", "scripts/ui.sh"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.time() + 90
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail("the Dagster UI did not start:\n" + (tmp_path / "ui.log").read_text()[-3000:])
            time.sleep(1)
        yield _UI(port), proc, tmp_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_ui_launches_an_iteration_shows_its_report_and_stops_on_ctrl_c(ui):
    client, proc, tmp = ui
    children = psutil.Process(proc.pid).children(recursive=True)
    assert {"dagster-webserver", "dagster-daemon"} <= {
        Path(a).name for c in children for a in c.cmdline()[:2]
    }
    client.gql("mutation { setNuxSeen }")

    # What the asset graph shows: the nine lifecycle assets, the sensor on and the schedule off.
    data = client.gql("""query($sel: RepositorySelector!) { repositoryOrError(repositorySelector: $sel) {
        ... on Repository { assetNodes { assetKey { path } groupName }
          sensors { id name sensorState { status } } schedules { name scheduleState { status } } } } }""",
                      {"sel": REPO_SELECTOR})["repositoryOrError"]
    assert {n["assetKey"]["path"][-1] for n in data["assetNodes"] if n["groupName"] == "lifecycle"} == NINE
    sensor = {s["name"]: s for s in data["sensors"]}["retuning_sensor"]
    assert sensor["sensorState"]["status"] == "RUNNING"
    assert {s["name"]: s["scheduleState"]["status"] for s in data["schedules"]}["periodic_retuning_schedule"] == "STOPPED"
    # This test launches one iteration by hand; the sensor would chain the next one.
    client.gql("mutation($id: String) { stopSensor(id: $id) { __typename } }", {"id": sensor["id"]})

    # Add a partition and materialize the nine assets for it, as the Materialize dialog does.
    added = client.gql("""mutation($sel: RepositorySelector!) { addDynamicPartition(repositorySelector: $sel,
        partitionsDefName: "iterations", partitionKey: "0001") { __typename } }""", {"sel": REPO_SELECTOR})
    assert added["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess"
    launched = client.gql("""mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }""",
                          {"p": {"selector": {**REPO_SELECTOR, "jobName": "iteration"},
                                 "executionMetadata": {"tags": [{"key": "dagster/partition", "value": "0001"}]}}})
    assert launched["launchRun"]["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["launchRun"]["run"]["runId"]

    deadline = time.time() + 300
    status = None
    while time.time() < deadline:
        status = client.gql("query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }",
                            {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(3)
    assert status == "SUCCESS", (tmp / "ui.log").read_text()[-4000:]

    # The asset page: iteration_report's materialization for partition 0001 and its numeric metadata.
    report = client.gql("""{ assetOrError(assetKey: {path: ["iteration_report"]}) { ... on Asset {
        assetMaterializations(partitions: ["0001"]) { partition metadataEntries { label __typename
          ... on FloatMetadataEntry { floatValue } } } } } }""")["assetOrError"]["assetMaterializations"]
    assert report and report[0]["partition"] == "0001"
    values = {e["label"]: e.get("floatValue") for e in report[0]["metadataEntries"]}
    for key in ("cost_per_epoch_usd", "cost_per_1k_requests_usd", "slo_attainment", "p99_latency_s"):
        assert values.get(key) is not None and values[key] > 0, (key, values)

    # Ctrl-C stops the webserver and the daemon.
    procs = [proc, *psutil.Process(proc.pid).children(recursive=True)]
    os.killpg(proc.pid, signal.SIGINT)
    gone, alive = psutil.wait_procs(procs, timeout=30)
    assert not alive, f"still running after Ctrl-C: {[p.pid for p in alive]}"
