"""``nnpipe predict``: batch predictions from files, with the predictor the API and the
MLflow pyfunc use (same preprocessing as training), written as one CSV.

X-ray inputs: a folder of PNG/JPEG images (searched recursively), an ``.npz`` of image
arrays (MedMNIST's ``<split>_images`` keys, or ``images``), or one image file. An image
that cannot be read gets its row with the reason in ``error``; the others are predicted.
OHLCV input: a CSV of daily bars (read and checked by ingest's own reader); every
complete look-back window gets the forecast for the bar after it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnpipe.domains.xray.images import IMAGE_SUFFIXES
from nnpipe.errors import NnpipeError
from nnpipe.io import atomic_write_text
from nnpipe.serving.predictor import Predictor

log = logging.getLogger(__name__)


class BatchInputError(NnpipeError, ValueError):
    """The batch input cannot be read as a whole."""


def xray_inputs(path: Path) -> Iterator[tuple[str, Any]]:
    """(name, image) pairs: encoded bytes for files, arrays for ``.npz`` entries."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise BatchInputError(f"{path} holds no PNG or JPEG images (searched recursively)")
        for p in files:
            yield p.relative_to(path).as_posix(), p.read_bytes()
    elif path.suffix.lower() == ".npz":
        with np.load(path) as npz:
            keys = [k for k in npz.files if k.endswith("images")]
            if not keys:
                raise BatchInputError(
                    f"{path} has no image arrays (keys ending in `images`, "
                    f"as MedMNIST's train_images); it has {npz.files}"
                )
            for key in keys:
                for i, image in enumerate(npz[key]):
                    yield f"{key}[{i}]", image
    elif path.is_file():
        yield path.name, path.read_bytes()
    else:
        raise BatchInputError(f"{path} does not exist")


def predict_xray(predictor: Predictor, path: Path, batch_size: int = 64) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    pending: list[tuple[str, np.ndarray]] = []

    def flush() -> None:
        if pending:
            out = predictor.run(np.stack([p for _, p in pending]).astype(np.float32)[..., None])
            threshold = float(predictor.spec["threshold"])
            classes = predictor.spec["classes"]
            for (name, _), p in zip(pending, out.reshape(-1), strict=True):
                rows.append(
                    {
                        "input": name,
                        "probability": float(p),
                        "label": classes[int(p >= threshold)],
                        "threshold": threshold,
                        "error": "",
                    }
                )
            pending.clear()

    for name, image in xray_inputs(path):
        try:
            pending.append((name, predictor.to_pixels(image)))
        except NnpipeError as exc:  # one unreadable image is its own row, not the end
            rows.append(
                {
                    "input": name,
                    "probability": None,
                    "label": None,
                    "threshold": None,
                    "error": str(exc),
                }
            )
        if len(pending) >= batch_size:
            flush()
    flush()
    return pd.DataFrame(rows, columns=["input", "probability", "label", "threshold", "error"])


def predict_ohlcv(predictor: Predictor, path: Path) -> pd.DataFrame:
    from nnpipe.domains.ohlcv.sources import read_ohlcv_csv
    from nnpipe.domains.ohlcv.windows import add_features

    frame = read_ohlcv_csv(path)
    spec = predictor.spec
    features = add_features(frame, list(spec.get("derived", []))).dropna()
    look_back = int(spec["look_back"])
    if len(features) < look_back:
        raise BatchInputError(
            f"{path} gives {len(features)} complete rows; the model needs {look_back}"
        )
    values = features[spec["features"]].to_numpy(float)
    windows = np.lib.stride_tricks.sliding_window_view(values, (look_back, values.shape[1]))
    out = predictor.predict_windows(windows[:, 0])
    dates = [d.date().isoformat() for d in features.index[look_back - 1 :]]
    return pd.DataFrame(
        {
            "last_bar": dates,
            "forecast": out["forecast"],
            "price": out["price"],
            "target": out["target"],
        }
    )


def write_predictions(table: pd.DataFrame, model: dict[str, Any], output: Path) -> Path:
    """The table with the model's name, version and variant on every row, atomically."""
    for key, value in model.items():
        table[f"model_{key}"] = value
    buf = io.StringIO()
    table.to_csv(buf, index=False)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, buf.getvalue())
    return output
