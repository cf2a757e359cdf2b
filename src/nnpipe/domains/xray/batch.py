"""``nnpipe predict`` on X-ray inputs: a folder of PNG/JPEG images (searched recursively),
an ``.npz`` of image arrays (MedMNIST's ``<split>_images`` keys, or ``images``), or one
image file. An image that cannot be read gets its row with the reason in ``error``; the
others are predicted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnpipe.domains.xray.images import IMAGE_SUFFIXES
from nnpipe.domains.xray.predictor import XrayPredictor
from nnpipe.errors import NnpipeError
from nnpipe.serving.batch import BatchInputError

COLUMNS = ["input", "probability", "label", "threshold", "error"]


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


def predicted_rows(
    predictor: XrayPredictor, pending: list[tuple[str, np.ndarray]]
) -> list[dict[str, Any]]:
    """One row per preprocessed image, from one run of the model."""
    out = predictor.run(np.stack([p for _, p in pending]).astype(np.float32)[..., None])
    threshold = predictor.spec.threshold
    classes = predictor.spec.classes
    return [
        {
            "input": name,
            "probability": float(p),
            "label": classes[int(p >= threshold)],
            "threshold": threshold,
            "error": "",
        }
        for (name, _), p in zip(pending, out.reshape(-1), strict=True)
    ]


def predict_files(predictor: XrayPredictor, path: Path, batch_size: int = 64) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    pending: list[tuple[str, np.ndarray]] = []
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
            rows += predicted_rows(predictor, pending)
            pending.clear()
    if pending:
        rows += predicted_rows(predictor, pending)
    return pd.DataFrame(rows, columns=COLUMNS)
