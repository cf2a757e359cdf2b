"""Reading the common price-file layouts, and validating prices with each policy."""

import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnpipe.domains.ohlcv.sources import COLUMNS, OhlcvDataError, read_ohlcv_csv
from nnpipe.domains.ohlcv.synthetic import generate_ohlcv
from nnpipe.domains.ohlcv.validation import validate_ohlcv

ROWS = [
    "2004-08-19,100,104.06,95.96,100.34,22351900",
    "2004-08-20,101.01,109.08,100.5,108.31,11428600",
]


def write(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def check_goog_rows(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(COLUMNS)
    assert frame.index.name == "date" and isinstance(frame.index, pd.DatetimeIndex)
    assert list(frame.index) == [pd.Timestamp("2004-08-19"), pd.Timestamp("2004-08-20")]
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert frame.loc["2004-08-20", "High"] == 109.08
    assert frame.loc["2004-08-19", "Volume"] == 22351900.0


@pytest.mark.parametrize(
    "text",
    [
        ",Open,High,Low,Close,Volume\n" + "\n".join(ROWS),  # pandas' unnamed index (GOOG.csv)
        "Date,Open,High,Low,Close,Volume\n" + "\n".join(ROWS),
        "date,open,high,low,close,volume\n" + "\n".join(ROWS),
        "DATETIME,OPEN,High,low,CLOSE,Volume\n" + "\n".join(ROWS),
        "Timestamp , Open, High, Low, Close, Volume\n"
        + "\n".join(r.replace(",", ", ") for r in ROWS),
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2004-08-19,100,104.06,95.96,100.34,50.17,22351900\n"
        "2004-08-20,101.01,109.08,100.5,108.31,54.15,11428600",
        "\ufeffdate,open,high,low,close,volume\n" + "\n".join(ROWS),  # byte-order mark
        "Date,Open,High,Low,Close,Volume\n"
        + "\n".join(r.replace("2004-08-", "200408") for r in ROWS),
    ],
)
def test_common_layouts_read_to_one_shape(tmp_path, text):
    frame = read_ohlcv_csv(write(tmp_path, text))
    check_goog_rows(frame)
    assert "Adj Close" not in frame.columns


def test_intraday_timestamps_with_a_time_zone_become_naive_utc():
    text = (
        "Datetime,Open,High,Low,Close,Volume\n"
        "2024-01-02 09:30:00-05:00,10,11,9,10.5,100\n"
        "2024-01-02 09:31:00-05:00,10.5,11,10,10.8,120\n"
        "2024-07-01T09:30:00-04:00,12,13,11,12.5,90\n"
    )
    frame = read_ohlcv_csv(io.StringIO(text))
    assert frame.index.tz is None
    assert list(frame.index) == [
        pd.Timestamp("2024-01-02 14:30"),
        pd.Timestamp("2024-01-02 14:31"),
        pd.Timestamp("2024-07-01 13:30"),
    ]


def test_naive_intraday_epoch_and_month_first_dates_are_read():
    naive = read_ohlcv_csv(
        io.StringIO("timestamp,open,high,low,close,volume\n2024-01-02 09:30:00,1,2,0.5,1.5,10\n")
    )
    assert naive.index[0] == pd.Timestamp("2024-01-02 09:30")
    epoch = read_ohlcv_csv(
        io.StringIO("timestamp,open,high,low,close,volume\n1704205800,1,2,0.5,1.5,10\n")
    )
    assert epoch.index[0] == pd.Timestamp("2024-01-02 14:30")
    us = read_ohlcv_csv(io.StringIO("Date,Open,High,Low,Close,Volume\n08/19/2004,1,2,0.5,1.5,10\n"))
    assert us.index[0] == pd.Timestamp("2004-08-19")


def test_rows_stay_in_file_order_and_missing_cells_are_nan():
    text = "Date,Open,High,Low,Close,Volume\n2004-08-20,1,2,0.5,1.5,10\n2004-08-19,1,2,0.5,null,\n"
    frame = read_ohlcv_csv(io.StringIO(text))
    assert list(frame.index.day) == [20, 19]  # not sorted: validation reports the order
    assert np.isnan(frame.iloc[1]["Close"]) and np.isnan(frame.iloc[1]["Volume"])


def test_a_frame_written_by_pandas_reads_back_unchanged(tmp_path):
    prices = generate_ohlcv(30, seed=4)
    prices.to_csv(tmp_path / "syn.csv")
    back = read_ohlcv_csv(tmp_path / "syn.csv")
    pd.testing.assert_frame_equal(back, prices.astype(float), check_freq=False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "Date,Open,High,Low,Close\n" + "2004-08-19,1,2,0.5,1.5\n",
            r"lacks column\(s\) \['Volume'\] \(found \['Date', 'Open'",
        ),
        (
            "Date,Open,Hi,Lo,Close,Vol\n" + "2004-08-19,1,2,0.5,1.5,3\n",
            r"lacks column\(s\) \['High', 'Low', 'Volume'\]",
        ),
        ("Symbol,Open,High,Low,Close,Volume\nGOOG,1,2,0.5,1.5,10\n", "no date column"),
        (
            "Date,Open,High,Low,Close,Volume\n"
            + ROWS[0]
            + "\nnot-a-date,1,2,0.5,1.5,10\n"
            + ROWS[1].replace("2004-08-20", "2004-13-45")
            + "\n",
            r"unparseable or missing 2 value\(s\): row 1 'not-a-date', row 2 '2004-13-45'",
        ),
        ("Date,Open,High,Low,Close,Volume\n" + ROWS[0] + "\n,1,2,0.5,1.5,10\n", r"row 1 \(empty\)"),
        (
            "Date,Open,High,Low,Close,Volume\n" + ROWS[0] + "\n2004-08-20,1,2,0.5,1.5,1'000\n",
            r"column Volume .* non-numeric 1 value\(s\): row 1 \"1'000\"",
        ),
        ("Date,Open,High,Low,Close,Volume\n", "header but no data rows"),
        ("", "is empty"),
        (
            "Date,Open,High,Low,Close,close,Volume\n2004-08-19,1,2,0.5,1.5,1.5,10\n",
            "differ only in case",
        ),
    ],
)
def test_unusable_files_are_clear_errors(tmp_path, text, message):
    with pytest.raises(OhlcvDataError, match=message):
        read_ohlcv_csv(write(tmp_path, text))


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(OhlcvDataError, match="does not exist"):
        read_ohlcv_csv(tmp_path / "nope.csv")


# --------------------------------------------------------------------------- validation


def prices(n: int = 12) -> pd.DataFrame:
    """Clean daily bars on consecutive business days from Monday 2024-01-01."""
    return generate_ohlcv(n, seed=0, start="2024-01-01").astype(float)


def broken() -> pd.DataFrame:
    """One violation of each per-row rule, a duplicate and an out-of-order row."""
    df = prices()
    dates = list(df.index)
    dates[3] = dates[2]  # row 3: duplicate of row 2 (2024-01-03)
    dates[5], dates[6] = dates[6], dates[5]  # row 6 (2024-01-08) comes after 2024-01-09
    df.index = pd.DatetimeIndex(dates, name="date")
    df.iloc[1, df.columns.get_loc("High")] = df.iloc[1]["Close"] - 1  # row 1: High < Close
    df.iloc[7, df.columns.get_loc("Close")] = np.nan  # row 7
    df.iloc[8, df.columns.get_loc("Low")] = 0.0  # row 8
    df.iloc[9, df.columns.get_loc("Volume")] = -5  # row 9
    df.iloc[10, df.columns.get_loc("Volume")] = np.nan  # row 10
    return df


EXPECTED = [
    (1, "2024-01-02", "ohlc_inconsistent"),
    (3, "2024-01-03", "duplicate_timestamp"),
    (6, "2024-01-08", "out_of_order"),
    (7, "2024-01-10", "price_missing"),
    (8, "2024-01-11", "price_not_positive"),
    (9, "2024-01-12", "volume_negative"),
    (10, "2024-01-15", "volume_missing"),
]


def test_clean_prices_pass_unchanged():
    clean, violations = validate_ohlcv(prices(), max_gap_days=4, policy="fail", min_rows=5)
    assert violations == []
    pd.testing.assert_frame_equal(clean, prices())


def test_fail_policy_lists_each_violation_with_row_and_date():
    with pytest.raises(OhlcvDataError) as info:
        validate_ohlcv(broken(), max_gap_days=4, policy="fail", min_rows=5)
    message = str(info.value)
    assert f"has {len(EXPECTED)} violation(s)" in message
    for row, date, rule in EXPECTED:
        assert f"row {row} ({date}): {rule}" in message
    assert "< max(Open, Close)" in message and "Low=0" in message
    assert "policy to 'drop'" in message


def test_fail_policy_shows_the_first_ten_and_the_count():
    df = prices(30)
    df["Volume"] = -1.0
    expected = r"30 violation\(s\) of rule\(s\) \['volume_negative'\]; first 10"
    with pytest.raises(OhlcvDataError, match=expected) as info:
        validate_ohlcv(df, max_gap_days=4, policy="fail", min_rows=5)
    assert "row 9 " in str(info.value) and "row 10 " not in str(info.value)


def test_drop_policy_sorts_dedups_and_removes_bad_rows(caplog):
    with caplog.at_level(logging.INFO, logger="nnpipe.domains.ohlcv.validation"):
        clean, violations = validate_ohlcv(broken(), max_gap_days=4, policy="drop", min_rows=5)
    # dropping rows 7-10 opens a gap (Tue 9th to Tue 16th), measured on the cleaned series
    assert [(v.row, v.date, v.rule) for v in violations] == [*EXPECTED, (11, "2024-01-16", "gap")]
    kept_rows = [0, 2, 4, 6, 5, 11]  # row 3 duplicates row 2; row 6 is sorted into place
    pd.testing.assert_frame_equal(clean, broken().iloc[kept_rows])
    assert clean.index.is_monotonic_increasing and clean.index.is_unique
    assert (
        "1 duplicate(s) removed, 1 out-of-order row(s) sorted, 5 invalid row(s) dropped"
        in caplog.text
    )


def test_ffill_policy_fills_missing_values_and_drops_what_stays_invalid(caplog):
    df = prices()
    df.iloc[0, df.columns.get_loc("Volume")] = np.nan  # nothing before it to fill from
    carried = df.iloc[3]["Close"]  # what row 4's Close will be filled with: keep it in range
    df.iloc[4, df.columns.get_loc("High")] = max(df.iloc[4]["High"], carried)
    df.iloc[4, df.columns.get_loc("Low")] = min(df.iloc[4]["Low"], carried)
    df.iloc[4, df.columns.get_loc("Close")] = np.nan
    df.iloc[6, df.columns.get_loc("High")] = df.iloc[6]["Low"] - 1  # inconsistent: not filled
    with caplog.at_level(logging.INFO, logger="nnpipe.domains.ohlcv.validation"):
        clean, violations = validate_ohlcv(df, max_gap_days=4, policy="ffill", min_rows=5)
    assert [(v.row, v.rule) for v in violations] == [
        (0, "volume_missing"),
        (4, "price_missing"),
        (6, "ohlc_inconsistent"),
    ]
    assert list(clean.index) == [d for i, d in enumerate(df.index) if i not in (0, 6)]
    assert clean.loc[df.index[4], "Close"] == df.iloc[3]["Close"]
    assert "forward-filled 2 missing value(s)" in caplog.text
    assert "2 invalid row(s) dropped" in caplog.text


def test_ffill_drops_a_row_whose_filled_price_breaks_the_bar():
    df = prices()
    df.iloc[4, df.columns.get_loc("High")] = np.nan
    df.iloc[3, df.columns.get_loc("High")] = 1.0  # row 3 is itself broken (High < Low)
    clean, _ = validate_ohlcv(df, max_gap_days=4, policy="ffill", min_rows=5)
    assert df.index[3] not in clean.index and df.index[4] not in clean.index


def test_gaps_fail_under_fail_and_are_only_reported_otherwise(caplog):
    df = prices().drop(index=pd.bdate_range("2024-01-08", "2024-01-10"))  # Fri -> Thu: 6 days
    with pytest.raises(
        OhlcvDataError,
        match=r"(?s)row 5 \(2024-01-11\): gap: 6 calendar days.*"
        r"raise max_gap_days",
    ):
        validate_ohlcv(df, max_gap_days=4, policy="fail", min_rows=5)
    for policy in ("drop", "ffill"):
        with caplog.at_level(logging.WARNING, logger="nnpipe.domains.ohlcv.validation"):
            clean, violations = validate_ohlcv(df, max_gap_days=4, policy=policy, min_rows=5)
        pd.testing.assert_frame_equal(clean, df)  # gaps are never filled
        assert [(v.row, v.rule) for v in violations] == [(5, "gap")]
        assert "1 gap(s) longer than 4 calendar days" in caplog.text
    assert validate_ohlcv(df, max_gap_days=6, policy="fail", min_rows=5)[1] == []


def test_too_few_rows_after_cleaning_says_how_many_and_how_many_needed():
    with pytest.raises(
        OhlcvDataError,
        match=r"only 6 usable price row\(s\) \(of 12 read, "
        r"policy 'drop'\), but 61 are needed",
    ):
        validate_ohlcv(broken(), max_gap_days=4, policy="drop", min_rows=61)


def test_validation_arguments_are_checked():
    with pytest.raises(ValueError, match="policy"):
        validate_ohlcv(prices(), max_gap_days=4, policy="interpolate", min_rows=5)
    with pytest.raises(OhlcvDataError, match="indexed by date"):
        validate_ohlcv(prices().reset_index(drop=True), max_gap_days=4, policy="fail", min_rows=5)
