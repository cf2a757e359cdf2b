"""Forecast metrics, baselines, the Diebold-Mariano test and walk-forward folds."""

import math

import numpy as np
import pytest

from nnpipe.domains.ohlcv.metrics import (
    diebold_mariano,
    directional_accuracy,
    last_known_values,
    mae,
    mape,
    mase,
    moving_average_forecast,
    persistence_forecast,
    rmse,
    walk_forward_folds,
)
from nnpipe.domains.ohlcv.sources import OhlcvDataError

Y = np.array([1.0, 2.0, 3.0, 4.0])
P = np.array([2.0, 2.0, 1.0, 4.0])  # errors -1, 0, 2, 0


def test_errors_match_hand_computed_values():
    assert rmse(Y, P) == pytest.approx(math.sqrt(5 / 4))
    assert mae(Y, P) == pytest.approx(0.75)
    assert mape(Y, P) == pytest.approx(100 * (1 / 1 + 2 / 3) / 4)


def test_mape_ignores_zero_actuals_and_refuses_all_zero():
    assert mape([0.0, 2.0, 4.0], [1.0, 1.0, 5.0]) == pytest.approx(100 * (0.5 + 0.25) / 2)
    with pytest.raises(ValueError, match="every actual value is zero"):
        mape([0.0, 0.0], [1.0, 2.0])


def test_mase_scales_by_the_naive_error_on_the_training_series():
    train = np.array([1.0, 3.0, 2.0, 5.0])  # one-step naive errors 2, 1, 3: scale 2
    assert mase([6.0, 4.0], [5.0, 6.0], train) == pytest.approx(1.5 / 2)
    assert mase([6.0, 4.0], [5.0, 6.0], train, m=2) == pytest.approx(1.5 / 1.5)  # |2-1|, |5-3|
    # the naive forecast scored on the very series that set the scale has MASE 1 exactly
    walk = np.random.default_rng(0).normal(size=200).cumsum()
    assert mase(walk[1:], walk[:-1], walk) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="constant"):
        mase([1.0], [2.0], [3.0, 3.0, 3.0])


def test_directional_accuracy_skips_flat_steps_and_counts_no_call_as_wrong():
    prev = np.ones(5)
    true = np.array([2.0, 0.0, 1.0, 3.0, 0.5])  # up, down, flat (skipped), up, down
    pred = np.array([3.0, 2.0, 5.0, 0.0, 0.9])  # up, up, -, down, down
    assert directional_accuracy(true, pred, prev) == pytest.approx(2 / 4)
    assert directional_accuracy([2.0], [1.0], [1.0]) == 0.0
    with pytest.raises(ValueError, match="never moves"):
        directional_accuracy([1.0, 1.0], [2.0, 0.0], [1.0, 1.0])


def test_metrics_refuse_mismatched_or_missing_values():
    with pytest.raises(ValueError, match="y_pred has 3"):
        rmse(Y, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="NaN"):
        mae([1.0, np.nan], [1.0, 2.0])


def test_baselines_match_hand_values_and_use_only_rows_known_at_forecast_time():
    closes = np.arange(1.0, 7.0)  # 1..6 at rows 0..5
    targets = np.array([3, 5])
    np.testing.assert_allclose(moving_average_forecast(closes, 2, targets, 1), [2.5, 4.5])
    np.testing.assert_allclose(moving_average_forecast(closes, 2, targets, 2), [1.5, 3.5])
    np.testing.assert_allclose(
        persistence_forecast(last_known_values(closes, targets, 1)), [3.0, 5.0]
    )
    rng = np.random.default_rng(0)
    series = rng.normal(size=80).cumsum() + 50
    targets = np.arange(12, 80)
    for horizon in (1, 3):
        ma = moving_average_forecast(series, 5, targets, horizon)
        naive = persistence_forecast(last_known_values(series, targets, horizon))
        for i, k in enumerate(targets):
            future = series.copy()
            future[k - horizon + 1 :] = 1e9  # the rows after the forecast origin, target included
            assert moving_average_forecast(future, 5, targets[i : i + 1], horizon)[
                0
            ] == pytest.approx(ma[i])
            assert last_known_values(future, targets[i : i + 1], horizon)[0] == naive[i]
    with pytest.raises(ValueError, match="earlier row"):
        moving_average_forecast(closes, 3, np.array([2]), 1)


E1 = np.array([1.0, -2.0, 3.0, 0.0, 1.0])
E2 = np.array([2.0, 1.0, -1.0, 1.0, 2.0])
# d = e1**2 - e2**2 = [-3, 3, 8, -1, -3]: mean 0.8, gamma0 = 17.76, gamma1 = 0.272


def test_diebold_mariano_matches_a_hand_computation():
    stat, p = diebold_mariano(E1, E2)
    assert stat == pytest.approx(0.8 / math.sqrt(17.76 / 5) * math.sqrt(4 / 5))
    assert p == pytest.approx(0.7234920525130897)  # 2 * scipy.stats.t.sf(stat, df=4)
    stat2, p2 = diebold_mariano(E1, E2, horizon=2)
    assert stat2 == pytest.approx(0.8 / math.sqrt((17.76 + 2 * 0.272) / 5) * math.sqrt(0.48))
    assert p2 == pytest.approx(0.7864544110443209)
    stat_abs, _ = diebold_mariano(E1, E2, power=1)  # d = [-1, 1, 2, -1, -1], mean 0
    assert stat_abs == pytest.approx(0.0)


def test_diebold_mariano_sign_and_significance():
    rng = np.random.default_rng(42)
    noise = rng.normal(size=300)
    assert diebold_mariano(noise, noise) == (0.0, 1.0)  # identical: no variance, no evidence
    stat, p = diebold_mariano(0.5 * noise + rng.normal(scale=0.1, size=300), noise)
    assert stat < 0 and p < 1e-6  # model 1 has clearly lower loss
    back, p_back = diebold_mariano(noise, 0.5 * noise + rng.normal(scale=0.1, size=300))
    assert back > 0 and p_back < 1e-6
    _, p_same = diebold_mariano(rng.normal(size=300), rng.normal(size=300))
    assert p_same > 0.01  # two equally good forecasts are (almost always) not separated
    with pytest.raises(ValueError, match="more than"):
        diebold_mariano(np.ones(3), np.zeros(3), horizon=3)


def test_walk_forward_folds_expand_and_never_test_on_seen_rows():
    folds = walk_forward_folds(100, n_folds=3, min_train=40, gap=5)
    assert folds == [
        (range(0, 41), range(46, 64)),
        (range(0, 59), range(64, 82)),
        (range(0, 77), range(82, 100)),
    ]
    tested: set[int] = set()
    for train, test in folds:
        assert len(train) >= 40 and test.start - train.stop == 5
        assert not tested & set(test)
        tested |= set(test)
    custom = walk_forward_folds(100, n_folds=2, min_train=30, gap=0, test_size=10)
    assert custom == [(range(0, 80), range(80, 90)), (range(0, 90), range(90, 100))]
    with pytest.raises(OhlcvDataError, match="too few for 4 walk-forward"):
        walk_forward_folds(47, n_folds=4, min_train=40, gap=5)
