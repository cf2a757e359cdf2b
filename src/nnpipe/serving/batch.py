"""``nnpipe predict``: batch predictions from files, with the predictor the API and the
MLflow pyfunc use (same preprocessing as training), written as one CSV. Each domain reads
its own inputs (its ``predict_files`` hook, ``nnpipe.domains.<name>.batch``): a file that
cannot be read gets its row with the reason in ``error``; the others are predicted."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnpipe.errors import NnpipeError
from nnpipe.io import atomic_write_text
from nnpipe.monitoring.prediction_log import LoggedPrediction, PredictionLog, request_id


class BatchInputError(NnpipeError, ValueError):
    """The batch input cannot be read as a whole."""


LOGGED = "nnpipe.logged"  # the predictions table's attrs key for what the log keeps


@dataclass
class LoggedBatch:
    """What the prediction log keeps of a batch's predictions (each domain's
    ``predict_files`` fills it and puts it in its table's ``attrs``)."""

    outputs: list[dict[str, Any]] = field(default_factory=list)
    features: list[dict[str, Any]] = field(default_factory=list)
    embeddings: list[np.ndarray] | None = field(default_factory=list)

    def add(
        self,
        outputs: list[dict[str, Any]],
        features: list[dict[str, Any]],
        embeddings: np.ndarray | None = None,
    ) -> None:
        self.outputs += outputs
        self.features += features
        if embeddings is None or self.embeddings is None:
            self.embeddings = None
        else:
            self.embeddings += list(embeddings)


def log_batch(
    prediction_log: PredictionLog,
    logged: LoggedBatch,
    domain: str,
    slot: str,
    model: dict[str, Any],
) -> str:
    """Write a batch's predictions to the log at once, under one new request id."""
    rid = request_id(None)
    prediction_log.write(
        [
            LoggedPrediction(
                request_id=rid,
                item=i,
                domain=domain,
                slot=slot,
                model=str(model["name"]),
                version=str(model["version"]),
                variant=str(model["variant"]),
                output=output,
                features=features,
                source="predict",
                embedding=None if logged.embeddings is None else logged.embeddings[i],
            )
            for i, (output, features) in enumerate(
                zip(logged.outputs, logged.features, strict=True)
            )
        ]
    )
    return rid


def write_predictions(table: pd.DataFrame, model: dict[str, Any], output: Path) -> Path:
    """The table with the model's name, version and variant on every row, atomically."""
    table = table.copy()
    table.attrs = {}
    for key, value in model.items():
        table[f"model_{key}"] = value
    buf = io.StringIO()
    table.to_csv(buf, index=False)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, buf.getvalue())
    return output
