"""`nnpipe run`: the Prefect flow, end to end on tiny params, with real Prefect, DVC, MLflow."""

import json
import subprocess

import mlflow
import pytest
import yaml
from conftest import nnpipe
from mlflow import MlflowClient

from nnpipe.io import read_json

pytestmark = pytest.mark.integration


def dvc_status(project) -> dict:
    out = subprocess.run(["dvc", "status", "--json"], cwd=project, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out or "{}")


def lock_md5(project, stage: str, path: str) -> str:
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return next(o["md5"] for o in lock["stages"][stage]["outs"] if o["path"] == path)


def client(project) -> MlflowClient:
    uri = f"sqlite:///{project / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def test_flow_writes_every_output_and_leaves_dvc_clean(flow_project):
    for path in ("data/xray/raw/manifest.json", "data/xray/features/train.tfrecord",
                 "models/xray/model.keras", "reports/xray/metrics.json",
                 "reports/xray/plots/roc.json", "reports/xray/figures/roc.png",
                 "reports/xray/history.csv", "reports/xray/registration.json"):
        assert (flow_project / path).is_file(), path
    assert dvc_status(flow_project) == {}  # a scheduled run and `dvc repro` agree
    metrics = read_json(flow_project / "reports/xray/metrics.json")
    assert 0.0 <= metrics["roc_auc"] <= 1.0 and metrics["n"] > 0
    assert set(metrics["per_class"]) == {"normal", "pneumonia"}


def test_mlflow_run_has_params_metrics_data_tags_and_model(flow_project):
    c = client(flow_project)
    exp = c.get_experiment_by_name("nnpipe-xray")
    (run,) = c.search_runs([exp.experiment_id])
    tags = run.data.tags
    assert tags["dvc.data_hash"] == lock_md5(flow_project, "featurize@xray", "data/xray/features")
    assert tags["prefect.flow_run_id"]
    assert tags["git_commit"]
    assert run.data.params["train.model"] == "medical_cnn"
    assert run.data.params["train.epochs"] == "4"
    history = c.get_metric_history(run.info.run_id, "val_auc")
    assert [m.step for m in history] == list(range(len(history))) and len(history) >= 1
    assert "test_roc_auc" in run.data.metrics
    inputs = {(d.dataset.name, d.dataset.digest) for d in run.inputs.dataset_inputs}
    assert ("xray-train", tags["dvc.data_hash"]) in inputs
    figures = {f.path for f in c.list_artifacts(run.info.run_id, "figures")}
    assert figures == {"figures/roc.png", "figures/confusion_matrix.png",
                       "figures/training_curves.png"}
    champion = c.get_model_version_by_alias("xray-classifier", "champion")
    assert champion.run_id == run.info.run_id
    assert c.get_model_version_by_alias("xray-classifier", "challenger").version == \
        champion.version


def test_registered_champion_loads_and_predicts(flow_project, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{flow_project / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/xray-classifier@champion")
    import numpy as np

    out = model.predict(np.full((2, 32, 32, 1), 100.0, dtype=np.float32))
    assert np.asarray(out).shape == (2, 1)


def test_run_prints_where_the_results_are(flow_project):
    log = (flow_project / "run.log").read_text()
    for text in ("running ingest@xray", "epoch 1/4", "test ROC-AUC", "xray-classifier v1",
                 "champion", "mlflow ui --backend-store-uri"):
        assert text in log, text


def test_second_run_does_nothing(flow_project):
    before = (flow_project / "dvc.lock").read_text()
    registration = (flow_project / "reports/xray/registration.json").read_text()
    log = nnpipe(flow_project, "run").stderr
    assert log.count("up to date (dvc status); skipped") == 5
    assert (flow_project / "dvc.lock").read_text() == before
    assert (flow_project / "reports/xray/registration.json").read_text() == registration
    versions = client(flow_project).search_model_versions("name='xray-classifier'")
    assert len(versions) == 1  # nothing retrained, nothing registered again
