"""`nnpipe run`: the Prefect flow, end to end on tiny params, with real Prefect, DVC, MLflow."""

import json
import re
import subprocess

import mlflow
import pytest
import yaml
from conftest import nnpipe
from mlflow import MlflowClient

from nnpipe.io import read_json
from nnpipe.stages import PIPELINES

pytestmark = pytest.mark.integration


def dvc_status(project) -> dict:
    out = subprocess.run(
        ["dvc", "status", "--json"], cwd=project, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out or "{}")


def lock_md5(project, stage: str, path: str) -> str:
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    return next(o["md5"] for o in lock["stages"][stage]["outs"] if o["path"] == path)


def client(project) -> MlflowClient:
    uri = f"sqlite:///{project / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def stage_runs(project, domain: str, stage: str) -> list:
    c = client(project)
    exp = c.get_experiment_by_name(f"nnpipe-{domain}")
    return c.search_runs([exp.experiment_id], f"tags.`nnpipe.stage` = '{stage}'")


def test_flow_writes_every_output_and_leaves_dvc_clean(flow_project):
    for path in (
        "data/xray/raw/manifest.json",
        "data/xray/features/train.tfrecord",
        "models/xray/model.keras",
        "reports/xray/metrics.json",
        "reports/xray/evaluation.json",
        "reports/xray/gate.json",
        "reports/xray/plots/roc.json",
        "reports/xray/figures/roc.png",
        "reports/xray/history.csv",
        "reports/xray/registration.json",
    ):
        assert (flow_project / path).is_file(), path
    for path in (
        "data/ohlcv/raw/SYNTH.csv",
        "data/ohlcv/raw/manifest.json",
        "data/ohlcv/features/SYNTH.csv",
        "data/ohlcv/features/meta.json",
        "models/ohlcv/SYNTH/model.keras",
        "models/ohlcv/SYNTH/run.json",
        "reports/ohlcv/metrics.json",
        "reports/ohlcv/evaluation.json",
        "reports/ohlcv/gate.json",
        "reports/ohlcv/plots/forecast.csv",
        "reports/ohlcv/plots/folds.csv",
        "reports/ohlcv/figures/SYNTH_forecast.png",
        "reports/ohlcv/figures/SYNTH_residuals.png",
        "reports/ohlcv/figures/SYNTH_walk_forward.png",
        "reports/ohlcv/history.csv",
        "reports/ohlcv/registration.json",
    ):
        assert (flow_project / path).is_file(), path
    assert dvc_status(flow_project) == {}  # a scheduled run and `dvc repro` agree
    metrics = read_json(flow_project / "reports/xray/evaluation.json")
    assert 0.0 <= metrics["roc_auc"] <= 1.0 and metrics["n"] > 0
    assert set(metrics["per_class"]) == {"normal", "pneumonia"}


def test_mlflow_run_has_params_metrics_data_tags_and_model(flow_project):
    c = client(flow_project)
    (run,) = stage_runs(flow_project, "xray", "train")
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
    assert figures == {
        "figures/roc.png",
        "figures/confusion_matrix.png",
        "figures/training_curves.png",
    }
    champion = c.get_model_version_by_alias("xray-classifier", "champion")
    assert champion.run_id == run.info.run_id
    assert c.get_model_version_by_alias("xray-classifier", "challenger").version == champion.version


def test_the_champion_pyfunc_predicts_the_classes_of_the_tflite_variant_it_wraps(
    flow_project, monkeypatch
):
    """`models:/xray-classifier@champion` is the variant promote chose, with its
    preprocessing and threshold: raw test images in, the same classes as running that
    variant's .tflite file with LiteRT at its threshold."""
    from pathlib import Path

    import numpy as np

    from nnpipe.compression.litert import TfliteRunner
    from nnpipe.domains.xray.features import read_arrays

    deploy = read_json(flow_project / "models/xray-deploy/deploy.json")
    assert deploy["format"] == "tflite" and deploy["variant"].startswith(("tflite", "pruned"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{flow_project / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/xray-classifier@champion")
    x, _ = read_arrays([flow_project / "data/xray/features/test.tfrecord"], 32)
    served = model.predict(x[..., 0])
    variant = flow_project / f"models/xray-variants/{deploy['variant']}.tflite"
    scores = TfliteRunner(Path(variant).read_bytes()).predict(x.astype(np.float32)).reshape(-1)
    expected = np.where(scores >= deploy["threshold"], "pneumonia", "normal")
    assert list(served["label"]) == list(expected)
    assert served["threshold"].unique().tolist() == [deploy["threshold"]]
    version = client(flow_project).get_model_version_by_alias("xray-classifier", "champion")
    assert version.tags["variant"] == deploy["variant"] and version.tags["promotion_reason"]


def test_run_prints_where_the_results_are(flow_project):
    log = (flow_project / "run.log").read_text()
    for text in (
        "running xray-ingest",
        "epoch 1/4",
        "test ROC-AUC",
        "xray-classifier v1",
        "champion",
        "make ui, then http://127.0.0.1:5000/#/experiments?workflowType=machine_learning",
        "Serve:        nnpipe serve --domain xray",
        "Stage times (wall clock):",
        "whole flow",
        "git add dvc.lock params.yaml reports",
        "running ohlcv-ingest",
        "[ohlcv] SYNTH: test RMSE model",
        "persistence",
        "Diebold-Mariano",
        "walk-forward (2 folds)",
        "ohlcv-forecaster v1",
        "[ohlcv] SYNTH: gate:",
        # the flows' own report (logged, and published as Prefect artifacts)
        "nnpipe.flow_tasks: [xray] gate:",
        "nnpipe.flow_tasks: [ohlcv] SYNTH: gate:",
    ):
        assert text in log, text
    assert "report was not published" not in log and "vNone" not in log
    # progress: each trial as it starts and ends, each variant, epochs with their times,
    # and how training ended
    for pattern in (
        r"tuning: trial baseline \(1/2\), 1 epochs: ",
        r"tuning: trial \S+ completed in \d+ s, val_auc ",
        r"variant 1/7 keras_float32: building",
        r"variant 7/7 pruned_int8: built and measured in [\d.]+ s",
        r"epoch 1/4 .* \([\d.]+ s\)",
        r"trained in \d+ s: .*; keeping epoch \d+'s weights \(best val_auc ",
    ):
        assert re.search(pattern, log), pattern


def test_second_run_does_nothing(flow_project):
    before = (flow_project / "dvc.lock").read_text()
    registration = (flow_project / "reports/xray/registration.json").read_text()
    log = nnpipe(flow_project, "run").stderr
    skipped = re.findall(r"(\S+) is up to date \(dvc status\); skipped", log)
    # every stage of every domain's pipeline (the registry `nnpipe run` runs), each once
    assert sorted(skipped) == sorted(s.name for stages in PIPELINES.values() for s in stages)
    assert (flow_project / "dvc.lock").read_text() == before
    assert (flow_project / "reports/xray/registration.json").read_text() == registration
    for name in ("xray-classifier", "ohlcv-forecaster"):
        versions = client(flow_project).search_model_versions(f"name='{name}'")
        assert len(versions) == 1, name  # nothing retrained, nothing registered again


def test_ohlcv_run_is_tracked_like_the_xray_one(flow_project):
    c = client(flow_project)
    (run,) = stage_runs(flow_project, "ohlcv", "train")
    tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
    assert tags["dvc.data_hash"] == lock_md5(flow_project, "ohlcv-featurize", "data/ohlcv/features")
    assert tags["prefect.flow_run_id"] and tags["nnpipe.series"] == "SYNTH"
    assert params["train.model"] == "lstm" and params["featurize.look_back"] == "10"
    assert len(c.get_metric_history(run.info.run_id, "val_loss")) >= 1
    for key in (
        "test_rmse",
        "test_mase",
        "test_relative_mae",
        "test_persistence.rmse",
        "test_moving_average.rmse",
        "test_dm_p_value",
        "test_walk_forward.model.rmse",
    ):
        assert key in metrics, key
    assert [m.step for m in c.get_metric_history(run.info.run_id, "walk_forward_model_rmse")] == [
        1,
        2,
    ]
    inputs = {(d.dataset.name, d.dataset.digest) for d in run.inputs.dataset_inputs}
    assert ("ohlcv-SYNTH-train", tags["dvc.data_hash"]) in inputs
    figures = {f.path for f in c.list_artifacts(run.info.run_id, "figures")}
    assert "figures/SYNTH_forecast.png" in figures
    version = c.get_model_version_by_alias("ohlcv-forecaster", "challenger")
    assert version.run_id == run.info.run_id and version.tags["gate.reason"]


def test_ohlcv_gate_decision_matches_the_numbers(flow_project):
    """Champion only for a model that beats persistence; a refusal is a normal outcome."""
    metrics = read_json(flow_project / "reports/ohlcv/evaluation.json")["series"]["SYNTH"]
    record = read_json(flow_project / "reports/ohlcv/registration.json")["series"]["SYNTH"]
    beats = record["candidate_value"] < 1.0
    assert record["promoted"] is beats
    assert ("champion" in record["aliases"]) is beats
    # the gate judges what is deployed: the chosen variant's own forecasts
    deployed = read_json(flow_project / "models/ohlcv-deploy/SYNTH/deploy.json")
    assert record["candidate_value"] == deployed["measured"]["relative_mae"]
    assert deployed["measured"]["relative_mae"] == pytest.approx(metrics["relative_mae"], rel=0.05)
    expected_mae = metrics["model"]["mae"] / metrics["persistence"]["mae"]
    assert metrics["relative_mae"] == pytest.approx(expected_mae)


def test_registered_ohlcv_model_forecasts_prices_from_raw_bars(flow_project, monkeypatch):
    """The served model takes raw bars (its train-only scaling inside) and returns prices."""
    import numpy as np

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{flow_project / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model("models:/ohlcv-forecaster@challenger")
    bars = np.loadtxt(
        flow_project / "data/ohlcv/raw/SYNTH.csv",
        delimiter=",",
        skiprows=1,
        usecols=(1, 2, 3, 4, 5),
    )[-10:]
    out = model.predict(bars[None])
    last_close = bars[-1, 3]
    assert len(out) == 1 and abs(out["price"][0] - last_close) / last_close < 0.5
    import pandas as pd

    table = pd.read_csv(flow_project / "data/ohlcv/raw/SYNTH.csv").tail(30)
    assert model.predict(table)["price"][0] == pytest.approx(out["price"][0])


@pytest.mark.parametrize("domain, metric", [("xray", "roc_auc"), ("ohlcv", "relative_mae")])
def test_compress_measures_every_variant_by_running_it(flow_project, domain, metric):
    table = read_json(flow_project / f"reports/{domain}/compression.json")
    tables = [table] if domain == "xray" else list(table["series"].values())
    wanted = set(
        yaml.safe_load((flow_project / "params.yaml").read_text())[domain]["compress"]["variants"]
    )
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


@pytest.mark.parametrize("domain, objective", [("xray", "val_auc"), ("ohlcv", "val_loss")])
def test_tuning_trials_are_nested_runs_and_train_uses_the_best(flow_project, domain, objective):
    record = read_json(flow_project / f"models/{domain}-hyperparameters.json")
    assert record["tuned"] and record["trials"] == 2 and record["objective"] == objective
    (parent,) = stage_runs(flow_project, domain, "tune")
    c = client(flow_project)
    trials = c.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert len(trials) == 2
    for trial in trials:
        assert trial.info.status == "FINISHED" and trial.data.tags["nnpipe.trial_status"]
        assert f"best_{objective}" in trial.data.metrics and "dropout" in trial.data.params
    best = [t for t in trials if t.data.tags["nnpipe.trial"] == record["best_trial"]]
    assert best[0].data.metrics[f"best_{objective}"] == pytest.approx(record["best_value"])
    (train,) = stage_runs(flow_project, domain, "train")
    assert train.data.tags["nnpipe.tuned"] == "true"
    assert train.data.tags["nnpipe.tuning_run"] == parent.info.run_id
    assert float(train.data.params["train.dropout"]) == pytest.approx(record["values"]["dropout"])
    rows = (flow_project / f"reports/{domain}/tuning.csv").read_text().splitlines()
    assert rows[0].startswith("run,trial,status,objective") and len(rows) == 3


@pytest.mark.parametrize("domain", ["xray", "ohlcv"])
def test_promote_deploys_a_measured_variant_with_its_reason(flow_project, domain):
    promotion = read_json(flow_project / f"reports/{domain}/promotion.json")
    decisions = [promotion] if domain == "xray" else list(promotion["series"].values())
    deploy_dir = flow_project / f"models/{domain}-deploy"
    folders = [deploy_dir] if domain == "xray" else [deploy_dir / "SYNTH"]
    for decision, folder in zip(decisions, folders, strict=True):
        spec = read_json(folder / "deploy.json")
        assert decision["variant"] == spec["variant"] and decision["reason"] == spec["reason"]
        assert decision["verdicts"][spec["variant"]] in ("chosen", "chosen: the fallback")
        assert (folder / spec["file"]).is_file() and (folder / "reference.keras").is_file()
        assert read_json(folder / "variants.json")[spec["variant"]]["status"] == "ok"


def flat(mapping: dict, prefix: str = "") -> dict:
    """Nested metrics as the dotted names `dvc metrics show` prints."""
    out = {}
    for key, value in mapping.items():
        out |= (
            flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value}
        )
    return out


def test_dvc_metrics_show_is_numeric_headlines_of_both_domains(flow_project):
    """`dvc metrics show`: a few numbers per domain (test metrics, baselines, the gate's
    verdict as 1/0), no text fields and no flattened tables."""
    done = subprocess.run(
        ["dvc", "metrics", "show", "--json"],
        cwd=flow_project,
        capture_output=True,
        text=True,
        check=True,
    )
    files = json.loads(done.stdout)[""]["data"]
    shown = {path: flat(entry["data"]) for path, entry in files.items()}
    assert set(shown) == {
        f"reports/{d}/{f}.json" for d in ("xray", "ohlcv") for f in ("metrics", "gate")
    }
    for path, values in shown.items():
        assert values and all(isinstance(v, (int, float)) for v in values.values()), path
        assert len(values) <= 16, (path, sorted(values))
    xray, ohlcv = shown["reports/xray/metrics.json"], shown["reports/ohlcv/metrics.json"]
    assert {"test.roc_auc", "test.accuracy", "baseline.accuracy"} <= set(xray)
    assert {"SYNTH.test.relative_mae", "SYNTH.baseline.persistence_rmse"} <= set(ohlcv)
    gate = shown["reports/xray/gate.json"]
    registration = read_json(flow_project / "reports/xray/registration.json")
    assert gate["promoted"] == float(registration["promoted"])
