"""prefect.yaml deploys the flow with its cron schedule to a real Prefect server."""

import json
import os
import subprocess
import time
import urllib.request

import pytest
from conftest import BIN, free_port, make_project, nnpipe, server_process

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """One real server for this module's tests (starting one takes half a minute)."""
    tmp_path = tmp_path_factory.mktemp("prefect-server")
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "server-home"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    api = f"http://127.0.0.1:{port}/api"
    cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    with server_process(cmd, f"{api}/health", tmp_path / "server.log", env=env):
        yield api


def prefect(project, api, *args):
    env = {**os.environ, "PREFECT_API_URL": api, "NNPIPE_PROJECT_DIR": str(project)}
    done = subprocess.run([str(BIN / "prefect"), "--no-prompt", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_prefect_yaml_deploys_the_nightly_schedule(tmp_path, prefect_server):
    project = make_project(tmp_path / "project")
    prefect(project, prefect_server, "work-pool", "create", "nnpipe-process", "--type", "process")
    prefect(project, prefect_server, "deploy", "--all")
    req = urllib.request.Request(f"{prefect_server}/deployments/filter", data=b"{}",
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        deployments = json.load(resp)
    (dep,) = [d for d in deployments if d["name"] == "xray-training-nightly"]
    assert dep["entrypoint"] == "flows/xray_training.py:xray_training"
    assert dep["work_pool_name"] == "nnpipe-process"
    crons = [s["schedule"]["cron"] for s in dep["schedules"]]
    assert crons == ["0 2 * * *"]
    limit = (dep.get("global_concurrency_limit") or {}).get("limit") or dep["concurrency_limit"]
    assert limit == 1
    (daily,) = [d for d in deployments if d["name"] == "ohlcv-training-daily"]
    assert daily["entrypoint"] == "flows/ohlcv_training.py:ohlcv_training"
    (schedule,) = [s["schedule"] for s in daily["schedules"]]
    assert schedule["cron"] == "30 18 * * 1-5"  # weekdays, after the US market closes
    assert schedule["timezone"] == "America/New_York"


def test_schedule_serves_both_flows_on_their_crons(tmp_path, prefect_server):
    """`nnpipe schedule` registers each domain's flow with prefect.yaml's cron."""
    project = make_project(tmp_path / "project")
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    proc = subprocess.Popen([str(BIN / "nnpipe"), "schedule"], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        found: dict = {}
        while time.monotonic() < deadline and len(found) < 2:
            req = urllib.request.Request(f"{prefect_server}/deployments/filter", data=b"{}",
                                         headers={"Content-Type": "application/json"},
                                         method="POST")
            with urllib.request.urlopen(req, timeout=10) as resp:
                found = {d["name"]: d for d in json.load(resp)
                         if d["name"].endswith("-scheduled")}
            time.sleep(2)
        assert set(found) == {"xray-training-scheduled", "ohlcv-training-scheduled"}, \
            proc.stdout.read() if proc.poll() is not None else found
        crons = {n: [(s["schedule"]["cron"], s["schedule"]["timezone"])
                     for s in d["schedules"]] for n, d in found.items()}
        assert crons == {"xray-training-scheduled": [("0 2 * * *", "UTC")],
                         "ohlcv-training-scheduled": [("30 18 * * 1-5", "America/New_York")]}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_schedule_without_a_server_says_how_to_start_one(tmp_path):
    project = make_project(tmp_path / "project")
    done = nnpipe(project, "schedule", check=False)
    assert done.returncode == 2
    assert "prefect server start" in done.stderr and "PREFECT_API_URL" in done.stderr
