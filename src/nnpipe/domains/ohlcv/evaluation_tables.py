"""The tables evaluate writes as DVC plots (``reports/ohlcv/plots``): the test-period
forecasts beside the actual prices, and the walk-forward folds' errors."""

from __future__ import annotations

import pandas as pd

from nnpipe.domains.ohlcv.forecasting import FORECASTERS, Prepared


def forecast_table(prep: Prepared, scored: dict) -> pd.DataFrame:
    """The test period's actual Close and every forecaster's, one row per day."""
    rows = prep.windows["test"].rows
    table = pd.DataFrame(
        {
            "series": prep.name,
            "date": [d.date().isoformat() for d in prep.series.dates[rows]],
            "actual": scored["_actual"],
        }
    )
    for name in FORECASTERS:
        table[name] = scored["_forecasts"][name]
    return table


def fold_table(name: str, folds: list[dict]) -> pd.DataFrame:
    """The walk-forward folds' dates and errors, one row per fold."""
    return pd.DataFrame(
        [
            {
                "series": name,
                "fold": f["fold"],
                "test_first": f["test_first"],
                "test_last": f["test_last"],
                **{f"{fc}_{k}": f[fc][k] for fc in FORECASTERS for k in ("rmse", "mae", "mase")},
            }
            for f in folds
        ]
    )
