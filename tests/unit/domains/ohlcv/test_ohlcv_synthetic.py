"""Synthetic prices: reproducible, internally consistent, with real prices' stylised facts."""

import numpy as np
import pandas as pd
import pytest

from nnpipe.domains.ohlcv.sources import COLUMNS
from nnpipe.domains.ohlcv.synthetic import generate_ohlcv
from nnpipe.domains.ohlcv.validation import validate_ohlcv


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return generate_ohlcv(1500, seed=7)


def test_same_arguments_give_the_same_prices_and_seeds_differ():
    pd.testing.assert_frame_equal(generate_ohlcv(200, seed=1), generate_ohlcv(200, seed=1))
    assert not generate_ohlcv(200, seed=1)["Close"].equals(generate_ohlcv(200, seed=2)["Close"])
    doubled = generate_ohlcv(200, seed=1, start_price=200.0)
    np.testing.assert_allclose(doubled["Close"], 2 * generate_ohlcv(200, seed=1)["Close"])


def test_shape_index_and_bars_are_consistent(prices):
    assert list(prices.columns) == list(COLUMNS) and len(prices) == 1500
    assert prices.index.name == "date"
    assert (prices.index.day_of_week < 5).all() and prices.index.is_monotonic_increasing
    business_days = pd.bdate_range("2015-01-02", periods=1500, name="date").as_unit("ns")
    pd.testing.assert_index_equal(prices.index, business_days, check_exact=True)
    o, h, lo, c = (prices[k].to_numpy() for k in ("Open", "High", "Low", "Close"))
    assert (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all() and (lo > 0).all()
    assert prices["Volume"].dtype == np.int64 and (prices["Volume"] > 0).all()
    assert prices.attrs["ticker"] == "SYN"
    clean, violations = validate_ohlcv(prices, max_gap_days=3, policy="fail", min_rows=100)
    assert violations == [] and len(clean) == 1500


def test_opens_near_the_previous_close(prices):
    gap = np.log(prices["Open"].to_numpy()[1:] / prices["Close"].to_numpy()[:-1])
    assert np.abs(gap).mean() < 0.01 and np.abs(gap).max() > 0  # a small overnight gap


def test_volume_rises_with_the_size_of_the_move_and_volatility_clusters(prices):
    returns = np.diff(np.log(prices["Close"].to_numpy()))
    volume = prices["Volume"].to_numpy()[1:]
    assert np.corrcoef(np.abs(returns), volume)[0, 1] > 0.3
    size = np.abs(returns)
    assert np.corrcoef(size[1:], size[:-1])[0, 1] > 0.05  # calm and turbulent spells
    assert 0.005 < returns.std() < 0.03  # daily volatility of a real stock


def test_start_rolls_forward_to_a_business_day():
    assert generate_ohlcv(3, seed=0, start="2024-01-06").index[0] == pd.Timestamp("2024-01-08")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_days": 0}, "n_days"),
        ({"seed": -1}, "seed"),
        ({"start_price": 0.0}, "start_price"),
        ({"start": "someday"}, "start"),
        ({"ticker": " "}, "ticker"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    arguments = {"n_days": 10, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=f"^{name} must"):
        generate_ohlcv(**arguments)
