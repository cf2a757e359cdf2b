"""From prices to windows and back to honest numbers: history dropped, no look-ahead,
train-only scalers, price conversion and hand-checked scores."""

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from nnpipe.domains.ohlcv.artifacts import OhlcvFeatures
from nnpipe.domains.ohlcv.forecasting import (
    SeriesFrame,
    fit_scalers,
    prepare_series,
    read_prepared,
    read_series_table,
    score_forecasts,
    series_table,
    to_price,
    windows_between,
    windows_targeting,
)
from nnpipe.domains.ohlcv.sources import COLUMNS
from nnpipe.domains.ohlcv.synthetic import generate_ohlcv
from nnpipe.domains.ohlcv.windows import VOLUME_Z_WINDOW, chronological_splits

LOOK_BACK = 8


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_ohlcv(120, seed=3)


def row_series(n: int = 60) -> SeriesFrame:
    """Every value is its own row number, so a window shows which rows it read."""
    rows = np.arange(n, dtype=float)
    return SeriesFrame(
        dates=pd.bdate_range("2024-01-01", periods=n),
        values=rows[:, None],
        feature_names=["Close"],
        target=rows.copy(),
        close=rows + 1.0,
    )


# --------------------------------------------------------------------------- prepare_series


@pytest.mark.parametrize(
    ("derived", "target", "dropped"),
    [
        ([], "close", 0),
        (["hl_range"], "close", 0),
        ([], "log_return", 1),
        (["log_return"], "close", 1),
        # add_features: volume_z is NaN until the window's 20th row, i.e. on 19 leading rows
        (["volume_z"], "close", VOLUME_Z_WINDOW - 1),
        (["volume_z", "log_return", "hl_range"], "log_return", VOLUME_Z_WINDOW - 1),
    ],
)
def test_prepare_series_drops_exactly_the_rows_lacking_history(frame, derived, target, dropped):
    series = prepare_series(frame, derived, target)
    assert len(series.target) == len(frame) - dropped
    assert series.dates.equals(frame.index[dropped:])
    assert series.feature_names == [*COLUMNS, *derived]
    assert series.values.shape == (len(frame) - dropped, len(COLUMNS) + len(derived))
    assert np.isfinite(series.values).all() and np.isfinite(series.target).all()
    np.testing.assert_array_equal(series.close, frame["Close"].to_numpy(float)[dropped:])
    np.testing.assert_array_equal(series.values[:, series.close_index], series.close)


def test_prepare_series_target_is_the_close_or_its_log_return(frame):
    close = frame["Close"].to_numpy(float)
    np.testing.assert_array_equal(prepare_series(frame, [], "close").target, close)
    returns = prepare_series(frame, [], "log_return").target
    np.testing.assert_allclose(returns, np.log(close[1:] / close[:-1]), rtol=1e-12)


def test_series_table_round_trips_exactly_through_csv(frame, tmp_path):
    series = prepare_series(frame, ["log_return", "hl_range", "volume_z"], "log_return")
    path = tmp_path / "SYN.csv"
    series_table(series).to_csv(path)
    back = read_series_table(pd.read_csv(path, index_col="date", parse_dates=["date"]))
    assert back.feature_names == series.feature_names
    assert back.dates.equals(series.dates)
    np.testing.assert_array_equal(back.values, series.values)
    np.testing.assert_array_equal(back.target, series.target)
    np.testing.assert_array_equal(back.close, series.close)


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize("horizon", [1, 3])
def test_windows_between_keep_inputs_and_targets_inside_the_range(horizon):
    series = row_series()
    start, end = 10, 40
    w = windows_between(series, LOOK_BACK, horizon, start, end)
    np.testing.assert_array_equal(w.rows, np.arange(start + LOOK_BACK + horizon - 1, end))
    assert w.x.min() >= start and w.rows.max() < end
    np.testing.assert_array_equal(w.y, w.rows)  # the target of each window is its row's
    # inputs are the look_back rows ending `horizon` rows before the target
    expected = w.rows[:, None] - horizon - np.arange(LOOK_BACK)[::-1]
    np.testing.assert_array_equal(w.x[:, :, 0], expected)


@pytest.mark.parametrize("horizon", [1, 3])
def test_windows_targeting_predict_exactly_the_block_from_strictly_earlier_rows(horizon):
    series = row_series()
    first, end = 30, 45
    w = windows_targeting(series, LOOK_BACK, horizon, first, end)
    np.testing.assert_array_equal(w.rows, np.arange(first, end))
    np.testing.assert_array_equal(w.y, np.arange(first, end))
    assert (w.x[:, :, 0].max(axis=1) == w.rows - horizon).all()  # last input is `horizon` back
    assert (w.x[:, :, 0] < w.rows[:, None]).all()
    # windows_between on the same range could not forecast the block's first rows
    inside = windows_between(series, LOOK_BACK, horizon, first, end)
    assert inside.rows[0] == first + LOOK_BACK + horizon - 1


# --------------------------------------------------------------------------- scalers


def test_fit_scalers_use_only_training_rows_and_training_targets(frame):
    series = prepare_series(frame, ["log_return", "volume_z"], "close")
    splits = chronological_splits(len(series.target), 0.2, 0.2, gap=LOOK_BACK)
    train_rows = splits["train"]
    train = windows_between(series, LOOK_BACK, 1, *train_rows)
    inputs, target = fit_scalers(series, train, train_rows)

    start, end = train_rows
    np.testing.assert_array_equal(inputs.data_min, series.values[start:end].min(axis=0))
    np.testing.assert_array_equal(inputs.data_max, series.values[start:end].max(axis=0))
    assert target.data_min.tolist() == [train.y.min()]
    assert target.data_max.tolist() == [train.y.max()]

    # every row after training: huge (finite) values; the statistics must not move
    values, goal, close = series.values.copy(), series.target.copy(), series.close.copy()
    values[end:] = 1e12
    goal[end:] = -1e12
    close[end:] = 1e12
    changed = dataclasses.replace(series, values=values, target=goal, close=close)
    changed_train = windows_between(changed, LOOK_BACK, 1, *train_rows)
    inputs2, target2 = fit_scalers(changed, changed_train, train_rows)
    assert inputs2.to_dict() == inputs.to_dict()
    assert target2.to_dict() == target.to_dict()


# --------------------------------------------------------------------------- to_price


def test_to_price_keeps_a_close_and_grows_the_last_close_by_a_log_return():
    forecast = np.array([101.5, 99.0])
    last = np.array([100.0, 50.0])
    np.testing.assert_array_equal(to_price(forecast, last, "close", 1), forecast)
    np.testing.assert_array_equal(to_price(forecast, last, "close", 5), forecast)
    price = to_price(np.array([math.log(1.1), -math.log(2.0)]), last, "log_return", 1)
    np.testing.assert_allclose(price, [110.0, 25.0], rtol=1e-12)
    np.testing.assert_array_equal(to_price(np.zeros(2), last, "log_return", 1), last)


def test_to_price_refuses_a_log_return_beyond_horizon_one():
    with pytest.raises(ValueError, match="horizon 1"):
        to_price(np.zeros(2), np.ones(2), "log_return", 2)


# --------------------------------------------------------------------------- scores


def linear_series(n: int = 30) -> SeriesFrame:
    """Close 100, 101, ..., so every naive error is exactly 1."""
    close = 100.0 + np.arange(n)
    return SeriesFrame(
        dates=pd.bdate_range("2024-01-01", periods=n),
        values=close[:, None],
        feature_names=["Close"],
        target=close.copy(),
        close=close,
    )


def test_score_forecasts_match_hand_computed_metrics():
    series = linear_series()
    rows = np.array([20, 21, 22, 23])
    actual = series.close[rows]  # 120..123
    errors = np.array([1.0, -1.0, 2.0, -2.0])
    s = score_forecasts(series, rows, 1, actual + errors, train_end=15, ma_window=3)

    model = s["model"]
    assert model["rmse"] == pytest.approx(math.sqrt(2.5))
    assert model["mae"] == pytest.approx(1.5)
    assert model["mape"] == pytest.approx(100 * (1 / 120 + 1 / 121 + 2 / 122 + 2 / 123) / 4)
    assert model["mase"] == pytest.approx(1.5)  # naive in-sample error of training Closes: 1
    # predicted moves from the last Close: +2, 0, +3, -1 against true +1 each time
    assert model["directional_accuracy"] == pytest.approx(0.5)

    persistence = s["persistence"]  # always 1 behind
    assert persistence["rmse"] == pytest.approx(1.0) and persistence["mae"] == pytest.approx(1.0)
    assert persistence["mase"] == pytest.approx(1.0)
    assert persistence["directional_accuracy"] == 0.0  # never calls a move
    np.testing.assert_allclose(s["_forecasts"]["persistence"], actual - 1)

    ma = s["moving_average"]  # mean of the 3 previous Closes: 2 behind
    np.testing.assert_allclose(s["_forecasts"]["moving_average"], actual - 2)
    assert ma["mae"] == pytest.approx(2.0) and ma["rmse"] == pytest.approx(2.0)

    assert s["relative_mae"] == pytest.approx(1.5)
    assert s["relative_rmse"] == pytest.approx(math.sqrt(2.5))
    assert s["dm_statistic"] > 0  # the model's squared errors are the larger
    assert 0 <= s["dm_p_value"] <= 1
    assert s["n_forecasts"] == 4
    np.testing.assert_array_equal(s["_actual"], actual)


def test_score_forecasts_scale_mase_by_the_horizon_step_naive_error():
    series = linear_series()
    rows = np.arange(20, 26)
    s = score_forecasts(series, rows, 2, series.close[rows] + 1.0, train_end=15, ma_window=3)
    assert s["model"]["mase"] == pytest.approx(0.5)  # 2-step naive error of training: 2
    assert s["persistence"]["mae"] == pytest.approx(2.0)  # forecast made 2 rows ahead
    assert s["relative_mae"] == pytest.approx(0.5)


def test_a_perfect_forecast_scores_zero_and_persistence_scores_exactly_one():
    series = linear_series()
    rows = np.arange(20, 30)
    perfect = score_forecasts(series, rows, 1, series.close[rows], train_end=15, ma_window=5)
    assert perfect["model"]["rmse"] == 0 and perfect["model"]["mae"] == 0
    assert perfect["relative_mae"] == 0 and perfect["relative_rmse"] == 0
    assert perfect["model"]["directional_accuracy"] == 1.0
    echo = score_forecasts(series, rows, 1, series.close[rows - 1], train_end=15, ma_window=5)
    assert echo["relative_mae"] == 1.0 and echo["relative_rmse"] == 1.0
    assert echo["dm_statistic"] == 0.0 and echo["dm_p_value"] == 1.0


# --------------------------------------------------------------------------- read_prepared


def write_features(directory, frame, name, derived, target, look_back, horizon):
    """The layout featurize writes: ``<name>.csv`` and ``meta.json``."""
    series = prepare_series(frame, derived, target)
    splits = chronological_splits(len(series.target), 0.15, 0.15, gap=look_back, horizon=horizon)
    windows = {s: windows_between(series, look_back, horizon, *r) for s, r in splits.items()}
    inputs, target_scaler = fit_scalers(series, windows["train"], splits["train"])
    series_table(series).to_csv(directory / f"{name}.csv")
    meta = {
        "look_back": look_back,
        "horizon": horizon,
        "target": target,
        "derived": derived,
        "val_fraction": 0.15,
        "test_fraction": 0.15,
        "series": {
            name: {
                "features": series.feature_names,
                "rows": len(series.target),
                "splits": {
                    s: {
                        "rows": list(r),
                        "first": series.dates[r[0]].isoformat(),
                        "last": series.dates[r[1] - 1].isoformat(),
                        "windows": len(windows[s]),
                    }
                    for s, r in splits.items()
                },
                "input_scaler": inputs.to_dict(),
                "target_scaler": target_scaler.to_dict(),
            }
        },
    }
    (directory / "meta.json").write_text(json.dumps(meta))
    return series, splits, windows, inputs, target_scaler


def test_read_prepared_rebuilds_what_featurize_wrote(frame, tmp_path):
    series, splits, windows, inputs, target = write_features(
        tmp_path, frame, "SYN", ["log_return", "volume_z"], "log_return", LOOK_BACK, 2
    )
    meta = json.loads((tmp_path / "meta.json").read_text())
    prep = read_prepared(tmp_path, "SYN", OhlcvFeatures.model_validate(meta))
    assert prep.name == "SYN"
    assert (prep.look_back, prep.horizon, prep.target_kind) == (LOOK_BACK, 2, "log_return")
    assert prep.series.feature_names == series.feature_names
    assert prep.series.dates.equals(series.dates)
    np.testing.assert_array_equal(prep.series.values, series.values)
    np.testing.assert_array_equal(prep.series.target, series.target)
    assert prep.splits == splits
    for split, w in windows.items():
        np.testing.assert_array_equal(prep.windows[split].x, w.x)
        np.testing.assert_array_equal(prep.windows[split].y, w.y)
        np.testing.assert_array_equal(prep.windows[split].rows, w.rows)
        assert len(prep.windows[split]) == meta["series"]["SYN"]["splits"][split]["windows"]
    assert prep.input_scaler.to_dict() == inputs.to_dict()
    assert prep.target_scaler.to_dict() == target.to_dict()


def test_read_prepared_refuses_a_table_that_disagrees_with_meta(frame, tmp_path):
    write_features(tmp_path, frame, "SYN", ["hl_range"], "close", LOOK_BACK, 1)
    meta = json.loads((tmp_path / "meta.json").read_text())
    stale = json.loads(json.dumps(meta))
    stale["series"]["SYN"]["rows"] += 1
    with pytest.raises(ValueError, match="re-run featurize"):
        read_prepared(tmp_path, "SYN", OhlcvFeatures.model_validate(stale))
    stale = json.loads(json.dumps(meta))
    stale["series"]["SYN"]["features"].append("volume_z")
    with pytest.raises(ValueError, match=r"does not match meta\.json"):
        read_prepared(tmp_path, "SYN", OhlcvFeatures.model_validate(stale))
