"""featurize: derived features, the target, and chronological splits with gaps.

For each series: the guide's five columns plus the derived features chosen in params;
the target (next Close, or next log return) per row; train, validation and test as
contiguous blocks in time order with ``look_back`` rows left out between them, so no
window sees across a boundary. The scalers are fitted on the training period only (and
later built into the model). Output in ``data/ohlcv/features``: ``<series>.csv`` (the
rows windows are cut from) and ``meta.json`` (per series: features, splits with their
dates, window counts, the train-only scaler statistics).
"""

from __future__ import annotations

import logging

import pandas as pd

from nnpipe.config import Params
from nnpipe.domains.ohlcv.artifacts import (
    OhlcvFeatures,
    OhlcvManifest,
    SeriesFeatures,
    SplitRows,
)
from nnpipe.domains.ohlcv.domain import OHLCV
from nnpipe.domains.ohlcv.forecasting import (
    SeriesFrame,
    fit_scalers,
    prepare_series,
    series_table,
    windows_between,
)
from nnpipe.domains.ohlcv.params import OhlcvFeaturize
from nnpipe.domains.ohlcv.sources import OhlcvDataError, read_ohlcv_csv
from nnpipe.domains.ohlcv.windows import chronological_splits
from nnpipe.io import atomic_directory
from nnpipe.layout import domain_layout
from nnpipe.stages import cli_main, require

log = logging.getLogger(__name__)


def featurize_series(
    frame: pd.DataFrame, fz: OhlcvFeaturize, name: str
) -> tuple[SeriesFrame, SeriesFeatures]:
    """One series' rows (features and target) and its record: splits with their dates,
    window counts and the scalers fitted on the training period."""
    series = prepare_series(frame, fz.derived, fz.target)
    try:
        splits = chronological_splits(
            len(series.target),
            fz.val_fraction,
            fz.test_fraction,
            gap=fz.look_back,
            horizon=fz.horizon,
        )
    except OhlcvDataError as exc:
        raise OhlcvDataError(f"series {name!r}: {exc}") from None
    windows = {
        s: windows_between(series, fz.look_back, fz.horizon, *rows) for s, rows in splits.items()
    }
    inputs, target = fit_scalers(series, windows["train"], splits["train"])
    record = SeriesFeatures(
        features=series.feature_names,
        rows=len(series.target),
        splits={
            s: SplitRows(
                rows=r,
                first=series.dates[r[0]].isoformat(),
                last=series.dates[r[1] - 1].isoformat(),
                windows=len(windows[s]),
            )
            for s, r in splits.items()
        },
        input_scaler=inputs.to_dict(),
        target_scaler=target.to_dict(),
    )
    return series, record


def run(params: Params, domain: str) -> dict:
    fz = OHLCV.section(params).featurize
    layout = domain_layout(params, domain)
    manifest = OhlcvManifest.read(require(layout.raw / "manifest.json", "ingest", domain), domain)
    meta = OhlcvFeatures(
        look_back=fz.look_back,
        horizon=fz.horizon,
        target=fz.target,
        derived=list(fz.derived),
        val_fraction=fz.val_fraction,
        test_fraction=fz.test_fraction,
        series={},
    )
    with atomic_directory(layout.features) as tmp:
        for name in manifest.series:
            frame = read_ohlcv_csv(require(layout.raw / f"{name}.csv", "ingest", domain))
            series, meta.series[name] = featurize_series(frame, fz, name)
            series_table(series).to_csv(tmp / f"{name}.csv")
            log.info(
                "featurize: %s %d rows, %d features; windows train/val/test %s",
                name,
                len(series.target),
                len(series.feature_names),
                "/".join(str(s.windows) for s in meta.series[name].splits.values()),
            )
        meta.write(tmp / "meta.json")
    return {
        "stage": "featurize",
        "windows": {n: {s: v.windows for s, v in m.splits.items()} for n, m in meta.series.items()},
    }


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
