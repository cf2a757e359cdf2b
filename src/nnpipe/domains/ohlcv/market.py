"""Daily and intraday prices straight from Yahoo Finance, through the optional ``yfinance``.

:func:`fetch_yfinance` downloads one ticker's bars (retrying transient network failures)
and :func:`~nnpipe.domains.ohlcv.yfinance_frames.normalise_history` turns what yfinance
returns into the shape that :func:`nnpipe.domains.ohlcv.sources.read_ohlcv_csv` gives for a
price file: a ``DatetimeIndex`` named ``date`` and float columns ``Open, High, Low, Close,
Volume``, ready for :func:`~nnpipe.domains.ohlcv.validation.validate_ohlcv`. ``yfinance``
is imported only when :func:`fetch_yfinance` runs, so the rest of the package works
without the ``market`` extra.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from types import ModuleType

import pandas as pd

from nnpipe.domains.ohlcv.sources import OhlcvDataError
from nnpipe.domains.ohlcv.yfinance_frames import normalise_history

__all__ = ["INTERVALS", "fetch_yfinance"]

log = logging.getLogger(__name__)

# Bar sizes Yahoo serves (yfinance's own list); "30m" is fetched as 15m and resampled.
INTERVALS = ("1m", "2m", "5m", "15m", "30m", "60m", "90m", "1h", "1d", "5d", "1wk", "1mo", "3mo")
ATTEMPTS = 3
_INSTALL_HINT = "install it with `pip install 'nnpipe[market]'` (or `uv sync --extra market`)"


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
