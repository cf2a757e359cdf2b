"""Stages logging to a real `mlflow server` on loopback, as in production."""

import shutil
import sys

import pytest
from conftest import free_port, server_process, working_directory
from mlflow import MlflowClient

from nnpipe.config import load_params
from nnpipe.stages.xray import compress, evaluate, promote, register, train

pytestmark = pytest.mark.integration


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
           "--artifacts-destination", (tmp_path / "artifacts").as_uri(), "--workers", "1"]
    with server_process(cmd, f"{url}/health", tmp_path / "server.log"):
        yield url, tmp_path / "artifacts"


def test_train_evaluate_register_against_a_tracking_server(tmp_path, flow_project,
                                                           mlflow_server, monkeypatch):
    url, artifacts = mlflow_server
    project = tmp_path / "project"
    shutil.copytree(flow_project, project, symlinks=True)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    with working_directory(project):
        params = load_params("params.yaml",
                             ["xray.compress.variants=[keras_float32,tflite_dynamic]"])
        result = train.run(params, "xray")
        for stage in (evaluate, compress, promote):
            stage.run(params, "xray")
        record = register.run(params, "xray")
    c = MlflowClient(url, url)
    run = c.get_run(result["run_id"])
    assert "test_roc_auc" in run.data.metrics and run.data.params["train.epochs"] == "4"
    assert record["version"] == "1" and record["promoted"] is True
    assert c.get_model_version_by_alias("xray-classifier", "champion").run_id == run.info.run_id
    assert any(artifacts.rglob("roc.png"))  # artifacts went through the server to its store
    assert any(artifacts.rglob("deploy.json"))  # and the deployable pyfunc with them
