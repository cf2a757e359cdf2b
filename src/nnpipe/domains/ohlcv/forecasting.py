"""From a validated price series to model inputs, and from forecasts to honest numbers.

Pure numpy/pandas: the stages (featurize, train, evaluate) and walk-forward evaluation
share these, so a window is cut and a metric computed the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from nnpipe.domains.ohlcv import metrics as m
from nnpipe.domains.ohlcv.artifacts import OhlcvFeatures
from nnpipe.domains.ohlcv.scaling import TrainOnlyScaler
from nnpipe.domains.ohlcv.windows import add_features, make_target, make_windows

FORECASTERS = ("model", "persistence", "moving_average")


@dataclass(frozen=True)
class SeriesFrame:
    """One series ready to window: features and target per row, rows with full history."""

    dates: pd.DatetimeIndex
    values: np.ndarray  # (rows, features)
    feature_names: list[str]
    target: np.ndarray  # (rows,) what row t's window predicts
    close: np.ndarray  # (rows,) the Close, for baselines and price conversion

    @property
    def close_index(self) -> int:
        return self.feature_names.index("Close")


def prepare_series(
    frame: pd.DataFrame, derived: Sequence[str], target_kind: Literal["close", "log_return"]
) -> SeriesFrame:
    """Add the derived features, compute the target, and drop the leading rows that lack
    the history they need (a log return's previous Close, volume_z's 20 days)."""
    features = add_features(frame, list(derived))
    features["__target"] = make_target(frame, target_kind)
    complete = features.dropna()
    values = complete.drop(columns="__target")
    return SeriesFrame(
        dates=pd.DatetimeIndex(complete.index),
        values=values.to_numpy(float),
        feature_names=list(values.columns),
        target=complete["__target"].to_numpy(float),
        close=complete["Close"].to_numpy(float),
    )


def series_table(series: SeriesFrame) -> pd.DataFrame:
    """The prepared series as a table (the featurize output, read back by later stages)."""
    table = pd.DataFrame(
        series.values, columns=series.feature_names, index=series.dates.rename("date")
    )
    table["target"] = series.target
    return table


def read_series_table(table: pd.DataFrame) -> SeriesFrame:
    """Inverse of :func:`series_table`."""
    values = table.drop(columns="target")
    return SeriesFrame(
        dates=pd.DatetimeIndex(table.index),
        values=values.to_numpy(float),
        feature_names=list(values.columns),
        target=table["target"].to_numpy(float),
        close=table["Close"].to_numpy(float),
    )


@dataclass(frozen=True)
class Windows:
    x: np.ndarray  # (n, look_back, features), raw units
    y: np.ndarray  # (n,) target units
    rows: np.ndarray  # (n,) target row of each window

    def __len__(self) -> int:
        return len(self.y)


def windows_between(
    series: SeriesFrame,
    look_back: int,
    horizon: int,
    start: int,
    end: int,
) -> Windows:
    """Windows with inputs and target all in rows ``[start, end)``."""
    x, y, rows = make_windows(series.values, series.target, look_back, horizon, start, end)
    return Windows(x, y, rows)


def windows_targeting(
    series: SeriesFrame, look_back: int, horizon: int, first: int, end: int
) -> Windows:
    """Windows whose *targets* are rows ``[first, end)``; their inputs are the rows before,
    which are in the past when each forecast is made (walk-forward test blocks)."""
    return windows_between(series, look_back, horizon, first - look_back - horizon + 1, end)


def fit_scalers(
    series: SeriesFrame,
    train: Windows,
    train_rows: tuple[int, int],
) -> tuple[TrainOnlyScaler, TrainOnlyScaler]:
    """Input scaler on the training rows, target scaler on the training targets: nothing
    from validation or test enters either."""
    start, end = train_rows
    inputs = TrainOnlyScaler(series.feature_names).fit(series.values[start:end])
    target = TrainOnlyScaler(["target"]).fit(train.y.reshape(-1, 1))
    return inputs, target


def to_price(
    forecast: np.ndarray, last_close: np.ndarray, target_kind: str, horizon: int
) -> np.ndarray:
    """A forecast in target units as a Close: itself, or the last Close grown by the
    predicted log return (a horizon-h return is the return of the target row's day)."""
    if target_kind == "close":
        return np.asarray(forecast, dtype=float)
    if horizon != 1:
        raise ValueError(
            "a log-return target converts to a price only for horizon 1: the "
            "Closes between the window and the target are unknown"
        )
    return np.asarray(last_close, dtype=float) * np.exp(np.asarray(forecast, dtype=float))


def score_forecasts(
    series: SeriesFrame,
    rows: np.ndarray,
    horizon: int,
    model_price: np.ndarray,
    train_end: int,
    ma_window: int,
) -> dict:
    """Test metrics in price units for the model and both baselines, with the
    Diebold-Mariano test of model against persistence.

    MASE is scaled by the naive in-sample error of the training Closes (Hyndman &
    Koehler); ``relative_mae`` divides by persistence's MAE on the same test days, i.e.
    MASE scaled on the test period: below 1 the model beats persistence.
    """
    actual = series.close[rows]
    last = m.last_known_values(series.close, rows, horizon)
    forecasts = {
        "model": np.asarray(model_price, dtype=float),
        "persistence": m.persistence_forecast(last),
        "moving_average": m.moving_average_forecast(series.close, ma_window, rows, horizon),
    }
    train_close = series.close[:train_end]
    result: dict = {}
    for name, forecast in forecasts.items():
        result[name] = {
            "rmse": m.rmse(actual, forecast),
            "mae": m.mae(actual, forecast),
            "mape": m.mape(actual, forecast),
            "mase": m.mase(actual, forecast, train_close, m=horizon),
            "directional_accuracy": m.directional_accuracy(actual, forecast, last),
        }
    result["relative_mae"] = result["model"]["mae"] / result["persistence"]["mae"]
    result["relative_rmse"] = result["model"]["rmse"] / result["persistence"]["rmse"]
    stat, p_value = m.diebold_mariano(
        actual - forecasts["model"], actual - forecasts["persistence"], horizon=horizon
    )
    # a constant non-zero loss difference gives an infinite statistic; JSON has none: null
    result["dm_statistic"] = stat if np.isfinite(stat) else None
    result["dm_p_value"] = p_value
    result["n_forecasts"] = len(rows)
    return result | {"_forecasts": forecasts, "_actual": actual}


@dataclass(frozen=True)
class Prepared:
    """One series as featurize left it: rows, splits, windows and train-only scalers."""

    name: str
    series: SeriesFrame
    splits: dict[str, tuple[int, int]]
    windows: dict[str, Windows]
    input_scaler: TrainOnlyScaler
    target_scaler: TrainOnlyScaler
    look_back: int
    horizon: int
    target_kind: str


def read_prepared(features_dir: Path, name: str, meta: OhlcvFeatures) -> Prepared:
    """Rebuild a series' windows from featurize's table and meta (cheap and exact)."""
    info = meta.series[name]
    table = pd.read_csv(features_dir / f"{name}.csv", index_col="date", parse_dates=["date"])
    series = read_series_table(table)
    if series.feature_names != info.features or len(series.target) != info.rows:
        raise ValueError(
            f"{features_dir / (name + '.csv')} does not match meta.json; re-run featurize"
        )
    splits = {s: v.rows for s, v in info.splits.items()}
    look_back, horizon = meta.look_back, meta.horizon
    windows = {s: windows_between(series, look_back, horizon, *r) for s, r in splits.items()}
    return Prepared(
        name,
        series,
        splits,
        windows,
        TrainOnlyScaler.from_dict(info.input_scaler),
        TrainOnlyScaler.from_dict(info.target_scaler),
        look_back,
        horizon,
        meta.target,
    )
