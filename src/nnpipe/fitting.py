"""What every domain's Keras training shares: per-epoch log lines and the history table."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from nnpipe.errors import NnpipeError
from nnpipe.keras_env import keras

log = logging.getLogger(__name__)


class TrainingDivergedError(NnpipeError, FloatingPointError):
    """The loss became NaN: the params (learning rate, loss) need changing."""


def check_not_diverged(history: list[dict[str, float | None]], label: str, fix: str) -> None:
    """Raise :class:`TrainingDivergedError` when an epoch's loss was NaN (None in rows)."""
    bad = next((r["epoch"] for r in history if r.get("loss") is None), None)
    if bad is not None:
        raise TrainingDivergedError(
            f"{label or 'training'} diverged (NaN loss at epoch {bad}); {fix}"
        )


class EpochProgressLog(keras.callbacks.Callback):
    """One log line per epoch with its time, so progress shows in Prefect's and DVC's logs
    alike; at the end, how many epochs ran, whether early stopping ended them, and which
    epoch's weights are kept (the best by ``monitor``, as EarlyStopping and the checkpoint
    restore them)."""

    def __init__(
        self, epochs: int, label: str = "", monitor: str | None = None, mode: str = "min"
    ) -> None:
        super().__init__()
        self.epochs = epochs
        self.label = f"{label}: " if label else ""
        self.monitor, self.mode = monitor, mode
        self.values: list[float] = []
        self.started = self.epoch_started = 0.0

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.started = time.monotonic()
        self.values = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.epoch_started = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        logs = logs or {}
        shown = " ".join(
            f"{k}={v:.4g}"
            for k, v in sorted(logs.items())
            if isinstance(v, (float, int, np.floating))
        )
        log.info(
            "%sepoch %d/%d %s (%.1f s)",
            self.label,
            epoch + 1,
            self.epochs,
            shown,
            time.monotonic() - self.epoch_started,
        )
        if self.monitor and isinstance(logs.get(self.monitor), (float, int, np.floating)):
            self.values.append(float(logs[self.monitor]))

    def on_train_end(self, logs: dict[str, float] | None = None) -> None:
        ran = len(self.values)
        elapsed = time.monotonic() - self.started
        if not self.monitor or not ran:
            return
        finite = [v for v in self.values if math.isfinite(v)]
        if not finite:
            return
        best = max(finite) if self.mode == "max" else min(finite)
        best_epoch = self.values.index(best) + 1
        stopped = (
            f"early stopping ended it after {ran} of {self.epochs} epochs"
            if ran < self.epochs
            else f"all {self.epochs} epochs ran"
        )
        log.info(
            "%strained in %.0f s: %s; keeping epoch %d's weights (best %s %.4g)",
            self.label,
            elapsed,
            stopped,
            best_epoch,
            self.monitor,
            best,
        )


def fit_verbosity() -> int:
    """A progress bar on a terminal, log lines (EpochProgressLog) elsewhere."""
    return 1 if sys.stderr.isatty() else 0


def history_rows(history: keras.callbacks.History) -> list[dict[str, float | None]]:
    """``model.fit``'s history as one row per epoch (NaN written as None, for JSON)."""
    values = history.history
    rows = []
    for i in range(len(values.get("loss", []))):
        row: dict[str, float | None] = {"epoch": i + 1}
        for key, series in values.items():
            v = float(series[i])
            row[key] = None if v != v else v
        rows.append(row)
    return rows


def kernel_regularizer(cfg) -> keras.regularizers.Regularizer | None:
    """L1 and/or L2 on a layer's kernel, from a train section's ``l1``/``l2``."""
    if not (cfg.l1 or cfg.l2):
        return None
    return keras.regularizers.L1L2(l1=cfg.l1, l2=cfg.l2)


def make_optimizer(cfg) -> keras.optimizers.Optimizer:
    """Adam at ``learning_rate`` with the gradient clipping the params ask for."""
    clipping = {
        k: v
        for k, v in (("clipnorm", cfg.clip_norm), ("clipvalue", cfg.clip_value))
        if v is not None
    }
    return keras.optimizers.Adam(learning_rate=cfg.learning_rate, **clipping)


def fast_float16_devices() -> list[str]:
    """GPUs with fast float16 (compute capability 7.0 or newer): mixed precision pays off
    only there; on a CPU it is slower, so it is refused there."""
    from nnpipe.keras_env import tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability and tuple(capability) >= (7, 0):
            found.append(gpu.name)
    return found


def precision_policy(mixed: bool) -> str:
    """Set Keras' global dtype policy for the model about to be built and return its name:
    ``mixed_float16`` when asked for and the hardware has fast float16, else ``float32``
    (with a warning when mixed precision was asked for and refused)."""
    supported = fast_float16_devices() if mixed else []
    name = "mixed_float16" if mixed and supported else "float32"
    if mixed and not supported:
        log.warning(
            "train.mixed_precision is on but no GPU with fast float16 (compute "
            "capability 7.0+) is present: training in float32 (mixed_float16 on a "
            "CPU would be slower, not faster)"
        )
    keras.mixed_precision.set_global_policy(name)
    return name


def accumulate_gradients(model: keras.Model, steps: int) -> keras.Model:
    """Make ``model.fit`` apply the mean of ``steps`` consecutive batches' gradients in one
    optimizer update: an effective batch of ``steps`` x ``batch_size`` on a machine that
    holds only one batch (the guide's custom loop, done right).

    The model's class is unchanged (its ``train_step`` is replaced on this instance), so it
    saves and loads as before. The optimizer counts updates, not batches, so learning-rate
    schedules see effective steps; the loss and metrics are still reported per batch and
    callbacks run as usual. Gradients of a batch are the mean over its samples, so the
    mean over ``steps`` equal batches is the gradient of their union: the same update as
    one batch of ``steps`` x ``batch_size`` (batch norm statistics aside, which move per
    batch). A remainder of batches at an epoch's end carries into the next epoch.
    """
    if steps <= 1:
        return model
    model.train_step = _accumulating_train_step(model, steps)
    model.train_function = None  # rebuilt around the new step
    return model


def _accumulating_train_step(model: keras.Model, steps: int) -> Callable[[Any], Any]:
    """A ``train_step`` for ``model`` that adds each batch's gradients divided by ``steps``
    to running sums and applies the sums in one optimizer update every ``steps`` batches."""
    from nnpipe.keras_env import tf

    optimizer = model.optimizer
    scaled = isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)
    inner = optimizer.inner_optimizer if scaled else optimizer
    weights = model.trainable_variables
    inner.build(weights)  # its slots exist before the first (conditional) update
    # plain variables held by this closure: not tracked by the model, so not saved with it
    sums = [tf.Variable(tf.zeros_like(w), trainable=False) for w in weights]
    count = tf.Variable(0, dtype=tf.int64, trainable=False)

    def train_step(data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x, y, y_pred, sample_weight)
            if scaled:
                loss = optimizer.get_scaled_loss(loss)
        grads = tape.gradient(loss, weights)
        if scaled:
            grads = optimizer.get_unscaled_gradients(grads)
        for total, grad, weight in zip(sums, grads, weights, strict=True):
            total.assign_add((tf.zeros_like(weight) if grad is None else grad) / steps)
        count.assign_add(1)

        def update():
            optimizer.apply_gradients(
                [(tf.identity(s), w) for s, w in zip(sums, weights, strict=True)]
            )
            for total in sums:
                total.assign(tf.zeros_like(total))
            count.assign(0)
            return tf.constant(True)

        tf.cond(count >= steps, update, lambda: tf.constant(False))
        return model.compute_metrics(x, y, y_pred, sample_weight)

    return train_step
