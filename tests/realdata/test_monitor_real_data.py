"""The monitor on real data, as a user runs it (`nnpipe monitor --batch`), against models
the pipeline trained on real data (skipped, saying why, where ../shared/data is absent):

- GOOG trained on 2004-2007: the autumn of 2008 is a regime the model never saw, and
  the monitor says so; the calm months after it (the summer of 2009,
  as volatile as 2006-2007 were) are not: no check of the bars flags them;
- PneumoniaMNIST (28 px paediatric radiographs): held-out images of the same data raise
  no alarm; full-size adult Actualmed radiographs do, on their size and their intensity."""

from __future__ import annotations

import shutil

import pandas as pd
from conftest import make_project, nnpipe, shared_data, working_directory

from nnpipe.config import load_params
from nnpipe.domains.ohlcv.sources import read_ohlcv_csv
from nnpipe.io import read_json
from nnpipe.stages import PIPELINES, get_stage

OHLCV_FAST = [
    "ohlcv.train.units=[8]",
    "ohlcv.train.epochs=2",
    "ohlcv.tune.enabled=false",
    "ohlcv.evaluate.walk_forward_folds=2",
    "ohlcv.evaluate.walk_forward_epochs=1",
    "ohlcv.compress.variants=[keras_float32]",
]


def run_pipeline(project, domain, overrides):
    with working_directory(project):
        params = load_params("params.yaml", overrides)
        for stage in PIPELINES[domain]:
            get_stage(stage.step, domain).run(params)


def monitor(project, domain, batch, *extra):
    """`nnpipe monitor --batch`: its exit code and the report it wrote."""
    done = nnpipe(
        project,
        "monitor",
        "--domain",
        domain,
        "--alias",
        "challenger",
        "--batch",
        str(batch),
        "--no-event",
        "--fail-on-alarm",
        *extra,
        check=False,
    )
    assert done.returncode in (0, 3), done.stderr[-3000:]
    report = read_json(project / f"reports/{domain}/monitor_report.json")
    if domain == "ohlcv":
        (report,) = report["series"].values()
    assert report["alarm"] is (done.returncode == 3)
    return report


def bars_between(goog: pd.DataFrame, first: str, last: str, look_back: int):
    """The bars from ``first`` to ``last``, with the look-back before them: every
    forecast's window ends inside the period."""
    start = int(goog.index.searchsorted(pd.Timestamp(first))) - look_back + 1
    end = int(goog.index.searchsorted(pd.Timestamp(last), side="right"))
    return goog.iloc[start:end]


def write_bars(frame: pd.DataFrame, path):
    frame.rename_axis("Date").to_csv(path)
    return path


def test_goog_autumn_2008_is_a_new_volatility_regime_and_summer_2009_is_not(tmp_path):
    goog = read_ohlcv_csv(shared_data("ohlcv", "GOOG.csv"))
    trained = write_bars(goog.loc[:"2007-12-31"], tmp_path / "GOOG-2004-2007.csv")
    source = {"ingest": {"source": "csv", "csv": {"files": {"GOOG": str(trained)}}}}
    project = make_project(tmp_path / "project", {"ohlcv": source})
    run_pipeline(project, "ohlcv", OHLCV_FAST)
    look_back = load_params(project / "params.yaml").ohlcv.featurize.look_back

    crisis = monitor(
        project,
        "ohlcv",
        write_bars(
            bars_between(goog, "2008-09-01", "2008-12-31", look_back), tmp_path / "autumn.csv"
        ),
    )
    checks = {c["name"]: c for c in crisis["checks"]}
    # the daily returns are unlike the training years' (KS among their windows)
    assert crisis["alarm"] and checks["log_return"]["drifted"]
    # and the volatility is over twice the training stretches' median; with only six
    # independent training windows of 85 days its p-value stays above volatility_alpha
    assert checks["volatility"]["statistic"] > 1.8 and checks["volatility"]["p_value"] < 0.05
    assert checks["volatility"]["current_n"] == 85  # the trading days of Sept-Dec 2008

    calm = monitor(
        project,
        "ohlcv",
        write_bars(
            bars_between(goog, "2009-07-01", "2009-10-31", look_back), tmp_path / "calm.csv"
        ),
    )
    inputs = {c["name"]: c for c in calm["checks"] if c["name"] != "prediction"}
    assert set(inputs) == {"log_return", "volume_ratio", "volatility"}
    assert not any(c["drifted"] for c in inputs.values()), inputs
    # (the forecasts of a two-epoch model do move with the price level: its check is
    # reported beside these, and may flag them)

    # a project whose params name another series is refused, not monitored under its name
    params_file = project / "params.yaml"
    params_file.write_text(params_file.read_text().replace("source: csv", "source: synthetic", 1))
    before = (project / "reports/ohlcv/monitor_report.json").read_bytes()
    done = nnpipe(project, "monitor", "--domain", "ohlcv", "--alias", "challenger", check=False)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "is the model of series GOOG, not of SYNTH" in done.stderr
    assert (project / "reports/ohlcv/monitor_report.json").read_bytes() == before


XRAY_FAST = [
    "xray.ingest.source=medmnist",
    "xray.featurize.image_size=28",
    "xray.train.epochs=2",
    "xray.tune.enabled=false",
    "xray.compress.variants=[keras_float32]",
]


def held_out_pngs(project, folder, count: int):
    """``count`` of the project's test-split radiographs (never trained on), as PNGs."""
    splits = pd.read_csv(project / "data/xray/features/splits.csv", dtype={"id": str})
    ids = splits.loc[splits["split"] == "test", "id"].sample(count, random_state=0)
    folder.mkdir()
    for i in ids:
        shutil.copy(project / "data/xray/raw/images" / f"{i}.png", folder / f"{i}.png")
    return folder


def test_actualmed_radiographs_drift_from_pneumoniamnist_and_held_out_images_do_not(tmp_path):
    npz = shared_data("xray", "pneumoniamnist_dev.npz")
    actualmed = shared_data("xray", "actualmed")
    # Actualmed has 27 radiographs: below the default 30 rows a window needs
    settings = {"ingest": {"medmnist": {"path": str(npz)}}, "monitor": {"min_rows": 20}}
    project = make_project(tmp_path / "project", {"xray": settings})
    run_pipeline(project, "xray", XRAY_FAST)

    same = monitor(project, "xray", held_out_pngs(project, tmp_path / "held-out", 100))
    assert same["rows"] == 100
    assert not same["alarm"], [c for c in same["checks"] if c["drifted"]]

    other = monitor(project, "xray", actualmed)
    assert other["rows"] == 27 and other["alarm"]
    checks = {c["name"]: c for c in other["checks"]}
    assert checks["image_side"]["drifted"]  # up to 320 px, not 28
    assert checks["intensity_histogram"]["drifted"] and checks["embedding"]["drifted"]
