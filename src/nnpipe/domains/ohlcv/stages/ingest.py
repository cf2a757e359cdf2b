"""ingest (with validation): read each configured price series into ``data/ohlcv/raw``.

Sources: ``synthetic`` (offline default), ``csv`` (a local path or an http(s) URL per
series) and ``yfinance`` (the ``market`` extra). Every series is validated (time order,
gaps, bar consistency, prices and volume) under the configured policy; each finding is
reported with its row and date, and with policy ``fail`` the stage stops before writing
anything. Output: ``<series>.csv`` (date, Open, High, Low, Close, Volume) and
``manifest.json`` (source, rows and dates per series, findings).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pandas as pd

from nnpipe.config import Params
from nnpipe.domains.ohlcv.artifacts import OhlcvManifest, SeriesIngest
from nnpipe.domains.ohlcv.domain import OHLCV
from nnpipe.domains.ohlcv.params import OhlcvIngest, series_names
from nnpipe.domains.ohlcv.sources import OhlcvDataError, fetch_url, read_ohlcv_csv
from nnpipe.domains.ohlcv.synthetic import generate_ohlcv
from nnpipe.domains.ohlcv.validation import validate_ohlcv
from nnpipe.io import atomic_directory, source_fingerprint
from nnpipe.layout import domain_layout
from nnpipe.stages import cli_main

log = logging.getLogger(__name__)

_SHOWN = 5  # findings quoted per series in the manifest and log


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def read_csv_source(location: str, cache_dir: Path) -> pd.DataFrame:
    """A price CSV from a path or an http(s) URL (downloaded to the cache, then read)."""
    if is_url(location):
        name = hashlib.sha256(location.encode()).hexdigest()[:16] + ".csv"
        return read_ohlcv_csv(fetch_url(location, cache_dir / "ohlcv" / name))
    path = Path(location)
    if not path.is_file():
        raise OhlcvDataError(
            f"price file {path} does not exist; give an existing CSV path "
            "or an http(s) URL in ohlcv.ingest.csv.files"
        )
    return read_ohlcv_csv(path)


def load_series(cfg: OhlcvIngest, seed: int, cache_dir: Path) -> dict[str, pd.DataFrame]:
    """Each configured series, by name, as read (not yet validated)."""
    names = series_names(cfg)
    if cfg.source == "synthetic":
        s = cfg.synthetic
        log.info(
            "generating %d synthetic series of %d business days; NOT market data",
            len(names),
            s.n_days,
        )
        return {
            name: generate_ohlcv(s.n_days, seed + i, s.start, s.start_price, ticker=name)
            for i, name in enumerate(names)
        }
    if cfg.source == "csv":
        return {name: read_csv_source(loc, cache_dir) for name, loc in cfg.csv.files.items()}
    from nnpipe.domains.ohlcv.market import fetch_yfinance

    y = cfg.yfinance
    return {
        name: fetch_yfinance(ticker, y.start, y.end, y.interval)
        for name, ticker in zip(names, y.tickers, strict=True)
    }


def source_paths(cfg: OhlcvIngest) -> list[Path | None]:
    """The local files the configured source reads."""
    if cfg.source == "csv":
        return [Path(loc) for loc in cfg.csv.files.values() if not is_url(loc)]
    return []


def source_changed(params: Params, domain: str) -> bool:
    """True if the local files changed since the raw data was made, or if the source is
    remote (a URL or the market-data client can have new bars on every run), or if the
    raw data has no manifest this nnpipe reads (ingest re-runs and writes one)."""
    cfg = OHLCV.section(params).ingest
    manifest = domain_layout(params, domain).raw / "manifest.json"
    if not manifest.is_file():
        return True
    if cfg.source == "yfinance" or any(
        is_url(loc) for loc in cfg.csv.files.values() if cfg.source == "csv"
    ):
        return True
    recorded = OhlcvManifest.read_if_usable(manifest, domain)
    return recorded is None or recorded.source_fingerprint != source_fingerprint(source_paths(cfg))


def describe(frame: pd.DataFrame) -> dict:
    return {
        "rows": len(frame),
        "first": frame.index.min().isoformat(),
        "last": frame.index.max().isoformat(),
    }


def run(params: Params, domain: str) -> dict:
    cfg = OHLCV.section(params)
    layout = domain_layout(params, domain)
    fingerprint = source_fingerprint(source_paths(cfg.ingest))
    loaded = load_series(cfg.ingest, params.seed, params.paths.cache)
    v = cfg.validation
    checked: dict[str, pd.DataFrame] = {}
    summary: dict[str, SeriesIngest] = {}
    for name, frame in loaded.items():
        try:
            clean, findings = validate_ohlcv(
                frame, max_gap_days=v.max_gap_days, policy=v.policy, min_rows=v.min_rows
            )
        except OhlcvDataError as exc:
            raise OhlcvDataError(f"series {name!r}: {exc}") from None
        for finding in findings[:_SHOWN]:
            log.warning("%s: %s", name, finding)
        checked[name] = clean
        summary[name] = SeriesIngest(
            **describe(clean),
            rows_read=len(frame),
            findings=len(findings),
            first_findings=[str(f) for f in findings[:_SHOWN]],
        )
    with atomic_directory(layout.raw) as tmp:
        for name, frame in checked.items():
            frame.to_csv(tmp / f"{name}.csv", index_label="date")
        OhlcvManifest(
            source=cfg.ingest.source,
            series=summary,
            validation=v.model_dump(),
            source_fingerprint=fingerprint,
        ).write(tmp / "manifest.json")
    for name, info in summary.items():
        log.info(
            "ingest: %s %d rows %s..%s (%d finding(s), policy %s)",
            name,
            info.rows,
            info.first[:10],
            info.last[:10],
            info.findings,
            v.policy,
        )
    return {"stage": "ingest", "series": {n: i.rows for n, i in summary.items()}}


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
