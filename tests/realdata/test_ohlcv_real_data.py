"""GOOG.csv from ../shared/data/ohlcv (2,148 daily bars of 2004-2013): read and validated,
then through every OHLCV stage, from the file and from a URL (skipped, saying why, where
absent)."""

from __future__ import annotations

import functools
import http.server
import threading
import types

import pandas as pd
import pytest
from conftest import make_project, shared_data, working_directory

from nnpipe import download
from nnpipe.config import load_params
from nnpipe.domains.ohlcv.sources import OhlcvDataError, read_ohlcv_csv
from nnpipe.domains.ohlcv.validation import validate_ohlcv
from nnpipe.io import read_json
from nnpipe.stages import PIPELINES, get_stage

# the reference and one TFLite conversion (promote deploys the reference)
FAST = [
    "ohlcv.train.units=[8]",
    "ohlcv.train.epochs=2",
    "ohlcv.tune.enabled=false",
    "ohlcv.evaluate.walk_forward_folds=2",
    "ohlcv.evaluate.walk_forward_epochs=1",
    "ohlcv.compress.variants=[keras_float32,tflite_float32]",
]


@pytest.fixture
def goog():
    return shared_data("ohlcv", "GOOG.csv")


@pytest.fixture
def no_waiting(monkeypatch):
    waited: list[float] = []
    monkeypatch.setattr(download, "time", types.SimpleNamespace(sleep=waited.append))
    return waited


def run_steps(project, overrides, *steps):
    """Run OHLCV stages in-process inside ``project`` with ``overrides``; the results."""
    with working_directory(project):
        params = load_params("params.yaml", overrides)
        return {step: get_stage(step, "ohlcv").run(params) for step in steps}


def test_goog_reads_and_validates(goog):
    frame = read_ohlcv_csv(goog)
    assert len(frame) == 2148
    assert frame.index[0] == pd.Timestamp("2004-08-19")
    assert frame.index[-1] == pd.Timestamp("2013-03-01")
    clean, violations = validate_ohlcv(frame, max_gap_days=5, policy="fail", min_rows=200)
    assert violations == [] and len(clean) == 2148


def test_goog_has_two_five_day_market_closures(goog):
    """The only findings in GOOG.csv: 2007-01-02 (national day of mourning for President
    Ford, after New Year) and 2012-10-29/30 (Hurricane Sandy) closed the exchange."""
    with pytest.raises(OhlcvDataError, match=r"2 violation\(s\) of rule\(s\) \['gap'\]") as info:
        validate_ohlcv(read_ohlcv_csv(goog), max_gap_days=4, policy="fail", min_rows=200)
    assert "row 597 (2007-01-03): gap: 5 calendar days" in str(info.value)
    assert "row 2065 (2012-10-31): gap: 5 calendar days" in str(info.value)


def test_goog_csv_end_to_end_and_through_a_url(goog, tmp_path, no_waiting):
    project = make_project(tmp_path / "project")
    overrides = [*FAST, "ohlcv.ingest.source=csv", f"ohlcv.ingest.csv.files.GOOG={goog}"]
    results = run_steps(project, overrides, *(stage.step for stage in PIPELINES["ohlcv"]))
    manifest = read_json(project / "data/ohlcv/raw/manifest.json")["series"]["GOOG"]
    assert manifest["rows"] == 2148 and manifest["first"].startswith("2004-08-19")
    metrics = read_json(project / "reports/ohlcv/evaluation.json")["series"]["GOOG"]
    assert metrics["test_last"].startswith("2013-03-01")
    assert metrics["walk_forward"]["folds"] == 2
    assert metrics["persistence"]["rmse"] > 0 and 0 <= metrics["dm_p_value"] <= 1
    assert results["register"]["series"]["GOOG"]["model_name"] == "ohlcv-forecaster"
    local = (project / "data/ohlcv/raw/GOOG.csv").read_bytes()

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(goog.parent))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/GOOG.csv"
        run_steps(
            project, ["ohlcv.ingest.source=csv", f"ohlcv.ingest.csv.files.GOOG={url}"], "ingest"
        )
    finally:
        server.shutdown()
    assert (project / "data/ohlcv/raw/GOOG.csv").read_bytes() == local
    assert no_waiting == []
