"""The deployment stack of docker/compose.yaml, started as plain processes on loopback (no
Docker engine runs here): PostgreSQL (Debian's server), an S3-compatible server (moto's;
compose uses MinIO), `mlflow server` on PostgreSQL with its artifacts in S3, a Prefect
server on PostgreSQL, the worker (docker/worker.sh, as compose runs it) and the API from
the serving image's package set (the `serve` extra only: no TensorFlow).

A flow run goes through the worker, registers its model on the tracking server and pushes
its data to the DVC remote; the API then answers with that version and logs its
predictions in PostgreSQL, where the monitor's deployment (run by the worker) reads them:
its alarm triggers the training deployment.
"""

from __future__ import annotations

import contextlib
import glob
import io
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import (
    BIN,
    ROOT,
    free_port,
    make_project,
    server_process,
    started_process,
    wait_http,
)
from prefect_runs import TF_NOISE, artifact_versions, check_xray_run_reported, wait_for_run

pytestmark = pytest.mark.integration

DOCKER = ROOT / "docker"
S3_KEYS = {
    "AWS_ACCESS_KEY_ID": "nnpipe",
    "AWS_SECRET_ACCESS_KEY": "stack-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _as_postgres_user(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: CI runs as root, so drop to the postgres user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def postgres_server(log_path: Path):
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if not (initdb and postgres and shutil.which("psql")):
        pytest.fail(
            "PostgreSQL's server is not installed: apt-get install postgresql (.ci/run does it)"
        )
    data = Path(tempfile.mkdtemp(prefix="nnpipe-pg-"))  # not under root's private tmp
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
    subprocess.run(
        _as_postgres_user([initdb, "-D", str(data), "-U", "nnpipe", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = log_path.open("w")
    proc = subprocess.Popen(
        _as_postgres_user(
            [postgres, "-D", str(data), "-p", str(port), "-h", "127.0.0.1", "-k", str(data)]
        ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    env = {
        **os.environ,
        "PGHOST": "127.0.0.1",
        "PGPORT": str(port),
        "POSTGRES_USER": "nnpipe",
        "NNPIPE_DATABASES": "mlflow prefect predictions",  # as compose.yaml
    }
    try:
        deadline = time.monotonic() + 60
        while (
            subprocess.run(
                ["psql", "-U", "nnpipe", "-d", "postgres", "-c", "select 1"],
                env=env,
                capture_output=True,
            ).returncode
            != 0
        ):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"postgres did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        # the compose file's init script makes the two databases
        subprocess.run(["sh", str(DOCKER / "postgres-init.sh")], env=env, check=True)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(data, ignore_errors=True)


def api(url: str, path: str, body: dict | None = None, method: str | None = None) -> dict:
    req = urllib.request.Request(
        f"{url}{path}",
        method=method or ("POST" if body is not None else "GET"),
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def serve_venv(dest: Path) -> Path:
    """The serving image's environment: the lock file's core + `serve` extra, nothing else."""
    uv = ROOT / ".tools" / "bin" / "uv"
    uv = str(uv) if uv.exists() else shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not installed: run `make setup` first")
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(dest), "UV_PYTHON_DOWNLOADS": "never"}
    done = subprocess.run(
        [
            uv,
            "sync",
            "-q",
            "--frozen",
            "--no-dev",
            "--no-install-project",
            "--extra",
            "serve",
            "--python",
            str(BIN / "python"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dest / "bin" / "python"


def png_bytes(size: int = 64, seed: int = 0) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def wait_for_flow_run(prefect_api: str, run_id: str, timeout: float, worker_log: Path) -> dict:
    try:
        return wait_for_run(prefect_api, run_id, timeout)
    except AssertionError as exc:
        pytest.fail(f"{exc}; worker log:\n{worker_log.read_text()[-4000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:  # a worker may wait on its runs: do not wait forever
        proc.kill()
        proc.wait(timeout=30)


def check_deployments(prefect_api: str) -> dict:
    """prefect.yaml, deployed by the worker script: both flows, their crons, one run at a
    time, the stack's work pool."""
    deployments = {d["name"]: d for d in api(prefect_api, "/deployments/filter", {})}
    nightly, daily = deployments["xray-training-nightly"], deployments["ohlcv-training-daily"]
    assert nightly["entrypoint"] == "flows/xray_training.py:xray_training"
    assert daily["entrypoint"] == "flows/ohlcv_training.py:ohlcv_training"
    for dep in (nightly, daily):
        assert dep["work_pool_name"] == "nnpipe-process"
        limit = (dep.get("global_concurrency_limit") or {}).get("limit") or dep["concurrency_limit"]
        assert limit == 1
    assert [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in nightly["schedules"]] == [
        ("0 2 * * *", "UTC")
    ]
    # weekdays, after the US market closes
    assert [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in daily["schedules"]] == [
        ("30 18 * * 1-5", "America/New_York")
    ]
    pool = api(prefect_api, "/work_pools/nnpipe-process")
    assert pool["type"] == "process" and pool["concurrency_limit"] == 1
    return nightly


def automation_runs(prefect_api: str, deployment_id: str) -> list[dict]:
    """The deployment's flow runs that a trigger (an automation) created."""
    runs = api(
        prefect_api,
        "/flow_runs/filter",
        {"flow_runs": {"deployment_id": {"any_": [deployment_id]}}},
    )
    return [r for r in runs if (r.get("created_by") or {}).get("type") == "AUTOMATION"]


def check_monitoring(
    prefect_api: str, project: Path, api_url: str, worker_log: Path, tmp_path: Path
) -> str:
    """The monitor's deployment, run by the worker on what the API logged in PostgreSQL:
    held-out radiographs raise no alarm; the noise the API was sent does, and its event
    triggers a run of the training deployment (which the worker runs); a second alarm
    within the cooldown triggers none. The triggered run's id."""
    for seed in range(40):  # noise, nothing like a radiograph
        req = urllib.request.Request(
            f"{api_url}/predict/xray",
            data=png_bytes(seed=seed),
            headers={"Content-Type": "image/png", "X-API-Key": "stack-key"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert json.load(resp)["request_id"]
    time.sleep(1)  # the log's writer commits in the background
    with urllib.request.urlopen(f"{api_url}/ready", timeout=10) as resp:
        status = json.load(resp)["prediction_log"]
    assert status["ok"] and status["written"] == 41, status
    assert status["store"].startswith("postgresql://***@127.0.0.1"), status  # no password

    monitor = api(prefect_api, "/deployments/name/xray-monitor/xray-monitor-daily")
    training = api(prefect_api, "/deployments/name/xray-training/xray-training-nightly")
    report_path = project / "reports/xray/monitor_report.json"

    def monitor_run(parameters: dict) -> dict:
        run = api(
            prefect_api, f"/deployments/{monitor['id']}/create_flow_run", {"parameters": parameters}
        )
        run = wait_for_flow_run(prefect_api, run["id"], 300, worker_log)
        assert run["state"]["type"] == "COMPLETED", (run["state"], worker_log.read_text()[-4000:])
        return json.loads(report_path.read_text())

    held_out = tmp_path / "held-out"
    held_out.mkdir()
    splits = [line.split(",") for line in (project / "data/xray/features/splits.csv").open()]
    for row in splits[1:]:
        if row[-1].strip() == "test":
            shutil.copy(project / "data/xray/raw/images" / f"{row[0]}.png", held_out)
    report = monitor_run({"batch": str(held_out)})
    assert not report["alarm"], report["alarm_reasons"]
    assert automation_runs(prefect_api, training["id"]) == []

    report = monitor_run({})  # the log's last day: the noise
    assert report["alarm"] and report["window"]["location"].startswith("postgresql://")
    assert report["event"].startswith("asked for: event nnpipe.monitor.alarm"), report["event"]
    deadline = time.monotonic() + 120
    while not (triggered := automation_runs(prefect_api, training["id"])):
        if time.monotonic() > deadline:
            pytest.fail(f"no training run was triggered:\n{worker_log.read_text()[-4000:]}")
        time.sleep(2)
    (run,) = triggered
    assert "the monitor's alarm for xray-classifier" in run["parameters"]["reason"]
    run = wait_for_flow_run(prefect_api, run["id"], 600, worker_log)
    assert run["state"]["type"] == "COMPLETED", (run["state"], worker_log.read_text()[-4000:])

    report = monitor_run({})  # the same alarm, within the cooldown
    assert report["alarm"] and "in cooldown" in report["event"], report["event"]
    time.sleep(10)
    assert len(automation_runs(prefect_api, training["id"])) == 1
    return str(run["id"])


def check_nnpipe_schedule(
    project: Path,
    prefect_api: str,
    log: Path,
    env: dict[str, str],
    mlflow_url: str,
    worker_run_ids: list[str],
) -> None:
    """`nnpipe schedule` serves prefect.yaml's deployments, under their names and crons,
    from its own process (no worker), but refuses to take over the ones `prefect deploy`
    made for the worker; a run of it after the worker's, with one more epoch in
    params.yaml, logs the stages it skips and the epochs of the one it reruns (its flow
    runs in a process of the Runner's own, which sets what it needs for its logs), and
    reports: its artifacts follow the worker run's under the same keys."""
    done = subprocess.run(
        [str(BIN / "nnpipe"), "schedule"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "is deployed to work pool 'nnpipe-process'" in done.stderr
    assert "prefect deployment delete xray-training/xray-training-nightly" in done.stderr
    for deployment in api(prefect_api, "/deployments/filter", {}):  # as the message says
        urllib.request.urlopen(
            urllib.request.Request(
                f"{prefect_api}/deployments/{deployment['id']}", method="DELETE"
            ),
            timeout=30,
        )
    proc = subprocess.Popen(
        [str(BIN / "nnpipe"), "schedule"],
        cwd=project,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        found: dict = {}
        while time.monotonic() < deadline and len(found) < 4:
            found = {
                d["name"]: d
                for d in api(prefect_api, "/deployments/filter", {})
                if d["work_pool_name"] is None
            }
            if proc.poll() is not None:
                break
            time.sleep(2)
        assert set(found) == {
            "xray-training-nightly",
            "ohlcv-training-daily",
            "xray-monitor-daily",
            "ohlcv-monitor-hourly",
        }, log.read_text()[-3000:]
        crons = {
            n: [(s["schedule"]["cron"], s["schedule"]["timezone"]) for s in d["schedules"]]
            for n, d in found.items()
        }
        assert crons == {
            "xray-training-nightly": [("0 2 * * *", "UTC")],
            "ohlcv-training-daily": [("30 18 * * 1-5", "America/New_York")],
            "xray-monitor-daily": [("0 6 * * *", "UTC")],
            "ohlcv-monitor-hourly": [("15 10-16 * * 1-5", "America/New_York")],
        }
        dep = found["xray-training-nightly"]
        params = yaml.safe_load((project / "params.yaml").read_text())
        params["xray"]["train"]["epochs"] += 1
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        run = api(prefect_api, f"/deployments/{dep['id']}/create_flow_run", {})
        run = wait_for_run(prefect_api, run["id"], 300)
        assert run["state"]["type"] == "COMPLETED", (run["state"], log.read_text()[-4000:])
        assert run["work_pool_name"] is None  # run by `nnpipe schedule`, not the worker
        text = check_xray_run_reported(
            prefect_api, run["id"], project, trained=True, mlflow_ui=mlflow_url
        )
        assert "xray-featurize is up to date" in text and "xray-tune is up to date" in text
        for key in ("xray-summary", "xray-compression"):
            runs = [a["flow_run_id"] for a in artifact_versions(prefect_api, key)]
            assert runs == [run["id"], *worker_run_ids], (key, runs)
    finally:
        stop(proc)
    console = log.read_text()
    assert not [n for n in TF_NOISE if n in console], console[-3000:]


def test_a_flow_run_through_the_worker_is_served_by_the_api(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    with contextlib.ExitStack() as stack:
        pg_port = stack.enter_context(postgres_server(logs / "postgres.log"))

        s3_port = free_port()
        s3_url = f"http://127.0.0.1:{s3_port}"
        stack.enter_context(
            server_process(
                [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)],
                f"{s3_url}/moto-api/",
                logs / "s3.log",
            )
        )
        s3_env = {
            **os.environ,
            **S3_KEYS,
            "AWS_ENDPOINT_URL": s3_url,
            "MLFLOW_S3_ENDPOINT_URL": s3_url,
        }
        subprocess.run(
            [str(BIN / "python"), str(DOCKER / "buckets.py")],
            check=True,
            env={**s3_env, "NNPIPE_BUCKETS": "mlflow dvc"},
        )

        # the two servers start side by side (half a minute each), the project meanwhile
        mlflow_port, prefect_port = free_port(), free_port()
        mlflow_url = f"http://127.0.0.1:{mlflow_port}"
        prefect_api = f"http://127.0.0.1:{prefect_port}/api"
        mlflow = stack.enter_context(
            started_process(  # the store URI in the env, as compose
                [
                    str(BIN / "mlflow"),
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(mlflow_port),
                    "--workers",
                    "1",
                    "--artifacts-destination",
                    "s3://mlflow/",
                ],
                logs / "mlflow.log",
                env={
                    **s3_env,
                    "MLFLOW_BACKEND_STORE_URI": f"postgresql://nnpipe@127.0.0.1:{pg_port}/mlflow",
                },
            )
        )
        prefect = stack.enter_context(
            started_process(
                [
                    str(BIN / "prefect"),
                    "server",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(prefect_port),
                ],
                logs / "prefect.log",
                env={
                    **os.environ,
                    "PREFECT_HOME": str(tmp_path / "prefect-server"),
                    "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://nnpipe@127.0.0.1:{pg_port}/prefect",
                },
            )
        )
        project = make_project(
            tmp_path / "project",
            {
                "xray": {
                    "tune": {"enabled": False},
                    "compress": {"variants": ["keras_float32", "tflite_dynamic"]},
                    # held-out radiographs must pass whatever the machine's numerics:
                    # checks at 0.1% (noise fails them by far)
                    "monitor": {
                        "ks_alpha": 0.001,
                        "embedding_alpha": 0.001,
                        "permutations": 2000,
                    },
                }
            },
        )
        wait_http(mlflow, f"{mlflow_url}/health", logs / "mlflow.log")
        wait_http(prefect, f"{prefect_api}/health", logs / "prefect.log")

        # nothing set for logs or TensorFlow's C++ noise: the flow's own process does it
        quiet_env = {
            k: v
            for k, v in s3_env.items()
            if k not in ("TF_CPP_MIN_LOG_LEVEL", "PREFECT_LOGGING_EXTRA_LOGGERS")
        }
        prediction_log = f"postgresql://nnpipe@127.0.0.1:{pg_port}/predictions"
        worker_env = {
            **quiet_env,
            "NNPIPE_PREDICTION_LOG": prediction_log,
            "PREFECT_API_URL": prefect_api,
            "MLFLOW_TRACKING_URI": mlflow_url,
            "NNPIPE_PROJECT_DIR": str(project),
            "NNPIPE_DVC_REMOTE": "s3://dvc/nnpipe",
            "DVC_GLOBAL_CONFIG_DIR": str(tmp_path / "dvc-global"),
            "PREFECT_HOME": str(tmp_path / "prefect-worker"),
        }
        worker_log = logs / "worker.log"
        worker = subprocess.Popen(
            ["sh", str(DOCKER / "worker.sh")],
            env=worker_env,
            stdout=worker_log.open("w"),
            stderr=subprocess.STDOUT,
        )
        stack.callback(stop, worker)
        python = serve_venv(tmp_path / "serve-venv")  # the API's, made meanwhile

        # the worker script deployed prefect.yaml; run the nightly deployment now
        deadline = time.monotonic() + 240
        while True:
            try:  # deploy --all does them in turn: the last one, then the one to run
                api(prefect_api, "/deployments/name/ohlcv-training/ohlcv-training-daily")
                dep = api(prefect_api, "/deployments/name/xray-training/xray-training-nightly")
                break
            except urllib.error.HTTPError:
                if worker.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the worker did not deploy:\n{worker_log.read_text()[-4000:]}")
                time.sleep(2)
        assert check_deployments(prefect_api)["id"] == dep["id"]
        run = api(prefect_api, f"/deployments/{dep['id']}/create_flow_run", {})
        run = wait_for_flow_run(prefect_api, run["id"], 900, worker_log)
        assert run["state"]["type"] == "COMPLETED", (run["state"], worker_log.read_text()[-6000:])
        # its stages, epochs and summary in the stored logs, its report as artifacts
        check_xray_run_reported(prefect_api, run["id"], project, trained=True, mlflow_ui=mlflow_url)
        assert (
            "xray-train (fit the CNN"
            in api(prefect_api, f"/deployments/{dep['id']}")["description"]
        )
        assert not [n for n in TF_NOISE if n in worker_log.read_text()], worker_log.read_text()[
            -3000:
        ]

        # the run registered its model on the tracking server, artifacts in S3
        from mlflow import MlflowClient

        champion = MlflowClient(mlflow_url, mlflow_url).get_model_version_by_alias(
            "xray-classifier", "champion"
        )
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=s3_url,
            **{k.lower(): v for k, v in S3_KEYS.items() if k != "AWS_DEFAULT_REGION"},
            region_name="us-east-1",
        )
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="mlflow").get("Contents", [])]
        assert any(k.endswith("deploy.json") for k in keys), keys[:20]
        assert any(k.endswith("roc.png") for k in keys), keys[:20]  # the training run's too
        run_id = champion.run_id
        assert MlflowClient(mlflow_url).get_run(run_id).data.metrics["test_roc_auc"] > 0
        # and pushed what it produced to the DVC remote
        dvc_keys = [
            o["Key"] for o in s3.list_objects_v2(Bucket="dvc", Prefix="nnpipe/").get("Contents", [])
        ]
        assert len(dvc_keys) >= 5, dvc_keys
        status = subprocess.run(
            [str(BIN / "dvc"), "status", "--cloud", "xray-train"],
            cwd=project,
            env=worker_env,
            capture_output=True,
            text=True,
        )
        assert status.returncode == 0 and "new:" not in status.stdout, status.stdout
        assert not (project / ".dvc" / "config.local").exists()  # the checkout's config untouched

        # the API, from the serving image's packages only, serves that version
        api_port = free_port()
        api_url = f"http://127.0.0.1:{api_port}"
        serve_env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": mlflow_url,
            "NNPIPE_API_KEY": "stack-key",
            "PYTHONPATH": str(ROOT / "src"),
            "NNPIPE_PREDICTION_LOG": prediction_log,
        }
        stack.enter_context(
            server_process(
                [str(python), "-m", "nnpipe", "serve", "--domain", "xray", "--port", str(api_port)],
                f"{api_url}/health",
                logs / "api.log",
                env=serve_env,
                cwd=project,
            )
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{api_url}/ready", timeout=10)
                break
            except urllib.error.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail((logs / "api.log").read_text()[-3000:])
                time.sleep(1)
        req = urllib.request.Request(
            f"{api_url}/predict/xray",
            data=png_bytes(),
            headers={"Content-Type": "image/png", "X-API-Key": "stack-key"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.load(resp)
        assert answer["model"]["name"] == "xray-classifier"
        assert str(answer["model"]["version"]) == str(champion.version)
        assert set(answer["probabilities"]) == {"normal", "pneumonia"}
        assert abs(sum(answer["probabilities"].values()) - 1) < 1e-5
        assert not list((tmp_path / "serve-venv").glob("lib/*/site-packages/tensorflow"))

        triggered = check_monitoring(prefect_api, project, api_url, worker_log, tmp_path)

        check_nnpipe_schedule(
            project,
            prefect_api,
            logs / "schedule.log",
            {**worker_env, "PREFECT_HOME": str(tmp_path / "schedule")},
            mlflow_url,
            [triggered, run["id"]],
        )
