"""`nnpipe schedule` without a server, and with one: a real `prefect server start` on
SQLite serving the runs. prefect.yaml's deployments through a worker run against the
Prefect server of tests/integration/test_stack.py, which starts one anyway."""

import contextlib
import os

import pytest
from conftest import BIN, free_port, make_project, nnpipe, server_process, started_process
from prefect_runs import (
    TF_NOISE,
    api,
    check_xray_run_reported,
    wait_for_deployment,
    wait_for_run,
)

pytestmark = pytest.mark.integration


def test_schedule_without_a_server_says_how_to_start_one(tmp_path):
    project = make_project(tmp_path / "project")
    done = nnpipe(project, "schedule", check=False)
    assert done.returncode == 2
    assert "prefect server start" in done.stderr and "PREFECT_API_URL" in done.stderr


def test_a_run_served_by_nnpipe_schedule_logs_and_publishes_to_the_server(tmp_path):
    """`nnpipe schedule` against a real Prefect server (SQLite): it serves prefect.yaml's
    deployment under prefect.yaml's name and the flow's description (the registry's
    stages); a run of it stores nnpipe's lines (stages, epochs, summary) and no TensorFlow
    C++ line in the API, and publishes the summary and the compression table.
    TF_CPP_MIN_LOG_LEVEL and PREFECT_LOGGING_EXTRA_LOGGERS are not set for it: the flow's
    own process sets what it needs. (test_stack.py runs prefect.yaml's deployment through
    a worker, then a second run through `nnpipe schedule` with every stage current.)"""
    project = make_project(
        tmp_path / "project",
        {
            "xray": {
                "tune": {"enabled": False},
                "train": {"epochs": 2},
                "compress": {"variants": ["keras_float32", "tflite_dynamic"]},
            }
        },
    )
    port = free_port()
    prefect_api = f"http://127.0.0.1:{port}/api"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("TF_CPP_MIN_LOG_LEVEL", "PREFECT_LOGGING_EXTRA_LOGGERS")
    }
    server_env = {**env, "PREFECT_HOME": str(tmp_path / "prefect-server")}
    log = tmp_path / "schedule.log"
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            server_process(
                [
                    str(BIN / "prefect"),
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                f"{prefect_api}/health",
                tmp_path / "server.log",
                env=server_env,
            )
        )
        schedule = stack.enter_context(
            started_process(
                [str(BIN / "nnpipe"), "schedule", "--domain", "xray"],
                log,
                cwd=project,
                env={
                    **env,
                    "PREFECT_API_URL": prefect_api,
                    "PREFECT_HOME": str(tmp_path / "prefect-client"),
                },
            )
        )
        dep = wait_for_deployment(
            prefect_api,
            "xray-training",
            "xray-training-nightly",
            180,
            alive=lambda: schedule.poll() is None,
        )
        assert "xray-train (fit the CNN" in dep["description"], dep["description"]
        assert [s["schedule"]["cron"] for s in dep["schedules"]] == ["0 2 * * *"]

        run = api(prefect_api, f"/deployments/{dep['id']}/create_flow_run", {})
        run = wait_for_run(prefect_api, run["id"], 600)
        assert run["state"]["type"] == "COMPLETED", (run["state"], log.read_text()[-4000:])
        check_xray_run_reported(
            prefect_api, run["id"], project, trained=True, mlflow_ui="http://127.0.0.1:5000"
        )
    console = log.read_text()
    assert not [n for n in TF_NOISE if n in console], console[-3000:]
