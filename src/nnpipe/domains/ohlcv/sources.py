"""Where daily prices come from, and whether they can be trusted: read, fetch, validate.

:func:`read_ohlcv_csv` turns the common CSV layouts (an unnamed date index as written by
pandas, a ``Date``/``Datetime``/``timestamp`` column, any letter case, an extra
``Adj Close``, intraday timestamps with a time zone) into one shape: a ``DatetimeIndex``
named ``date`` and float columns ``Open, High, Low, Close, Volume`` in file order.

:func:`validate_ohlcv` then checks what a forecaster silently relies on (time order, no
duplicate days, no long holes, consistent bars, positive prices) and either fails, drops
the offending rows or forward-fills missing values, reporting every finding with the row
number as in the file, so the user can find it. :func:`fetch_url` downloads a price file.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

import numpy as np
import pandas as pd

from nnpipe.download import fetch
from nnpipe.errors import NnpipeError

__all__ = [
    "COLUMNS",
    "PRICE_COLUMNS",
    "OhlcvDataError",
    "Violation",
    "fetch_url",
    "read_ohlcv_csv",
    "validate_ohlcv",
]

log = logging.getLogger(__name__)

COLUMNS = ("Open", "High", "Low", "Close", "Volume")
PRICE_COLUMNS = ("Open", "High", "Low", "Close")
Policy = Literal["fail", "drop", "ffill"]
POLICIES = ("fail", "drop", "ffill")

_DATE_NAMES = ("date", "datetime", "timestamp")
_DROPPED_NAMES = frozenset({"adjclose"})  # the dividend-adjusted close: not one of the five
_UNNAMED = re.compile(r"^(Unnamed: \d+)?$")
_SHOWN = 10  # violations (and bad values) quoted in an error message
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


class OhlcvDataError(NnpipeError, ValueError):
    """A price file or series is unusable as given; the message says what and the fix."""


@dataclass(frozen=True)
class Violation:
    """One broken rule: ``row`` is the 0-based data row in the file, ``date`` its timestamp."""

    row: int
    date: str
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"row {self.row} ({self.date}): {self.rule}: {self.detail}"


# --------------------------------------------------------------------------- reading


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
    options = {"dtype": str, "skipinitialspace": True}
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
            unit = "s" if numbers.abs().max() < 1e11 else "ms"
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


# --------------------------------------------------------------------------- fetching


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


# --------------------------------------------------------------------------- validation


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
                _format_date(index[row]),
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
                    _format_date(index[row]),
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
        where = (int(rows[i]), _format_date(frame.index[i]))
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
                _format_date(index[i]),
                "gap",
                f"{days[i - 1]:g} calendar days since the previous row "
                f"({_format_date(index[i - 1])}), more than "
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
    found = _find_order_violations(frame.index) + _find_row_violations(frame, rows)
    order = np.argsort(frame.index.asi8, kind="stable")  # ties keep file order
    frame, rows = frame.iloc[order], rows[order]
    unique = ~frame.index.duplicated(keep="first")
    frame, rows = frame[unique], rows[unique]
    if policy == "fail":
        found += _find_gaps(frame.index, rows, max_gap_days)
        if found:
            raise OhlcvDataError(_describe_failure(sorted(found, key=_sort_key), len(df)))
    else:
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
        frame, rows = frame[keep], rows[keep]
        log.info(
            "validation (policy %r): %d duplicate(s) removed, %d out-of-order row(s) "
            "sorted, %d invalid row(s) dropped; %d of %d rows kept",
            policy,
            int((~unique).sum()),
            sum(v.rule == "out_of_order" for v in found),
            len(bad_rows),
            len(frame),
            len(df),
        )
        gaps = _find_gaps(frame.index, rows, max_gap_days)
        if gaps:
            log.warning(
                "%d gap(s) longer than %d calendar days are kept as they are, e.g. %s",
                len(gaps),
                max_gap_days,
                gaps[0],
            )
        found += gaps
    if len(frame) < min_rows:
        raise OhlcvDataError(
            f"only {len(frame)} usable price row(s) (of {len(df)} read, policy {policy!r}), but "
            f"{min_rows} are needed for the look-back window, the horizon and the train, val "
            "and test splits. Use a longer price history, or a shorter look-back"
        )
    return frame.rename_axis("date"), sorted(found, key=_sort_key)
