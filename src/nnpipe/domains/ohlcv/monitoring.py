"""What the OHLCV monitor compares: each forecast window's last bar and the scale-free
quantities a regime change moves (the last bar's log return, the window's realised
volatility, the last volume against the window's mean, the bar's range), and the
forecast as a return; the checks on them; and the live score of logged forecasts once
the next bars arrive.

Price and volume *levels* are logged (the last bar) but not tested: a series trending
for years would fail any test of its level against a training split of its past."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nnpipe.monitoring.drift import Check, psi_check, summary
from nnpipe.monitoring.frame import OUTPUT_PREFIX, MonitorFrame

if TYPE_CHECKING:
    from pathlib import Path

    from nnpipe.config import Params
    from nnpipe.config.common import Monitor
    from nnpipe.domains.contract import Unit

BAR = ("Open", "High", "Low", "Close", "Volume")


def window_features(window: np.ndarray, features: Sequence[str]) -> dict[str, Any]:
    """One raw window's (look-back rows of ``features``, oldest first) monitored values."""
    names = list(features)
    x = np.asarray(window, dtype=np.float64)
    close = x[:, names.index("Close")]
    returns = np.diff(np.log(np.maximum(close, 1e-12)))
    row: dict[str, Any] = {name: float(x[-1, names.index(name)]) for name in BAR if name in names}
    row["log_return"] = float(returns[-1]) if len(returns) else 0.0
    row["volatility"] = float(returns.std()) if len(returns) > 1 else 0.0
    if "High" in names and "Low" in names:
        row["range"] = float((x[-1, names.index("High")] - x[-1, names.index("Low")]) / close[-1])
    if "Volume" in names:
        volume = x[:, names.index("Volume")]
        mean = float(volume.mean())
        row["volume_ratio"] = float(np.log((volume[-1] + 1.0) / (mean + 1.0)))
    for name in names:  # derived features (log_return, hl_range, volume_z...) as served
        if name not in BAR:
            row[f"derived_{name}"] = float(x[-1, names.index(name)])
    return row


def forecast_output(forecast: float, price: float, last_close: float) -> dict[str, float]:
    """What the log keeps of a forecast: as served, and as the return it implies."""
    return {
        "forecast": float(forecast),
        "price": float(price),
        "predicted_return": float(np.log(max(price, 1e-12) / max(last_close, 1e-12))),
    }


def drift_checks(reference: MonitorFrame, current: MonitorFrame, thresholds: Any) -> list[Check]:
    """Every OHLCV check, on the daily values of each forecast's last bar (its return, its
    volume against its window's): consecutive forecasts' windows overlap, so window-level
    values would be far from independent draws. And prices cluster in regimes (GARCH),
    so even the daily values of one month are not a sample of the training years: each
    window is judged against the training split's own windows of its length (how
    unusual it is among them), not against a test's textbook null."""
    t = thresholds
    checks: list[Check] = []
    for name in ("log_return", "volume_ratio"):
        if name in reference.table and name in current.table:
            ref, cur = reference.numbers(name), current.numbers(name)
            checks.append(windowed_ks_check(name, ref, cur, t.ks_alpha))
    if "log_return" in reference.table and "log_return" in current.table:
        ref, cur = reference.numbers("log_return"), current.numbers("log_return")
        checks.append(volatility_check(ref, cur, t.volatility_alpha))
    column = OUTPUT_PREFIX + "predicted_return"
    if column in reference.table and column in current.table:
        ref, cur = reference.numbers(column), current.numbers(column)
        checks.append(
            psi_check("prediction", ref, cur, t.psi, bins=min(10, max(2, len(cur) // 10)))
        )
    return checks


def _window_starts(length: int, n: int, most: int) -> np.ndarray:
    """Where the reference's stretches of ``n`` consecutive days start (``length`` > ``n``):
    at most ``most`` of them, evenly spaced."""
    return np.unique(np.linspace(0, length - n, min(most, length - n + 1)).astype(np.int64))


def windowed_ks_check(name: str, reference: np.ndarray, current: np.ndarray, alpha: float) -> Check:
    """The Kolmogorov-Smirnov statistic of the current window against the whole
    reference (scipy.stats.ks_2samp), and its p-value among the reference's own windows
    of that length, each against the rest of the reference (left out, as the current
    window is not in it): the share of them at least as far from the rest. A textbook KS
    p-value assumes independent draws, and would alarm on any calm month of a series
    whose volatility clusters."""
    from scipy.stats import ks_2samp

    ref, cur = np.asarray(reference, np.float64), np.asarray(current, np.float64)
    n = len(cur)
    observed = float(ks_2samp(ref, cur).statistic)
    null = np.array(
        [
            ks_2samp(np.concatenate([ref[:s], ref[s + n :]]), ref[s : s + n]).statistic
            for s in _window_starts(len(ref), n, most=200)
        ]
        if len(ref) > n
        else [observed]
    )
    return Check.judged(
        name,
        "ks_windowed",
        observed,
        float((np.sum(null >= observed) + 1) / (len(null) + 1)),
        alpha,
        (len(ref), n),
        reference_summary=summary(ref),
        current_summary=summary(cur),
        note=f"p-value: among the reference's {len(null)} windows of {n} days, each left "
        "out of the rest",
    )


def volatility_check(reference: np.ndarray, current: np.ndarray, alpha: float) -> Check:
    """The volatility regime: the current window's realised volatility (the standard
    deviation of its daily returns) against the reference's windows of that length
    (consecutive training days). Their log volatilities are close to normal; the
    p-value is the two-sided prediction interval's for one more of them, Student's t
    with one degree of freedom per non-overlapping window less one: the reference holds
    few independent stretches (volatility clusters), and an empirical quantile of them
    could not say how unusual a window beyond all of them is."""
    from scipy.stats import t as student_t

    ref, cur = np.asarray(reference, np.float64), np.asarray(current, np.float64)
    n = len(cur)
    observed = float(cur.std())
    independent = len(ref) // max(n, 1)
    if independent < 2:  # no spread to judge against: the window is not tested
        rolling, spread, p = np.array([ref.std()]), 0.0, 1.0
    else:
        rolling = np.lib.stride_tricks.sliding_window_view(ref, n).std(axis=1)
        logs = np.log(np.maximum(rolling, 1e-12))
        spread = float(logs.std(ddof=1))
        z = (np.log(max(observed, 1e-12)) - logs.mean()) / max(
            spread * np.sqrt(1 + 1 / independent), 1e-12
        )
        p = float(min(1.0, 2 * student_t.sf(abs(z), independent - 1)))
    median = float(np.median(rolling))
    return Check.judged(
        "volatility",
        "log_volatility_t",
        observed / median if median > 0 else 0.0,
        p,
        alpha,
        (len(ref), n),
        reference_summary={
            "median": median,
            "p01": float(np.quantile(rolling, 0.01)),
            "p99": float(np.quantile(rolling, 0.99)),
            "log_std": spread,
            "independent_windows": independent,
        },
        current_summary={"std": observed},
        note=f"statistic: the window's volatility over the median of the reference's "
        f"{len(rolling)} windows of {n} days"
        + ("" if independent >= 2 else "; not tested: the reference is under two windows long"),
    )


def live_performance(
    logged: pd.DataFrame, bars: pd.DataFrame, horizon: int, target: str
) -> dict[str, Any]:
    """Logged forecasts scored against the bars that followed them: each logged window's
    last bar is found in ``bars`` (the series as it is now, by its five values), and the
    bar ``horizon`` rows later is the actual. The model's MAE against persistence's (the
    last close), the ratio the register gate uses, on the Close implied."""
    closes = bars["Close"].to_numpy(np.float64)
    keys = {
        tuple(np.round(row, 6)): i for i, row in enumerate(bars[list(BAR)].to_numpy(np.float64))
    }
    matched = []
    for features, output in zip(logged["features"], logged["output"], strict=True):
        key = tuple(np.round([features.get(c, np.nan) for c in BAR], 6))
        i = keys.get(key)
        if i is None or i + horizon >= len(closes):
            continue  # no such bar, or its actual has not arrived yet
        matched.append((output["price"], closes[i], closes[i + horizon]))
    if not matched:
        return {"scored": 0, "waiting": len(logged)}
    predicted, last, actual = (np.asarray(v) for v in zip(*matched, strict=True))
    model_mae = float(np.mean(np.abs(predicted - actual)))
    persistence_mae = float(np.mean(np.abs(last - actual)))
    return {
        "scored": len(matched),
        "waiting": len(logged) - len(matched),
        "mae": model_mae,
        "persistence_mae": persistence_mae,
        "relative_mae": model_mae / persistence_mae if persistence_mae > 0 else None,
        "target": target,
    }


def read_bars(path: Path, params: Params) -> tuple[pd.DataFrame, dict[str, int]]:
    """A CSV of bars read and cleaned as ingest reads a series (its validation policy
    ``drop``: a finding is counted, not fatal), and the findings by rule."""
    from nnpipe.domains.ohlcv.domain import OHLCV
    from nnpipe.domains.ohlcv.sources import OhlcvDataError, read_ohlcv_csv
    from nnpipe.domains.ohlcv.validation import validate_ohlcv
    from nnpipe.monitoring.frame import MonitorInputError

    v = OHLCV.section(params).validation
    try:
        frame = read_ohlcv_csv(path)
        frame, found = validate_ohlcv(frame, max_gap_days=v.max_gap_days, policy="drop", min_rows=2)
    except OhlcvDataError as exc:
        raise MonitorInputError(str(exc)) from None
    return frame, dict(Counter(f.rule for f in found))


class OhlcvMonitoring:
    """The OHLCV part of the monitor (:mod:`nnpipe.stages.monitor`)."""

    def settings(self, params: Params) -> Monitor:
        from nnpipe.domains.ohlcv.domain import OHLCV

        return OHLCV.section(params).monitor

    def checks(self, params: Params, reference: MonitorFrame, current: MonitorFrame) -> list[Check]:
        return drift_checks(reference, current, self.settings(params))

    def performance(
        self, params: Params, unit: Unit, logged: pd.DataFrame, labels: Path | None
    ) -> dict[str, Any] | None:
        """Logged forecasts against the series' bars as they are now: ``labels`` (a CSV of
        bars), else the project's ingested series (as fresh as the last ingest)."""
        from nnpipe.domains.ohlcv.domain import OHLCV
        from nnpipe.domains.ohlcv.sources import read_ohlcv_csv
        from nnpipe.layout import domain_layout

        cfg = OHLCV.section(params)
        path = labels or domain_layout(params, OHLCV.name).raw / f"{unit.key}.csv"
        if not path.is_file():
            return None
        bars = read_ohlcv_csv(path) if labels is None else read_bars(path, params)[0]
        found = live_performance(logged, bars, cfg.featurize.horizon, cfg.featurize.target)
        found["bars"] = str(path)
        relative = found.get("relative_mae")
        found["alarm"] = bool(
            relative is not None
            and found["scored"] >= cfg.monitor.min_scored
            and relative > cfg.monitor.max_relative_mae
        )
        found["threshold"] = {
            "max_relative_mae": cfg.monitor.max_relative_mae,
            "min_scored": cfg.monitor.min_scored,
        }
        if found["alarm"]:
            found["reason"] = (
                f"live MAE over persistence's {relative:.3f} is above "
                f"monitor.max_relative_mae {cfg.monitor.max_relative_mae:g} on "
                f"{found['scored']} forecasts whose actual has arrived"
            )
        return found
