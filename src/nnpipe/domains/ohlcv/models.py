"""The guide's recurrent forecaster (LSTM 50, Dropout 0.2, LSTM 50, Dropout 0.2, Dense 1)
with GRU and SimpleRNN as options, and a transformer encoder for sequences (the guide's
"simple transformer", done correctly): one builder, used by training and tuning alike.

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
from typing import TYPE_CHECKING, cast

import numpy as np

from nnpipe.architectures import resolve_model
from nnpipe.domains.ohlcv.domain import OHLCV
from nnpipe.domains.ohlcv.params import OhlcvTrain
from nnpipe.domains.ohlcv.scaling import TrainOnlyScaler
from nnpipe.fitting import (
    EpochProgressLog,
    accumulate_gradients,
    check_not_diverged,
    fit_verbosity,
    history_rows,
    kernel_regularizer,
    make_optimizer,
    precision_policy,
)
from nnpipe.keras_env import keras

if TYPE_CHECKING:
    from nnpipe.domains.ohlcv.forecasting import Prepared

log = logging.getLogger(__name__)

RECURRENT = {
    "lstm": keras.layers.LSTM,
    "gru": keras.layers.GRU,
    "simple_rnn": keras.layers.SimpleRNN,
}


def _minmax_layer(
    scaler: TrainOnlyScaler,
    name: str,
    inverse: bool = False,
) -> keras.layers.Rescaling:
    """The scaler as a built-in layer (saved and loaded without custom code)."""
    low = np.asarray(scaler.data_min, dtype=float)
    span = np.asarray(scaler.data_max, dtype=float) - low
    span = np.where(span > 0, span, 1.0)
    if inverse:
        return keras.layers.Rescaling(scale=span.tolist(), offset=low.tolist(), name=name)
    return keras.layers.Rescaling(
        scale=(1.0 / span).tolist(), offset=(-low / span).tolist(), name=name
    )


def _recurrent(cfg: OhlcvTrain, name: str, x):
    layer, reg = RECURRENT[name], kernel_regularizer(cfg)
    for i, units in enumerate(cfg.units):
        last = i == len(cfg.units) - 1
        x = layer(units, return_sequences=not last, kernel_regularizer=reg, name=f"{name}_{i + 1}")(
            x
        )
        x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{i + 1}")(x)
    return x


def _transformer(cfg: OhlcvTrain, look_back: int, x):
    """Encoder blocks over the window (functional API, unlike the guide's Sequential with
    MultiHeadAttention in it): a Dense projection to ``width``, learned position
    embedding, then per block self-attention and a feed-forward sublayer, each with a
    residual connection and layer norm; average pooling over time for the head."""
    from nnpipe.layers import PositionEmbedding

    t, reg = cfg.transformer, kernel_regularizer(cfg)
    x = keras.layers.Dense(t.width, kernel_regularizer=reg, name="projection")(x)
    x = PositionEmbedding(name="positions")(x)
    for i in range(t.blocks):
        h = keras.layers.MultiHeadAttention(
            t.heads,
            t.width // t.heads,
            dropout=cfg.dropout,
            kernel_regularizer=reg,
            name=f"block{i}_attention",
        )(x, x)
        x = keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm1")(
            keras.layers.Add(name=f"block{i}_residual1")([x, h])
        )
        h = keras.layers.Dense(
            t.ff_dim, activation="relu", kernel_regularizer=reg, name=f"block{i}_ff1"
        )(x)
        h = keras.layers.Dropout(cfg.dropout)(h)
        h = keras.layers.Dense(t.width, kernel_regularizer=reg, name=f"block{i}_ff2")(h)
        x = keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm2")(
            keras.layers.Add(name=f"block{i}_residual2")([x, h])
        )
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.layers.Dropout(cfg.dropout, name="head_dropout")(x)


def architecture(cfg: OhlcvTrain, look_back: int, n_features: int) -> str:
    """The architecture ``cfg.model`` names (``auto``: the guide's choose_model)."""
    return resolve_model(OHLCV.task, cfg.model, (look_back, n_features))


def build_forecaster(
    cfg: OhlcvTrain,
    look_back: int,
    input_scaler: TrainOnlyScaler,
) -> keras.Model:
    """The trainable model: raw window in, scaled target out (float32 head)."""
    n_features = len(cast(np.ndarray, input_scaler.data_min))  # a fitted scaler
    name = architecture(cfg, look_back, n_features)
    precision_policy(cfg.mixed_precision)
    try:
        inputs = keras.Input(shape=(look_back, n_features), name="window")
        x = _minmax_layer(input_scaler, "train_minmax")(inputs)
        x = _transformer(cfg, look_back, x) if name == "transformer" else _recurrent(cfg, name, x)
        outputs = keras.layers.Dense(1, dtype="float32", name="scaled_target")(x)
        model = keras.Model(inputs, outputs, name=f"{name}_forecaster")
        loss = keras.losses.Huber() if cfg.loss == "huber" else "mse"
        model.compile(
            optimizer=make_optimizer(cfg),
            loss=loss,
            metrics=[keras.metrics.MeanAbsoluteError(name="mae")],
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model


def export_forecaster(model: keras.Model, target_scaler: TrainOnlyScaler) -> keras.Model:
    """The model to save and serve: the trained one with the target's inverse scaling."""
    outputs = _minmax_layer(target_scaler, "to_target_units", inverse=True)(model.output)
    return keras.Model(model.input, outputs, name=model.name)


@dataclass(frozen=True)
class Fitted:
    model: keras.Model  # exported: raw windows in, target units out
    history: list[dict[str, float | None]]


def fit_forecaster(
    cfg: OhlcvTrain,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    input_scaler: TrainOnlyScaler,
    target_scaler: TrainOnlyScaler,
    *,
    epochs: int | None = None,
    label: str = "",
    extra_callbacks: tuple = (),
) -> Fitted:
    """Train with Adam, EarlyStopping on validation loss (best weights restored) and
    ReduceLROnPlateau; targets are scaled with ``target_scaler`` (train statistics)."""
    epochs = epochs or cfg.epochs
    model = accumulate_gradients(
        build_forecaster(cfg, x_train.shape[1], input_scaler), cfg.gradient_accumulation_steps
    )

    def scale(y: np.ndarray) -> np.ndarray:
        return target_scaler.transform(y.reshape(-1, 1)).astype("float32")

    callbacks = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=cfg.early_stopping_patience, restore_best_weights=True
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss",
            factor=cfg.reduce_lr_factor,
            patience=cfg.reduce_lr_patience,
            min_lr=1e-6,
        ),
        keras.callbacks.TerminateOnNaN(),
        EpochProgressLog(epochs, label, monitor="val_loss"),
        *extra_callbacks,
    ]
    result = model.fit(
        x_train.astype("float32"),
        scale(y_train),
        validation_data=(x_val.astype("float32"), scale(y_val)),
        epochs=epochs,
        batch_size=cfg.batch_size,
        shuffle=True,
        callbacks=callbacks,
        verbose=fit_verbosity(),
    )
    history = history_rows(result)
    check_not_diverged(history, label, "lower train.learning_rate or use train.loss=huber")
    return Fitted(export_forecaster(model, target_scaler), history)


def predict(model: keras.Model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Forecasts in target units, one per window."""
    return model.predict(x.astype("float32"), batch_size=batch_size, verbose=0).reshape(-1)


def fit_on_prepared(
    cfg: OhlcvTrain,
    prep: Prepared,
    *,
    epochs: int | None = None,
    label: str = "",
    extra_callbacks: tuple = (),
) -> Fitted:
    """:func:`fit_forecaster` on a prepared series' train and validation windows (what
    train and every tuning trial fit)."""
    tr, va = prep.windows["train"], prep.windows["val"]
    return fit_forecaster(
        cfg,
        tr.x,
        tr.y,
        va.x,
        va.y,
        prep.input_scaler,
        prep.target_scaler,
        epochs=epochs,
        label=label,
        extra_callbacks=extra_callbacks,
    )
