"""compress: the deployable variants of each series' forecaster, each measured by running it.

The same variants as for the X-ray model (see ``ohlcv.compress.variants``). Recurrent
layers are exported with a fixed batch of one (the converter cannot run their dynamic-batch
form); full-integer conversion of an LSTM may crash the converter, which the child process
turns into an "unsupported" row. The metric is the test period's MAE relative to
persistence, in price units, from the variant's own forecasts; parity is the largest and
the mean absolute difference from the Keras model's forecasts (price units). Output:
``models/ohlcv-variants/<series>/``, ``reports/ohlcv/compression.json`` and ``.md``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from nnpipe import tracking
from nnpipe.artifacts import SeriesCompressionTable, UnitVariants
from nnpipe.compression.runner import (
    clean_job_dir,
    predictions,
    reference_predictions,
    run_variants,
)
from nnpipe.compression.table import add_ratios, markdown
from nnpipe.config import Params
from nnpipe.domains.ohlcv.artifacts import OhlcvFeatures, OhlcvTrainRun
from nnpipe.domains.ohlcv.domain import OHLCV
from nnpipe.domains.ohlcv.forecasting import Prepared, read_prepared, score_forecasts, to_price
from nnpipe.domains.ohlcv.scoring import VARIANT_METRIC
from nnpipe.io import atomic_directory, atomic_write_text
from nnpipe.layout import domain_layout
from nnpipe.stages import cli_main, require

log = logging.getLogger(__name__)

METRIC, PARITY = VARIANT_METRIC, "max_abs_diff"


def score_variant(
    prep: Prepared, forecast: np.ndarray, reference_price: np.ndarray, ma_window: int
) -> dict:
    """Test-period errors of one variant's forecasts (target units) in price units."""
    test = prep.windows["test"]
    last_close = prep.series.close[test.rows - prep.horizon]
    price = to_price(forecast, last_close, prep.target_kind, prep.horizon)
    scored = score_forecasts(
        prep.series, test.rows, prep.horizon, price, prep.splits["train"][1], ma_window
    )
    diff = np.abs(price - reference_price)
    return {
        **{k: scored[k] for k in ("relative_mae", "relative_rmse")},
        **{k: scored["model"][k] for k in ("rmse", "mae", "mape", "mase")},
        PARITY: float(diff.max()),
        "mean_abs_diff": float(diff.mean()),
        "max_relative_diff": float(np.max(diff / np.abs(last_close))),
    }


def compress_series(params: Params, domain: str, prep: Prepared, out: Path) -> dict:
    cfg = OHLCV.section(params)
    c = cfg.compress
    layout = domain_layout(params, domain)
    model_path = require(layout.model / prep.name / "model.keras", "train", domain)
    train, test = prep.windows["train"], prep.windows["test"]
    pick = np.random.default_rng(params.seed).permutation(len(train))[: c.representative_samples]
    data = {
        "x_repr": train.x[pick],
        "x_test": test.x,
        "x_tune": train.x,
        "y_tune": train.y.reshape(-1, 1),
    }
    job = {
        "model": str(model_path.resolve()),
        "variants": c.variants,
        "threads": c.threads,
        "latency_runs": c.latency_runs,
        "seed": params.seed,
        "loss": "mse",
        "prune": c.prune.model_dump(),
    }
    rows = run_variants(out, job, data, timeout=c.timeout_seconds)
    last_close = prep.series.close[test.rows - prep.horizon]
    reference = to_price(
        reference_predictions(out, rows).reshape(-1), last_close, prep.target_kind, prep.horizon
    )
    for name, row in rows.items():
        forecast = predictions(out, name)
        if row["status"] == "ok" and forecast is not None:
            row |= score_variant(
                prep, forecast.reshape(-1), reference, cfg.evaluate.moving_average_window
            )
    clean_job_dir(out, rows)
    return add_ratios(rows, METRIC)


def run(params: Params, domain: str) -> dict:
    c = OHLCV.section(params).compress
    layout = domain_layout(params, domain)
    meta = OhlcvFeatures.read(require(layout.features / "meta.json", "featurize", domain), domain)
    tables: dict[str, UnitVariants] = {}
    reports = []
    layout.reports.mkdir(parents=True, exist_ok=True)
    with (
        atomic_directory(layout.variants) as out,
        tempfile.TemporaryDirectory(dir=layout.reports, prefix=".compress.") as staging,
    ):
        for name in meta.series:
            prep = read_prepared(layout.features, name, meta)
            rows = compress_series(params, domain, prep, out / name)
            run_info = OhlcvTrainRun.read(
                require(layout.model / name / "run.json", "train", domain), domain
            )
            tables[name] = UnitVariants(run_id=run_info.run_id, variants=rows)
            reports.append(
                markdown(
                    rows,
                    METRIC,
                    PARITY,
                    f"{name}: forecaster variants",
                    [
                        "Metric: test-period MAE / persistence's, price units, from each variant's "
                        "own forecasts; parity: largest |forecast - Keras forecast| (price units).",
                        f"Latency: one window, {c.threads} thread(s), {c.latency_runs} runs.",
                    ],
                )
            )
        table = SeriesCompressionTable(metric=METRIC, parity=PARITY, series=tables)
        json_tmp = table.write(Path(staging) / "compression.json")
        md_tmp = atomic_write_text(Path(staging) / "compression.md", "\n".join(reports))
        for t in tables.values():
            with tracking.start_run(params, domain, "compress", run_id=t.run_id):
                # the table is the artifact; one summary number on the run (register adds the
                # deployed variant's size and metric)
                tracking.log_metrics(
                    {
                        "compression.variants_built": sum(
                            r["status"] == "ok" for r in t.variants.values()
                        )
                    }
                )
                tracking.log_artifacts(json_tmp, "compression")
                tracking.log_artifacts(md_tmp, "compression")
        json_tmp.replace(layout.compression)
        md_tmp.replace(layout.compression_report)
    for name, t in tables.items():
        for variant, row in t.variants.items():
            if row["status"] == "ok":
                log.info(
                    "compress: %s %-15s %8.1f KiB, MAE/persistence %.4f, max diff %.4g, %.3f ms",
                    name,
                    variant,
                    row["size_bytes"] / 1024,
                    row[METRIC],
                    row[PARITY],
                    row["latency_ms_median"],
                )
            else:
                log.warning("compress: %s %-15s unsupported: %s", name, variant, row["reason"])
    return {
        "stage": "compress",
        "series": {n: {v: r["status"] for v, r in t.variants.items()} for n, t in tables.items()},
    }


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
