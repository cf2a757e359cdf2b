"""tune: search the forecaster's hyper-parameters (``ohlcv.tune``), scored by validation
loss (scaled target units, comparable across series); train then applies the best values
over ``ohlcv.train`` to every series.

With several series a trial fits each of them and is scored on the per-epoch mean of
their validation losses: one configuration for all, as ``train`` uses one. Each fit is the
training code itself (:func:`nnpipe.domains.ohlcv.models.fit_forecaster`). See
:mod:`nnpipe.stages.tuning` for the outputs.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from nnpipe.config import Params
from nnpipe.domains.ohlcv.artifacts import OhlcvFeatures
from nnpipe.domains.ohlcv.domain import OHLCV
from nnpipe.domains.ohlcv.forecasting import read_prepared
from nnpipe.domains.ohlcv.models import fit_forecaster
from nnpipe.keras_env import keras, make_deterministic
from nnpipe.layout import domain_layout
from nnpipe.stages import cli_main, require
from nnpipe.stages.tuning import run_tuning, tuned_train
from nnpipe.tuning.search import Objective

log = logging.getLogger(__name__)

OBJECTIVE = Objective("val_loss", "min")


def fit_trial(
    params: Params,
    domain: str,
    values: dict[str, Any],
    epochs: int,
) -> list[dict[str, Any]]:
    """Train one configuration on every series; per-epoch history, averaged over series
    (an epoch a series stopped before counts with that series' last value)."""
    cfg = OHLCV.section(params)
    layout = domain_layout(params, domain)
    meta = OhlcvFeatures.read(require(layout.features / "meta.json", "featurize", domain), domain)
    train = tuned_train(cfg.train, values)
    histories = []
    for name in meta.series:
        prep = read_prepared(layout.features, name, meta)
        tr, va = prep.windows["train"], prep.windows["val"]
        make_deterministic(params.seed)
        fitted = fit_forecaster(
            train,
            tr.x,
            tr.y,
            va.x,
            va.y,
            prep.input_scaler,
            prep.target_scaler,
            epochs=epochs,
            label=f"trial {name}",
        )
        histories.append(fitted.history)
        keras.backend.clear_session()
    if len(histories) == 1:
        return histories[0]
    n = max(len(h) for h in histories)
    rows = []
    for i in range(n):
        at = [h[min(i, len(h) - 1)] for h in histories]
        keys = set.intersection(*(set(r) for r in at)) - {"epoch"}
        rows.append(
            {
                "epoch": i + 1,
                **{
                    k: float(np.mean([r[k] for r in at]))
                    for k in keys
                    if all(r[k] is not None for r in at)
                },
            }
        )
    return rows


def run(params: Params, domain: str) -> dict:
    return run_tuning(params, domain, fit_trial, OBJECTIVE)


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
