"""The typed files of ingest, tune, train and evaluate (manifest.json, hyperparameters.json,
tuning.json, history.json, evaluation.json) and the deploy spec serving reads: written
with the keys they always had plus ``schema_version``; a file from before versioning or
another stage's file is refused, naming the file, what is wrong and the stage to re-run."""

from __future__ import annotations

import json

import pytest

from nnpipe.artifacts import (
    SCHEMA_VERSION,
    Artifact,
    ArtifactError,
    Hyperparameters,
    TrainHistory,
    TuningSummary,
)
from nnpipe.config import validate_params
from nnpipe.domains.ohlcv.artifacts import (
    OhlcvDeploySpec,
    OhlcvEvaluation,
    OhlcvManifest,
    OhlcvServedSpec,
)
from nnpipe.domains.xray.artifacts import (
    XrayDeploySpec,
    XrayEvaluation,
    XrayManifest,
    XrayServedSpec,
)

SEARCH = {
    "algorithm": "random",
    "baseline_kept": False,
    "best_trial": "2",
    "best_value": 0.9,
    "completed": 4,
    "direction": "max",
    "failed": 0,
    "objective": "val_auc",
    "run_id": "r0",
    "stopped_because": "max_trials reached",
    "trials": 4,
}
TUNED = {"tuned": True, "enabled": True, "values": {"filters": [8, 16], "dropout": 0.2}, **SEARCH}
NOT_TUNED = {"tuned": False, "values": {}, "reason": "xray.tune.enabled is false"}
XRAY_MANIFEST = {
    "source": "synthetic",
    "classes": ["normal", "pneumonia"],
    "images": 4,
    "per_class": {"normal": 2, "pneumonia": 2},
    "per_official_split": {"all": {"normal": 2, "pneumonia": 2}},
    "patients": 2,
    "duplicates_removed": 0,
    "label_conflicts_dropped": 0,
    "duplicates_kept_in_train_only": 0,
    "rejected": [{"source": "a.png", "reason": "not an image"}],
    "ignored_files": 1,
    "content_sha256": "ab" * 32,
    "source_fingerprint": None,
}
OHLCV_MANIFEST = {
    "source": "synthetic",
    "series": {
        "SYNTH": {
            "rows": 100,
            "rows_read": 101,
            "first": "2016-01-04T00:00:00",
            "last": "2016-05-20T00:00:00",
            "findings": 1,
            "first_findings": ["row 3: a duplicate date"],
        }
    },
    "validation": {"max_gap_days": 5, "min_rows": 100, "policy": "fail"},
    "source_fingerprint": "f" * 16,
}
SCORES = {"rmse": 1.0, "mae": 0.8, "mape": 1.1, "mase": 0.7, "directional_accuracy": 0.6}
FOLD = {k: v for k, v in SCORES.items() if k != "mape"}
XRAY_EVALUATION = {
    "n": 10,
    "threshold": 0.4,
    "accuracy": 0.9,
    "roc_auc": 0.93,
    "average_precision": 0.95,
    "sensitivity": 0.8,
    "specificity": 1.0,
    "f1_positive": 0.89,
    "target_specificity": 0.9,
    "specificity_threshold": 0.6,
    "sensitivity_at_specificity": 0.8,
    "specificity_at_specificity_threshold": 1.0,
    "confusion_matrix": {"tn": 5, "fp": 0, "fn": 1, "tp": 4},
    "per_class": {
        c: {"precision": 0.9, "recall": 0.8, "f1-score": 0.85, "support": 5}
        for c in ("normal", "pneumonia")
    },
    "val_roc_auc": 0.95,
    "run_id": "r1",
    "model_id": "m-1",
    "data_hash": "d41d8cd98f00b204e9800998ecf8427e.dir",
}
SERIES_EVALUATION = {
    "model": SCORES,
    "persistence": SCORES,
    "moving_average": SCORES,
    "relative_mae": 1.5,
    "relative_rmse": 1.4,
    "dm_statistic": None,
    "dm_p_value": 0.01,
    "n_forecasts": 147,
    "walk_forward": {
        "folds": 3,
        "model": FOLD,
        "persistence": FOLD,
        "moving_average": FOLD,
        "relative_mae": 1.8,
        "folds_model_beats_persistence": 0,
    },
    "run_id": "r1",
    "model_id": "m-1",
    "data_hash": "d41d8cd98f00b204e9800998ecf8427e.dir",
    "test_first": "2021-03-11T00:00:00",
    "test_last": "2021-10-01T00:00:00",
}
NO_FOLDS = {k: v for k, v in SERIES_EVALUATION.items() if k != "walk_forward"}
OHLCV_EVALUATION = {"series": {"SYNTH": SERIES_EVALUATION, "OTHER": NO_FOLDS}}
HISTORY = {"epochs": [{"epoch": 1, "loss": 0.5, "val_loss": 0.6}, {"epoch": 2, "loss": 0.4}]}

CASES = [  # model, record, the stage that writes it, a file of another stage
    (Hyperparameters, TUNED, "tune", XRAY_MANIFEST),
    (Hyperparameters, NOT_TUNED, "tune", HISTORY),
    (TuningSummary, {"enabled": True, **SEARCH}, "tune", NOT_TUNED),
    (TuningSummary, {"enabled": False}, "tune", HISTORY),
    (TrainHistory, HISTORY, "train", {"enabled": False}),
    (XrayManifest, XRAY_MANIFEST, "ingest", OHLCV_MANIFEST),
    (OhlcvManifest, OHLCV_MANIFEST, "ingest", XRAY_MANIFEST),
    (XrayEvaluation, XRAY_EVALUATION, "evaluate", OHLCV_EVALUATION),
    (OhlcvEvaluation, OHLCV_EVALUATION, "evaluate", XRAY_EVALUATION),
]
IDS = [f"{m.__name__}-{i}" for i, (m, *_) in enumerate(CASES)]


@pytest.mark.parametrize("model, record, stage, foreign", CASES, ids=IDS)
def test_a_file_keeps_its_keys_and_gains_a_schema_version(tmp_path, model, record, stage, foreign):
    path = model.model_validate(record).write(tmp_path / "file.json")
    assert json.loads(path.read_text()) == record | {"schema_version": SCHEMA_VERSION}
    assert model.read(path, "xray").dump() == record | {"schema_version": SCHEMA_VERSION}


@pytest.mark.parametrize("model, record, stage, foreign", CASES, ids=IDS)
def test_a_file_from_before_versioning_names_the_stage_to_re_run(
    tmp_path, model, record, stage, foreign
):
    path = tmp_path / "old.json"
    path.write_text(json.dumps(record))
    with pytest.raises(ArtifactError) as found:
        model.read(path, "ohlcv")
    message = str(found.value)
    assert str(path) in message and "no schema_version" in message
    assert f"`nnpipe stage {stage} --domain ohlcv` or `dvc repro ohlcv-{stage}`" in message


@pytest.mark.parametrize("model, record, stage, foreign", CASES, ids=IDS)
def test_another_stages_file_is_refused_saying_what_it_is_not(
    tmp_path, model, record, stage, foreign
):
    path = tmp_path / "foreign.json"
    path.write_text(json.dumps(foreign | {"schema_version": SCHEMA_VERSION}))
    with pytest.raises(ArtifactError) as found:
        model.read(path, "xray")
    message = str(found.value)
    assert f"{path} is not the {model.WHAT} the {stage} stage writes (" in message
    assert f"re-run the {stage} stage: `nnpipe stage {stage} --domain xray`" in message


def test_a_history_from_before_versioning_is_the_bare_list_of_epochs(tmp_path):
    path = tmp_path / "history.json"
    path.write_text(json.dumps(HISTORY["epochs"]))
    with pytest.raises(ArtifactError, match=r"history\.json is a bare list of epochs: .*before"):
        TrainHistory.read(path, "xray")
    epoch = json.loads(TrainHistory.model_validate(HISTORY).write(path).read_text())["epochs"][0]
    assert epoch == {"epoch": 1, "loss": 0.5, "val_loss": 0.6}  # the epoch stays an integer


def test_a_finished_search_records_its_outcome():
    for model, record in [(TuningSummary, {"enabled": True, **SEARCH}), (Hyperparameters, TUNED)]:
        broken = {k: v for k, v in record.items() if k not in ("best_value", "run_id")}
        with pytest.raises(
            ArtifactError, match=r"(finished search|tuned) but no best_value, run_id"
        ):
            model.parse(broken | {"schema_version": 1}, "tuning.json", "re-run tune")


def test_the_evaluation_models_name_their_metrics():
    x = XrayEvaluation.model_validate(XRAY_EVALUATION)
    assert (x.threshold, x.roc_auc, x.per_class["pneumonia"].f1_score) == (0.4, 0.93, 0.85)
    o = OhlcvEvaluation.model_validate(OHLCV_EVALUATION)
    synth, other = o.series["SYNTH"], o.series["OTHER"]
    assert synth.persistence.rmse == 1.0 and synth.walk_forward is not None
    assert other.walk_forward is None and "walk_forward" not in o.dump()["series"]["OTHER"]


def test_an_unreadable_manifest_makes_ingest_re_run(tmp_path, monkeypatch):
    from nnpipe.domains.xray.stages.ingest import source_changed

    monkeypatch.chdir(tmp_path)
    params = validate_params({})
    raw = tmp_path / "data/xray/raw"
    raw.mkdir(parents=True)
    (raw / "manifest.json").write_text(json.dumps(XRAY_MANIFEST))  # from before versioning
    assert source_changed(params, "xray")
    XrayManifest.model_validate(XRAY_MANIFEST).write(raw / "manifest.json")
    assert not source_changed(params, "xray")  # synthetic: no local files, None both times


@pytest.mark.parametrize(
    "whole, served", [(XrayDeploySpec, XrayServedSpec), (OhlcvDeploySpec, OhlcvServedSpec)]
)
def test_serving_reads_a_deploy_spec_as_the_domains_served_view(whole, served):
    assert whole.served_model() is served and issubclass(whole, served)
    assert served.served_model() is served
    assert issubclass(served, Artifact)
