"""Static checks of docker/: both images and the compose stack (no Docker engine runs on
the development machines; the same topology runs as processes in
tests/integration/test_stack.py)."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
IMAGES = {"pipeline": DOCKER / "Dockerfile", "serve": DOCKER / "serve.Dockerfile"}
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
# a full release: 3.11.7 (Python), 15.10 (PostgreSQL's minor is its patch level), MinIO's date
PINNED = re.compile(r":(\d+\.\d+(\.\d+)?|RELEASE\.\d{4}-\d\d-\d\dT[\d-]+Z)([-.\w]*)$")


def instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in (raw.strip() for raw in joined.splitlines())
        if line and not line.startswith("#")
    ]


@pytest.mark.parametrize("name", IMAGES)
def test_base_images_are_pinned_and_the_build_is_multi_stage(name):
    text = IMAGES[name].read_text()
    args = dict(re.findall(r"ARG (\w+)=(\S+)", text))
    froms = [rest for kind, rest in instructions(text) if kind == "FROM"]
    assert len(froms) >= 2
    for rest in froms:
        image = rest.split()[0]
        image = args.get(image.strip("${}"), image)
        assert re.search(r":\d+\.\d+\.\d+", image), f"unpinned base image {image}"


@pytest.mark.parametrize("name, extra", [("pipeline", "pipeline"), ("serve", "serve")])
def test_dependencies_come_from_the_lock_file_and_the_user_is_not_root(name, extra):
    steps = instructions(IMAGES[name].read_text())
    runs = [rest for kind, rest in steps if kind == "RUN"]
    syncs = [r for r in runs if "uv sync" in r]
    assert syncs and all(
        "--frozen" in r and f"--extra {extra}" in r and "--no-dev" in r for r in syncs
    )
    assert "uv.lock" in " ".join(rest for kind, rest in steps if kind == "COPY")
    users = [rest for kind, rest in steps if kind == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(kind == "HEALTHCHECK" for kind, _ in steps)


def test_the_pipeline_image_runs_the_checkout_dvc_hashes():
    text = IMAGES["pipeline"].read_text()
    assert "/project/src" in text and "--no-install-project" in text
    assert "WORKDIR /project" in text


def test_the_serving_image_health_checks_its_own_endpoint_and_serves_on_the_port():
    steps = dict(instructions(IMAGES["serve"].read_text()))
    assert "/health" in steps["HEALTHCHECK"] and "8000" in steps["HEALTHCHECK"]
    assert '"serve"' in steps["ENTRYPOINT"] and steps["EXPOSE"] == "8000"


@pytest.mark.parametrize("name", IMAGES)
def test_copied_paths_exist(name):
    for kind, rest in instructions(IMAGES[name].read_text()):
        if kind == "COPY" and "--from" not in rest:
            for src in re.sub(r"--chown=\S+", "", rest).split()[:-1]:
                assert (ROOT / src).exists(), src


def _lock_closure(groups: list[str]) -> set[str]:
    """Every package the lock file installs for nnpipe's core plus these extras."""
    packages = {p["name"]: p for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
    root = packages["nnpipe"]
    todo = [d["name"] for d in root["dependencies"]]
    todo += [d["name"] for g in groups for d in root["optional-dependencies"][g]]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name == "nnpipe":
            continue
        seen.add(name)
        for dep in packages[name].get("dependencies", []):
            todo.append(dep["name"])
            for extra in dep.get("extra", []):
                todo += [
                    d["name"]
                    for d in packages[dep["name"]].get("optional-dependencies", {}).get(extra, [])
                ]
    return seen


def test_the_serving_image_is_slim():
    """The serve extra brings the registry client and LiteRT, not the training stack."""
    serve = _lock_closure(["serve"])
    assert {"mlflow-skinny", "ai-edge-litert", "fastapi", "uvicorn"} <= serve
    heavy = {
        "tensorflow",
        "tf-keras",
        "keras",
        "mlflow",
        "prefect",
        "dvc",
        "scikit-learn",
        "matplotlib",
        "dask",
        "sqlalchemy",
        "scipy",
    }
    assert not serve & heavy, serve & heavy
    pipeline = _lock_closure(["pipeline"])
    assert {"tensorflow", "prefect", "dvc", "dvc-s3", "psycopg", "boto3"} <= pipeline
    assert len(serve) < len(pipeline) / 3


# --- compose -------------------------------------------------------------------------------

SERVICES = COMPOSE["services"]


def test_the_stack_has_every_service_the_topology_needs():
    assert {"postgres", "minio", "buckets", "mlflow", "prefect-server", "worker", "api"} <= set(
        SERVICES
    )
    assert SERVICES["api"]["build"]["dockerfile"] == "docker/serve.Dockerfile"
    for name in ("mlflow", "prefect-server", "worker", "buckets"):
        assert SERVICES[name]["build"]["dockerfile"] == "docker/Dockerfile", name


def test_every_image_is_pinned():
    for name, svc in SERVICES.items():
        image = svc["image"]
        if "build" in svc:  # built here, tagged with the project's version
            assert image.startswith("nnpipe-") and "${NNPIPE_VERSION" in image, name
        else:
            assert PINNED.search(image), f"{name}: unpinned image {image}"


def _strings(node):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from ((f"{key}", v) for v in _strings(value))
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif node is not None:
        yield str(node)


def test_secrets_come_from_the_environment_and_must_be_set():
    text = (DOCKER / "compose.yaml").read_text()
    for name, svc in SERVICES.items():
        env = svc.get("environment") or {}
        for key, value in env.items():
            if re.search(r"PASSWORD|SECRET|API_KEY|ACCESS_KEY", key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)), f"{name}.{key}={value}"
    # a password inside a connection string is an interpolated variable too
    for url in re.findall(r"\w+://[^\s'\"]*@", text):
        assert "${POSTGRES_PASSWORD}" in url, url
    example = (DOCKER / ".env.example").read_text()
    for line in example.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            assert value == "" or ("PASSWORD" not in key and "KEY" not in key), line
    assert "docker/.env" in (ROOT / ".gitignore").read_text().splitlines()
    assert "docker/.env" in (ROOT / ".dockerignore").read_text().splitlines()  # not in images
    assert (
        "docker/.env"
        not in subprocess.run(
            ["git", "ls-files", "docker"], cwd=ROOT, capture_output=True, text=True
        ).stdout.split()
    )


def test_published_ports_are_on_loopback_only():
    for name, svc in SERVICES.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"


def test_services_wait_for_what_they_need():
    def needs(name):
        return {k: v["condition"] for k, v in SERVICES[name].get("depends_on", {}).items()}

    assert needs("mlflow") == {
        "postgres": "service_healthy",
        "buckets": "service_completed_successfully",
    }
    assert needs("prefect-server") == {"postgres": "service_healthy"}
    assert needs("worker") == {"prefect-server": "service_healthy", "mlflow": "service_healthy"}
    # the API also writes the prediction log to PostgreSQL (its `predictions` database)
    assert needs("api") == {"mlflow": "service_healthy", "postgres": "service_healthy"}
    for name in ("postgres", "minio", "mlflow", "prefect-server"):
        assert SERVICES[name]["healthcheck"]["test"], name


def test_the_servers_use_postgres_and_s3():
    mlflow = " ".join(SERVICES["mlflow"]["command"])
    env = SERVICES["mlflow"]["environment"]
    assert env["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://")
    assert "POSTGRES_PASSWORD" not in mlflow  # not on a command line
    assert "--artifacts-destination=s3://" in mlflow
    assert "mlflow:5000" in mlflow  # the Host header the worker and API send is allowed
    prefect = SERVICES["prefect-server"]["environment"]
    assert prefect["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    worker = SERVICES["worker"]["environment"]
    assert worker["NNPIPE_DVC_REMOTE"].startswith("s3://")
    assert worker["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert SERVICES["api"]["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    buckets = SERVICES["buckets"]["environment"]["NNPIPE_BUCKETS"].split()
    assert "s3://mlflow/" in mlflow and "mlflow" in buckets
    assert worker["NNPIPE_DVC_REMOTE"].split("/")[2] in buckets


def test_mounted_scripts_exist_and_parse():
    for svc in SERVICES.values():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).exists(), volume
    for script in ("worker.sh", "postgres-init.sh"):
        done = subprocess.run(["sh", "-n", str(DOCKER / script)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr


def test_the_api_logs_predictions_where_the_monitor_reads_them():
    """The API writes the prediction log to the stack's PostgreSQL, in a database the
    init script makes; the worker's monitor deployments read the same one."""
    url = "postgresql://nnpipe:${POSTGRES_PASSWORD}@postgres:5432/predictions"
    assert SERVICES["api"]["environment"]["NNPIPE_PREDICTION_LOG"] == url
    assert SERVICES["worker"]["environment"]["NNPIPE_PREDICTION_LOG"] == url
    assert "predictions" in SERVICES["postgres"]["environment"]["NNPIPE_DATABASES"].split()
