"""The OHLCV monitor's view of a forecast and its checks: a volatility regime change in a
GARCH series is found; the same series without it is not flagged; logged forecasts are
scored against the bars that followed them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nnpipe.domains.ohlcv.monitoring import (
    BAR,
    drift_checks,
    forecast_output,
    live_performance,
    volatility_check,
    window_features,
)
from nnpipe.domains.ohlcv.params import OhlcvMonitor
from nnpipe.domains.ohlcv.synthetic import generate_ohlcv
from nnpipe.monitoring.frame import MonitorFrame

THRESHOLDS = OhlcvMonitor()  # the defaults params.yaml repeats
FEATURES = list(BAR)
LOOK_BACK = 60


def frame(bars: pd.DataFrame, start: int, end: int) -> MonitorFrame:
    values = bars[FEATURES].to_numpy(float)
    windows = [values[i - LOOK_BACK : i] for i in range(start, end)]
    close = [w[-1, 3] for w in windows]
    return MonitorFrame.from_records(
        [window_features(w, FEATURES) for w in windows],
        [forecast_output(c, c, c) for c in close],  # persistence: a forecast of no change
    )


def test_window_features_are_the_last_bar_and_scale_free_values():
    window = np.array([[10, 11, 9, 10, 100], [10, 12, 10, 11, 300.0]])
    row = window_features(window, FEATURES)
    assert row["Close"] == 11 and row["Volume"] == 300
    assert row["log_return"] == pytest.approx(np.log(11 / 10))
    assert row["range"] == pytest.approx(2 / 11)
    assert row["volume_ratio"] == pytest.approx(np.log(301 / 201))
    out = forecast_output(12.1, 12.1, 11.0)
    assert out["predicted_return"] == pytest.approx(np.log(1.1))


def drifted(bars: pd.DataFrame, start: int, days: int) -> set[str]:
    reference = frame(bars, LOOK_BACK, 1000)
    checks = drift_checks(reference, frame(bars, start, start + days), THRESHOLDS)
    return {c.name for c in checks if c.drifted}


def test_a_volatility_jump_is_found_and_the_same_series_without_it_is_not():
    calm = generate_ohlcv(1200, seed=0)
    crisis = generate_ohlcv(1200, seed=0, volatility_jump=(1050, 3.0))
    assert "volatility" not in drifted(calm, 1100, 63)
    assert "volatility" in drifted(crisis, 1100, 63)


def test_logged_forecasts_are_scored_against_the_bars_that_followed():
    bars = generate_ohlcv(200, seed=1)
    values = bars[FEATURES].to_numpy(float)
    logged = pd.DataFrame(
        {
            # each forecast names its window's last bar; the first is persistence exactly
            "features": [dict(zip(FEATURES, values[i], strict=True)) for i in (100, 101, 199)],
            "output": [
                {"price": values[100, 3]},
                {"price": values[102, 3]},  # a perfect forecast
                {"price": 1.0},  # its next bar has not arrived yet
            ],
        }
    )
    found = live_performance(logged, bars, horizon=1, target="close")
    assert found["scored"] == 2 and found["waiting"] == 1
    persistence = (abs(values[100, 3] - values[101, 3]) + abs(values[101, 3] - values[102, 3])) / 2
    assert found["persistence_mae"] == pytest.approx(persistence)
    assert found["mae"] == pytest.approx(abs(values[100, 3] - values[101, 3]) / 2)


def test_a_reference_shorter_than_two_windows_leaves_the_volatility_untested():
    returns = np.random.default_rng(0).normal(0, 0.01, 90)
    check = volatility_check(returns[:50], returns[50:] * 5, THRESHOLDS.volatility_alpha)
    assert check.p_value == 1.0 and not check.drifted
    assert "not tested: the reference is under two windows long" in check.note
