"""Turning a price series into supervised windows without ever looking ahead.

The three places where a forecaster commonly cheats, and how this module prevents each:

* **Splits** are contiguous blocks in time order (train, then val, then test), with
  ``gap`` rows left unused between two blocks, so the end of one block and the start of
  the next are never in one window (:func:`chronological_splits`).
* **Scaling** statistics come from the training rows only
  (:class:`~nnpipe.domains.ohlcv.scaling.TrainOnlyScaler`); a scaler fitted on the whole
  series tells training where prices will go.
* **Windows** are cut inside one split: the inputs of a window are the ``look_back`` rows
  *before* its target row, and inputs and target all lie in the same split
  (:func:`make_windows`). Derived features use trailing (past and current) rows only.

Row convention: target row ``t`` holds the quantity observed at row ``t`` (its Close, or
its log return); a window pairs it with input rows ``[t - look_back, t)``, so with
``horizon=1`` the target is the *next* Close after the last input row.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import numpy as np
import pandas as pd

from nnpipe.domains.ohlcv.sources import COLUMNS, OhlcvDataError

__all__ = [
    "DERIVED_FEATURES",
    "VOLUME_Z_WINDOW",
    "add_features",
    "chronological_splits",
    "make_target",
    "make_windows",
]

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")
DERIVED_FEATURES = ("log_return", "hl_range", "volume_z")
VOLUME_Z_WINDOW = 20  # trading days: about a month


# --------------------------------------------------------------------------- splits


def _size_splits(
    n_rows: int, val_fraction: float, test_fraction: float, gap: int
) -> dict[str, int]:
    usable = n_rows - 2 * gap
    n_val = round(usable * val_fraction)
    n_test = round(usable * test_fraction)
    return {"train": usable - n_val - n_test, "val": n_val, "test": n_test}


def _count_rows_needed(val_fraction: float, test_fraction: float, gap: int, per_split: int) -> int:
    """The fewest rows for which every split holds at least ``per_split`` rows."""
    smallest = min(val_fraction, test_fraction, 1 - val_fraction - test_fraction)
    # a lower bound: a split of fraction f holds at most usable * f + 1 rows
    n = max(3 * per_split, math.floor((per_split - 1) / smallest)) + 2 * gap
    while min(_size_splits(n, val_fraction, test_fraction, gap).values()) < per_split:
        n += 1
    return n


def chronological_splits(
    n_rows: int, val_fraction: float, test_fraction: float, gap: int, *, horizon: int = 1
) -> dict[str, tuple[int, int]]:
    """Contiguous ``[start, end)`` row ranges ``train``, ``val``, ``test``, in time order.

    ``gap`` rows (the look-back) are left out between train and val and between val and
    test; the fractions apply to the rows that remain. Test ends at the last row, so the
    most recent prices are the ones held out. Each split must hold at least one window,
    i.e. ``gap + horizon`` rows (``look_back + horizon`` when ``gap`` is the look-back);
    otherwise :class:`OhlcvDataError` says which split is short and how many rows are
    needed in total.
    """
    if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ValueError(
            f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) "
            "must each be in (0, 1) and leave room for training (sum < 1)"
        )
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    per_split = gap + horizon
    sizes = _size_splits(n_rows, val_fraction, test_fraction, gap)
    short = [name for name in SPLIT_NAMES if sizes[name] < per_split]
    if short:
        needed = _count_rows_needed(val_fraction, test_fraction, gap, per_split)
        raise OhlcvDataError(
            f"{n_rows} rows are too few: the {' and '.join(short)} split(s) would hold "
            f"{[max(sizes[s], 0) for s in short]} row(s), but one window needs {per_split} "
            f"(look-back {gap} + horizon {horizon}), and {gap} row(s) are left out between "
            f"splits. With val_fraction={val_fraction} and test_fraction={test_fraction} at "
            f"least {needed} rows are needed; use a longer history, larger fractions or a "
            "shorter look-back"
        )
    splits, start = {}, 0
    for name in SPLIT_NAMES:
        splits[name] = (start, start + sizes[name])
        start += sizes[name] + gap
    return splits


# --------------------------------------------------------------------------- features


def add_features(df: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The five price columns followed by the derived ``features`` asked for, in that order.

    Derived features use only the current and earlier rows:

    * ``log_return``: log(Close_t / Close_{t-1});
    * ``hl_range``: (High_t - Low_t) / Close_t, the day's range relative to its price;
    * ``volume_z``: (Volume_t - mean) / std over the trailing 20 rows ending at t
      (0 when those volumes are all equal).

    The first rows lack the history these need (1 row for ``log_return``, 19 for
    ``volume_z``) and are NaN: the caller must drop them (e.g. ``frame.dropna()``) before
    splitting, scaling and windowing, which refuse NaN. Names of the five base columns
    are accepted in ``features`` and change nothing.
    """
    unknown = [f for f in features if f not in DERIVED_FEATURES and f not in COLUMNS]
    if unknown:
        raise ValueError(
            f"unknown feature(s) {unknown}; choose from {list(COLUMNS) + list(DERIVED_FEATURES)}"
        )
    if len(set(features)) != len(features):
        raise ValueError(f"features lists a name twice: {features}")
    out = df[list(COLUMNS)].astype(float)
    for name in (f for f in features if f in DERIVED_FEATURES):
        if name == "log_return":
            out[name] = np.log(out["Close"] / out["Close"].shift(1))
        elif name == "hl_range":
            out[name] = (out["High"] - out["Low"]) / out["Close"]
        else:
            rolling = out["Volume"].rolling(VOLUME_Z_WINDOW, min_periods=VOLUME_Z_WINDOW)
            mean, std = rolling.mean(), rolling.std()
            z = (out["Volume"] - mean) / std
            out[name] = z.mask((std == 0) & mean.notna(), 0.0)
    return out


def make_target(df: pd.DataFrame, kind: Literal["close", "log_return"]) -> np.ndarray:
    """The quantity to forecast at each row: its Close, or its log return (NaN at row 0).

    Row ``t`` holds what is observed at ``t``; :func:`make_windows` pairs it with the rows
    before ``t``, which makes it the next Close (the tutorial's target) or the next return.
    The return is the more honest target: a model predicting prices can look good merely
    by echoing the last Close, while the return strips that free part away.
    """
    close = df["Close"].to_numpy(dtype=float)
    if kind == "close":
        return close.copy()
    if kind == "log_return":
        out = np.full(len(close), np.nan)
        out[1:] = np.log(close[1:] / close[:-1])
        return out
    raise ValueError(f"kind must be 'close' or 'log_return', got {kind!r}")


# --------------------------------------------------------------------------- windows


def make_windows(
    values: np.ndarray, target: np.ndarray, look_back: int, horizon: int, start: int, end: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Supervised windows lying wholly within rows ``[start, end)``.

    Window ``i`` has inputs ``values[t - look_back : t]`` and target
    ``target[t + horizon - 1]``, for every ``t`` with ``t - look_back >= start`` and
    ``t + horizon - 1 < end``; ``horizon=1`` predicts the row right after the inputs.
    Returns ``X`` of shape ``(n, look_back, n_features)``, ``y`` of shape ``(n,)`` and
    the target row of each window (``t + horizon - 1``), which locates it in time and
    feeds the baselines. Arrays are copies, so later edits of ``values`` do not leak in.
    Nothing outside ``[start, end)`` is read, so windows of one split never use a row of
    another.
    """
    values = np.asarray(values, dtype=float)
    target = np.asarray(target, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D (rows, features), got shape {values.shape}")
    if target.shape != (len(values),):
        raise ValueError(
            f"target must have one value per row ({len(values)}), got shape {target.shape}"
        )
    if look_back < 1 or horizon < 1:
        raise ValueError(f"look_back and horizon must be >= 1, got {look_back}, {horizon}")
    if not 0 <= start <= end <= len(values):
        raise ValueError(
            f"[start, end) = [{start}, {end}) is not a range within the {len(values)} rows"
        )
    n = end - start - look_back - horizon + 1
    if n < 1:
        raise ValueError(
            f"rows [{start}, {end}) are too few for one window: it needs "
            f"look_back + horizon = {look_back + horizon} rows"
        )
    inputs = values[start : end - horizon]
    windows = np.lib.stride_tricks.sliding_window_view(inputs, look_back, axis=0)
    x = np.ascontiguousarray(windows.transpose(0, 2, 1))  # (n, look_back, features)
    target_rows = np.arange(start + look_back + horizon - 1, end)
    y = target[target_rows].copy()
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError(
            f"rows [{start}, {end}) hold NaN or infinite values; drop the "
            "first rows that lack history (add_features, a log-return target) "
            "before windowing"
        )
    return x, y, target_rows
