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
    for path in ("data/ohlcv/raw/SYNTH.csv", "data/ohlcv/raw/manifest.json",
                 "data/ohlcv/features/SYNTH.csv", "data/ohlcv/features/meta.json",
                 "models/ohlcv/SYNTH/model.keras", "models/ohlcv/SYNTH/run.json",
                 "reports/ohlcv/metrics.json", "reports/ohlcv/plots/forecast.csv",
                 "reports/ohlcv/plots/folds.csv", "reports/ohlcv/figures/SYNTH_forecast.png",
                 "reports/ohlcv/figures/SYNTH_residuals.png",
                 "reports/ohlcv/figures/SYNTH_walk_forward.png",
                 "reports/ohlcv/history.csv", "reports/ohlcv/registration.json"):
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
    assert tags["dvc.data_hash"] == lock_md5(flow_project, "xray-featurize", "data/xray/features")
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
    for text in ("running xray-ingest", "epoch 1/4", "test ROC-AUC", "xray-classifier v1",
                 "champion", "mlflow ui --backend-store-uri", "running ohlcv-ingest",
                 "[ohlcv] SYNTH: test RMSE model", "persistence", "Diebold-Mariano",
                 "walk-forward (2 folds)", "ohlcv-forecaster v1", "[ohlcv] SYNTH: gate:"):
        assert text in log, text


def test_second_run_does_nothing(flow_project):
    before = (flow_project / "dvc.lock").read_text()
    registration = (flow_project / "reports/xray/registration.json").read_text()
    log = nnpipe(flow_project, "run").stderr
    assert log.count("up to date (dvc status); skipped") == 12  # both domains' six stages
    assert (flow_project / "dvc.lock").read_text() == before
    assert (flow_project / "reports/xray/registration.json").read_text() == registration
    for name in ("xray-classifier", "ohlcv-forecaster"):
        versions = client(flow_project).search_model_versions(f"name='{name}'")
        assert len(versions) == 1, name  # nothing retrained, nothing registered again


def test_ohlcv_run_is_tracked_like_the_xray_one(flow_project):
    c = client(flow_project)
    exp = c.get_experiment_by_name("nnpipe-ohlcv")
    (run,) = c.search_runs([exp.experiment_id])
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert tags["dvc.data_hash"] == lock_md5(flow_project, "ohlcv-featurize",
                                             "data/ohlcv/features")
    assert tags["prefect.flow_run_id"] and tags["nnpipe.series"] == "SYNTH"
    assert params["train.model"] == "lstm" and params["featurize.look_back"] == "10"
    assert len(c.get_metric_history(run.info.run_id, "val_loss")) >= 1
    for key in ("test_rmse", "test_mase", "test_relative_mae", "test_persistence.rmse",
                "test_moving_average.rmse", "test_dm_p_value",
                "test_walk_forward.model.rmse"):
        assert key in metrics, key
    assert [m.step for m in c.get_metric_history(run.info.run_id,
                                                 "walk_forward_model_rmse")] == [1, 2]
    inputs = {(d.dataset.name, d.dataset.digest) for d in run.inputs.dataset_inputs}
    assert ("ohlcv-SYNTH-train", tags["dvc.data_hash"]) in inputs
    figures = {f.path for f in c.list_artifacts(run.info.run_id, "figures")}
    assert "figures/SYNTH_forecast.png" in figures
    version = c.get_model_version_by_alias("ohlcv-forecaster", "challenger")
    assert version.run_id == run.info.run_id and version.tags["gate.reason"]


def test_ohlcv_gate_decision_matches_the_numbers(flow_project):
    """Champion only for a model that beats persistence; a refusal is a normal outcome."""
    metrics = read_json(flow_project / "reports/ohlcv/metrics.json")["series"]["SYNTH"]
    record = read_json(flow_project / "reports/ohlcv/registration.json")["series"]["SYNTH"]
    beats = metrics["relative_mae"] < 1.0
    assert record["promoted"] is beats
    assert ("champion" in record["aliases"]) is beats
    assert record["candidate_value"] == metrics["relative_mae"]
    expected_mae = metrics["model"]["mae"] / metrics["persistence"]["mae"]
    assert metrics["relative_mae"] == pytest.approx(expected_mae)


def test_registered_ohlcv_model_forecasts_prices_from_raw_bars(flow_project, monkeypatch):
    """The served model takes raw bars (its train-only scaling inside) and returns prices."""
    import numpy as np

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{flow_project / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/ohlcv-forecaster@challenger")
    bars = np.loadtxt(flow_project / "data/ohlcv/raw/SYNTH.csv", delimiter=",", skiprows=1,
                      usecols=(1, 2, 3, 4, 5))[-10:]
    out = np.asarray(model.predict(bars[None].astype(np.float32))).reshape(-1)
    last_close = bars[-1, 3]
    assert out.shape == (1,) and abs(out[0] - last_close) / last_close < 0.5


@pytest.mark.parametrize("domain, metric", [("xray", "roc_auc"), ("ohlcv", "relative_mae")])
def test_compress_measures_every_variant_by_running_it(flow_project, domain, metric):
    table = read_json(flow_project / f"reports/{domain}/compression.json")
    tables = [table] if domain == "xray" else list(table["series"].values())
    wanted = set(yaml.safe_load((flow_project / "params.yaml").read_text())[domain]
                 ["compress"]["variants"])
    assert domain == "ohlcv" or len(wanted) == 7
    for t in tables:
        rows = t["variants"]
        assert set(rows) == wanted
        for name, row in rows.items():
            if row["status"] != "ok":  # allowed, but only with the reason
                assert name != "keras_float32" and row["reason"], name
                continue
            assert row["size_bytes"] > 0 and row["gzip_bytes"] > 0
            assert row[metric] is not None and row["latency_ms_median"] > 0
        assert rows["tflite_float32"]["status"] == "ok"
        if "pruned" in rows:
            assert rows["pruned"]["sparsity"] > 0.5
    assert (flow_project / f"reports/{domain}/compression.md").is_file()
    variants = flow_project / f"models/{domain}-variants"
    assert any(variants.rglob("tflite_float32.tflite"))
