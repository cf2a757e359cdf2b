"""``nnpipe predict``: batch predictions from files, with the predictor the API and the
MLflow pyfunc use (same preprocessing as training), written as one CSV. Each domain reads
its own inputs (its ``predict_files`` hook, ``nnpipe.domains.<name>.batch``): a file that
cannot be read gets its row with the reason in ``error``; the others are predicted."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd

from nnpipe.errors import NnpipeError
from nnpipe.io import atomic_write_text


class BatchInputError(NnpipeError, ValueError):
    """The batch input cannot be read as a whole."""


def write_predictions(table: pd.DataFrame, model: dict[str, Any], output: Path) -> Path:
    """The table with the model's name, version and variant on every row, atomically."""
    for key, value in model.items():
        table[f"model_{key}"] = value
    buf = io.StringIO()
    table.to_csv(buf, index=False)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, buf.getvalue())
    return output
