"""Scoring a forecaster on the test period, and the number its variants are judged by:
what evaluate, compress, promote and register share (a stage never imports another)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nnpipe.domains.ohlcv.forecasting import Prepared, score_forecasts, to_price

# compress measures, and promote judges, each variant by its test MAE over persistence's
VARIANT_METRIC = "relative_mae"


def score_model(
    forecast: Callable[[np.ndarray], np.ndarray],
    input_shape: tuple[int, ...],
    prep: Prepared,
    ma_window: int,
) -> dict:
    """Test-period forecasts (``forecast``: raw windows -> target units) in price units,
    scored against the baselines; also used by register to re-score the champion's
    deployed variant on today's test period."""
    test = prep.windows["test"]
    want = (prep.look_back, len(prep.series.feature_names))
    if tuple(input_shape) != want:
        raise ValueError(
            f"the model takes windows {tuple(input_shape)}, the test period has {want}"
        )
    last_close = prep.series.close[test.rows - prep.horizon]
    price = to_price(
        np.asarray(forecast(test.x), dtype=float).reshape(-1),
        last_close,
        prep.target_kind,
        prep.horizon,
    )
    return score_forecasts(
        prep.series, test.rows, prep.horizon, price, prep.splits["train"][1], ma_window
    )
