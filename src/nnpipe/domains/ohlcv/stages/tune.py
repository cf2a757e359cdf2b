"""The OHLCV part of the tune stage (:mod:`nnpipe.stages.tune`): trials are scored by
validation loss (scaled target units, comparable across series); train then applies the
best values to every series.

With several series a trial fits each of them and is scored on the per-epoch mean of
their validation losses: one configuration for all, as ``train`` uses one. Each fit is the
training code itself (:func:`nnpipe.domains.ohlcv.models.fit_forecaster`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from nnpipe.config import Params
from nnpipe.domains.ohlcv.artifacts import OhlcvFeatures
from nnpipe.domains.ohlcv.domain import OHLCV
from nnpipe.domains.ohlcv.forecasting import read_prepared
from nnpipe.domains.ohlcv.models import fit_on_prepared
from nnpipe.keras_env import keras, make_deterministic
from nnpipe.layout import domain_layout
from nnpipe.stages import require
from nnpipe.stages.tuning import tuned_train
from nnpipe.tuning.search import Objective

log = logging.getLogger(__name__)


class OhlcvTuning:
    objective = Objective("val_loss", "min")

    def fit_trial(
        self, params: Params, values: dict[str, Any], epochs: int
    ) -> list[dict[str, Any]]:
        return fit_trial(params, OHLCV.name, values, epochs)


def fit_trial(
    params: Params,
    domain: str,
    values: dict[str, Any],
    epochs: int,
) -> list[dict[str, Any]]:
    """Train one configuration on every series; the per-epoch history averaged over them."""
    cfg = OHLCV.section(params)
    layout = domain_layout(params, domain)
    meta = OhlcvFeatures.read(require(layout.features / "meta.json", "featurize", domain), domain)
    train = tuned_train(cfg.train, values)
    histories = []
    for name in meta.series:
        prep = read_prepared(layout.features, name, meta)
        make_deterministic(params.seed)
        fitted = fit_on_prepared(train, prep, epochs=epochs, label=f"trial {name}")
        histories.append(fitted.history)
        keras.backend.clear_session()
    return mean_history(histories)


def mean_history(histories: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per-epoch means over series of every metric all of them have (an epoch a series
    stopped before counts with that series' last value)."""
    if len(histories) == 1:
        return histories[0]
    rows = []
    for i in range(max(len(h) for h in histories)):
        at = [h[min(i, len(h) - 1)] for h in histories]
        keys = set.intersection(*(set(r) for r in at)) - {"epoch"}
        means = {
            k: float(np.mean([r[k] for r in at])) for k in keys if all(r[k] is not None for r in at)
        }
        rows.append({"epoch": i + 1, **means})
    return rows
