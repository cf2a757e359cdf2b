"""What every domain's Keras training shares: per-epoch log lines and the history table."""

from __future__ import annotations

import logging
import sys

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
            f"{label or 'training'} diverged (NaN loss at epoch {bad}); {fix}")


class EpochProgressLog(keras.callbacks.Callback):
    """One log line per epoch, so progress shows in Prefect's and DVC's logs alike."""

    def __init__(self, epochs: int, label: str = "") -> None:
        super().__init__()
        self.epochs = epochs
        self.label = f"{label}: " if label else ""

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        shown = " ".join(f"{k}={v:.4g}" for k, v in sorted((logs or {}).items())
                         if isinstance(v, (float, int, np.floating)))
        log.info("%sepoch %d/%d %s", self.label, epoch + 1, self.epochs, shown)


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
