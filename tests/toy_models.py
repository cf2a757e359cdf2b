"""Every architecture of the guide built from the default params, on toy problems any of
them learns (the architecture tests, unit and integration alike)."""

from __future__ import annotations

import numpy as np

from nnpipe.domains.ohlcv.models import build_forecaster
from nnpipe.domains.ohlcv.params import OhlcvTrain
from nnpipe.domains.ohlcv.scaling import TrainOnlyScaler
from nnpipe.domains.xray.models import build_model
from nnpipe.domains.xray.params import XrayTrain
from nnpipe.keras_env import keras

IMAGE = 16
LOOK_BACK, FEATURES = 8, 5
IMAGE_ARCHITECTURES = ["feedforward", "small_cnn", "medical_cnn", "vit", "mlp_mixer"]
SEQUENCE_ARCHITECTURES = ["lstm", "gru", "simple_rnn", "transformer"]


def images(n: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positive images have a bright square in the middle: learnable by any architecture."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 120, (n, IMAGE, IMAGE, 1)).astype("float32")
    y = (np.arange(n) % 2).astype("float32")
    x[y == 1, 4:12, 4:12] += 120
    return x, y


def windows(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The target is the mean of the last bar's prices: learnable from the window."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(90, 110, (n, LOOK_BACK, FEATURES)).astype("float32")
    y = x[:, -1, :4].mean(axis=1, keepdims=True).astype("float32")
    return x, y


def scaler(x: np.ndarray) -> TrainOnlyScaler:
    return TrainOnlyScaler().fit(x.reshape(-1, x.shape[-1]))


def image_model(name: str, **changes) -> keras.Model:
    cfg = XrayTrain.model_validate(
        {"model": name, "dropout": 0.0, "learning_rate": 3e-3, **changes}
    )
    keras.utils.set_random_seed(1)
    return build_model(cfg, IMAGE, 60.0, 50.0)


def sequence_model(name: str, **changes) -> keras.Model:
    x, _ = windows()
    cfg = OhlcvTrain.model_validate(
        {"model": name, "dropout": 0.0, "units": [6, 6], "learning_rate": 3e-4, **changes}
    )
    keras.utils.set_random_seed(1)
    return build_forecaster(cfg, LOOK_BACK, scaler(x))


def sequence_units(name: str) -> list[int]:
    """Stacked for the LSTM (the default params' shape): each recurrent layer adds seconds
    of TFLite conversion, and the other cells' ops convert the same stacked or not."""
    return [6, 6] if name == "lstm" else [6]
