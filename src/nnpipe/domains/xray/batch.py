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
from nnpipe.domains.xray.monitoring import ImageSource, image_features, image_source
from nnpipe.domains.xray.predictor import XrayPredictor
from nnpipe.errors import NnpipeError
from nnpipe.monitoring.frame import MonitorFrame, MonitorInputError
from nnpipe.serving.batch import LOGGED, BatchInputError, LoggedBatch

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
    predictor: XrayPredictor,
    pending: list[tuple[str, np.ndarray, ImageSource]],
    logged: LoggedBatch,
) -> list[dict[str, Any]]:
    """One row per preprocessed image, from one run of the model; what the prediction log
    keeps of each goes to ``logged``."""
    batch = np.stack([p for _, p, _ in pending]).astype(np.float32)[..., None]
    out, embedding = predictor.predict_with_embedding(batch)
    threshold = predictor.spec.threshold
    rows = [
        {
            "input": name,
            "probability": float(p),
            "label": label,
            "threshold": threshold,
            "error": "",
        }
        for (name, _, _), p, label in zip(pending, out["probability"], out["label"], strict=True)
    ]
    logged.add(
        [{k: r[k] for k in ("probability", "label", "threshold")} for r in rows],
        image_features(batch, [s for _, _, s in pending]),
        embedding,
    )
    return rows


def predict_files(predictor: XrayPredictor, path: Path, batch_size: int = 64) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    pending: list[tuple[str, np.ndarray, ImageSource]] = []
    logged = LoggedBatch()
    for name, image in xray_inputs(path):
        try:
            pending.append((name, predictor.to_pixels(image), image_source(image)))
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
            rows += predicted_rows(predictor, pending, logged)
            pending.clear()
    if pending:
        rows += predicted_rows(predictor, pending, logged)
    table = pd.DataFrame(rows, columns=COLUMNS)
    table.attrs[LOGGED] = logged
    return table


def monitor_batch(predictor: XrayPredictor, path: Path) -> MonitorFrame:
    """A folder of radiographs (or an .npz) described as serving describes what it is
    sent, with the predictor's outputs and embeddings: ``nnpipe monitor --batch``."""
    pixels, sources, unreadable = [], [], 0
    for _, image in xray_inputs(path):
        try:
            pixels.append(predictor.to_pixels(image))
            sources.append(image_source(image))
        except NnpipeError:
            unreadable += 1  # counted in the report's data-quality section
    if not pixels:
        raise MonitorInputError(f"none of the {unreadable} images in {path} could be read")
    batch = np.stack(pixels).astype(np.float32)[..., None]
    assert predictor.run_with_embedding is not None  # loaded with embeddings
    probability, embedding = predictor.run_with_embedding(batch)
    frame = MonitorFrame.from_records(
        image_features(batch, sources),
        [{"probability": float(p)} for p in probability.reshape(-1)],
        None if embedding is None else list(embedding),
    )
    frame.quality = {"unreadable_images": unreadable}
    return frame
