"""A trained Keras model logged to its run as an MLflow model (signature, example,
pinned requirements), at the step of the epoch whose weights it holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from nnpipe.store import tracking_uri
from nnpipe.tracking.metrics import flatten

if TYPE_CHECKING:
    from nnpipe.keras_env import keras


def keras_requirements() -> list[str]:
    """Pinned requirements of the logged model, given so MLflow need not infer them (slow)."""
    return [f"{pkg}=={version(pkg)}" for pkg in ("tensorflow", "tf-keras", "numpy")]


@dataclass(frozen=True)
class LoggedModel:
    uri: str  # models:/m-...
    model_id: str


def log_keras_model(
    model: keras.Model,
    input_example: np.ndarray,
    best_epoch: int,
    params: Mapping[str, Any] | None = None,
) -> LoggedModel:
    """Log the model with a signature and an input example, at the step of the epoch whose
    weights it holds (``best_epoch``, 1-based): MLflow copies that step's metrics onto the
    logged model, so its page shows the kept epoch's values, not the first epoch's.
    (MLflow's TensorFlow flavour is imported here: the adapter's other users, the
    monitor's runs, import no TensorFlow.)"""
    import mlflow.tensorflow
    from mlflow.models import infer_signature

    signature = infer_signature(input_example, model.predict(input_example, verbose=0))
    info = mlflow.tensorflow.log_model(
        model,
        name="model",
        signature=signature,
        input_example=input_example,
        pip_requirements=keras_requirements(),
        step=max(best_epoch - 1, 0),
        params={k: str(v) for k, v in flatten(params or {}).items()} or None,
    )
    return LoggedModel(info.model_uri, info.model_id)


class ModelLocation(TypedDict):
    run_id: str
    experiment_id: str
    model_uri: str
    model_id: str
    tracking_uri: str


def model_location(params: Any, run: Any, logged: LoggedModel) -> ModelLocation:
    """Where a trained model is in tracking (the fields of every domain's ``run.json``
    that say so): its run, experiment, logged model and the store."""
    return ModelLocation(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        model_uri=logged.uri,
        model_id=logged.model_id,
        tracking_uri=tracking_uri(params),
    )
