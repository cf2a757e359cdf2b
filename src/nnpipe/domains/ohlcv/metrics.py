"""How good a price forecast is, compared with the forecasts that cost nothing.

A daily price series is close to a random walk, so "tomorrow's Close = today's Close"
(:func:`persistence_forecast`) already has a small RMSE; a model is only worth deploying
if it beats that baseline, by more than chance (:func:`diebold_mariano`). Scale-free
errors (:func:`mase`, against the naive forecast on the training series) and the share
of correctly called up/down moves (:func:`directional_accuracy`) make results comparable
across stocks and price levels. :func:`walk_forward_folds` gives expanding-window
back-test folds, the time-series replacement for k-fold cross-validation.
"""

from __future__ import annotations

import logging

import numpy as np

from nnpipe.domains.ohlcv.sources import OhlcvDataError

__all__ = [
    "diebold_mariano",
    "directional_accuracy",
    "last_known_values",
    "mae",
    "mape",
    "mase",
    "moving_average_forecast",
    "persistence_forecast",
    "rmse",
    "walk_forward_folds",
]

log = logging.getLogger(__name__)


def _as_flat_pair(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as flat floats of one non-zero length, without NaN."""
    a = np.asarray(y_true, dtype=float).ravel()
    b = np.asarray(y_pred, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"y_true has {a.size} value(s) but y_pred has {b.size}")
    if a.size == 0:
        raise ValueError("cannot score zero predictions")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("actuals and predictions must be finite; found NaN or infinity")
    return a, b


# --------------------------------------------------------------------------- errors


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Root mean squared error, in the units of the target."""
    a, b = _as_flat_pair(y_true, y_pred)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute error, in the units of the target."""
    a, b = _as_flat_pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b)))


def mape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean absolute percentage error, in percent, over the non-zero actuals.

    Zero actuals have no percentage error and are left out (and counted in the log);
    when all are zero the metric does not exist and a ``ValueError`` says so. Meant for
    prices, which are positive, not for returns, which cross zero.
    """
    a, b = _as_flat_pair(y_true, y_pred)
    nonzero = a != 0
    if not nonzero.any():
        raise ValueError("MAPE is undefined: every actual value is zero; use MAE or MASE")
    if not nonzero.all():
        log.debug("MAPE ignores %d zero actual(s) of %d", int((~nonzero).sum()), a.size)
    return float(100.0 * np.mean(np.abs((a[nonzero] - b[nonzero]) / a[nonzero])))


def mase(y_true: np.ndarray, y_pred: np.ndarray, y_train: np.ndarray, m: int = 1) -> float:
    """Mean absolute scaled error: MAE over the in-sample MAE of the ``m``-step naive forecast.

    The scale comes from the training series (Hyndman & Koehler, 2006), so it never uses
    the values being forecast; below 1 beats the naive forecast's typical training error.
    """
    a, b = _as_flat_pair(y_true, y_pred)
    train = np.asarray(y_train, dtype=float).ravel()
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    if train.size <= m:
        raise ValueError(f"y_train needs more than m={m} value(s) to scale MASE, got {train.size}")
    if not np.isfinite(train).all():
        raise ValueError("y_train must be finite; found NaN or infinity")
    scale = float(np.mean(np.abs(train[m:] - train[:-m])))
    if scale == 0:
        raise ValueError(
            "MASE is undefined: the training series is constant, so the "
            "naive forecast has no error to scale by"
        )
    return float(np.mean(np.abs(a - b)) / scale)


def directional_accuracy(y_true: np.ndarray, y_pred: np.ndarray, y_prev: np.ndarray) -> float:
    """Share of steps whose predicted move from ``y_prev`` has the sign of the actual move.

    Steps where the actual value did not move are left out (no direction to call); a
    prediction of no move on a step that did move counts as wrong.
    """
    a, b = _as_flat_pair(y_true, y_pred)
    prev = np.asarray(y_prev, dtype=float).ravel()
    if prev.shape != a.shape:
        raise ValueError(f"y_prev has {prev.size} value(s), expected {a.size}")
    true_move = np.sign(a - prev)
    moved = true_move != 0
    if not moved.any():
        raise ValueError("directional accuracy is undefined: the actual value never moves")
    return float(np.mean(np.sign(b - prev)[moved] == true_move[moved]))


# --------------------------------------------------------------------------- baselines


def last_known_values(series: np.ndarray, target_index: np.ndarray, horizon: int) -> np.ndarray:
    """``series`` at the last row known when each target was forecast (``target - horizon``).

    With the windows of :func:`nnpipe.domains.ohlcv.windows.make_windows` that is the last input
    row of each window: the ``prev_close`` of the persistence forecast and the ``y_prev``
    of :func:`directional_accuracy`.
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    rows = np.asarray(target_index, dtype=int) - horizon
    if rows.size and rows.min() < 0:
        raise ValueError(
            f"target row {rows.min() + horizon} has no row {horizon} step(s) before it"
        )
    return np.asarray(series, dtype=float)[rows]


def persistence_forecast(prev_close: np.ndarray) -> np.ndarray:
    """The naive forecast: the next Close equals the last known Close."""
    return np.array(prev_close, dtype=float, copy=True)


def moving_average_forecast(
    closes: np.ndarray, window: int, target_index: np.ndarray, horizon: int
) -> np.ndarray:
    """For each target row, the mean of the ``window`` Closes known when forecasting it.

    Those are the rows ``[k - horizon - window + 1, k - horizon]`` for target row ``k``:
    strictly before the target, and before any row between the forecast and its target.
    """
    closes = np.asarray(closes, dtype=float)
    targets = np.asarray(target_index, dtype=int)
    if window < 1 or horizon < 1:
        raise ValueError(f"window and horizon must be >= 1, got {window}, {horizon}")
    last = targets - horizon  # the last known row
    if targets.size and (last.min() - window + 1 < 0 or targets.max() >= len(closes)):
        raise ValueError(
            f"each target row needs {window + horizon - 1} earlier row(s) and "
            f"must be < {len(closes)}; got rows {targets.min()}..{targets.max()}"
        )
    sums = np.concatenate([[0.0], np.cumsum(closes)])
    return (sums[last + 1] - sums[last + 1 - window]) / window


# --------------------------------------------------------------------------- significance


def diebold_mariano(
    e1: np.ndarray, e2: np.ndarray, horizon: int = 1, power: int = 2
) -> tuple[float, float]:
    """Diebold-Mariano test of equal accuracy of two forecasts, from their errors.

    Loss differential ``d = |e1|**power - |e2|**power``; its long-run variance uses the
    autocovariances up to lag ``horizon - 1`` (h-step forecast errors overlap). The
    statistic has the Harvey, Leybourne & Newbold (1997) small-sample correction and is
    referred to Student's t with n - 1 degrees of freedom. Returns ``(statistic, two-sided
    p-value)``; a negative statistic means forecast 1 has the lower loss. Identical losses
    give ``(0.0, 1.0)``; a constant non-zero differential gives an infinite statistic and
    p-value 0.
    """
    a = np.asarray(e1, dtype=float).ravel()
    b = np.asarray(e2, dtype=float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"e1 has {a.size} error(s) but e2 has {b.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("errors must be finite; found NaN or infinity")
    if horizon < 1 or power < 1:
        raise ValueError(f"horizon and power must be >= 1, got {horizon}, {power}")
    n = a.size
    if n < 2 or n <= horizon:
        raise ValueError(
            f"the Diebold-Mariano test needs more than max(1, horizon={horizon}) errors, got {n}"
        )
    d = np.abs(a) ** power - np.abs(b) ** power
    mean = float(d.mean())
    centred = d - mean
    gamma = [float(centred[k:] @ centred[: n - k]) / n for k in range(horizon)]
    variance = (gamma[0] + 2 * sum(gamma[1:])) / n
    if variance <= 0 and gamma[0] > 0:
        log.warning("DM: autocovariances make the variance negative; using lag 0 only")
        variance = gamma[0] / n
    if variance <= 0:
        if mean == 0:
            return 0.0, 1.0
        return float(np.copysign(np.inf, mean)), 0.0
    correction = np.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    statistic = float(correction * mean / np.sqrt(variance))
    # Student-t CDF from scipy.special: the same value as scipy.stats, a fraction of the import
    # (here, not at the top: the serving image has no scipy and needs only to_price's module)
    from scipy import special

    p_value = float(2 * special.stdtr(n - 1, -abs(statistic)))
    return statistic, p_value


# --------------------------------------------------------------------------- back-testing


def walk_forward_folds(
    n_rows: int, n_folds: int, min_train: int, gap: int, test_size: int | None = None
) -> list[tuple[range, range]]:
    """Expanding-window folds ``(train rows, test rows)``, the last test block ending last.

    Fold ``k`` trains on every row up to ``gap`` rows before its test block; test blocks
    are consecutive and do not overlap, so each row is tested at most once and always by
    a model that saw only earlier rows. ``test_size`` defaults to the largest size that
    fits ``n_folds`` blocks after ``min_train + gap`` rows; the first training block then
    holds at least ``min_train`` rows (more when rows are left over).
    """
    if n_folds < 1 or min_train < 1 or gap < 0:
        raise ValueError(
            f"need n_folds >= 1, min_train >= 1 and gap >= 0; got {n_folds}, {min_train}, {gap}"
        )
    if test_size is None:
        test_size = (n_rows - min_train - gap) // n_folds
    elif test_size < 1:
        raise ValueError(f"test_size must be >= 1, got {test_size}")
    needed = min_train + gap + n_folds * max(test_size, 1)
    if test_size < 1 or n_rows < needed:
        raise OhlcvDataError(
            f"{n_rows} rows are too few for {n_folds} walk-forward fold(s): {min_train} "
            f"training row(s) + a gap of {gap} + {n_folds} test block(s) of "
            f"{max(test_size, 1)} need {needed}; use fewer folds or a longer history"
        )
    first_test = n_rows - n_folds * test_size
    folds = []
    for k in range(n_folds):
        test_start = first_test + k * test_size
        folds.append((range(0, test_start - gap), range(test_start, test_start + test_size)))
    return folds


def headline_metrics(series_metrics: dict) -> dict[str, dict[str, float]]:
    """The few numbers of one series a user compares across experiments (``dvc exp
    show``): the model's test errors beside the persistence and moving-average baselines,
    its error relative to persistence (below 1 beats it) and, where it ran, walk-forward's."""
    model, persistence = series_metrics["model"], series_metrics["persistence"]
    moving = series_metrics["moving_average"]
    headline = {
        "test": {
            "rmse": model["rmse"],
            "mae": model["mae"],
            "mase": model["mase"],
            "directional_accuracy": model["directional_accuracy"],
            "relative_mae": series_metrics["relative_mae"],
            "dm_p_value": series_metrics["dm_p_value"],
        },
        "baseline": {
            "persistence_rmse": persistence["rmse"],
            "persistence_mae": persistence["mae"],
            "moving_average_rmse": moving["rmse"],
            "moving_average_mae": moving["mae"],
        },
    }
    walk = series_metrics.get("walk_forward")
    if walk:
        headline["walk_forward"] = {
            "relative_mae": walk["relative_mae"],
            "folds": walk["folds"],
            "folds_beating_persistence": walk["folds_model_beats_persistence"],
        }
    return {group: {k: float(v) for k, v in values.items()} for group, values in headline.items()}
