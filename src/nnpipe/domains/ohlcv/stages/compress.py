"""The OHLCV part of the compress stage (:mod:`nnpipe.stages.compress`): each series'
forecaster's variants.

Recurrent layers are exported with a fixed batch of one (the converter cannot run their
dynamic-batch form); full-integer conversion of an LSTM may crash the converter, which the
child process turns into an "unsupported" row. The metric is the test period's MAE
relative to persistence, in price units, from the variant's own forecasts; parity is the
largest and the mean absolute difference from the Keras model's forecasts (price units).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from nnpipe.config import Params
from nnpipe.domains.contract import Unit
from nnpipe.domains.ohlcv.artifacts import OhlcvFeatures
from nnpipe.domains.ohlcv.domain import OHLCV
from nnpipe.domains.ohlcv.forecasting import Prepared, read_prepared, score_forecasts, to_price
from nnpipe.domains.ohlcv.scoring import VARIANT_METRIC
from nnpipe.domains.parts import VariantInputs, VariantOutputs
from nnpipe.layout import domain_layout
from nnpipe.stages import require

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


def score_rows(
    prep: Prepared,
    ma_window: int,
    rows: dict[str, dict[str, Any]],
    outputs: VariantOutputs,
    reference: np.ndarray,
) -> None:
    test = prep.windows["test"]
    last_close = prep.series.close[test.rows - prep.horizon]
    reference_price = to_price(reference.reshape(-1), last_close, prep.target_kind, prep.horizon)
    for name, row in rows.items():
        forecast = outputs(name)
        if row["status"] == "ok" and forecast is not None:
            row |= score_variant(prep, forecast.reshape(-1), reference_price, ma_window)


class OhlcvCompression:
    metric = METRIC
    parity = PARITY

    def inputs(self, params: Params, unit: Unit) -> VariantInputs:
        cfg = OHLCV.section(params)
        layout = domain_layout(params, OHLCV.name)
        meta = OhlcvFeatures.read(
            require(layout.features / "meta.json", "featurize", OHLCV.name), OHLCV.name
        )
        prep = read_prepared(layout.features, unit.key, meta)
        train, test = prep.windows["train"], prep.windows["test"]
        rng = np.random.default_rng(params.seed)
        pick = rng.permutation(len(train))[: cfg.compress.representative_samples]
        data = {
            "x_repr": train.x[pick],
            "x_test": test.x,
            "x_tune": train.x,
            "y_tune": train.y.reshape(-1, 1),
        }
        score = partial(score_rows, prep, cfg.evaluate.moving_average_window)
        return VariantInputs(data, "mse", score)

    def report(self, params: Params, unit: Unit) -> tuple[str, list[str]]:
        c = OHLCV.section(params).compress
        return (
            f"{unit.key}: forecaster variants",
            [
                "Metric: test-period MAE / persistence's, price units, from each variant's "
                "own forecasts; parity: largest |forecast - Keras forecast| (price units).",
                f"Latency: one window, {c.threads} thread(s), {c.latency_runs} runs.",
            ],
        )

    def table_fields(self, params: Params) -> dict[str, Any]:
        return {}
