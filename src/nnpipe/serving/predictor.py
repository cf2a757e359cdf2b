"""Predicting with a deploy folder (written by the promote stage): the chosen variant,
run by LiteRT (TFLite) or Keras, behind the preprocessing that training used.

A deploy folder holds ``deploy.json`` (the domain, the variant, its file and format, and
what preprocessing needs: image size and resize mode, or look-back and feature names)
and the model file. Each domain's predictor (``nnpipe.<domain>.predictor``) applies the
preprocessing training used; TensorFlow is imported only to run a Keras variant.
"""

from __future__ import annotations

import abc
import importlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnpipe.errors import NnpipeError

log = logging.getLogger(__name__)

DEPLOY_FILE = "deploy.json"


class PredictionInputError(NnpipeError, ValueError):
    """The input cannot be predicted on: the message says what is wrong with it."""


def load_runner(path: Path, fmt: str, threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """A function from a float32 batch to the model's outputs, for either format."""
    if fmt == "tflite":
        from nnpipe.compression.litert import TfliteRunner

        runner = TfliteRunner(path.read_bytes(), threads=threads)
        return runner.predict
    try:
        from nnpipe.keras_env import load_model, tf
    except ImportError as exc:
        raise NnpipeError(
            f"{path.name} is a Keras model and TensorFlow is not installed here ({exc}): "
            "serve it from an install with nnpipe[pipeline] (the pipeline image), or "
            "promote a TFLite variant") from None

    model = load_model(path, compile=False)
    call = tf.function(lambda x: model(x, training=False))  # compiled once per input shape

    def predict(x: np.ndarray) -> np.ndarray:
        outs = [call(tf.constant(x[i:i + 256])).numpy() for i in range(0, len(x), 256)]
        return np.concatenate(outs).reshape(len(x), -1).astype(np.float64)
    return predict


@dataclass
class Predictor(abc.ABC):
    """A deploy folder's model behind its domain's preprocessing; one subclass per
    domain, in ``nnpipe.<domain>.predictor``."""

    directory: Path
    spec: dict[str, Any]
    run: Callable[[np.ndarray], np.ndarray]

    @property
    def variant(self) -> str:
        return self.spec["variant"]

    @abc.abstractmethod
    def predict_input(self, model_input: Any) -> dict[str, list]:
        """Predictions for what an MLflow pyfunc receives (an array or a table)."""


def finite(x: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(x).all():
        raise PredictionInputError(f"{what} holds NaN or infinite values")
    return x


def load_predictor(directory: str | Path, threads: int = 1) -> Predictor:
    """The predictor of a deploy folder, for its domain."""
    directory = Path(directory)
    spec_path = directory / DEPLOY_FILE
    if not spec_path.is_file():
        raise NnpipeError(f"{directory} is not a deploy folder (no {DEPLOY_FILE}); the "
                          "promote stage writes one")
    spec = json.loads(spec_path.read_text())
    if not spec.get("file"):
        raise NnpipeError(f"{directory} deploys nothing: {spec.get('reason')}")
    runner = load_runner(directory / spec["file"], spec["format"], threads)
    # by name: a domain's predictor is loaded only where that domain is served
    module = importlib.import_module(f"nnpipe.{spec['domain']}.predictor")
    return module.PREDICTOR(directory, spec, runner)


def as_array(value: Any) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PredictionInputError(f"the input is not a numeric array: {exc}") from None
