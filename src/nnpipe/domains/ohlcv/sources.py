"""Where daily prices come from: read a price file, fetch one.

:func:`read_ohlcv_csv` turns the common CSV layouts (an unnamed date index as written by
pandas, a ``Date``/``Datetime``/``timestamp`` column, any letter case, an extra
``Adj Close``, intraday timestamps with a time zone) into one shape: a ``DatetimeIndex``
named ``date`` and float columns ``Open, High, Low, Close, Volume`` in file order.

Nothing is sorted, dropped or filled here: :func:`nnpipe.domains.ohlcv.validation.
validate_ohlcv` judges the rows, with the row numbers of the file. :func:`fetch_url`
downloads a price file.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np
import pandas as pd

from nnpipe.download import fetch
from nnpipe.errors import NnpipeError

__all__ = ["COLUMNS", "PRICE_COLUMNS", "OhlcvDataError", "fetch_url", "read_ohlcv_csv"]

log = logging.getLogger(__name__)

COLUMNS = ("Open", "High", "Low", "Close", "Volume")
PRICE_COLUMNS = ("Open", "High", "Low", "Close")

_DATE_NAMES = ("date", "datetime", "timestamp")
_UNNAMED = re.compile(r"^(Unnamed: \d+)?$")
_SHOWN = 10  # bad values quoted in an error message


class OhlcvDataError(NnpipeError, ValueError):
    """A price file or series is unusable as given; the message says what and the fix."""


def _normalise_name(name: object) -> str:
    """``'Adj Close'``, ``'adj_close'`` and ``'ADJ-CLOSE'`` all become ``'adjclose'``."""
    return re.sub(r"[\s_.\-]", "", str(name).lstrip("\ufeff").lower())


def _describe_source(source: str | os.PathLike[str] | TextIO) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    return str(getattr(source, "name", "<text stream>"))


def _read_raw(source: str | os.PathLike[str] | TextIO, origin: str) -> pd.DataFrame:
    """Every cell as text (or NaN for empty/``null``/``NaN``), so each column is parsed by
    rules we control and a bad value can be reported with its row."""
    options: dict[str, Any] = {"dtype": str, "skipinitialspace": True}
    try:
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            if not path.is_file():
                raise OhlcvDataError(
                    f"price file {path} does not exist (or is not a file); check the path"
                )
            if path.stat().st_size == 0:
                raise OhlcvDataError(
                    f"price file {path} is empty; expected a CSV with a "
                    f"header (date, {', '.join(COLUMNS)}) and one row per day"
                )
            return pd.read_csv(path, encoding="utf-8-sig", **options)
        return pd.read_csv(source, **options)
    except pd.errors.EmptyDataError:
        raise OhlcvDataError(
            f"price file {origin} is empty; expected a CSV with a header "
            f"(date, {', '.join(COLUMNS)}) and one row per day"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise OhlcvDataError(
            f"price file {origin} is not a readable CSV ({exc}); "
            "check that it is a comma-separated text file"
        ) from None


def _map_columns(raw: pd.DataFrame, origin: str) -> tuple[str, dict[str, str]]:
    """The date column's name and ``{canonical name: column in the file}`` for the five."""
    found = [str(c) for c in raw.columns]
    by_norm: dict[str, list[str]] = {}
    for name in found:
        by_norm.setdefault(_normalise_name(name), []).append(name)
    twice = {k: v for k, v in by_norm.items() if len(v) > 1 and k}
    if twice:
        raise OhlcvDataError(
            f"price file {origin} has columns that differ only in case or "
            f"spacing: {list(twice.values())}; keep one of each"
        )
    wanted = {c: by_norm.get(c.lower(), [None])[0] for c in COLUMNS}
    missing = [c for c, name in wanted.items() if name is None]
    if missing:
        raise OhlcvDataError(
            f"price file {origin} lacks column(s) {missing} (found {found}); a price file needs "
            f"a date column and {', '.join(COLUMNS)} (any letter case)"
        )
    dated = [by_norm[n][0] for n in _DATE_NAMES if n in by_norm]
    if len(dated) > 1:
        raise OhlcvDataError(f"price file {origin} has several date columns {dated}; keep one")
    if dated:
        return dated[0], {c: name for c, name in wanted.items() if name is not None}
    if _UNNAMED.match(found[0]) and found[0] not in wanted.values():
        return found[0], {c: name for c, name in wanted.items() if name is not None}
    raise OhlcvDataError(
        f"price file {origin} has no date column (found {found}); name it 'Date', 'Datetime' "
        "or 'timestamp', or leave the first column's header empty as pandas writes an index"
    )


def _quote_bad(raw: pd.Series, bad: np.ndarray) -> str:
    rows = np.flatnonzero(bad)
    shown = ", ".join(
        f"row {r} {'(empty)' if pd.isna(raw.iloc[r]) else repr(raw.iloc[r])}" for r in rows[:_SHOWN]
    )
    more = f" and {len(rows) - _SHOWN} more" if len(rows) > _SHOWN else ""
    return f"{len(rows)} value(s): {shown}{more}"


def _parse_dates(raw: pd.Series, origin: str) -> pd.DatetimeIndex:
    """Dates as naive timestamps; tz-aware ones are converted to UTC first.

    ISO 8601 is tried first (fast, unambiguous); other layouts (``08/19/2004``, month first)
    fall back to per-value parsing. All-digit columns are ``YYYYMMDD`` when 8 digits long,
    else Unix epoch seconds (milliseconds when too large for seconds).
    """
    text = raw.str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    if text.notna().all() and numbers.notna().all():
        if text.str.fullmatch(r"\d{8}").all():
            parsed = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
        else:
            unit: Literal["s", "ms"] = "s" if numbers.abs().max() < 1e11 else "ms"
            parsed = pd.to_datetime(numbers, unit=unit, errors="coerce")
    else:
        parsed = pd.to_datetime(text, errors="coerce", utc=True, format="ISO8601")
        if (parsed.isna() & text.notna()).any():
            parsed = pd.to_datetime(text, errors="coerce", utc=True, format="mixed")
        parsed = parsed.dt.tz_convert(None)
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise OhlcvDataError(
            f"price file {origin}: date column {raw.name!r} has unparseable or missing "
            f"{_quote_bad(raw, bad)} (rows are 0-based, header not counted). Fix or remove "
            "those rows; dates should look like 2004-08-19 or 2024-01-02 09:30:00-05:00"
        )
    return pd.DatetimeIndex(parsed, name="date").as_unit("ns")


def _parse_numbers(raw: pd.Series, column: str, origin: str) -> np.ndarray:
    """Floats; empty cells and NA markers (``null``, ``NaN``) are NaN for validation to judge."""
    numbers = pd.to_numeric(raw.str.strip(), errors="coerce")
    bad = (numbers.isna() & raw.notna()).to_numpy()
    if bad.any():
        raise OhlcvDataError(
            f"price file {origin}: column {column} ({raw.name!r} in the file) has non-numeric "
            f"{_quote_bad(raw, bad)} (rows are 0-based, header not counted). Write plain "
            "numbers such as 1234.5, without thousands separators or currency signs"
        )
    return numbers.to_numpy(dtype=float)


def read_ohlcv_csv(source: str | os.PathLike[str] | TextIO) -> pd.DataFrame:
    """Read a daily or intraday price CSV into a ``date``-indexed frame of the five columns.

    ``source`` is a path or an open text stream (e.g. ``io.StringIO``). Other columns,
    such as ``Adj Close``, are left out. Rows stay in file order and nothing is dropped,
    so :func:`validate_ohlcv` can report problems with the row numbers of the file.
    """
    origin = _describe_source(source)
    raw = _read_raw(source, origin)
    date_column, names = _map_columns(raw, origin)
    if raw.empty:
        raise OhlcvDataError(
            f"price file {origin} has a header but no data rows; it needs "
            "one row per trading day (or bar)"
        )
    ignored = [str(c) for c in raw.columns if c != date_column and c not in names.values()]
    if ignored:
        log.debug("%s: ignoring column(s) %s", origin, ignored)
    index = _parse_dates(raw[date_column], origin)
    data = {c: _parse_numbers(raw[names[c]], c, origin) for c in COLUMNS}
    frame = pd.DataFrame(data, index=index, columns=list(COLUMNS))
    log.info(
        "read %d price row(s) from %s (%s to %s)",
        len(frame),
        origin,
        frame.index.min(),
        frame.index.max(),
    )
    return frame


def fetch_url(url: str, dest: Path, timeout: float = 30, attempts: int = 3) -> Path:
    """Download a price file from ``url`` to ``dest`` (see :func:`nnpipe.download.fetch`)."""
    return fetch(
        url,
        dest,
        error=OhlcvDataError,
        timeout=timeout,
        attempts=attempts,
        hint="download the file yourself and give its path",
    )
