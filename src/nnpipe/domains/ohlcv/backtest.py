"""Walk-forward evaluation: re-train on an expanding window, test on the block after it.

One test period can flatter a model by luck; N consecutive test blocks, each forecast by
a model that saw only earlier rows (its scalers too), show whether the result holds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from nnpipe.domains.ohlcv.forecasting import (
    FORECASTERS,
    Prepared,
    fit_scalers,
    score_forecasts,
    to_price,
    windows_between,
    windows_targeting,
)
from nnpipe.domains.ohlcv.metrics import walk_forward_folds
from nnpipe.domains.ohlcv.models import fit_forecaster, predict
from nnpipe.domains.ohlcv.params import OhlcvTrain
from nnpipe.domains.ohlcv.sources import OhlcvDataError

log = logging.getLogger(__name__)

FOLD_METRICS = ("rmse", "mae", "mase", "directional_accuracy")


def inner_split(
    train_end: int,
    val_fraction: float,
    gap: int,
    horizon: int,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Fit and early-stopping rows inside a fold's training rows ``[0, train_end)``: the
    last ``val_fraction`` for validation, ``gap`` rows left out before it, as featurize
    splits the whole series."""
    need = gap + horizon  # rows for one window
    n_val = max(need, round((train_end - gap) * val_fraction))
    fit_end = train_end - n_val - gap
    if fit_end < need:
        raise OhlcvDataError(
            f"a walk-forward fold's {train_end} training rows are too few to fit and "
            f"validate with look-back {gap}; raise ohlcv.evaluate.walk_forward_min_train"
        )
    return (0, fit_end), (train_end - n_val, train_end)


def run_walk_forward(
    prep: Prepared,
    cfg: OhlcvTrain,
    *,
    n_folds: int,
    min_train: int,
    val_fraction: float,
    ma_window: int,
    epochs: int,
    before_fit: Callable[[], None] = lambda: None,
) -> list[dict]:
    """Per fold: rows used, and test metrics (price units) of the model and baselines."""
    series, lb, h = prep.series, prep.look_back, prep.horizon
    folds = walk_forward_folds(len(series.target), n_folds, min_train, gap=lb)
    results = []
    for k, (train_rows, test_rows) in enumerate(folds, start=1):
        fit_rows, val_rows = inner_split(train_rows.stop, val_fraction, lb, h)
        fit = windows_between(series, lb, h, *fit_rows)
        val = windows_between(series, lb, h, *val_rows)
        test = windows_targeting(series, lb, h, test_rows.start, test_rows.stop)
        inputs, target = fit_scalers(series, fit, fit_rows)
        before_fit()
        fitted = fit_forecaster(
            cfg,
            fit.x,
            fit.y,
            val.x,
            val.y,
            inputs,
            target,
            epochs=epochs,
            label=f"{prep.name} fold {k}/{n_folds}",
        )
        last_close = series.close[test.rows - h]
        price = to_price(predict(fitted.model, test.x), last_close, prep.target_kind, h)
        scored = score_forecasts(series, test.rows, h, price, fit_rows[1], ma_window)
        row = fold_result(prep, k, n_folds, train_rows, test_rows, scored)
        results.append(row)
    return results


def fold_result(
    prep: Prepared, k: int, n_folds: int, train_rows: range, test_rows: range, scored: dict
) -> dict:
    """A fold's row of the walk-forward table (its rows, dates and each forecaster's
    metrics), logged."""
    series = prep.series
    row = {
        "fold": k,
        "train_rows": [0, train_rows.stop],
        "test_first": series.dates[test_rows.start].date().isoformat(),
        "test_last": series.dates[test_rows.stop - 1].date().isoformat(),
        "relative_mae": scored["relative_mae"],
    }
    row |= {name: {key: scored[name][key] for key in FOLD_METRICS} for name in FORECASTERS}
    log.info(
        "walk-forward %s fold %d/%d (%s..%s): RMSE model %.4g, persistence %.4g",
        prep.name,
        k,
        n_folds,
        row["test_first"],
        row["test_last"],
        row["model"]["rmse"],
        row["persistence"]["rmse"],
    )
    return row


def summarize_folds(folds: list[dict]) -> dict:
    """Mean of each forecaster's fold metrics, and in how many folds the model beat
    persistence on MAE."""
    summary: dict = {"folds": len(folds)}
    for name in FORECASTERS:
        summary[name] = {k: float(np.mean([f[name][k] for f in folds])) for k in FOLD_METRICS}
    summary["relative_mae"] = float(np.mean([f["relative_mae"] for f in folds]))
    summary["folds_model_beats_persistence"] = int(sum(f["relative_mae"] < 1 for f in folds))
    return summary
