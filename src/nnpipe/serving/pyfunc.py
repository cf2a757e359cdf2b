"""The MLflow pyfunc that the registry stores for every promoted version: the deploy
folder (chosen variant, its preprocessing settings, the reference and the variant table)
as artifacts, :class:`~nnpipe.serving.predictor.Predictor` as the code.

``mlflow.pyfunc.load_model("models:/xray-classifier@champion").predict(images)`` and
``mlflow models serve -m models:/xray-classifier@champion`` therefore run the variant that
promotion chose, with training's preprocessing. Inputs: X-ray, an array of images
(n, height, width[, 1]) of 0..255 values of any size, or a table with an ``image`` column
of PNG/JPEG bytes or base64 text; OHLCV, an array of raw windows (n, look_back, features)
or a table of bars (Open, High, Low, Close, Volume; oldest first) for one forecast.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from nnpipe.serving.predictor import Predictor, load_predictor

ARTIFACT = "deploy"


class DeployedModel(PythonModel):
    """A promoted variant behind its preprocessing."""

    predictor: Predictor

    def load_context(self, context: Any) -> None:
        self.predictor = load_predictor(context.artifacts[ARTIFACT])

    # model_input has no type hint on purpose: MLflow would derive a signature from one
    # and convert inputs to it; this model accepts arrays and tables (see the module doc)
    def predict(self, context, model_input, params=None) -> pd.DataFrame:
        if isinstance(model_input, dict) and len(model_input) == 1:
            model_input = next(iter(model_input.values()))  # {"inputs": ...} / {"data": ...}
        return pd.DataFrame(self.predictor.predict_input(model_input))
