"""Whether a price series can be trusted, and cleaning it by a policy.

:func:`validate_ohlcv` checks what a forecaster silently relies on (time order, no
duplicate days, no long holes, consistent bars, positive prices) in a frame that
:func:`~nnpipe.domains.ohlcv.sources.read_ohlcv_csv` read, and either fails, drops the
offending rows or forward-fills missing values, reporting every finding with the row
number as in the file, so the user can find it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np
import pandas as pd

from nnpipe.domains.ohlcv.sources import COLUMNS, PRICE_COLUMNS, OhlcvDataError

__all__ = ["POLICIES", "RULES", "Policy", "Violation", "validate_ohlcv"]

log = logging.getLogger(__name__)

Policy = Literal["fail", "drop", "ffill"]
POLICIES = ("fail", "drop", "ffill")
_SHOWN = 10  # violations quoted in an error message
# Rule names, in the order a row's violations are listed.
RULES = (
    "duplicate_timestamp",
    "out_of_order",
    "gap",
    "price_missing",
    "price_not_positive",
    "ohlc_inconsistent",
    "volume_missing",
    "volume_negative",
)


@dataclass(frozen=True)
class Violation:
    """One broken rule: ``row`` is the 0-based data row in the file, ``date`` its timestamp."""

    row: int
    date: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"row {self.row} ({self.date}): {self.rule}: {self.detail}"


def _format_date(ts: pd.Timestamp) -> str:
    if pd.isna(ts):
        return "NaT"
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat(sep=" ")


def _find_order_violations(index: pd.DatetimeIndex) -> list[Violation]:
    """Duplicate timestamps (after the first) and rows dated before an earlier row."""
    stamps = index.asi8
    found = []
    for row in np.flatnonzero(index.duplicated(keep="first")):
        first = int(np.flatnonzero(stamps == stamps[row])[0])
        found.append(
            Violation(
                int(row),
                _format_date(index[int(row)]),
                "duplicate_timestamp",
                f"same timestamp as row {first}",
            )
        )
    if len(stamps) > 1:
        latest_before = np.maximum.accumulate(stamps)[:-1]
        for row in np.flatnonzero(stamps[1:] < latest_before) + 1:
            later = int(np.argmax(stamps[:row]))
            found.append(
                Violation(
                    int(row),
                    _format_date(index[int(row)]),
                    "out_of_order",
                    f"dated before row {later} ({_format_date(index[later])}); "
                    "rows must be in time order",
                )
            )
    return found


def _find_row_violations(frame: pd.DataFrame, rows: np.ndarray) -> list[Violation]:
    """Rules on each row alone: prices present and positive, a consistent bar, volume >= 0."""
    prices = frame[list(PRICE_COLUMNS)].to_numpy(dtype=float)
    volume = frame["Volume"].to_numpy(dtype=float)
    finite = np.isfinite(prices)
    o, h, lo, c = prices.T
    with np.errstate(invalid="ignore"):
        complete = finite.all(axis=1)
        high_low = complete & ((h < np.maximum(o, c)) | (lo > np.minimum(o, c)) | (h < lo))
        not_positive = finite & (prices <= 0)
        vol_negative = np.isfinite(volume) & (volume < 0)
    found = []
    for i in np.flatnonzero(
        ~complete | not_positive.any(axis=1) | high_low | ~np.isfinite(volume) | vol_negative
    ):
        where = (int(rows[i]), _format_date(frame.index[int(i)]))
        if not complete[i]:
            cols = [f"{PRICE_COLUMNS[j]}={prices[i, j]}" for j in np.flatnonzero(~finite[i])]
            found.append(
                Violation(*where, "price_missing", f"missing or infinite: {', '.join(cols)}")
            )
        if not_positive[i].any():
            cols = [f"{PRICE_COLUMNS[j]}={prices[i, j]:g}" for j in np.flatnonzero(not_positive[i])]
            found.append(
                Violation(*where, "price_not_positive", f"prices must be > 0: {', '.join(cols)}")
            )
        if high_low[i]:
            found.append(Violation(*where, "ohlc_inconsistent", _describe_bar(prices[i])))
        if not np.isfinite(volume[i]):
            found.append(Violation(*where, "volume_missing", f"Volume={volume[i]}"))
        if vol_negative[i]:
            found.append(Violation(*where, "volume_negative", f"Volume={volume[i]:g} < 0"))
    return found


def _describe_bar(bar: np.ndarray) -> str:
    o, h, lo, c = bar
    problems = []
    if h < max(o, c):
        problems.append(f"High {h:g} < max(Open, Close) {max(o, c):g}")
    if lo > min(o, c):
        problems.append(f"Low {lo:g} > min(Open, Close) {min(o, c):g}")
    if h < lo:
        problems.append(f"High {h:g} < Low {lo:g}")
    return "; ".join(problems)


def _find_gaps(index: pd.DatetimeIndex, rows: np.ndarray, max_gap_days: int) -> list[Violation]:
    """Holes longer than ``max_gap_days`` calendar days in a sorted, duplicate-free index."""
    if len(index) < 2:
        return []
    days = np.diff(index.asi8) / pd.Timedelta(days=1).value
    found = []
    for i in np.flatnonzero(days > max_gap_days) + 1:
        found.append(
            Violation(
                int(rows[i]),
                _format_date(index[int(i)]),
                "gap",
                f"{days[i - 1]:g} calendar days since the previous row "
                f"({_format_date(index[int(i) - 1])}), more than "
                f"max_gap_days={max_gap_days}",
            )
        )
    return found


def _sort_key(v: Violation) -> tuple[int, int]:
    return v.row, RULES.index(v.rule)


def _describe_failure(violations: list[Violation], n_rows: int) -> str:
    shown = "\n  ".join(str(v) for v in violations[:_SHOWN])
    rules = sorted({v.rule for v in violations}, key=RULES.index)
    hints = ["fix the file"]
    if set(rules) - {"gap"}:
        hints.append(
            "set the validation policy to 'drop' (remove bad rows, sort, de-duplicate) "
            "or 'ffill' (carry the last good value forward)"
        )
    if "gap" in rules:
        hints.append("raise max_gap_days if the gaps are expected (exchange holidays, closures)")
    return (
        f"price data ({n_rows} rows) has {len(violations)} violation(s) of rule(s) {rules}; "
        f"first {min(len(violations), _SHOWN)} (rows 0-based as in the file):\n  {shown}\n"
        f"To go on: {', or '.join(hints)}."
    )


def _check_arguments(df: pd.DataFrame, max_gap_days: int, policy: str, min_rows: int) -> None:
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    if max_gap_days < 1:
        raise ValueError(f"max_gap_days must be at least 1, got {max_gap_days}")
    if min_rows < 1:
        raise ValueError(f"min_rows must be at least 1, got {min_rows}")
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise OhlcvDataError(
            f"price data lacks column(s) {missing} (found "
            f"{[str(c) for c in df.columns]}); read it with read_ohlcv_csv"
        )
    if not isinstance(df.index, pd.DatetimeIndex):
        raise OhlcvDataError(
            f"price data must be indexed by date, not by "
            f"{type(df.index).__name__}; read it with read_ohlcv_csv"
        )


def _clean(
    frame: pd.DataFrame, rows: np.ndarray, policy: Policy
) -> tuple[pd.DataFrame, np.ndarray]:
    """A sorted, duplicate-free series without the rows that break a per-row rule, missing
    values first carried forward under ``"ffill"``; with the file rows of those kept."""
    if policy == "ffill":
        missing = ~np.isfinite(frame.to_numpy())
        frame = frame.mask(missing).ffill()
        log.info(
            "forward-filled %d missing value(s) in %d row(s)",
            int(missing.sum()),
            int(missing.any(axis=1).sum()),
        )
    bad_rows = {v.row for v in _find_row_violations(frame, rows)}
    keep = ~np.isin(rows, list(bad_rows))
    return frame[keep], rows[keep]


def _report_gaps(index: pd.DatetimeIndex, rows: np.ndarray, max_gap_days: int) -> list[Violation]:
    """The gaps of a cleaned series, logged: ``"drop"`` and ``"ffill"`` keep them."""
    gaps = _find_gaps(index, rows, max_gap_days)
    if gaps:
        log.warning(
            "%d gap(s) longer than %d calendar days are kept as they are, e.g. %s",
            len(gaps),
            max_gap_days,
            gaps[0],
        )
    return gaps


def _check_enough(kept: int, read: int, policy: str, min_rows: int) -> None:
    if kept < min_rows:
        raise OhlcvDataError(
            f"only {kept} usable price row(s) (of {read} read, policy {policy!r}), but "
            f"{min_rows} are needed for the look-back window, the horizon and the train, val "
            "and test splits. Use a longer price history, or a shorter look-back"
        )


def validate_ohlcv(
    df: pd.DataFrame, *, max_gap_days: int, policy: Policy, min_rows: int
) -> tuple[pd.DataFrame, list[Violation]]:
    """Check a price series and clean it by ``policy``; return it with every violation found.

    Rules: timestamps sorted and unique; no gap of more than ``max_gap_days`` calendar days
    between consecutive rows; each bar consistent (High >= max(Open, Close), Low <= min(Open,
    Close), High >= Low); prices present, finite and > 0; volume present and >= 0 (zero is
    allowed: a halted day trades nothing). Rows are numbered 0-based as in the file.

    ``"fail"`` raises :class:`OhlcvDataError` on any violation. ``"drop"`` sorts by time,
    keeps the first (in file order) of rows sharing a timestamp and removes rows breaking a
    per-row rule. ``"ffill"`` sorts and de-duplicates likewise, carries the last valid value
    forward into missing cells, then removes rows that are still invalid (a leading missing
    value, a non-positive price, an inconsistent bar). Gaps are never filled: inventing
    prices for closed days would teach the model a market that did not exist; under
    ``"drop"`` and ``"ffill"`` they are only logged, and they are measured on the cleaned
    series. Fewer than ``min_rows`` rows left is an error, since look-back + horizon + three
    splits need that many.
    """
    _check_arguments(df, max_gap_days, policy, min_rows)
    frame = df[list(COLUMNS)].astype(float)
    rows = np.arange(len(frame))
    dates = cast(pd.DatetimeIndex, frame.index)  # _check_arguments checked it
    found = _find_order_violations(dates) + _find_row_violations(frame, rows)
    order = np.argsort(dates.asi8, kind="stable")  # ties keep file order
    frame, rows = frame.iloc[order], rows[order]
    unique = ~frame.index.duplicated(keep="first")
    frame, rows = frame[unique], rows[unique]
    if policy == "fail":
        found += _find_gaps(cast(pd.DatetimeIndex, frame.index), rows, max_gap_days)
        if found:
            raise OhlcvDataError(_describe_failure(sorted(found, key=_sort_key), len(df)))
    else:
        frame, rows = _clean(frame, rows, policy)
        log.info(
            "validation (policy %r): %d duplicate(s) removed, %d out-of-order row(s) "
            "sorted, %d invalid row(s) dropped; %d of %d rows kept",
            policy,
            int((~unique).sum()),
            sum(v.rule == "out_of_order" for v in found),
            int(unique.sum()) - len(frame),
            len(frame),
            len(df),
        )
        found += _report_gaps(cast(pd.DatetimeIndex, frame.index), rows, max_gap_days)
    _check_enough(len(frame), len(df), policy, min_rows)
    return frame.rename_axis("date"), sorted(found, key=_sort_key)
