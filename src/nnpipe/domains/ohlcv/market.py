"""Daily and intraday prices straight from Yahoo Finance, through the optional ``yfinance``.

:func:`fetch_yfinance` downloads one ticker's bars (retrying transient network failures)
and :func:`normalise_history` turns what yfinance returns into the shape that
:func:`nnpipe.domains.ohlcv.sources.read_ohlcv_csv` gives for a price file: a ``DatetimeIndex``
named ``date`` and float columns ``Open, High, Low, Close, Volume``, ready for
:func:`~nnpipe.domains.ohlcv.validation.validate_ohlcv`. ``yfinance`` is imported only when
:func:`fetch_yfinance` runs, so the rest of the package works without the ``market`` extra.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
from collections.abc import Iterator
from types import ModuleType

import pandas as pd

from nnpipe.domains.ohlcv.sources import COLUMNS, OhlcvDataError

__all__ = ["INTERVALS", "fetch_yfinance", "normalise_history"]

log = logging.getLogger(__name__)

# Bar sizes Yahoo serves (yfinance's own list); "30m" is fetched as 15m and resampled.
INTERVALS = ("1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "1d", "5d", "1wk", "1mo", "3mo")
ATTEMPTS = 3
_INSTALL_HINT = "install it with `pip install 'nnpipe[market]'` (or `uv sync --extra market`)"


# --------------------------------------------------------------------------- normalising


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


# --------------------------------------------------------------------------- fetching


def _import_yfinance() -> ModuleType:
    try:
        import yfinance
    except ImportError:
        raise OhlcvDataError(
            f"the 'yfinance' source needs the yfinance package; {_INSTALL_HINT}"
        ) from None
    if not hasattr(yfinance, "config"):
        raise OhlcvDataError(
            f"yfinance {getattr(yfinance, '__version__', '?')} is too old "
            f"(1.0 or newer is needed); {_INSTALL_HINT}"
        )
    return yfinance


@contextlib.contextmanager
def _exceptions_raised(yf: ModuleType) -> Iterator[None]:
    """Make yfinance raise its errors instead of logging them and returning an empty frame,
    which would make a network failure look like a ticker without data."""
    debug = yf.config.debug
    saved = debug.hide_exceptions
    debug.hide_exceptions = False
    try:
        yield
    finally:
        debug.hide_exceptions = saved


def _check_request(ticker: str, start: str | None, end: str | None, interval: str) -> None:
    if not ticker.strip():
        raise OhlcvDataError(
            "the ticker is empty; give a Yahoo Finance symbol such as 'MSFT', 'GOOG' or '7203.T'"
        )
    if interval not in INTERVALS:
        raise OhlcvDataError(
            f"interval {interval!r} is not one Yahoo serves; use one of {list(INTERVALS)}"
        )
    stamps = {}
    for name, value in (("start", start), ("end", end)):
        if value is None:
            continue
        try:
            stamps[name] = pd.Timestamp(value)
        except ValueError:
            raise OhlcvDataError(
                f"{name} date {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2024-01-02"
            ) from None
    if len(stamps) == 2 and stamps["start"] >= stamps["end"]:
        raise OhlcvDataError(
            f"start {start} is not before end {end} (end is exclusive); "
            "swap them or widen the range"
        )


def _describe_request(ticker: str, start: str | None, end: str | None, interval: str) -> str:
    return (
        f"ticker {ticker!r} from {start or 'the earliest bar Yahoo has'} to {end or 'now'} "
        f"(end exclusive) at interval {interval!r}"
    )


def _no_data_error(request: str, interval: str, reason: str = "") -> OhlcvDataError:
    hints = [
        "check the symbol on finance.yahoo.com (non-US listings need a suffix, such as "
        "'7203.T' or 'VOD.L')",
        "widen the date range",
    ]
    if interval[-1] in "mh":
        hints.append(
            "note that Yahoo keeps intraday bars only for the last 60 days "
            "(1-minute bars for 7 days)"
        )
    because = f" ({reason})" if reason else ""
    return OhlcvDataError(
        f"Yahoo Finance returned no price data for {request}{because}; {', '.join(hints)}"
    )


def _download(
    yf: ModuleType, ticker: str, start: str | None, end: str | None, interval: str
) -> pd.DataFrame:
    """One request; raw prices (no adjustment) and no corporate-action columns."""
    # Without a start yfinance would fetch only the month before `end`; "max" goes back as
    # far as Yahoo keeps bars of this interval.
    period = {"period": "max"} if start is None else {}
    with _exceptions_raised(yf):
        return yf.Ticker(ticker).history(
            start=start, end=end, interval=interval, auto_adjust=False, actions=False, **period
        )


def _download_with_retries(
    yf: ModuleType, ticker: str, start: str | None, end: str | None, interval: str, request: str
) -> pd.DataFrame:
    """Retry network failures and rate limiting with backoff (2, 4 seconds); a missing
    ticker is not retried, asking again gets the same answer."""
    from yfinance.exceptions import YFRateLimitError, YFTickerMissingError

    for attempt in range(1, ATTEMPTS + 1):
        try:
            log.info(
                "downloading %s from Yahoo Finance (attempt %d/%d)", request, attempt, ATTEMPTS
            )
            return _download(yf, ticker, start, end, interval)
        except YFTickerMissingError as exc:
            raise _no_data_error(request, interval, str(exc)) from None
        except (OSError, YFRateLimitError) as exc:  # requests' and curl_cffi's errors are OSErrors
            what = "rate-limited" if isinstance(exc, YFRateLimitError) else "failed"
            if attempt == ATTEMPTS:
                raise OhlcvDataError(
                    f"could not download {request} from Yahoo Finance: the request {what} "
                    f"{ATTEMPTS} times ({type(exc).__name__}: {exc}). Check the network (Yahoo "
                    "must be reachable), try again later, or download the prices as a CSV "
                    "file and use the 'csv' source with its path"
                ) from exc
            log.warning("download of %s %s (%s); retrying", request, what, exc)
        time.sleep(2.0**attempt)
    raise AssertionError("unreachable")


def fetch_yfinance(
    ticker: str, start: str | None, end: str | None, interval: str = "1d"
) -> pd.DataFrame:
    """Download one ticker's bars from Yahoo Finance in ``read_ohlcv_csv``'s shape.

    ``start`` is inclusive and ``end`` exclusive (``YYYY-MM-DD``; ``None`` means from the
    earliest bar Yahoo keeps, or up to now); ``interval`` is one of :data:`INTERVALS`. Prices are
    as traded, not dividend-adjusted, like the OHLC of a price file. Raises
    :class:`~nnpipe.domains.ohlcv.sources.OhlcvDataError` when yfinance is not installed, the ticker
    has no data in the range, or the network still fails after retries.
    """
    _check_request(ticker, start, end, interval)
    yf = _import_yfinance()
    ticker = ticker.strip()
    request = _describe_request(ticker, start, end, interval)
    frame = _download_with_retries(yf, ticker, start, end, interval, request)
    if frame is None or frame.empty:
        raise _no_data_error(request, interval)
    prices = normalise_history(frame, f"Yahoo Finance ({ticker})")
    log.info(
        "fetched %d %s bar(s) of %s (%s to %s)",
        len(prices),
        interval,
        ticker,
        prices.index.min(),
        prices.index.max(),
    )
    return prices
