"""Yahoo Finance prices: the frames yfinance returns, normalised; the failures, explained
(offline: the live download is tests/realdata/test_yahoo_live.py)."""

import sys
import types

import numpy as np
import pandas as pd
import pytest

from nnpipe.domains.ohlcv import market
from nnpipe.domains.ohlcv.market import fetch_yfinance
from nnpipe.domains.ohlcv.sources import COLUMNS, OhlcvDataError
from nnpipe.domains.ohlcv.validation import validate_ohlcv
from nnpipe.domains.ohlcv.yfinance_frames import normalise_history

yf = pytest.importorskip("yfinance", reason="yfinance is not installed: uv sync --extra dev")
YFPricesMissingError = yf.exceptions.YFPricesMissingError
YFRateLimitError = yf.exceptions.YFRateLimitError

BARS = {  # three trading days of MSFT-like bars, as Yahoo serves them
    "Open": [374.69, 370.87, 370.08],
    "High": [376.0, 373.79, 372.06],
    "Low": [366.5, 369.24, 366.5],
    "Close": [370.87, 370.6, 367.94],
    "Adj Close": [364.6, 364.33, 361.72],
    "Volume": [25258600, 23083500, 20901500],
}


def history_frame(tz: str = "America/New_York", **extra: list[float]) -> pd.DataFrame:
    """What ``Ticker('MSFT').history(auto_adjust=False)`` returns: local-midnight ``Date``s."""
    index = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04"], name="Date")
    return pd.DataFrame({**BARS, **extra}, index=index.tz_localize(tz))


def download_frame() -> pd.DataFrame:
    """What ``yf.download('MSFT', auto_adjust=False)`` returns: (Price, Ticker) columns, a
    naive ``Date`` index, fields in alphabetical order."""
    flat = history_frame().tz_localize(None)[sorted(BARS)]
    flat.columns = pd.MultiIndex.from_product([sorted(BARS), ["MSFT"]], names=["Price", "Ticker"])
    return flat


def check_shape(frame: pd.DataFrame) -> None:
    """The shape read_ohlcv_csv gives: ``date`` index, the five float columns in order."""
    assert list(frame.columns) == list(COLUMNS)
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.name == "date" and frame.index.tz is None
    assert frame.index.dtype == "datetime64[ns]"
    assert all(dtype == np.float64 for dtype in frame.dtypes)


# --------------------------------------------------------------------------- normalise_history


def test_ticker_history_keeps_the_exchange_date_and_drops_adj_close():
    frame = normalise_history(history_frame(), "test")
    check_shape(frame)
    assert list(frame.index) == [
        pd.Timestamp("2024-01-02"),
        pd.Timestamp("2024-01-03"),
        pd.Timestamp("2024-01-04"),
    ]
    assert frame.loc["2024-01-02", "Close"] == 370.87  # the traded close, not Adj Close
    assert frame.loc["2024-01-04", "Volume"] == 20901500.0


def test_daily_bars_east_of_utc_are_not_moved_to_the_previous_day():
    frame = normalise_history(history_frame(tz="Asia/Tokyo"), "7203.T")
    assert frame.index[0] == pd.Timestamp("2024-01-02")


def test_download_multiindex_columns_are_flattened():
    frame = normalise_history(download_frame(), "test")
    check_shape(frame)
    pd.testing.assert_frame_equal(frame, normalise_history(history_frame(), "test"))


def test_download_grouped_by_ticker_is_flattened_too():
    frame = download_frame().swaplevel(axis=1)  # group_by="ticker": (Ticker, Price)
    check_shape(normalise_history(frame, "test"))


def test_several_tickers_are_refused_naming_them():
    frame = pd.concat([download_frame(), download_frame().rename(columns={"MSFT": "GOOG"})], axis=1)
    with pytest.raises(OhlcvDataError, match=r"several tickers \['MSFT', 'GOOG'\]"):
        normalise_history(frame, "test")


def test_intraday_timestamps_go_to_naive_utc_like_read_ohlcv_csv():
    index = pd.DatetimeIndex(
        ["2024-01-02 09:30", "2024-01-02 09:35", "2024-01-02 09:40"], name="Datetime"
    ).tz_localize("America/New_York")
    frame = normalise_history(pd.DataFrame(BARS, index=index), "test")
    check_shape(frame)
    assert list(frame.index) == [
        pd.Timestamp("2024-01-02 14:30"),
        pd.Timestamp("2024-01-02 14:35"),
        pd.Timestamp("2024-01-02 14:40"),
    ]


def test_corporate_action_columns_are_left_out():
    frame = history_frame(**{"Dividends": [0.0, 0.75, 0.0], "Stock Splits": [0.0, 0.0, 0.0]})
    check_shape(normalise_history(frame, "test"))


def test_missing_volume_is_an_error_naming_it():
    with pytest.raises(OhlcvDataError, match=r"lacks column\(s\) \['Volume'\]"):
        normalise_history(history_frame().drop(columns="Volume"), "MSFT")


def test_an_index_that_is_not_timestamps_is_refused():
    with pytest.raises(OhlcvDataError, match="indexed by timestamp"):
        normalise_history(history_frame().reset_index(), "test")


def test_an_empty_frame_is_refused():
    with pytest.raises(OhlcvDataError, match="no rows"):
        normalise_history(history_frame().iloc[:0], "test")


def test_normalised_history_passes_validation():
    frame, violations = validate_ohlcv(
        normalise_history(history_frame(), "test"), max_gap_days=5, policy="fail", min_rows=3
    )
    assert violations == [] and len(frame) == 3


# --------------------------------------------------------------------------- fetch_yfinance


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Record the backoff instead of waiting it out."""
    waited: list[float] = []
    monkeypatch.setattr(market, "time", types.SimpleNamespace(sleep=waited.append))
    return waited


def fake_ticker(monkeypatch, answers: list) -> list[dict]:
    """Make ``yf.Ticker(...).history(...)`` give ``answers`` in turn (raising exceptions);
    return the calls made, with yfinance's hide_exceptions switch as it was during each."""
    calls: list[dict] = []

    class Ticker:
        def __init__(self, symbol: str):
            self.symbol = symbol

        def history(self, **kwargs):
            calls.append(
                {
                    "symbol": self.symbol,
                    **kwargs,
                    "hide_exceptions": yf.config.debug.hide_exceptions,
                }
            )
            answer = answers[len(calls) - 1]
            if isinstance(answer, BaseException):
                raise answer
            return answer

    monkeypatch.setattr(yf, "Ticker", Ticker)
    return calls


def test_fetch_returns_the_normalised_history(monkeypatch, sleeps):
    calls = fake_ticker(monkeypatch, [history_frame()])
    frame = fetch_yfinance(" MSFT ", "2024-01-02", "2024-01-05")
    check_shape(frame)
    assert len(frame) == 3 and sleeps == []
    assert calls == [
        {
            "symbol": "MSFT",
            "start": "2024-01-02",
            "end": "2024-01-05",
            "interval": "1d",
            "auto_adjust": False,
            "actions": False,
            "hide_exceptions": False,
        }
    ]
    assert yf.config.debug.hide_exceptions is True  # the user's setting is put back


def test_without_a_start_the_whole_history_is_asked_for(monkeypatch, sleeps):
    calls = fake_ticker(monkeypatch, [history_frame()])
    fetch_yfinance("MSFT", None, "2024-01-05")
    assert calls[0]["period"] == "max" and calls[0]["start"] is None


def test_an_empty_answer_says_the_ticker_range_and_interval(monkeypatch, sleeps):
    fake_ticker(monkeypatch, [history_frame().iloc[:0]])
    with pytest.raises(
        OhlcvDataError,
        match=r"no price data for ticker 'NOPE' from "
        r"2024-01-02 to 2024-01-05 .* interval '1d'.*check the symbol",
    ):
        fetch_yfinance("NOPE", "2024-01-02", "2024-01-05")
    assert sleeps == []


def test_a_missing_ticker_is_not_retried(monkeypatch, sleeps):
    calls = fake_ticker(monkeypatch, [YFPricesMissingError("NOPE", "(1d 2024-01-02 -> ...)")])
    with pytest.raises(OhlcvDataError, match=r"'NOPE'.*possibly delisted.*check the symbol"):
        fetch_yfinance("NOPE", "2024-01-02", "2024-01-05")
    assert len(calls) == 1 and sleeps == []


def test_intraday_no_data_mentions_yahoos_60_day_limit(monkeypatch, sleeps):
    fake_ticker(monkeypatch, [history_frame().iloc[:0]])
    with pytest.raises(OhlcvDataError, match="last 60 days"):
        fetch_yfinance("MSFT", "2020-01-02", "2020-01-05", interval="5m")


def test_network_failures_are_retried_then_reported(monkeypatch, sleeps):
    calls = fake_ticker(monkeypatch, [ConnectionError("reset by peer")] * 3)
    with pytest.raises(OhlcvDataError, match=r"failed 3 times.*'csv' source") as info:
        fetch_yfinance("MSFT", "2024-01-02", "2024-01-05")
    assert len(calls) == 3 and sleeps == [2.0, 4.0]
    assert isinstance(info.value.__cause__, ConnectionError)
    assert yf.config.debug.hide_exceptions is True


def test_a_transient_failure_then_success_returns_the_data(monkeypatch, sleeps):
    fake_ticker(monkeypatch, [TimeoutError("timed out"), YFRateLimitError(), history_frame()])
    assert len(fetch_yfinance("MSFT", "2024-01-02", "2024-01-05")) == 3
    assert sleeps == [2.0, 4.0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", None, None), "ticker is empty"),
        (("MSFT", None, None, "2d"), "interval '2d'"),
        (("MSFT", "Jan the 2nd", None), "start date 'Jan the 2nd' is not a date"),
        (("MSFT", "2024-02-01", "2024-01-01"), "not before end"),
    ],
)
def test_bad_requests_are_refused_before_any_download(monkeypatch, args, message):
    calls = fake_ticker(monkeypatch, [])
    with pytest.raises(OhlcvDataError, match=message):
        fetch_yfinance(*args)
    assert calls == []


def test_without_yfinance_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "yfinance", None)  # makes `import yfinance` fail
    with pytest.raises(OhlcvDataError, match=r"pip install 'nnpipe\[market\]'"):
        fetch_yfinance("MSFT", "2024-01-02", "2024-01-05")
