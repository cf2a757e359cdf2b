"""Figures of a price forecast: forecasts against the actual Close, residuals, the errors
per walk-forward fold and the training curves.

Figures are drawn with matplotlib's object API (:class:`~matplotlib.figure.Figure`, never
pyplot), so nothing here touches global plotting state or needs a display, and importing
the module draws nothing. Each PNG is rendered in memory and written atomically, so a
later stage never reads a half-written image. NaN in a series (a moving average's warm-up,
a missing day) leaves a gap in its line rather than failing: a figure is for looking at,
and the metrics, not the figures, are where NaN must be refused. What every figure shares
(reading its inputs, laying it out, writing the PNG) is :mod:`nnpipe.domains.ohlcv.plotting`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from nnpipe.domains.ohlcv.plotting import (
    DateLike,
    format_date_axis,
    log_gaps,
    new_figure,
    save_png,
    to_dates,
    to_float,
    to_series,
)

__all__ = ["plot_fold_errors", "plot_forecast", "plot_history", "plot_residuals"]

log = logging.getLogger(__name__)

ACTUAL_COLOR = "black"


# --------------------------------------------------------------------------- forecasts


def plot_forecast(
    dates: DateLike, actual: np.ndarray, forecasts: dict[str, np.ndarray], path: Path, title: str
) -> Path:
    """The actual Close against each forecast over the test period, in price units.

    ``forecasts`` maps a label (``"model"``, ``"persistence"``, ``"moving average"``) to
    one forecast per date; drawing the baselines beside the model shows at a glance
    whether it does more than repeat yesterday's price.
    """
    when = to_dates(dates)
    truth = to_series("actual", actual, when.size)
    if not forecasts:
        raise ValueError("forecasts is empty; pass at least one, e.g. {'model': predictions}")
    lines = {
        name: to_series(f"forecasts[{name!r}]", values, when.size)
        for name, values in forecasts.items()
    }
    fig = new_figure(9, 4)
    ax = fig.subplots()
    log_gaps("actual", truth)
    ax.plot(when, truth, color=ACTUAL_COLOR, linewidth=1.2, label="actual")
    for i, (name, series) in enumerate(lines.items()):
        log_gaps(f"forecasts[{name!r}]", series)
        ax.plot(when, series, color=f"C{i}", linewidth=0.9, alpha=0.9, label=name)
    format_date_axis(ax)
    ax.set(title=title, xlabel="date", ylabel="Close (price)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    return save_png(fig, Path(path))


def plot_residuals(dates: DateLike, residuals: np.ndarray, path: Path, title: str) -> Path:
    """Residuals (actual - forecast) over time beside their histogram.

    The time panel shows drift and volatility clusters that one error number hides; the
    histogram shows bias (the mean) and spread. The standard deviation is the population
    one (ddof=0), so mean² + std² equals the squared RMSE reported for the same forecast.
    """
    when = to_dates(dates)
    errors = to_series("residuals", residuals, when.size)
    log_gaps("residuals", errors)
    finite = errors[np.isfinite(errors)]
    fig = new_figure(10, 3.5)
    over_time, histogram = fig.subplots(1, 2, width_ratios=[2, 1])
    over_time.plot(when, errors, color="C0", linewidth=0.8)
    over_time.axhline(0.0, color="grey", linewidth=0.8, linestyle="--")
    format_date_axis(over_time)
    over_time.set(title=title, xlabel="date", ylabel="actual - forecast")
    over_time.grid(alpha=0.3)
    _draw_residual_histogram(histogram, finite)
    return save_png(fig, Path(path))


def _draw_residual_histogram(ax: Axes, finite: np.ndarray) -> None:
    """A histogram of the finite residuals with their mean marked and std in the legend."""
    ax.set(title="distribution", xlabel="actual - forecast", ylabel="count")
    if finite.size == 0:
        log.warning("no finite residuals to draw a histogram of")
        ax.text(0.5, 0.5, "no finite residuals", ha="center", va="center", transform=ax.transAxes)
        return
    mean, std = float(finite.mean()), float(finite.std())
    bins = int(np.clip(np.sqrt(finite.size), 5, 50))
    ax.hist(finite, bins=bins, color="C0", alpha=0.7)
    ax.axvline(mean, color="C3", linewidth=1.2, label=f"mean {mean:.3g}")
    ax.axvline(0.0, color="grey", linewidth=0.8, linestyle="--")
    ax.plot([], [], " ", label=f"std {std:.3g}")  # a legend row without a mark
    ax.legend(loc="best", fontsize="small")


# --------------------------------------------------------------------------- back-tests


def _forecaster_names(folds: list[dict]) -> list[str]:
    """The keys whose values are dicts of metrics, in first-seen order across the folds."""
    names: dict[str, None] = {}
    for row in folds:
        for key, value in row.items():
            if key != "fold" and isinstance(value, dict):
                names.setdefault(key)
    return list(names)


def _fold_error_table(folds: list[dict], names: list[str], metric: str) -> np.ndarray:
    """(fold, forecaster) values of ``metric``; absent or None values become NaN."""
    table = np.full((len(folds), len(names)), math.nan)
    for i, row in enumerate(folds):
        for j, name in enumerate(names):
            scores = row.get(name)
            if isinstance(scores, dict):
                table[i, j] = to_float(scores.get(metric), f"folds[{i}][{name!r}][{metric!r}]")
    return table


def plot_fold_errors(folds: list[dict], path: Path, metric: str = "rmse") -> Path:
    """Grouped bars of ``metric`` per walk-forward fold, one bar per forecaster.

    Rows look like ``{"fold": 1, "model": {"rmse": ..}, "persistence": {...}}``: every key
    but ``fold`` whose value is a dict is a forecaster. A dashed line in the forecaster's
    colour marks its mean over the folds, so a model that wins on average but loses in
    some periods is visible as such.
    """
    if not folds:
        raise ValueError("folds is empty; pass one row per walk-forward fold")
    names = _forecaster_names(folds)
    if not names:
        raise ValueError(
            "no forecaster in folds: each row needs keys like 'model' whose "
            f"values are dicts of metrics; the first row has {sorted(folds[0])}"
        )
    table = _fold_error_table(folds, names, metric)
    if np.isnan(table).all():
        available = sorted(
            {k for row in folds for n in names if isinstance(row.get(n), dict) for k in row[n]}
        )
        raise ValueError(f"metric {metric!r} has no value in any fold; available: {available}")
    log_gaps(f"fold {metric}", table)
    labels = [str(row.get("fold", i + 1)) for i, row in enumerate(folds)]
    fig = new_figure(max(6.5, 4.5 + 0.9 * len(folds)), 3.8)
    ax = fig.subplots()
    _draw_grouped_bars(ax, table, names)
    ax.set_xticks(np.arange(len(folds)), labels=labels)
    ax.set(title=f"{metric} per walk-forward fold", xlabel="fold", ylabel=metric)
    ax.grid(axis="y", alpha=0.3)
    # Outside the axes: bars fill the plot, so no corner inside it is reliably free.
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small")
    return save_png(fig, Path(path))


def _draw_grouped_bars(ax: Axes, table: np.ndarray, names: list[str]) -> None:
    """One bar group per fold (row), one colour per forecaster (column), means dashed."""
    width = 0.8 / len(names)
    positions = np.arange(table.shape[0])
    for j, name in enumerate(names):
        column = table[:, j]
        offset = (j - (len(names) - 1) / 2) * width
        finite = column[np.isfinite(column)]
        label = f"{name} (mean {finite.mean():.3g})" if finite.size else f"{name} (no values)"
        # NaN bars are drawn with zero height so the other forecasters keep their slots.
        ax.bar(
            positions + offset,
            np.nan_to_num(column, nan=0.0),
            width=width,
            color=f"C{j}",
            label=label,
        )
        if finite.size:
            ax.axhline(float(finite.mean()), color=f"C{j}", linewidth=1.0, linestyle="--")


# --------------------------------------------------------------------------- training


def _history_column(history: list[dict], key: str) -> np.ndarray:
    """``key`` of every row as floats; a missing key, None or NaN becomes NaN."""
    return np.array(
        [to_float(row.get(key), f"history[{i}][{key!r}]") for i, row in enumerate(history)]
    )


def _positive_only(name: str, values: np.ndarray) -> np.ndarray:
    """NaN where a value cannot sit on a log axis, counted in the log."""
    bad = np.isfinite(values) & (values <= 0)
    if bad.any():
        log.info("%s: %d value(s) <= 0 are left off the log axis", name, int(bad.sum()))
    return np.where(bad, math.nan, values)


def plot_history(history: list[dict], path: Path) -> Path:
    """Training and validation loss per epoch on a log axis, and the learning rate.

    A log axis keeps the late epochs readable when the first loss is orders of magnitude
    larger. The learning-rate panel appears only when some row has ``lr``, and makes
    plateaus that a scheduler cut short easy to tell apart from real convergence.
    """
    if not history:
        raise ValueError(
            "history is empty; pass one row per epoch, e.g. "
            "{'epoch': 1, 'loss': 0.1, 'val_loss': 0.2}"
        )
    epochs = np.array(
        [to_float(row.get("epoch"), f"history[{i}]['epoch']") for i, row in enumerate(history)]
    )
    epochs = np.where(np.isnan(epochs), np.arange(1, len(history) + 1), epochs)
    curves = {
        key: _positive_only(key, _history_column(history, key)) for key in ("loss", "val_loss")
    }
    if all(np.isnan(values).all() for values in curves.values()):
        seen = sorted({key for row in history for key in row})
        raise ValueError(
            f"history has no positive loss or val_loss in any of its "
            f"{len(history)} row(s); keys seen: {seen}"
        )
    lr = _positive_only("lr", _history_column(history, "lr"))
    has_lr = bool(np.isfinite(lr).any())
    fig = new_figure(9 if has_lr else 5.5, 3.5)
    axes = fig.subplots(1, 2 if has_lr else 1, squeeze=False)[0]
    _draw_loss_curves(axes[0], epochs, curves)
    if has_lr:
        axes[1].plot(epochs, lr, color="C2", linewidth=1.0, marker=".")
        axes[1].set(title="learning rate", xlabel="epoch", ylabel="lr", yscale="log")
        axes[1].grid(alpha=0.3)
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 2.5
    return save_png(fig, Path(path))


def _draw_loss_curves(ax: Axes, epochs: np.ndarray, curves: dict[str, np.ndarray]) -> None:
    """Train loss solid, validation loss dashed; a curve with no values is left out."""
    for i, (key, values) in enumerate(curves.items()):
        if np.isfinite(values).any():
            log_gaps(key, values)
            # Markers keep single epochs between gaps visible, which a line alone would not.
            ax.plot(
                epochs,
                values,
                color=f"C{i}",
                linestyle="-" if i == 0 else "--",
                linewidth=1.0,
                marker=".",
                label=key,
            )
    ax.set(title="loss", xlabel="epoch", ylabel="loss", yscale="log")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="best", fontsize="small")
