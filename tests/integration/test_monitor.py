"""Monitoring the flow project's deployed X-ray model as a user does: images served over
HTTP are logged (with the request id returned), `nnpipe monitor` compares the log's window
with the model's training data and finds no drift in held-out images, finds it in
brightened ones, scores a labels CSV, records each result in MLflow and on the model
version; every input it cannot compare is refused in one line and writes nothing; and a
broken log store never fails a request of a real server."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import BIN, free_port, nnpipe, server_process
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from PIL import Image

from nnpipe.io import read_json
from nnpipe.monitoring.prediction_log import PredictionLog
from nnpipe.serving.api import ServeSettings, create_app
from nnpipe.serving.predictor import file_sha256, load_predictor

pytestmark = pytest.mark.integration

REPORT = "reports/xray/monitor_report.json"
MONITOR = ("monitor", "--domain", "xray", "--alias", "challenger", "--no-event")


def uri(project: Path) -> str:
    return f"sqlite:///{project / 'mlflow.db'}"


def held_out_images(project: Path, split: str = "test") -> list[tuple[Path, int]]:
    """The project's raw images of one split, with their labels (1: pneumonia)."""
    splits = pd.read_csv(project / "data/xray/features/splits.csv", dtype={"id": str})
    rows = splits[splits["split"] == split]
    return [
        (project / "data/xray/raw/images" / f"{i}.png", int(label))
        for i, label in zip(rows["id"], rows["label"], strict=True)
    ]


def serve_images(project: Path, images: list[Path], log: Path | None = None) -> list[str]:
    """Post each image to /predict/xray (the flow's X-ray model is only `challenger`);
    the request ids the server returned."""
    settings = ServeSettings(
        tracking_uri=uri(project),
        models={"xray": "xray-classifier"},
        alias="challenger",
        poll_seconds=3600,
        prediction_log=str(log or project / "logs/predictions.sqlite"),
    )
    ids = []
    with TestClient(create_app(settings)) as client:
        for n, path in enumerate(images):
            answer = client.post(
                "/predict/xray",
                files={"file": (path.name, path.read_bytes(), "image/png")},
                headers={"X-Request-ID": f"req-{n}"},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["request_id"] == answer.headers["x-request-id"] == f"req-{n}"
            ids.append(answer.json()["request_id"])
        store = client.app.state.store  # type: ignore[attr-defined]
        assert store.prediction_log.flush()
        ready = client.get("/ready").json()["prediction_log"]
        assert ready["ok"] is True and ready["written"] == len(images)
        assert "nnpipe_prediction_log_up 1.0" in client.get("/metrics").text
    return ids


def brightened(images: list[Path], dest: Path, offset: float) -> Path:
    dest.mkdir()
    for path in images:
        pixels = np.asarray(Image.open(path), dtype=np.float64) + offset
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(dest / path.name)
    return dest


def test_served_images_are_logged_compared_scored_and_recorded(flow_copy, tmp_path):
    images = held_out_images(flow_copy)[:40]
    ids = serve_images(flow_copy, [p for p, _ in images])
    nnpipe(flow_copy, *MONITOR)
    report = read_json(flow_copy / REPORT)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["rows"] == 40 and report["window"]["source"] == "log"
    assert report["model"] == {
        "name": "xray-classifier",
        "version": "1",
        "alias": "challenger",
        "variant": read_json(flow_copy / "models/xray-deploy/deploy.json")["variant"],
    }
    # held-out images of the training data's own source: its image statistics pass
    for name in (
        "intensity_mean",
        "intensity_std",
        "intensity_histogram",
        "image_side",
        "image_mode",
    ):
        assert not checks[name]["drifted"], checks[name]
    assert checks["embedding"]["method"] == "mmd" and checks["embedding"]["p_value"] > 0.001
    headline = read_json(flow_copy / "reports/xray/monitor.json")
    assert headline["checks"]["embedding"]["p_value"] == checks["embedding"]["p_value"]
    page = (flow_copy / "reports/xray/monitor.html").read_text()
    assert "intensity_histogram" in page and "<script" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page)  # opens offline

    # the truth arrives: a labels CSV of the served request ids
    labels = tmp_path / "labels.csv"
    with labels.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["request_id", "label"])
        writer.writerows(
            (rid, ["normal", "pneumonia"][y]) for rid, (_, y) in zip(ids, images, strict=True)
        )
    nnpipe(flow_copy, *MONITOR, "--labels", str(labels))
    live = read_json(flow_copy / REPORT)["performance"]
    assert live["labelled"] == 40
    low, high = live["roc_auc_ci95"]
    assert 0.0 <= low <= live["roc_auc"] <= high <= 1.0
    assert 0.0 <= live["sensitivity_ci95"][0] <= live["sensitivity"] <= 1.0

    client = MlflowClient(uri(flow_copy), uri(flow_copy))
    experiment = client.get_experiment_by_name("nnpipe-xray-monitoring")
    assert experiment is not None
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 2
    assert {r.data.tags["nnpipe.model_version"] for r in runs} == {"1"}
    assert "embedding.p_value" in runs[0].data.metrics and "live.roc_auc" in runs[0].data.metrics
    version = client.get_model_version("xray-classifier", "1")
    assert version.tags["monitor.run_id"] == runs[0].info.run_id


def test_a_brightened_batch_raises_the_alarm(flow_copy, tmp_path):
    batch = brightened([p for p, _ in held_out_images(flow_copy)[:40]], tmp_path / "b", 60)
    done = nnpipe(flow_copy, *MONITOR, "--batch", str(batch), "--fail-on-alarm", check=False)
    assert done.returncode == 3, done.stderr[-3000:]
    report = read_json(flow_copy / REPORT)
    assert report["alarm"] and report["window"] == {
        "source": "batch",
        "location": str(batch),
        "since": None,
        "until": None,
    }
    assert {"intensity_mean", "intensity_histogram"} <= set(report["drifted_checks"])
    assert report["event"] == "not asked for: --no-event"
    assert "ALARM for xray-classifier v1" in done.stderr


def refused(project: Path, *args: str, match: str) -> None:
    """The monitor refuses in one line, exit 2, and leaves the reports as they were."""
    before = {
        p.name: p.read_bytes() for p in (project / "reports/xray").glob("monitor*") if p.is_file()
    }
    done = nnpipe(project, *MONITOR, *args, check=False)
    assert done.returncode == 2, done.stderr[-3000:]
    assert re.search(match, done.stderr), done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    after = {
        p.name: p.read_bytes() for p in (project / "reports/xray").glob("monitor*") if p.is_file()
    }
    assert after == before


def test_inputs_the_monitor_cannot_compare_are_refused_and_write_nothing(flow_copy, tmp_path):
    refused(flow_copy, match="there is no prediction log at .*nothing has been served")
    images = [p for p, _ in held_out_images(flow_copy)]
    serve_images(flow_copy, images[:5])
    refused(flow_copy, match=r"holds 5 predictions of xray-classifier v1 .* fewer than monitor")
    serve_images(flow_copy, images[5:40])
    nnpipe(flow_copy, *MONITOR)  # a report now exists: the refusals below must keep it
    labels = tmp_path / "labels.csv"
    labels.write_text("request_id,label\nreq-3,normal\nno-such-request,pneumonia\n")
    refused(flow_copy, "--labels", str(labels), match="1 of 2 labels name predictions the log")
    labels.write_text("request_id,diagnosis\nreq-3,normal\n")
    refused(flow_copy, "--labels", str(labels), match=r"lacks the column\(s\) \['label'\]")
    empty = tmp_path / "empty"
    empty.mkdir()
    refused(flow_copy, "--batch", str(empty), match="holds no PNG or JPEG images")
    # a deploy folder promoted before nnpipe described training data for the monitor
    old = tmp_path / "old-deploy"
    shutil.copytree(flow_copy / "models/xray-deploy", old)
    spec = read_json(old / "deploy.json")
    spec.pop("monitor_reference")
    spec.pop("monitor_reference_sha256")
    (old / "deploy.json").write_text(json.dumps(spec))
    refused(flow_copy, "--deploy", str(old), match="has no reference statistics .* re-run promote")
    # ... or one whose reference was changed since
    spec = read_json(flow_copy / "models/xray-deploy/deploy.json")
    (old / "deploy.json").write_text(json.dumps(spec))
    (old / spec["monitor_reference"]).write_bytes(b"planted")
    refused(flow_copy, "--deploy", str(old), match="missing or changed since promote")


def test_batch_predictions_are_logged_too(flow_copy, tmp_path):
    images = [p for p, _ in held_out_images(flow_copy)[:6]]
    folder = tmp_path / "batch"
    folder.mkdir()
    for p in images:
        shutil.copy(p, folder)
    nnpipe(flow_copy, "predict", "--domain", "xray", str(folder), "--alias", "challenger")
    logged = PredictionLog(str(flow_copy / "logs/predictions.sqlite")).read("xray")
    assert len(logged) == 6 and set(logged["source"]) == {"predict"}
    assert len(set(logged["request_id"])) == 1 and list(logged["item"]) == list(range(6))
    assert all(e is not None and len(e) > 0 for e in logged["embedding"])


def test_the_keras_and_tflite_variants_give_the_same_embedding(flow_project, tmp_path):
    """The embedding is the input of the last Dense layer in either format."""
    deploy = flow_project / "models/xray-deploy"
    keras_deploy = tmp_path / "keras"
    shutil.copytree(deploy, keras_deploy)
    spec = read_json(keras_deploy / "deploy.json")
    shutil.copy(keras_deploy / "reference.keras", keras_deploy / "model.keras")
    spec |= {
        "variant": "keras_float32",
        "file": "model.keras",
        "format": "keras",
        "sha256": file_sha256(keras_deploy / "model.keras"),
    }
    (keras_deploy / "deploy.json").write_text(json.dumps(spec))
    pixels = np.stack(
        [
            np.asarray(Image.open(p).resize((spec["image_size"],) * 2), dtype=np.float32)
            for p, _ in held_out_images(flow_project)[:8]
        ]
    )[..., None]
    outs = {}
    for name, folder in (("tflite", deploy), ("keras", keras_deploy)):
        predictor = load_predictor(folder, embedding=True)
        assert predictor.run_with_embedding is not None
        outs[name] = predictor.run_with_embedding(pixels)
    (p_lite, e_lite), (p_keras, e_keras) = outs["tflite"], outs["keras"]
    assert e_lite is not None and e_keras is not None
    assert e_lite.shape == e_keras.shape and e_lite.shape[0] == 8
    # quantized weights move the values a little, not the picture
    assert np.corrcoef(e_lite.ravel(), e_keras.ravel())[0, 1] > 0.95
    np.testing.assert_allclose(p_lite, p_keras, atol=0.1)


def test_a_broken_log_store_never_fails_a_request_of_a_real_server(flow_copy, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("the log's folder would be here")
    port = free_port()
    env = {
        **os.environ,
        "NNPIPE_PREDICTION_LOG": str(blocker / "predictions.sqlite"),
    }
    cmd = [str(BIN / "nnpipe"), "serve", "--domain", "xray", "--alias", "challenger"]
    cmd += ["--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with server_process(cmd, f"{base}/ready", tmp_path / "serve.log", env=env, cwd=flow_copy):
        image = held_out_images(flow_copy)[0][0].read_bytes()
        for _ in range(3):
            request = urllib.request.Request(
                f"{base}/predict/xray", data=image, headers={"content-type": "image/png"}
            )
            with urllib.request.urlopen(request, timeout=30) as answer:
                assert answer.status == 200
                assert json.loads(answer.read())["request_id"]
        deadline = time.monotonic() + 30  # the writer tries the store every half second
        while True:
            with urllib.request.urlopen(f"{base}/ready", timeout=10) as answer:
                assert answer.status == 200  # the models are served: it stays in rotation
                status = json.loads(answer.read())["prediction_log"]
            if status["ok"] is False or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:
            metrics = answer.read().decode()
    assert status["ok"] is False and status["dropped"] == 3, status
    assert "nnpipe_prediction_log_up 0.0" in metrics
    assert "nnpipe_prediction_log_dropped_rows_total 3.0" in metrics
