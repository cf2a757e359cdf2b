"""Serving the X-ray model: images of any size and mode, decoded, limited and resized by
:mod:`nnpipe.domains.xray.images` exactly as ingest and featurize did (the model's first layer
normalises), then the deployed variant and its own decision threshold."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnpipe.domains.xray.artifacts import XrayServedSpec
from nnpipe.serving.predictor import PredictionInputError, Predictor, as_array, finite


class XrayPredictor(Predictor):
    """Pneumonia probability and class for chest radiographs."""

    spec: XrayServedSpec

    @property
    def image_size(self) -> int:
        return self.spec.image_size

    def to_pixels(self, image: Any) -> np.ndarray:
        """One image (encoded bytes, base64 text, or a 2-D/3-D array of 0..255 values) as
        the model's input: grayscale, limited and resized as ingest and featurize did."""
        from nnpipe.domains.xray.images import decode_image, limit_size, resize_square

        if isinstance(image, str):
            try:
                image = base64.b64decode(image, validate=True)
            except ValueError as exc:
                raise PredictionInputError(
                    f"a text image must be base64-encoded PNG or JPEG bytes: {exc}"
                ) from None
        if isinstance(image, (bytes, bytearray)):
            array = decode_image(bytes(image))  # raises ImageDecodeError, saying why
        elif (
            isinstance(image, np.ndarray)
            and image.dtype == np.uint8
            and image.ndim == 2
            and min(image.shape) >= 1
        ):
            array = image  # decoded already: in range by its type (no float copy of it)
        else:
            array = np.asarray(image)
            if array.ndim == 3 and array.shape[-1] == 1:
                array = array[..., 0]
            if array.ndim != 2 or min(array.shape) < 1:
                raise PredictionInputError(
                    f"an image array must be 2-D (height, width) or (height, width, 1), got "
                    f"shape {array.shape}"
                )
            if not np.issubdtype(array.dtype, np.number):
                raise PredictionInputError(f"image values must be numbers, got {array.dtype}")
            finite(array.astype(np.float64), "the image")
            if array.min() < 0 or array.max() > 255:
                raise PredictionInputError(
                    f"image values must be in 0..255, got {array.min():g}..{array.max():g}"
                )
            array = np.round(array).astype(np.uint8)
        array = limit_size(array, self.spec.max_side or max(array.shape))
        return resize_square(array, self.image_size, self.spec.resize)

    def pixels(self, images: Sequence[Any] | np.ndarray) -> np.ndarray:
        if (
            isinstance(images, np.ndarray)
            and images.ndim in (3, 4)
            and images.shape[1:3] == (self.image_size, self.image_size)
            and images.dtype != object
        ):
            batch = finite(
                images.reshape(len(images), self.image_size, self.image_size).astype(np.float64),
                "the images",
            )
            if batch.min() < 0 or batch.max() > 255:
                raise PredictionInputError(
                    f"image values must be in 0..255, got {batch.min():g}..{batch.max():g}"
                )
            return batch.astype(np.float32)[..., None]
        if len(images) == 0:
            raise PredictionInputError("no images were given")
        return np.stack([self.to_pixels(im) for im in images]).astype(np.float32)[..., None]

    def predict(self, images: Sequence[Any] | np.ndarray) -> dict[str, list]:
        """Probabilities of the positive class, classes at the deployed threshold."""
        return self.decisions(self.run(self.pixels(images)).reshape(-1))

    def predict_with_embedding(
        self, images: Sequence[Any] | np.ndarray
    ) -> tuple[dict[str, list], np.ndarray | None]:
        """:meth:`predict`'s answer and, from the same run, the model's embedding of each
        image (None when the predictor was loaded without them)."""
        if self.run_with_embedding is None:
            return self.predict(images), None
        probability, embedding = self.run_with_embedding(self.pixels(images))
        return self.decisions(probability.reshape(-1)), embedding

    def decisions(self, probability: np.ndarray) -> dict[str, list]:
        threshold = self.spec.threshold
        classes = self.spec.classes
        return {
            "probability": probability.tolist(),
            "label": [classes[int(p >= threshold)] for p in probability],
            "threshold": [threshold] * len(probability),
        }

    def predict_input(self, model_input: Any) -> dict[str, list]:
        import pandas as pd

        if isinstance(model_input, pd.DataFrame):
            if "image" not in model_input:
                raise PredictionInputError(
                    "a table of X-ray images needs an `image` column (PNG/JPEG bytes or "
                    f"base64 text); got columns {list(model_input.columns)}"
                )
            return self.predict(list(model_input["image"]))
        if (
            isinstance(model_input, (list, tuple))
            and model_input
            and isinstance(model_input[0], (bytes, bytearray, str))
        ):
            return self.predict(list(model_input))
        return self.predict(as_array(model_input))
