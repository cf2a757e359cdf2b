"""The Keras callback that logs a fit's epochs to the active MLflow run (apart from
:mod:`.metrics`, so importing the adapter imports no TensorFlow)."""

from __future__ import annotations

from typing import cast

import mlflow
import numpy as np

from nnpipe.keras_env import keras


class EpochMetricsLogger(keras.callbacks.Callback):
    """Logs every epoch's metrics (and learning rate) to the active MLflow run."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        # ReduceLROnPlateau adds the learning rate to ``logs`` as ``lr``; isscalar's type
        # guard admits str and complex, which Keras never logs
        mlflow.log_metrics(
            {k: float(cast(float, v)) for k, v in (logs or {}).items() if np.isscalar(v)},
            step=epoch,
        )
