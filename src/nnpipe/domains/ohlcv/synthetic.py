"""Synthetic daily prices with the properties that make real ones hard to forecast.

NOT market data: it exists so the price pipeline runs offline, quickly and reproducibly.
Log returns follow a GARCH(1,1) variance recursion with Student-t shocks, so calm and
turbulent spells alternate and tails are fat, as in real markets; the drift is small,
so, as with real prices, "tomorrow = today" is a hard baseline to beat. Each day opens
near the previous close (an overnight gap), High and Low extend beyond the open and
close by an amount that grows with the day's volatility, and volume rises with the size
of the day's move.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd

__all__ = ["generate_ohlcv"]

log = logging.getLogger(__name__)

_DRIFT = 0.0003  # daily log drift: about 8% a year
_LONG_RUN_VOL = 0.015  # daily: about 24% a year, typical of a large stock
_ALPHA, _BETA = 0.08, 0.90  # GARCH(1,1): reaction to shocks and persistence of variance
_T_DOF = 5.0  # Student-t shocks: fat tails
_GAP_SHARE = 0.3  # overnight gap volatility as a share of the day's volatility
_RANGE_SHARE = 0.6  # scale of the wicks beyond open/close, as a share of the volatility
_BASE_VOLUME = 2_000_000
_VOLUME_NOISE = 0.3  # log-normal day-to-day noise of volume
_VOLUME_SENSITIVITY = 0.5  # extra volume per standard deviation of |return|


def _check_arguments(
    n_days: int, seed: int, start: str, start_price: float, ticker: str
) -> pd.Timestamp:
    if isinstance(n_days, bool) or not isinstance(n_days, int | np.integer) or n_days < 1:
        raise ValueError(f"n_days must be a positive integer, got {n_days!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if (
        not isinstance(start_price, int | float)
        or not math.isfinite(start_price)
        or start_price <= 0
    ):
        raise ValueError(f"start_price must be a finite number > 0, got {start_price!r}")
    if not isinstance(ticker, str) or not ticker.strip():
        raise ValueError(f"ticker must be a non-empty string, got {ticker!r}")
    try:
        first = pd.Timestamp(start)
    except (ValueError, TypeError):
        raise ValueError(f"start must be a date such as '2015-01-02', got {start!r}") from None
    if pd.isna(first):
        raise ValueError(f"start must be a date such as '2015-01-02', got {start!r}")
    return first


def _simulate_garch_returns(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Daily log returns and their conditional volatilities under GARCH(1,1)."""
    omega = _LONG_RUN_VOL**2 * (1 - _ALPHA - _BETA)
    # unit-variance Student-t shocks
    shocks = rng.standard_t(_T_DOF, size=n) * math.sqrt((_T_DOF - 2) / _T_DOF)
    variance = np.empty(n)
    returns = np.empty(n)
    var, eps = _LONG_RUN_VOL**2, 0.0
    for t in range(n):
        var = omega + _ALPHA * eps**2 + _BETA * var
        eps = math.sqrt(var) * shocks[t]
        variance[t], returns[t] = var, eps
    vol = np.sqrt(variance)
    return _DRIFT - 0.5 * variance + returns, vol


def _jumped(
    log_returns: np.ndarray, vol: np.ndarray, volatility_jump: tuple[int, float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """The returns and volatilities with the jump: from its day on, the same shocks
    scaled by its factor around the drift (none: as they are)."""
    if volatility_jump is None:
        return log_returns, vol
    n_days = len(log_returns)
    day, factor = volatility_jump
    if not (0 <= day < n_days and factor > 0):
        raise ValueError(
            f"volatility_jump must be (a day in 0..{n_days - 1}, a factor > 0), "
            f"got {volatility_jump}"
        )
    factors = np.ones(n_days)
    factors[day:] = factor
    return _DRIFT + (log_returns - _DRIFT) * factors, vol * factors


def generate_ohlcv(
    n_days: int,
    seed: int,
    start: str = "2015-01-02",
    start_price: float = 100.0,
    ticker: str = "SYN",
    volatility_jump: tuple[int, float] | None = None,
) -> pd.DataFrame:
    """``n_days`` business days of prices, the same for the same arguments.

    ``volatility_jump=(day, factor)``: from that day, each day's volatility is ``factor``
    times the GARCH recursion's (a crisis's regime change: the monitor's test case).

    Returns a frame indexed by a business-day ``DatetimeIndex`` named ``date`` (from
    ``start``, rolled forward to a weekday) with float columns Open, High, Low, Close and
    integer Volume. Holidays are not modelled: every weekday trades. The ticker is kept in
    ``frame.attrs["ticker"]``.
    """
    first = _check_arguments(n_days, seed, start, start_price, ticker)
    rng = np.random.default_rng(seed)
    log_returns, vol = _jumped(*_simulate_garch_returns(rng, n_days), volatility_jump)
    close = start_price * np.exp(np.cumsum(log_returns))
    prev_close = np.concatenate([[start_price], close[:-1]])
    # the overnight gap is part of the close-to-close return, not added on top of it
    gap = rng.normal(0.0, _GAP_SHARE * vol)
    open_ = prev_close * np.exp(gap)
    upper = np.abs(rng.normal(0.0, _RANGE_SHARE * vol))
    lower = np.abs(rng.normal(0.0, _RANGE_SHARE * vol))
    high = np.maximum(open_, close) * np.exp(upper)
    low = np.minimum(open_, close) * np.exp(-lower)
    surprise = np.abs(log_returns - _DRIFT) / _LONG_RUN_VOL  # a crisis trades more
    volume = (
        _BASE_VOLUME
        * (1 + _VOLUME_SENSITIVITY * surprise)
        * np.exp(rng.normal(0.0, _VOLUME_NOISE, n_days))
    )
    index = pd.bdate_range(start=first, periods=n_days, name="date").as_unit("ns")
    frame = pd.DataFrame(
        {
            "Open": open_,
            "High": high,
            "Low": low,
            "Close": close,
            "Volume": np.maximum(np.rint(volume), 1).astype(np.int64),
        },
        index=index,
    )
    frame.attrs["ticker"] = ticker
    log.debug("generated %d synthetic day(s) for %s from seed %d", n_days, ticker, seed)
    return frame
