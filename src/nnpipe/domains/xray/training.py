"""Fitting a radiograph classifier: callbacks, class weights and the best checkpoint."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nnpipe.domains.xray.features import make_dataset
from nnpipe.domains.xray.models import build_model
from nnpipe.domains.xray.params import XrayAugment, XrayTrain
from nnpipe.fitting import (
    EpochProgressLog,
    accumulate_gradients,
    check_not_diverged,
    fit_verbosity,
    history_rows,
)
from nnpipe.keras_env import keras
from nnpipe.saved_models import load_model

log = logging.getLogger(__name__)


def balanced_class_weight(counts: Sequence[int]) -> dict[int, float]:
    """Weights inversely proportional to class frequency (sklearn's ``balanced``)."""
    values = np.asarray(counts, dtype=np.float64)
    if (values <= 0).any():
        raise ValueError(f"every class needs training images, got counts {values.tolist()}")
    weights = values.sum() / (len(values) * values)
    return {i: float(w) for i, w in enumerate(weights)}


def fit_classifier(
    cfg: XrayTrain,
    augment: XrayAugment,
    *,
    train_files: Sequence[Path],
    val_files: Sequence[Path],
    image_size: int,
    pixel_mean: float,
    pixel_std: float,
    class_counts: Sequence[int],
    seed: int,
    checkpoint: Path,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
) -> tuple[keras.Model, list[dict[str, float | None]]]:
    """Train with Adam, EarlyStopping and ReduceLROnPlateau; return the best model by
    validation AUC (restored from its checkpoint) and the per-epoch history."""
    train_ds = make_dataset(
        train_files,
        image_size,
        cfg.batch_size,
        training=True,
        augment=augment,
        seed=seed,
        cache=not cfg.stream_from_disk,
        shuffle_buffer=cfg.shuffle_buffer,
    )
    val_ds = make_dataset(val_files, image_size, cfg.batch_size, cache=not cfg.stream_from_disk)
    model = accumulate_gradients(
        build_model(cfg, image_size, pixel_mean, pixel_std), cfg.gradient_accumulation_steps
    )
    class_weight = balanced_class_weight(class_counts) if cfg.class_weight == "balanced" else None
    callbacks = [*training_callbacks(cfg, checkpoint), *extra_callbacks]
    result = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=cfg.epochs,
        class_weight=class_weight,
        callbacks=callbacks,
        verbose=fit_verbosity(),
    )
    history = history_rows(result)
    check_not_diverged(history, "training", "lower train.learning_rate")
    if checkpoint.exists():
        model = load_model(checkpoint)
    return model, history


def training_callbacks(cfg: XrayTrain, checkpoint: Path) -> list[keras.callbacks.Callback]:
    """Keep the best epoch by validation AUC (checkpoint and restored weights), stop early,
    lower the learning rate on a plateau, stop on NaN, log progress."""
    return [
        keras.callbacks.ModelCheckpoint(
            str(checkpoint), monitor="val_auc", mode="max", save_best_only=True, verbose=0
        ),
        keras.callbacks.EarlyStopping(
            monitor="val_auc",
            mode="max",
            patience=cfg.early_stopping_patience,
            restore_best_weights=True,
        ),
        keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss",
            factor=cfg.reduce_lr_factor,
            patience=cfg.reduce_lr_patience,
            min_lr=1e-6,
        ),
        keras.callbacks.TerminateOnNaN(),
        EpochProgressLog(cfg.epochs, monitor="val_auc", mode="max"),
    ]
