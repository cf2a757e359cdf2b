"""The X-ray part of the tune stage (:mod:`nnpipe.stages.tune`): trials are scored by
validation ROC-AUC on the training split's fit.

Each trial builds its model with the same builder and fitting code as ``train``
(:func:`nnpipe.domains.xray.training.fit_classifier`), for the epochs its round gives.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from nnpipe.config import Params
from nnpipe.domains.xray.artifacts import XrayFeatures
from nnpipe.domains.xray.domain import XRAY
from nnpipe.domains.xray.training import fit_classifier
from nnpipe.keras_env import keras, make_deterministic
from nnpipe.layout import domain_layout
from nnpipe.stages import require
from nnpipe.stages.tuning import tuned_train
from nnpipe.tuning.search import Objective

log = logging.getLogger(__name__)


class XrayTuning:
    objective = Objective("val_auc", "max")

    def fit_trial(
        self, params: Params, values: dict[str, Any], epochs: int
    ) -> list[dict[str, Any]]:
        return fit_trial(params, XRAY.name, values, epochs)


def fit_trial(
    params: Params,
    domain: str,
    values: dict[str, Any],
    epochs: int,
) -> list[dict[str, Any]]:
    """Train one configuration for ``epochs`` epochs; its per-epoch history."""
    cfg = XRAY.section(params)
    layout = domain_layout(params, domain)
    meta = XrayFeatures.read(require(layout.features / "meta.json", "featurize", domain), domain)
    train = tuned_train(cfg.train, {**values, "epochs": epochs})
    make_deterministic(params.seed)
    with tempfile.TemporaryDirectory(prefix="nnpipe-trial-") as tmp:
        _, history = fit_classifier(
            train,
            cfg.augment,
            train_files=[layout.features / "train.tfrecord"],
            val_files=[layout.features / "val.tfrecord"],
            image_size=meta.image_size,
            pixel_mean=meta.pixel_mean,
            pixel_std=meta.pixel_std,
            class_counts=meta.class_counts("train", cfg.classes),
            seed=params.seed,
            checkpoint=Path(tmp) / "best.keras",
        )
    keras.backend.clear_session()  # trials one after another must not accumulate graphs
    return history
