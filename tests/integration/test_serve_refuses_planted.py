"""A real `nnpipe serve` process on the flow project's registry (SQLite), its champion
alias moved to planted versions: a tf-keras model whose Lambda layer runs ``os.system``
saved as HDF5 under the name ``model.keras`` (with a consistent deploy.json and sha256
tag, as an attacker with write access to the registry would make it), a deploy.json whose
file escapes its folder, an MLmodel whose artifact path does, and a tampered model file.
Each is refused with a line in the log and in /ready, the marker file the Lambda would
touch is never made, and the previous version keeps answering over HTTP; a good version
after them is picked up. The register stage's champion re-scoring refuses it too."""

from __future__ import annotations

import io
import json
import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import yaml
from conftest import BIN, free_port, server_process
from mlflow import MlflowClient
from PIL import Image

from nnpipe.serving.predictor import file_sha256
from nnpipe.serving.registry import deploy_artifact_dir

pytestmark = pytest.mark.integration

NAME = "xray-classifier"


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def predict(port: int) -> dict:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 30), dtype=np.uint8)).save(
        buf, format="PNG"
    )
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/predict/xray",
        data=buf.getvalue(),
        headers={"Content-Type": "image/png"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def copy_of_version_one(client: MlflowClient, dest: Path) -> tuple[Path, Path, dict]:
    """A copy of v1's logged model (its MLmodel, code and deploy folder) to plant in."""
    v1 = client.get_model_version(NAME, "1")
    location = client.get_logged_model(v1.source.removeprefix("models:/")).artifact_location
    shutil.copytree(urlparse(location).path if location.startswith("file:") else location, dest)
    return dest, deploy_artifact_dir(dest, "copy"), dict(v1.tags)


def plant_lambda_h5(path: Path, marker: Path) -> str:
    """A real tf-keras model whose Lambda runs ``touch marker``, as HDF5 named ``path``."""
    from nnpipe.keras_env import keras

    evil = eval(f'lambda x: (__import__("os").system("touch {marker}"), x)[1]')
    model = keras.Sequential(
        [
            keras.layers.Lambda(evil, input_shape=(64, 64, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    marker.unlink(missing_ok=True)  # building it above ran it once, in this process
    h5 = path.with_name("planted.h5")
    model.save(h5, save_format="h5")
    h5.rename(path)
    return file_sha256(path)


def edit_json(path: Path, **changes) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def register(client: MlflowClient, source: Path, tags: dict) -> str:
    v1 = client.get_model_version(NAME, "1")
    version = client.create_model_version(NAME, str(source), run_id=v1.run_id, tags=tags)
    client.set_registered_model_alias(NAME, "champion", version.version)
    return str(version.version)


def wait_refused(port: int, version: str) -> str:
    deadline = time.monotonic() + 120
    while True:
        status, body = get(f"http://127.0.0.1:{port}/ready")
        refused = (body.get("refused") or {}).get("xray") or {}
        if refused.get("version") == version:
            assert status == 200 and body["models"] == {"xray": "1"}, body
            return refused["reason"]
        assert time.monotonic() < deadline, f"v{version} was not refused: {body}"
        time.sleep(0.2)


def test_planted_versions_are_refused_and_the_previous_one_keeps_serving(
    flow_copy, tmp_path, monkeypatch
):
    uri = f"sqlite:///{flow_copy / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    marker = tmp_path / "pwned"
    plants = []

    root, deploy, tags = copy_of_version_one(client, tmp_path / "lambda-h5")
    (deploy / "model.tflite").unlink()
    sha = plant_lambda_h5(deploy / "model.keras", marker)
    edit_json(
        deploy / "deploy.json",
        file="model.keras",
        format="keras",
        sha256=sha,
        variant="keras_float32",
    )
    plants.append((root, {**tags, "model_sha256": sha}, "is an HDF5 file, not a Keras zip"))

    root, deploy, tags = copy_of_version_one(client, tmp_path / "escaping-file")
    sha = file_sha256(Path("/etc/passwd"))
    edit_json(deploy / "deploy.json", file="../../../../../../../../etc/passwd", sha256=sha)
    plants.append((root, {**tags, "model_sha256": sha}, "never absolute or with '..'"))

    root, deploy, tags = copy_of_version_one(client, tmp_path / "escaping-mlmodel")
    spec = yaml.safe_load((root / "MLmodel").read_text())
    spec["flavors"]["python_function"]["artifacts"]["deploy"]["path"] = str(deploy)
    (root / "MLmodel").write_text(yaml.safe_dump(spec))
    plants.append((root, tags, "artifact path"))

    root, deploy, tags = copy_of_version_one(client, tmp_path / "tampered")
    content = bytearray((deploy / "model.tflite").read_bytes())
    content[-64] ^= 0xFF
    (deploy / "model.tflite").write_bytes(bytes(content))
    plants.append((root, tags, "has changed since promote wrote it"))

    port = free_port()
    log = tmp_path / "serve.log"
    cmd = [
        str(BIN / "nnpipe"),
        "serve",
        "--port",
        str(port),
        "--domain",
        "xray",
        "--poll-seconds",
        "0.3",
    ]
    with server_process(cmd, f"http://127.0.0.1:{port}/ready", log, cwd=flow_copy):
        assert predict(port)["model"]["version"] == "1"
        for source, version_tags, message in plants:
            version = register(client, source, version_tags)
            reason = wait_refused(port, version)
            assert message in reason and "still serving v1" in reason, reason
            assert "re-run promote" in reason
            assert predict(port)["model"]["version"] == "1"  # the previous one serves on
            assert get(f"http://127.0.0.1:{port}/models")[1]["models"]["xray"]["version"] == "1"
        # a good version after the refused ones is served: refusing did not wedge the poller
        good = register(client, copy_of_version_one(client, tmp_path / "good")[0], tags)
        deadline = time.monotonic() + 120
        while predict(port)["model"]["version"] != good:
            assert time.monotonic() < deadline, "the good version was not picked up"
            time.sleep(0.2)
        assert "refused" not in get(f"http://127.0.0.1:{port}/ready")[1]
    text = log.read_text()
    assert text.count("refused:") >= len(plants), text[-4000:]
    assert not marker.exists(), "the planted Lambda ran"

    # the register stage re-scores the champion from its deploy folder, safely
    from nnpipe.stages.gating import load_champion

    client.set_registered_model_alias(
        NAME, "champion", register(client, plants[0][0], plants[0][1])
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    predictor, why = load_champion(NAME)
    assert predictor is None and "refused" in why and "HDF5" in why, why
    assert not marker.exists(), "the planted Lambda ran"
