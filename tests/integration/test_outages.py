"""Outages and kill -9 (issue 14): what a run leaves when it is killed or the tracking
server is down, and what the next run does about it. Real processes throughout: `nnpipe
run` killed with SIGKILL, a real `mlflow server` stopped, real `dvc repro`."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from conftest import BIN, free_port, make_project, nnpipe, server_process
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from processes import children, cmdline, running, tree, wait_for

from nnpipe.io import read_json

pytestmark = pytest.mark.integration


def runs_by_status(db: Path) -> dict[str, str]:
    """Each MLflow run's status; none while MLflow is still creating the store's tables."""
    try:
        with sqlite3.connect(db) as conn:
            return dict(conn.execute("select run_uuid, status from runs"))
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}
        raise


def test_dvc_repro_with_a_params_typo_deletes_no_output(flow_copy):
    """On the finished flow project (its tune stage's output is in dvc.lock), a params typo
    makes DVC rerun the stage, whose command then refuses the params: the output DVC
    would have deleted before the command is still there."""
    project = flow_copy
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    first = subprocess.run(
        ["dvc", "status", "xray-tune"], cwd=project, capture_output=True, text=True, env=env
    )
    assert first.returncode == 0 and "changed" not in first.stdout, first.stdout + first.stderr
    kept = project / "models/xray-hyperparameters.json"
    before = kept.read_bytes()
    original = (project / "params.yaml").read_text()
    raw = yaml.safe_load(original)
    raw["xray"]["tune"]["trails"] = 3  # a typo: DVC sees the tune params changed
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    done = subprocess.run(
        ["dvc", "repro", "xray-tune"], cwd=project, capture_output=True, text=True, env=env
    )
    assert done.returncode != 0
    assert "xray.tune.trails: unknown key" in done.stderr and "Traceback" not in done.stderr
    assert kept.read_bytes() == before  # DVC did not delete it before the command failed
    (project / "params.yaml").write_text(original)
    status = subprocess.run(
        ["dvc", "status", "xray-tune"], cwd=project, capture_output=True, text=True, env=env
    )
    assert "changed" not in status.stdout, status.stdout  # dvc.lock still describes it


HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from nnpipe.project_lock import hold_project
    with hold_project("a run", Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(600)
""")


def test_a_second_run_exits_2_naming_the_run_that_holds_the_project(tmp_path):
    project = make_project(tmp_path / "project")
    params_before = (project / "params.yaml").read_text()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(project)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        second = nnpipe(
            project, "run", "--domain", "xray", "-S", "xray.train.epochs=3", check=False
        )
        assert second.returncode == 2
        assert f"another run (pid {holder.pid}, started at " in second.stderr
        assert "Traceback" not in second.stderr + second.stdout
        # -S overrides are not written under a run that is going
        assert (project / "params.yaml").read_text() == params_before
        # a stage command, as `dvc repro` runs it, waits its turn too
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
        repro = subprocess.run(
            ["dvc", "repro", "xray-ingest"], cwd=project, capture_output=True, text=True, env=env
        )
        assert repro.returncode != 0
        assert "another run (pid" in repro.stderr and "Traceback" not in repro.stderr
        assert not (project / "data/xray/raw").exists()
        # a flow run in a process of its own (a worker's, `nnpipe schedule`'s) ends Failed
        flow = subprocess.run(
            [
                sys.executable,
                "-c",
                "from flows.xray_training import xray_training\n"
                "state = xray_training(return_state=True)\n"
                "print(state.name, '|', state.message)",
            ],
            cwd=project,
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        )
        assert flow.stdout.startswith("Failed | another run (pid"), flow.stderr[-3000:]
        assert "Traceback" not in flow.stderr
    finally:
        holder.kill()
        holder.wait()


def test_kill_9_during_train_leaves_nothing_the_next_run_does_not_clean(tmp_path):
    # no search, one variant: the kill is in train, and the rerun goes from there to the end
    project = make_project(
        tmp_path / "project",
        {"xray": {"tune": {"enabled": False}, "compress": {"variants": ["keras_float32"]}}},
    )
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "nnpipe"), "run", "--domain", "xray"],
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        server = wait_for(
            lambda: [p for p in children(proc.pid) if "prefect.server.api.server" in cmdline(p)],
            300,
            "the temporary Prefect server",
            log,
        )[0]
        staging = wait_for(
            lambda: (
                list((project / "models").glob(".xray.*.tmp"))
                if (project / "models").is_dir()
                else []
            ),
            600,
            "the train stage's staging folder",
            log,
        )
        db = project / "mlflow.db"
        wait_for(
            lambda: "RUNNING" in runs_by_status(db).values(),
            300,
            "the train stage's MLflow run",
            log,
        )
        watchers = [p for p in children(proc.pid) if "nnpipe.watchdog" in cmdline(p)]
        server_tree = tree(server)
        assert watchers, "no watchdog process"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # the temporary server (and all it started) and its watchdog die with nnpipe run
        wait_for(
            lambda: not any(running(p) for p in [*server_tree, *watchers]),
            20,
            f"the temporary server {server_tree} to stop",
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    killed_run = next(r for r, s in runs_by_status(db).items() if s == "RUNNING")
    assert all(p.exists() for p in staging)  # left by the killed run

    again = nnpipe(project, "run", "--domain", "xray")
    assert not list((project / "models").glob(".*.tmp"))
    assert "left by a run that was killed" in again.stderr
    assert runs_by_status(db)[killed_run] == "KILLED"
    assert read_json(project / "reports/xray/registration.json")["registered"]


KILLED_WRITER = textwrap.dedent("""
    import time
    import mlflow
    from nnpipe import tracking
    from nnpipe.config import load_params
    params = load_params({params!r})
    with tracking.start_run(params, "xray", "train", run_name="killed") as run:
        model = mlflow.initialize_logged_model(name="model")  # PENDING until finalized
        print(run.info.run_id, model.model_id, flush=True)
        time.sleep(600)
""")


def test_runs_and_logged_models_a_killed_process_left_are_ended_at_the_next_start(
    tmp_path, monkeypatch
):
    from nnpipe import tracking
    from nnpipe.config import load_params

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    params_file = Path(__file__).resolve().parents[2] / "params.yaml"
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER.format(params=str(params_file))],
        stdout=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        run_id, model_id = writer.stdout.readline().split()
    finally:
        writer.kill()  # SIGKILL: MLflow's end_run never runs
        writer.wait()
    client = MlflowClient(uri)
    assert client.get_run(run_id).info.status == "RUNNING"
    assert client.get_logged_model(model_id).status == LoggedModelStatus.PENDING
    # a run of a live process (this one) is left alone
    experiment = client.get_run(run_id).info.experiment_id
    live = client.create_run(
        experiment, tags={tracking.OWNER_TAG: tracking.current_owner().token()}
    )
    tracking.configure(load_params(params_file))
    assert tracking.end_abandoned_runs(experiment) == [run_id]
    assert client.get_run(run_id).info.status == "KILLED"
    assert client.get_logged_model(model_id).status == LoggedModelStatus.FAILED
    assert client.get_run(live.info.run_id).info.status == "RUNNING"


def test_with_the_mlflow_server_down_register_fails_in_seconds_naming_it(flow_copy, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db = flow_copy / "mlflow.db"
    versions = "select name, version from model_versions"
    with sqlite3.connect(db) as conn:
        before = sorted(conn.execute(versions))
    # a real server on the project's store, then stopped: nothing listens on its port
    cmd = [
        str(BIN / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{db}",
        "--workers",
        "1",
    ]
    with server_process(cmd, f"{url}/health", tmp_path / "mlflow.log", timeout=300):
        pass
    (flow_copy / "reports/xray/registration.json").unlink()
    env = {**os.environ, "MLFLOW_TRACKING_URI": url}
    started = time.monotonic()
    done = subprocess.run(
        [str(BIN / "nnpipe"), "stage", "register", "--domain", "xray"],
        cwd=flow_copy,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"the MLflow tracking server at {url} is not answering" in done.stderr
    assert "Start it" in done.stderr and "mlflow.tracking_uri" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert seconds < 90, seconds  # MLflow's defaults: minutes per request
    with sqlite3.connect(db) as conn:
        assert sorted(conn.execute(versions)) == before  # nothing half-registered
        assert not list(conn.execute("select model_id from logged_models where status = 'PENDING'"))
    assert not (flow_copy / "reports/xray/registration.json").exists()


def test_a_rerun_after_register_moved_the_alias_keeps_the_gate_reason(flow_copy):
    """kill -9 after the champion alias moved leaves the registry as a finished register
    does, with the stage's outputs not written: the rerun must report the decision that
    was made (against the previous champion), not judge the version against itself."""
    record = read_json(flow_copy / "reports/xray/registration.json")
    assert record["promoted"]
    (flow_copy / "reports/xray/registration.json").unlink()
    (flow_copy / "reports/xray/gate.json").unlink()
    nnpipe(flow_copy, "stage", "register", "--domain", "xray")
    again = read_json(flow_copy / "reports/xray/registration.json")
    assert again["version"] == record["version"] and again["promoted"]
    assert again["reason"] == record["reason"]
    assert again["champion_before"] == record["champion_before"]
    assert "this very version" not in again["champion_before_scored"]
