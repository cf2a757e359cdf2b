"""What yfinance returns, in the shape :func:`nnpipe.domains.ohlcv.sources.read_ohlcv_csv`
gives for a price file: a ``DatetimeIndex`` named ``date`` and float columns ``Open, High,
Low, Close, Volume``. Pure pandas: yfinance itself is imported by
:mod:`nnpipe.domains.ohlcv.market`, and only when it downloads.
"""

from __future__ import annotations

import logging
import re

import pandas as pd

from nnpipe.domains.ohlcv.sources import COLUMNS, OhlcvDataError

__all__ = ["normalise_history"]

log = logging.getLogger(__name__)


def _field_key(name: object) -> str:
    """``'Adj Close'``, ``'adj_close'`` and ``'ADJ CLOSE'`` all become ``'adjclose'``."""
    return re.sub(r"[\s_.\-]", "", str(name).lower())


_FIELD_KEYS = frozenset(
    _field_key(c) for c in (*COLUMNS, "Adj Close", "Dividends", "Stock Splits", "Capital Gains")
)


def _flatten_columns(frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    """One ticker's columns out of ``yf.download``'s (field, ticker) or (ticker, field) pairs."""
    columns = frame.columns
    if not isinstance(columns, pd.MultiIndex):
        return frame
    if columns.nlevels != 2:
        raise OhlcvDataError(
            f"price data from {origin} has {columns.nlevels} column levels; "
            "expected fields such as Close, or (field, ticker) pairs as "
            "yf.download returns them"
        )
    levels = [columns.get_level_values(i) for i in range(2)]
    hits = [sum(_field_key(v) in _FIELD_KEYS for v in level) for level in levels]
    field_level = 0 if hits[0] >= hits[1] else 1
    tickers = list(dict.fromkeys(str(t) for t in levels[1 - field_level]))
    if len(tickers) > 1:
        raise OhlcvDataError(
            f"price data from {origin} holds several tickers {tickers}; "
            "download or select one ticker at a time"
        )
    flat = frame.copy()
    flat.columns = pd.Index([str(v) for v in levels[field_level]])
    return flat


def _map_fields(frame: pd.DataFrame, origin: str) -> dict[str, object]:
    """``{canonical name: column in the frame}`` for the five columns, or an error naming
    the missing ones."""
    by_key: dict[str, list[object]] = {}
    for name in frame.columns:
        by_key.setdefault(_field_key(name), []).append(name)
    twice = [names for names in by_key.values() if len(names) > 1]
    if twice:
        raise OhlcvDataError(
            f"price data from {origin} has columns that differ only in case "
            f"or spacing: {twice}; keep one of each"
        )
    found = [str(c) for c in frame.columns]
    missing = [c for c in COLUMNS if _field_key(c) not in by_key]
    if missing:
        raise OhlcvDataError(
            f"price data from {origin} lacks column(s) {missing} (found {found}); it needs "
            f"{', '.join(COLUMNS)}. Download with actions=False and auto_adjust=False, which "
            "keep the raw Open, High, Low, Close and Volume"
        )
    return {c: by_key[_field_key(c)][0] for c in COLUMNS}


def _normalise_index(index: pd.Index, origin: str) -> pd.DatetimeIndex:
    """Naive timestamps: daily bars keep the exchange's calendar date, intraday bars go to UTC.

    Intraday times are converted to UTC and made naive, as
    :func:`~nnpipe.domains.ohlcv.sources.read_ohlcv_csv` does with zoned timestamps in a file.
    Daily (and longer) bars are stamped at the exchange's local midnight; converting those
    to UTC would move Tokyo's 2 January to 15:00 on 1 January, so their local date is kept,
    which is also what a date-only price file gives.
    """
    if not isinstance(index, pd.DatetimeIndex):
        raise OhlcvDataError(
            f"price data from {origin} must be indexed by timestamp (yfinance's "
            f"Date or Datetime index), not by {type(index).__name__}; if the "
            "dates are a column, set it as the index first"
        )
    if index.tz is not None:
        daily = bool(len(index)) and bool((index == index.normalize()).all())
        index = index.tz_localize(None) if daily else index.tz_convert("UTC").tz_localize(None)
    if index.isna().any():
        raise OhlcvDataError(
            f"price data from {origin} has {int(pd.isna(index).sum())} missing "
            "timestamp(s); drop those rows or download again"
        )
    return pd.DatetimeIndex(index, name="date").as_unit("ns")


def normalise_history(frame: pd.DataFrame, origin: str) -> pd.DataFrame:
    """Turn a yfinance price frame into ``read_ohlcv_csv``'s shape, naming ``origin`` in errors.

    Accepts what ``Ticker.history`` returns (a ``Date`` or ``Datetime`` index in the exchange's
    time zone, columns ``Open, High, Low, Close[, Adj Close], Volume[, Dividends, Stock
    Splits]``) and what ``yf.download`` returns for one ticker (the same under (field, ticker)
    column pairs). ``Adj Close`` and the corporate actions are left out. Rows are neither
    sorted nor dropped, so :func:`~nnpipe.domains.ohlcv.sources.validate_ohlcv` judges them all.
    """
    if frame.empty:
        raise OhlcvDataError(
            f"price data from {origin} has no rows; check the ticker, the "
            "date range and the interval"
        )
    flat = _flatten_columns(frame, origin)
    names = _map_fields(flat, origin)
    index = _normalise_index(flat.index, origin)
    data = {}
    for column, name in names.items():
        values = pd.to_numeric(flat[name], errors="coerce")
        bad = int((values.isna() & flat[name].notna()).sum())
        if bad:
            raise OhlcvDataError(
                f"price data from {origin}: column {column} has {bad} "
                "non-numeric value(s); download again or fix the frame"
            )
        data[column] = values.to_numpy(dtype=float)
    ignored = [str(c) for c in flat.columns if c not in names.values()]
    if ignored:
        log.debug("%s: ignoring column(s) %s", origin, ignored)
    return pd.DataFrame(data, index=index, columns=list(COLUMNS))
