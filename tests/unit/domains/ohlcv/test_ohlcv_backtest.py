"""Walk-forward evaluation: each fold fits on earlier rows only and tests the next block."""

import dataclasses

import numpy as np
import pytest

from nnpipe.domains.ohlcv import backtest
from nnpipe.domains.ohlcv.backtest import (
    FOLD_METRICS,
    inner_split,
    run_walk_forward,
    summarize_folds,
)
from nnpipe.domains.ohlcv.forecasting import (
    FORECASTERS,
    Prepared,
    fit_scalers,
    prepare_series,
    windows_between,
)
from nnpipe.domains.ohlcv.params import OhlcvTrain
from nnpipe.domains.ohlcv.sources import OhlcvDataError
from nnpipe.domains.ohlcv.synthetic import generate_ohlcv
from nnpipe.domains.ohlcv.windows import chronological_splits
from nnpipe.keras_env import make_deterministic

LOOK_BACK = 8
CFG = OhlcvTrain(units=[4], epochs=1)


def prepared(series=None, name: str = "SYN") -> Prepared:
    """A series prepared as featurize prepares it (close target, horizon 1)."""
    if series is None:
        series = prepare_series(generate_ohlcv(300, seed=1), ["log_return"], "close")
    splits = chronological_splits(len(series.target), 0.15, 0.15, gap=LOOK_BACK)
    windows = {s: windows_between(series, LOOK_BACK, 1, *r) for s, r in splits.items()}
    inputs, target = fit_scalers(series, windows["train"], splits["train"])
    return Prepared(name, series, splits, windows, inputs, target, LOOK_BACK, 1, "close")


# --------------------------------------------------------------------------- inner_split


@pytest.mark.parametrize(
    ("train_end", "val_fraction", "gap", "horizon"),
    [(100, 0.2, 8, 1), (250, 0.15, 20, 3), (26, 0.2, 8, 1)],
)
def test_inner_split_keeps_order_and_gap_and_ends_at_the_fold_end(
    train_end, val_fraction, gap, horizon
):
    (f0, f1), (v0, v1) = inner_split(train_end, val_fraction, gap, horizon)
    assert f0 == 0 < f1 < v0 < v1 == train_end
    assert v0 - f1 == gap
    assert f1 >= gap + horizon and v1 - v0 >= gap + horizon  # each holds a window
    assert v1 - v0 == max(gap + horizon, round((train_end - gap) * val_fraction))


def test_inner_split_at_the_smallest_fold_still_holds_one_window_each():
    series = prepare_series(generate_ohlcv(60, seed=2), [], "close")
    fit_rows, val_rows = inner_split(26, 0.2, LOOK_BACK, 1)  # 9 + gap 8 + 9 rows
    assert fit_rows == (0, 9) and val_rows == (17, 26)
    assert len(windows_between(series, LOOK_BACK, 1, *fit_rows)) == 1
    assert len(windows_between(series, LOOK_BACK, 1, *val_rows)) == 1


@pytest.mark.parametrize("train_end", [25, 20, 0])
def test_inner_split_refuses_too_few_rows_saying_what_to_raise(train_end):
    with pytest.raises(OhlcvDataError, match="walk_forward_min_train"):
        inner_split(train_end, 0.2, LOOK_BACK, 1)


# --------------------------------------------------------------------------- summarize


def fold(relative_mae: float, scale: float) -> dict:
    return {
        "fold": 1,
        "relative_mae": relative_mae,
        **{
            name: {k: scale * (i + 1) + j for j, k in enumerate(FOLD_METRICS)}
            for i, name in enumerate(FORECASTERS)
        },
    }


def test_summarize_folds_averages_each_metric_and_counts_wins():
    folds = [fold(0.8, 1.0), fold(1.2, 2.0), fold(1.0, 6.0)]
    summary = summarize_folds(folds)
    assert summary["folds"] == 3
    assert summary["relative_mae"] == pytest.approx(1.0)
    assert summary["folds_model_beats_persistence"] == 1  # a tie (1.0) is not a win
    for i, name in enumerate(FORECASTERS):
        for j, metric in enumerate(FOLD_METRICS):
            expected = np.mean([s * (i + 1) + j for s in (1.0, 2.0, 6.0)])
            assert summary[name][metric] == pytest.approx(expected)
    assert summary["model"]["rmse"] == pytest.approx(3.0)


# --------------------------------------------------------------------------- walk-forward


def test_walk_forward_tests_consecutive_blocks_ending_last_on_earlier_rows_only():
    make_deterministic(0)
    prep = prepared()
    dates = prep.series.dates
    calls = []
    folds = run_walk_forward(
        prep,
        CFG,
        n_folds=2,
        min_train=150,
        val_fraction=0.2,
        ma_window=5,
        epochs=1,
        before_fit=lambda: calls.append(1),
    )
    assert len(folds) == 2 and len(calls) == 2
    assert [f["fold"] for f in folds] == [1, 2]
    first = [dates.get_loc(np.datetime64(f["test_first"])) for f in folds]
    last = [dates.get_loc(np.datetime64(f["test_last"])) for f in folds]
    assert last[-1] == len(dates) - 1  # the last block ends at the last row
    assert first[1] == last[0] + 1  # consecutive, no overlap
    assert first[0] <= last[0] < first[1] <= last[1]
    assert last[0] - first[0] == last[1] - first[1]  # equal blocks
    for f, start in zip(folds, first, strict=True):
        train_start, train_stop = f["train_rows"]
        assert train_start == 0 and train_stop <= start - LOOK_BACK
        assert 0 < f["relative_mae"] < np.inf
        for name in FORECASTERS:
            assert set(f[name]) == set(FOLD_METRICS)
            assert all(np.isfinite(v) for v in f[name].values())
    assert folds[1]["train_rows"][1] > folds[0]["train_rows"][1]  # the window expands


def test_walk_forward_fits_validates_and_scales_on_rows_before_its_test_block(monkeypatch):
    """A row-number feature shows which rows each fold's model and scalers saw."""
    make_deterministic(0)
    base = prepare_series(generate_ohlcv(300, seed=1), [], "close")
    rows = np.arange(len(base.target), dtype=float)[:, None]
    series = dataclasses.replace(
        base, values=np.hstack([base.values, rows]), feature_names=[*base.feature_names, "row"]
    )
    prep = prepared(series)
    seen = []
    real_fit = backtest.fit_forecaster

    def spy(cfg, x_train, y_train, x_val, y_val, inputs, target, **kwargs):
        seen.append(
            {
                "val": x_val[:, :, -1].max(),
                "val_min": x_val[:, :, -1].min(),
                "fit_max": x_train[:, :, -1].max(),
                "scaler": inputs.data_max[-1],
            }
        )
        return real_fit(cfg, x_train, y_train, x_val, y_val, inputs, target, **kwargs)

    real_predict = backtest.predict
    forecast_inputs = []

    def spy_predict(model, x, **kwargs):
        forecast_inputs.append(x[:, :, -1].copy())
        return real_predict(model, x, **kwargs)

    monkeypatch.setattr(backtest, "fit_forecaster", spy)
    monkeypatch.setattr(backtest, "predict", spy_predict)
    folds = run_walk_forward(
        prep, CFG, n_folds=2, min_train=150, val_fraction=0.2, ma_window=5, epochs=1
    )
    for f, rows_seen, x_rows in zip(folds, seen, forecast_inputs, strict=True):
        test_start = series.dates.get_loc(np.datetime64(f["test_first"]))
        test_last = series.dates.get_loc(np.datetime64(f["test_last"]))
        # one forecast per test row, each from the look_back rows right before it
        np.testing.assert_array_equal(x_rows[:, -1], np.arange(test_start, test_last + 1) - 1)
        train_stop = f["train_rows"][1]
        # inputs of the validation windows end before the last training row (the target)
        assert rows_seen["val"] < train_stop <= test_start - LOOK_BACK
        assert rows_seen["scaler"] < rows_seen["val_min"]  # scalers: fit rows only
        assert rows_seen["val_min"] - rows_seen["fit_max"] > LOOK_BACK  # gap inside the fold
