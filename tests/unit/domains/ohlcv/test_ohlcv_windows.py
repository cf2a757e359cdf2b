"""No look-ahead, ever: splits, scaler, features and windows see only past rows."""

import json

import numpy as np
import pandas as pd
import pytest

from nnpipe.domains.ohlcv.scaling import TrainOnlyScaler, scale_splits
from nnpipe.domains.ohlcv.sources import COLUMNS, OhlcvDataError
from nnpipe.domains.ohlcv.synthetic import generate_ohlcv
from nnpipe.domains.ohlcv.windows import (
    VOLUME_Z_WINDOW,
    add_features,
    chronological_splits,
    make_target,
    make_windows,
)

LOOK_BACK = 10


def random_series(n: int = 300, features: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, features)).cumsum(axis=0)
    return values, values[:, 0].copy()


@pytest.mark.parametrize(
    ("n", "val", "test", "gap"),
    [(300, 0.15, 0.15, 10), (1000, 0.2, 0.1, 60), (97, 0.3, 0.3, 5), (50, 0.2, 0.2, 0)],
)
def test_splits_are_contiguous_in_time_order_leaving_exactly_gap_rows_out(n, val, test, gap):
    splits = chronological_splits(n, val, test, gap)
    assert list(splits) == ["train", "val", "test"]
    (t0, t1), (v0, v1), (s0, s1) = splits.values()
    assert t0 == 0 and s1 == n  # the most recent rows are the test rows
    assert v0 - t1 == gap and s0 - v1 == gap
    assert (t1 - t0) + (v1 - v0) + (s1 - s0) + 2 * gap == n
    usable = n - 2 * gap
    assert abs((v1 - v0) - usable * val) <= 0.5 and abs((s1 - s0) - usable * test) <= 0.5


def test_windows_stay_inside_their_split_and_inputs_precede_the_target():
    n, horizon = 300, 3
    rows = np.arange(n, dtype=float)[:, None]  # each row holds its own row number
    splits = chronological_splits(n, 0.2, 0.2, gap=LOOK_BACK, horizon=horizon)
    used = {}
    for name, (start, end) in splits.items():
        x, y, target_rows = make_windows(rows, rows[:, 0], LOOK_BACK, horizon, start, end)
        inputs = x[:, :, 0].astype(int)
        assert inputs.min() >= start and target_rows.max() < end
        assert (inputs.max(axis=1) < target_rows).all()
        # inputs are the look_back consecutive rows ending horizon steps before the target
        assert (
            inputs == target_rows[:, None] - horizon - LOOK_BACK + 1 + np.arange(LOOK_BACK)
        ).all()
        assert (y == target_rows).all()
        # every possible window is made: the first and last fit the split exactly
        assert inputs[0, 0] == start and target_rows[-1] == end - 1
        used[name] = set(inputs.ravel()) | set(target_rows)
    assert not used["train"] & used["val"] and not used["val"] & used["test"]
    assert min(used["val"]) - max(used["train"]) == LOOK_BACK + 1
    assert min(used["test"]) - max(used["val"]) == LOOK_BACK + 1


def test_windows_and_scaler_ignore_every_row_after_the_split_end():
    values, target = random_series()
    splits = chronological_splits(len(values), 0.2, 0.2, LOOK_BACK)
    scaled, scaler = scale_splits(values, splits)
    before = {
        name: make_windows(scaled, target, LOOK_BACK, 1, *rng) for name, rng in splits.items()
    }
    for name, (_, end) in splits.items():
        corrupt, corrupt_target = values.copy(), target.copy()
        corrupt[end:] = np.nan
        corrupt_target[end:] = np.nan
        if name == "train":
            rescaled, rescaler = scale_splits(corrupt, splits)
            assert rescaler.to_dict() == scaler.to_dict()
            np.testing.assert_array_equal(rescaled[:end], scaled[:end])
        after = make_windows(scaler.transform(corrupt), corrupt_target, LOOK_BACK, 1, *splits[name])
        for a, b in zip(before[name], after, strict=True):
            np.testing.assert_array_equal(a, b)


def test_each_window_is_unchanged_by_rows_from_its_target_on():
    values, target = random_series(n=120)
    horizon, start, end = 4, 20, 120
    x, y, target_rows = make_windows(values, target, LOOK_BACK, horizon, start, end)
    rng = np.random.default_rng(1)
    for i in range(0, len(y), 7):
        t = target_rows[i] - horizon + 1  # the first row after the window's inputs
        corrupt, corrupt_target = values.copy(), target.copy()
        corrupt[t:] = rng.normal(1e6, 1e3, size=corrupt[t:].shape)
        corrupt_target[target_rows[i] + 1 :] = 1e6
        corrupt_target[: target_rows[i]] = -1e6  # y reads the target row alone
        x2, y2, rows2 = make_windows(corrupt, corrupt_target, LOOK_BACK, horizon, start, end)
        np.testing.assert_array_equal(x2[i], x[i])
        assert y2[i] == y[i] and rows2[i] == target_rows[i]
        assert not np.array_equal(x2[-1], x[-1])  # the corruption did reach later windows


def test_features_and_target_of_the_whole_pipeline_use_no_future_prices():
    prices = generate_ohlcv(400, seed=3)
    frame = add_features(prices, ["log_return", "hl_range", "volume_z"]).dropna()
    splits = chronological_splits(len(frame), 0.2, 0.2, LOOK_BACK)
    val_end = splits["val"][1]
    cut = frame.index[val_end]  # the first row after the validation split

    def windows_until_val(raw: pd.DataFrame) -> list[np.ndarray]:
        feats = add_features(raw, ["log_return", "hl_range", "volume_z"]).loc[frame.index]
        values = feats.to_numpy()
        scaled, _ = scale_splits(values, splits)
        target = make_target(feats, "log_return")
        return [
            a
            for name in ("train", "val")
            for a in make_windows(scaled, target, LOOK_BACK, 1, *splits[name])
        ]

    corrupt = prices.copy()
    corrupt.loc[corrupt.index >= cut, list(COLUMNS)] = np.nan
    for a, b in zip(windows_until_val(prices), windows_until_val(corrupt), strict=True):
        np.testing.assert_array_equal(a, b)


def test_too_short_a_series_names_the_short_split_and_the_rows_needed():
    with pytest.raises(OhlcvDataError, match=r"val and test split\(s\).*at least 366 rows"):
        chronological_splits(150, 0.1, 0.1, gap=30, horizon=1)
    splits = chronological_splits(366, 0.1, 0.1, gap=30)  # the number it asked for is enough
    assert min(end - start for start, end in splits.values()) >= 31
    with pytest.raises(OhlcvDataError):
        chronological_splits(365, 0.1, 0.1, gap=30)  # and it is the least that is
    with pytest.raises(OhlcvDataError, match="train split"):
        chronological_splits(100, 0.45, 0.45, gap=20, horizon=1)
    with pytest.raises(ValueError, match="val_fraction"):
        chronological_splits(300, 0.6, 0.5, gap=1)


def test_scaler_uses_training_statistics_without_clipping_and_round_trips():
    train = np.array([[1.0, 10.0, 5.0], [3.0, 30.0, 5.0]])
    scaler = TrainOnlyScaler(["a", "b", "c"]).fit(train)
    later = np.array([[5.0, 0.0, 7.0]])  # outside the training range
    np.testing.assert_allclose(scaler.transform(train), [[0, 0, 0], [1, 1, 0]])
    np.testing.assert_allclose(scaler.transform(later), [[2.0, -0.5, 2.0]])
    np.testing.assert_allclose(
        scaler.inverse_transform_column(np.array([2.0, -0.5]), 0), [5.0, 0.0]
    )
    saved = json.loads(json.dumps(scaler.to_dict()))
    again = TrainOnlyScaler.from_dict(saved)
    np.testing.assert_array_equal(again.transform(later), scaler.transform(later))
    assert again.feature_names == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (lambda s: s.fit(np.array([[1.0], [np.nan]])), ValueError, "NaN"),
        (lambda s: s.transform(np.ones((2, 1))), RuntimeError, "fit the scaler"),
        (lambda s: s.fit(np.ones((2, 2))).transform(np.ones((2, 3))), ValueError, "2 feature"),
        (lambda s: TrainOnlyScaler.from_dict({"kind": "standard"}), ValueError, "min-max"),
    ],
)
def test_scaler_misuse_is_a_clear_error(action, error, message):
    with pytest.raises(error, match=message):
        action(TrainOnlyScaler())


def test_derived_features_match_their_definitions_and_need_history():
    prices = generate_ohlcv(60, seed=5)
    feats = add_features(prices, ["Close", "volume_z", "log_return", "hl_range"])
    assert list(feats.columns) == [*COLUMNS, "volume_z", "log_return", "hl_range"]
    close, volume = prices["Close"].to_numpy(), prices["Volume"].to_numpy(float)
    np.testing.assert_allclose(feats["log_return"].iloc[1:], np.log(close[1:] / close[:-1]))
    np.testing.assert_allclose(feats["hl_range"], (prices.High - prices.Low) / prices.Close)
    last = volume[25 - VOLUME_Z_WINDOW + 1 : 26]  # trailing window ending at row 25
    assert feats["volume_z"].iloc[25] == pytest.approx(
        (volume[25] - last.mean()) / last.std(ddof=1)
    )
    assert feats["log_return"].isna().sum() == 1
    assert feats["volume_z"].isna().sum() == VOLUME_Z_WINDOW - 1
    # trailing, never centred: changing later rows leaves earlier features alone
    changed = prices.copy()
    changed.iloc[40:] *= 3
    pd.testing.assert_frame_equal(
        add_features(changed, ["volume_z", "log_return"]).iloc[:40],
        add_features(prices, ["volume_z", "log_return"]).iloc[:40],
    )


def test_constant_volume_has_zero_z_score_and_unknown_features_are_refused():
    prices = generate_ohlcv(30, seed=1).assign(Volume=1000)
    assert (add_features(prices, ["volume_z"])["volume_z"].dropna() == 0).all()
    with pytest.raises(ValueError, match=r"unknown feature.*rsi"):
        add_features(prices, ["rsi"])


def test_targets_are_the_next_close_or_return_after_the_inputs():
    prices = generate_ohlcv(40, seed=2)
    close = prices["Close"].to_numpy()
    values = prices[list(COLUMNS)].to_numpy()
    x, y, rows = make_windows(values, make_target(prices, "close"), 5, 1, 0, 40)
    np.testing.assert_array_equal(y, close[rows])
    np.testing.assert_array_equal(x[:, -1, 3], close[rows - 1])  # the last input is the day before
    ret = make_target(prices, "log_return")
    assert np.isnan(ret[0])
    np.testing.assert_allclose(ret[1:], np.log(close[1:] / close[:-1]))
    with pytest.raises(ValueError, match="kind"):
        make_target(prices, "price")


def test_windows_refuse_missing_values_and_too_few_rows():
    values, target = random_series(n=40)
    values[0, 1] = np.nan  # e.g. a log-return feature's first row
    with pytest.raises(ValueError, match="NaN"):
        make_windows(values, target, LOOK_BACK, 1, 0, 40)
    x, _, _ = make_windows(values, target, LOOK_BACK, 1, 1, 40)  # dropped: fine
    assert x.shape == (40 - 1 - LOOK_BACK, LOOK_BACK, 3)
    target[0] = np.nan  # never a target: row 0 can only be an input
    make_windows(np.nan_to_num(values), target, LOOK_BACK, 1, 0, 40)
    target[25] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        make_windows(np.nan_to_num(values), target, LOOK_BACK, 1, 0, 40)
    with pytest.raises(ValueError, match="too few for one window"):
        make_windows(values, target, LOOK_BACK, 2, 1, 1 + LOOK_BACK + 1)
