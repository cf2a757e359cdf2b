"""What every price figure shares: dates and series read and checked, a laid-out figure
with matplotlib's object API (never pyplot: no global state, no display), date axes, and
the PNG rendered in memory and written atomically."""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from nnpipe.io import atomic_write_bytes

log = logging.getLogger(__name__)

DPI = 100
DateLike = Sequence[str] | np.ndarray


# --------------------------------------------------------------------------- inputs


def to_dates(dates: DateLike) -> np.ndarray:
    """ISO strings or datetime64 values as naive ``datetime64[ns]``, refusing gaps.

    Dates must not decrease: an unsorted test period means rows were shuffled somewhere,
    which a chronological forecast must never be, and it would draw as a scribble.
    """
    raw = np.asarray(dates)
    if raw.ndim != 1:
        raise ValueError(f"dates must be one-dimensional, got shape {raw.shape}")
    if raw.size == 0:
        raise ValueError("dates is empty; pass one date per forecast step")
    # ISO8601 for text: one documented format, no silent per-element guessing by dateutil.
    fmt = "ISO8601" if raw.dtype.kind in "OUS" else None
    try:
        index = pd.DatetimeIndex(pd.to_datetime(raw, format=fmt))
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"dates could not be read as dates ({exc}); pass ISO date strings "
            "like '2024-01-31' or numpy datetime64 values"
        ) from exc
    if index.tz is not None:
        index = index.tz_convert(None)
    missing = int(pd.isna(index).sum())
    if missing:
        raise ValueError(
            f"dates holds {missing} missing date(s) of {len(index)}; "
            "every forecast step needs a date"
        )
    if not index.is_monotonic_increasing:
        raise ValueError(
            "dates are not in increasing order; sort the rows (with their "
            "actuals and forecasts) by date first"
        )
    return index.to_numpy(dtype="datetime64[ns]")


def to_series(name: str, values: Any, n_dates: int) -> np.ndarray:
    """``values`` as flat floats, one per date; an (n, 1) model output is accepted too."""
    series = np.asarray(values, dtype=float).ravel()
    if series.size != n_dates:
        raise ValueError(
            f"{name} has {series.size} value(s) but dates has {n_dates}; pass one value per date"
        )
    return series


def log_gaps(name: str, series: np.ndarray) -> None:
    """Count the non-finite values that will show as gaps, so none goes unnoticed."""
    gaps = int((~np.isfinite(series)).sum())
    if gaps:
        log.info(
            "%s: %d of %d value(s) are NaN or infinite and are left out of the figure",
            name,
            gaps,
            series.size,
        )


def to_float(value: Any, where: str) -> float:
    """A number from a JSON-ish record; None and non-finite values become NaN."""
    if value is None:
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where} is {value!r}, not a number") from exc
    return number if math.isfinite(number) else math.nan


# --------------------------------------------------------------------------- drawing


def new_figure(width: float, height: float) -> Figure:
    """A small figure that lays itself out, so legends and labels are never clipped."""
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def format_date_axis(ax: Axes) -> None:
    """Tick dates at a spacing that suits the period, labelled without repetition."""
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def save_png(fig: Figure, path: Path) -> Path:
    """Render ``fig`` to PNG in memory, then write it atomically (creating folders)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    written = atomic_write_bytes(path, buffer.getvalue())
    log.debug("wrote figure %s", written)
    return written
