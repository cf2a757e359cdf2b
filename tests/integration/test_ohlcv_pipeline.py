"""The OHLCV stages on real DVC-project folders, real MLflow (SQLite) and price files:
sources, bad input, several series, the champion gate, and no look-ahead (GOOG.csv from
../shared/data: tests/realdata/test_ohlcv_real_data.py)."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest
from conftest import make_project, working_directory
from mlflow import MlflowClient

from nnpipe import download
from nnpipe.config import load_params
from nnpipe.domains.ohlcv.sources import OhlcvDataError
from nnpipe.domains.ohlcv.synthetic import generate_ohlcv
from nnpipe.io import read_json
from nnpipe.stages import get_stage

pytestmark = pytest.mark.integration

# the reference only (an LSTM's conversion takes seconds; promote deploys the reference):
# the real-data test (tests/realdata) converts, and the flow project builds the LSTM's
# TFLite variants
FAST = [
    "ohlcv.train.units=[8]",
    "ohlcv.train.epochs=2",
    "ohlcv.evaluate.walk_forward_folds=0",
    "ohlcv.tune.enabled=false",
    "ohlcv.compress.variants=[keras_float32]",
]


def run_steps(project, overrides, *steps):
    """Run OHLCV stages in-process inside ``project`` with ``overrides``; the results."""
    with working_directory(project):
        params = load_params("params.yaml", overrides)
        return {step: get_stage(step, "ohlcv").run(params) for step in steps}


ALL = ("ingest", "featurize", "tune", "train", "evaluate", "compress", "promote", "register")
AFTER_TRAINING = ("train", "evaluate", "compress", "promote", "register")


@pytest.fixture
def project(tmp_path):
    return make_project(tmp_path / "project")


@pytest.fixture
def no_waiting(monkeypatch):
    waited: list[float] = []
    monkeypatch.setattr(download, "time", types.SimpleNamespace(sleep=waited.append))
    return waited


def write_csv(path, frame: pd.DataFrame) -> str:
    frame.to_csv(path, index_label="Date")
    return str(path)


# --------------------------------------------------------------------------- bad input


def test_inconsistent_bar_fails_with_row_and_date_and_writes_nothing(project, tmp_path):
    frame = generate_ohlcv(300, seed=3)
    frame.iloc[123, frame.columns.get_loc("High")] = frame["Low"].iloc[123] * 0.5
    path = write_csv(tmp_path / "bad.csv", frame)
    with pytest.raises(OhlcvDataError) as err:
        run_steps(
            project, ["ohlcv.ingest.source=csv", f"ohlcv.ingest.csv.files.BAD={path}"], "ingest"
        )
    text = str(err.value)
    assert "'BAD'" in text and "123" in text and frame.index[123].strftime("%Y-%m-%d") in text
    assert not (project / "data/ohlcv/raw").exists()


def test_drop_policy_removes_the_bad_row_and_reports_it(project, tmp_path):
    frame = generate_ohlcv(300, seed=3)
    frame.iloc[50, frame.columns.get_loc("Close")] = -1.0
    path = write_csv(tmp_path / "bad.csv", frame)
    run_steps(
        project,
        [
            "ohlcv.ingest.source=csv",
            f"ohlcv.ingest.csv.files.X={path}",
            "ohlcv.validation.policy=drop",
        ],
        "ingest",
    )
    manifest = read_json(project / "data/ohlcv/raw/manifest.json")
    assert manifest["series"]["X"]["rows"] == 299
    assert manifest["series"]["X"]["findings"] == 2  # not positive, and so below Low
    assert "50" in manifest["series"]["X"]["first_findings"][0]


def test_header_only_csv_is_refused(project, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("Date,Open,High,Low,Close,Volume\n")
    with pytest.raises(OhlcvDataError, match="no data rows"):
        run_steps(
            project, ["ohlcv.ingest.source=csv", f"ohlcv.ingest.csv.files.E={path}"], "ingest"
        )


def test_missing_file_says_which_and_how_to_fix(project, tmp_path):
    with pytest.raises(OhlcvDataError, match="does not exist"):
        run_steps(
            project,
            ["ohlcv.ingest.source=csv", f"ohlcv.ingest.csv.files.E={tmp_path / 'nope.csv'}"],
            "ingest",
        )


def test_unreachable_url_is_retried_then_fails_clearly(project, no_waiting):
    from conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/prices.csv"
    with pytest.raises(OhlcvDataError, match=r"127\.0\.0\.1"):
        run_steps(project, ["ohlcv.ingest.source=csv", f"ohlcv.ingest.csv.files.U={url}"], "ingest")
    assert len(no_waiting) >= 2  # retried with backoff before giving up
    assert not (project / "data/ohlcv/raw").exists()


def test_too_few_rows_for_look_back_and_splits_fails_in_featurize(project):
    with pytest.raises(OhlcvDataError, match="too few") as err:
        run_steps(
            project,
            ["ohlcv.ingest.synthetic.n_days=150", "ohlcv.featurize.look_back=60"],
            "ingest",
            "featurize",
        )
    assert "SYNTH" in str(err.value) and "look-back 60" in str(err.value)
    assert not (project / "data/ohlcv/features").exists()


# --------------------------------------------------------------------------- no look-ahead


def test_featurize_statistics_ignore_everything_after_the_training_period(project):
    """Change every price after the training period: the scalers (inside the model) and
    the training windows must not move."""
    run_steps(project, [], "ingest", "featurize")
    meta = read_json(project / "data/ohlcv/features/meta.json")["series"]["SYNTH"]
    raw = project / "data/ohlcv/raw/SYNTH.csv"
    frame = pd.read_csv(raw, index_col="date")
    # the first feature row is raw row 0 (no derived features, Close target)
    train_end = meta["splits"]["train"]["rows"][1]
    frame.iloc[train_end:, :4] *= 3.0
    frame.iloc[train_end:, 4] *= 10.0
    frame.to_csv(raw)
    run_steps(project, [], "featurize")
    after = read_json(project / "data/ohlcv/features/meta.json")["series"]["SYNTH"]
    assert after["input_scaler"] == meta["input_scaler"]
    assert after["target_scaler"] == meta["target_scaler"]
    assert after["splits"] == meta["splits"]


# --------------------------------------------------------------------------- series, gate


def test_several_series_each_get_their_own_run_and_registered_model(project):
    overrides = [
        *FAST,
        "ohlcv.ingest.synthetic.names=[AAA, BBB]",
        "ohlcv.ingest.synthetic.n_days=300",
        "ohlcv.featurize.look_back=10",
        "ohlcv.register.model_name=fc-{series}",
        "ohlcv.register.max_value=100",
    ]
    results = run_steps(project, overrides, *ALL)
    assert set(results["register"]["series"]) == {"AAA", "BBB"}
    uri = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    runs = {}
    for name in ("AAA", "BBB"):
        version = client.get_model_version_by_alias(f"fc-{name}", "champion")
        runs[name] = version.run_id
        assert client.get_run(version.run_id).data.tags["nnpipe.series"] == name
    assert runs["AAA"] != runs["BBB"]
    forecasts = pd.read_csv(project / "reports/ohlcv/plots/forecast.csv")
    assert set(forecasts["series"]) == {"AAA", "BBB"}


def test_gate_refuses_what_does_not_beat_persistence_and_rescored_champion_decides(project):
    base = [*FAST, "ohlcv.ingest.synthetic.n_days=300", "ohlcv.featurize.look_back=10"]
    # a ceiling nobody can miss: v1 becomes champion
    first = run_steps(project, [*base, "ohlcv.register.max_value=100"], *ALL)
    assert first["register"]["series"]["SYNTH"]["promoted"] is True
    # the default ceiling (beat persistence) with a candidate that does not
    second = run_steps(
        project,
        [*base, "seed=7", "ohlcv.train.epochs=1", "ohlcv.register.max_value=1e-6"],
        *AFTER_TRAINING,
    )
    record = second["register"]["series"]["SYNTH"]
    assert record["promoted"] is False and record["version"] == "2"
    assert "not below the ceiling" in record["reason"] and record["champion_now"] == "1"
    v1 = first["promote"]["series"]["SYNTH"]["variant"]
    assert record["champion_before_scored"] == (
        f"its deployed variant ({v1}) re-scored on the current test period"
    )
    deployed = read_json(project / "models/ohlcv-deploy/SYNTH/deploy.json")
    assert record["candidate_value"] == deployed["measured"]["relative_mae"]


def test_register_refuses_metrics_of_another_training_run(project):
    from nnpipe.stages.registration import StaleMetricsError

    base = [*FAST, "ohlcv.ingest.synthetic.n_days=300", "ohlcv.featurize.look_back=10"]
    run_steps(project, base, "ingest", "featurize", "tune", "train", "evaluate")
    run_steps(project, [*base, "seed=5"], "train")
    with pytest.raises(StaleMetricsError, match="run the evaluate stage first"):
        run_steps(project, base, "register")


def test_source_changed_sees_local_edits_and_always_refetches_urls(project, tmp_path):
    frame = generate_ohlcv(300, seed=3)
    path = write_csv(tmp_path / "p.csv", frame)
    overrides = ["ohlcv.ingest.source=csv", f"ohlcv.ingest.csv.files.P={path}"]
    run_steps(project, overrides, "ingest")
    ingest = get_stage("ingest", "ohlcv").module()
    with working_directory(project):
        params = load_params("params.yaml", overrides)
        assert not ingest.source_changed(params, "ohlcv")
        write_csv(tmp_path / "p.csv", generate_ohlcv(301, seed=3))
        assert ingest.source_changed(params, "ohlcv")
        url = load_params(
            "params.yaml", ["ohlcv.ingest.source=csv", "ohlcv.ingest.csv.files.P=http://x/p.csv"]
        )
        assert ingest.source_changed(url, "ohlcv")
    assert np.isfinite(frame.to_numpy()).all()
