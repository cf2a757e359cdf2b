"""The guide's recurrent forecaster (LSTM 50, Dropout 0.2, LSTM 50, Dropout 0.2, Dense 1)
with GRU and SimpleRNN as options: one builder, used by training and tuning alike.

The model takes raw windows (prices and volume as they are) and scales them in its first
layer with the min-max statistics of the training period, so a saved model carries its
own preprocessing and nobody can feed it windows scaled with other statistics. It is
trained on a target scaled the same way (the loss is comparable across series); the
exported model adds the inverse scaling at the end, so it predicts in target units (a
price, or a log return).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from nnpipe.config import OhlcvTrain
from nnpipe.fitting import (
    EpochProgressLog,
    check_not_diverged,
    fit_verbosity,
    history_rows,
)
from nnpipe.keras_env import keras
from nnpipe.ohlcv.windows import TrainOnlyScaler

log = logging.getLogger(__name__)

RECURRENT = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU,
             "simple_rnn": keras.layers.SimpleRNN}


def _minmax_layer(scaler: TrainOnlyScaler, name: str, inverse: bool = False,
                  ) -> keras.layers.Rescaling:
    """The scaler as a built-in layer (saved and loaded without custom code)."""
    low = np.asarray(scaler.data_min, dtype=float)
    span = np.asarray(scaler.data_max, dtype=float) - low
    span = np.where(span > 0, span, 1.0)
    if inverse:
        return keras.layers.Rescaling(scale=span.tolist(), offset=low.tolist(), name=name)
    return keras.layers.Rescaling(scale=(1.0 / span).tolist(), offset=(-low / span).tolist(),
                                  name=name)


def build_forecaster(cfg: OhlcvTrain, look_back: int, input_scaler: TrainOnlyScaler,
                     ) -> keras.Model:
    """The trainable model: raw window in, scaled target out."""
    n_features = len(input_scaler.data_min)
    layer = RECURRENT[cfg.model]
    inputs = keras.Input(shape=(look_back, n_features), name="window")
    x = _minmax_layer(input_scaler, "train_minmax")(inputs)
    for i, units in enumerate(cfg.units):
        last = i == len(cfg.units) - 1
        x = layer(units, return_sequences=not last, name=f"{cfg.model}_{i + 1}")(x)
        x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{i + 1}")(x)
    outputs = keras.layers.Dense(1, name="scaled_target")(x)
    model = keras.Model(inputs, outputs, name=f"{cfg.model}_forecaster")
    loss = keras.losses.Huber() if cfg.loss == "huber" else "mse"
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=loss,
                  metrics=[keras.metrics.MeanAbsoluteError(name="mae")])
    return model


def export_forecaster(model: keras.Model, target_scaler: TrainOnlyScaler) -> keras.Model:
    """The model to save and serve: the trained one with the target's inverse scaling."""
    outputs = _minmax_layer(target_scaler, "to_target_units", inverse=True)(model.output)
    return keras.Model(model.input, outputs, name=model.name)


@dataclass(frozen=True)
class Fitted:
    model: keras.Model  # exported: raw windows in, target units out
    history: list[dict[str, float | None]]


def fit_forecaster(cfg: OhlcvTrain, x_train: np.ndarray, y_train: np.ndarray,
                   x_val: np.ndarray, y_val: np.ndarray, input_scaler: TrainOnlyScaler,
                   target_scaler: TrainOnlyScaler, *, epochs: int | None = None,
                   label: str = "", extra_callbacks: tuple = ()) -> Fitted:
    """Train with Adam, EarlyStopping on validation loss (best weights restored) and
    ReduceLROnPlateau; targets are scaled with ``target_scaler`` (train statistics)."""
    epochs = epochs or cfg.epochs
    model = build_forecaster(cfg, x_train.shape[1], input_scaler)

    def scale(y: np.ndarray) -> np.ndarray:
        return target_scaler.transform(y.reshape(-1, 1)).astype("float32")

    callbacks = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.early_stopping_patience,
                                      restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=cfg.reduce_lr_factor,
                                          patience=cfg.reduce_lr_patience, min_lr=1e-6),
        keras.callbacks.TerminateOnNaN(),
        EpochProgressLog(epochs, label),
        *extra_callbacks,
    ]
    result = model.fit(x_train.astype("float32"), scale(y_train),
                       validation_data=(x_val.astype("float32"), scale(y_val)),
                       epochs=epochs, batch_size=cfg.batch_size, shuffle=True,
                       callbacks=callbacks, verbose=fit_verbosity())
    history = history_rows(result)
    check_not_diverged(history, label, "lower train.learning_rate or use train.loss=huber")
    return Fitted(export_forecaster(model, target_scaler), history)


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Forecasts in target units, one per window."""
    return model.predict(x.astype("float32"), batch_size=batch_size, verbose=0).reshape(-1)
