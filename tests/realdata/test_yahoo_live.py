"""A live download from Yahoo Finance through the ``yfinance`` source (skipped, saying why,
when Yahoo is unreachable or rate-limits this machine; the frames and failures themselves
are tests/unit/domains/ohlcv/test_market.py, offline)."""

import socket

import numpy as np
import pandas as pd
import pytest

from nnpipe.domains.ohlcv.market import fetch_yfinance
from nnpipe.domains.ohlcv.sources import COLUMNS, OhlcvDataError
from nnpipe.domains.ohlcv.validation import validate_ohlcv

yf = pytest.importorskip("yfinance", reason="yfinance is not installed: uv sync --extra dev")

pytestmark = pytest.mark.network


def yahoo_reachable() -> str | None:
    """None when Yahoo's API answers a TCP connection, else why not."""
    reasons = []
    for host in ("query1.finance.yahoo.com", "query2.finance.yahoo.com"):
        try:
            socket.create_connection((host, 443), timeout=3).close()
            return None
        except OSError as exc:
            reasons.append(f"{host}:443 is unreachable ({exc})")
    return "; ".join(reasons)


def test_live_download_from_yahoo():
    reason = yahoo_reachable()
    if reason:
        pytest.skip(f"no network access to Yahoo Finance: {reason}")
    try:
        frame = fetch_yfinance("MSFT", "2024-01-02", "2024-01-10")
    except OhlcvDataError as exc:
        if isinstance(exc.__cause__, yf.exceptions.YFRateLimitError):
            pytest.skip("Yahoo Finance is rate-limiting this machine")
        raise
    # the shape read_ohlcv_csv gives: a naive ``date`` index, the five float columns
    assert list(frame.columns) == list(COLUMNS)
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.name == "date" and frame.index.tz is None
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert frame.index[0] == pd.Timestamp("2024-01-02") and len(frame) == 6
    validate_ohlcv(frame, max_gap_days=5, policy="fail", min_rows=5)
