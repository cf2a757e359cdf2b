"""What the drift checks compare: one row per prediction (an image, a window) with the
input's statistics and the model's output as columns, and the model's embedding of it
where the domain has one. The reference (the training split, written beside the deployed
model by promote) and the current window (the prediction log, or a batch) take the same
form, built by the same code from the same per-prediction records."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnpipe.errors import NnpipeError
from nnpipe.io import atomic_write_bytes

OUTPUT_PREFIX = "output_"
REFERENCE_FILE = "monitor_reference.npz"  # in a deploy folder, beside deploy.json


class MonitorInputError(NnpipeError, ValueError):
    """What the monitor was given cannot be compared: the message says why and what to do."""


def flat_record(features: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
    """One prediction's columns: each feature (a list, such as a histogram, as one column
    per entry: ``histogram_00``...), and each numeric output as ``output_<name>``."""
    row: dict[str, Any] = {}
    for key, value in features.items():
        if isinstance(value, (list, tuple)):
            row |= {f"{key}_{i:02d}": float(v) for i, v in enumerate(value)}
        else:
            row[key] = value
    for key, value in output.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            row[OUTPUT_PREFIX + key] = float(value)
    return row


@dataclass
class MonitorFrame:
    table: pd.DataFrame
    embedding: np.ndarray | None = None  # (rows, width), or None
    # data-quality findings of a batch, by rule (rows its domain's validation flagged,
    # images that could not be read): the report's data-quality section
    quality: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.table)

    @classmethod
    def from_records(
        cls,
        features: Sequence[dict[str, Any]],
        outputs: Sequence[dict[str, Any]],
        embeddings: Sequence[np.ndarray | None] | np.ndarray | None = None,
    ) -> MonitorFrame:
        table = pd.DataFrame([flat_record(f, o) for f, o in zip(features, outputs, strict=True)])
        embedding = None
        if embeddings is not None and len(embeddings) and all(e is not None for e in embeddings):
            widths = {len(np.asarray(e).reshape(-1)) for e in embeddings}
            if len(widths) == 1:  # two model versions' rows in one window would differ
                embedding = np.stack([np.asarray(e, np.float32).reshape(-1) for e in embeddings])
        return cls(table, embedding)

    def numbers(self, column: str) -> np.ndarray:
        return self.table[column].to_numpy(dtype=np.float64)

    def columns(self, prefix: str) -> list[str]:
        return [c for c in self.table.columns if c.startswith(prefix)]

    # -- the reference file (numpy only: no pickle, so a planted file runs no code) ------

    def to_bytes(self) -> bytes:
        arrays: dict[str, np.ndarray] = {}
        for column in self.table.columns:
            values = self.table[column]
            if pd.api.types.is_numeric_dtype(values):
                arrays[f"num/{column}"] = values.to_numpy(dtype=np.float64)
            else:
                arrays[f"str/{column}"] = values.astype(str).to_numpy(dtype=np.str_)
        if self.embedding is not None:
            arrays["embedding"] = self.embedding.astype(np.float32)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    def write(self, path: Path) -> Path:
        return atomic_write_bytes(path, self.to_bytes())

    @classmethod
    def read(cls, path: Path) -> MonitorFrame:
        try:
            with np.load(path, allow_pickle=False) as npz:
                columns = {
                    key.split("/", 1)[1]: npz[key]
                    for key in npz.files
                    if key.startswith(("num/", "str/"))
                }
                embedding = npz["embedding"] if "embedding" in npz.files else None
        except (OSError, ValueError) as exc:
            raise MonitorInputError(
                f"{path} is not a monitoring reference nnpipe wrote ({exc}); re-run "
                "promote and register to write it again"
            ) from None
        return cls(pd.DataFrame(columns), embedding)
