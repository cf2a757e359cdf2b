"""What the X-ray monitor compares: each radiograph's size and mode as sent, its intensity
statistics as the model saw it (after the resize training used), the model's embedding
of it (the penultimate layer) and its predicted probability; and the checks on them.

The same functions describe the training split (the reference promote writes) and the
images served or batch-predicted later, so the two sides differ only by their data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nnpipe.monitoring.drift import Check, chi2_check, ks_check, mmd_check, psi_shares_check
from nnpipe.monitoring.frame import OUTPUT_PREFIX, MonitorFrame

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from nnpipe.config import Params
    from nnpipe.config.common import Monitor
    from nnpipe.domains.contract import Unit

HISTOGRAM_BINS = 16  # of 0..255 intensities: coarse enough to be stable on a few images


@dataclass(frozen=True)
class ImageSource:
    """An image as it was sent, before preprocessing."""

    width: int
    height: int
    mode: str  # PIL's mode ("L", "RGB", "I;16"), or "array" for pixel values sent as JSON


def image_source(image: Any) -> ImageSource:
    """The size and mode of an image as sent: from an encoded image's header (no decode),
    or an array's shape."""
    if isinstance(image, (bytes, bytearray)):
        from nnpipe.domains.xray.images import declared_header

        header = declared_header(bytes(image))
        if header is None:
            return ImageSource(0, 0, "unknown")
        (width, height), mode = header
        return ImageSource(width, height, mode)
    shape = np.shape(image)
    return ImageSource(int(shape[1]), int(shape[0]), "array")


def image_features(pixels: np.ndarray, sources: Sequence[ImageSource]) -> list[dict[str, Any]]:
    """Per image: its size and mode as sent, and the mean, standard deviation and
    intensity histogram (shares of its pixels in 16 bins of 0..255) of the model's input."""
    flat = np.asarray(pixels, dtype=np.float32).reshape(len(pixels), -1)
    size = flat.shape[1]
    # 0..255 in 16 bins: the top four bits of each (clipped, rounded down) grey level.
    # Every call here is on the request path: np.clip and np.mean cost several times
    # what np.minimum/np.maximum and a sum do on 784 pixels
    bins = np.minimum(np.maximum(flat, 0.0), 255.0).astype(np.uint8) >> 4
    if len(flat) > 1:  # one bincount for the batch
        bins = bins + HISTOGRAM_BINS * np.arange(len(flat))[:, None]
    counts = np.bincount(bins.ravel(), minlength=HISTOGRAM_BINS * len(flat))
    shares = (counts.reshape(len(flat), HISTOGRAM_BINS) / size).tolist()
    means = flat.sum(axis=1, dtype=np.float64) / size
    # the variance from the mean of squares: one pass, as numpy's std would take two
    squares = np.einsum("ij,ij->i", flat, flat, dtype=np.float64) / size
    stds = np.sqrt(np.maximum(squares - means**2, 0)).tolist()
    return [
        {
            "width": source.width,
            "height": source.height,
            "mode": source.mode,
            "mean": mean,
            "std": std,
            "histogram": histogram,
        }
        for source, mean, std, histogram in zip(sources, means.tolist(), stds, shares, strict=True)
    ]


def prediction_output(probability: float) -> dict[str, float]:
    return {"probability": float(probability)}


def drift_checks(
    reference: MonitorFrame, current: MonitorFrame, thresholds: Any, seed: int
) -> list[Check]:
    """Every X-ray check, each at its threshold from ``xray.monitor``."""
    t = thresholds
    checks = [
        ks_check("intensity_mean", reference.numbers("mean"), current.numbers("mean"), t.ks_alpha),
        ks_check("intensity_std", reference.numbers("std"), current.numbers("std"), t.ks_alpha),
        psi_shares_check(
            "intensity_histogram",
            reference.table[reference.columns("histogram_")].to_numpy().mean(axis=0),
            current.table[current.columns("histogram_")].to_numpy().mean(axis=0),
            t.histogram_psi,
            len(reference),
            len(current),
        ),
        ks_check(
            "image_side",
            np.maximum(reference.numbers("width"), reference.numbers("height")),
            np.maximum(current.numbers("width"), current.numbers("height")),
            t.ks_alpha,
        ),
        chi2_check(
            "image_mode",
            reference.table["mode"].astype(str).tolist(),
            current.table["mode"].astype(str).tolist(),
            t.ks_alpha,
        ),
        ks_check(
            "prediction",
            reference.numbers(OUTPUT_PREFIX + "probability"),
            current.numbers(OUTPUT_PREFIX + "probability"),
            t.ks_alpha,
        ),
    ]
    if reference.embedding is not None and current.embedding is not None:
        if reference.embedding.shape[1] == current.embedding.shape[1]:
            checks.insert(
                0,
                mmd_check(
                    "embedding",
                    reference.embedding,
                    current.embedding,
                    t.embedding_alpha,
                    t.permutations,
                    seed,
                ),
            )
    return checks


class XrayMonitoring:
    """The X-ray part of the monitor (:mod:`nnpipe.stages.monitor`)."""

    def settings(self, params: Params) -> Monitor:
        from nnpipe.domains.xray.domain import XRAY

        return XRAY.section(params).monitor

    def checks(self, params: Params, reference: MonitorFrame, current: MonitorFrame) -> list[Check]:
        return drift_checks(reference, current, self.settings(params), params.seed)

    def performance(
        self, params: Params, unit: Unit, logged: pd.DataFrame, labels: Path | None
    ) -> dict[str, Any] | None:
        """ROC-AUC, sensitivity and specificity at the deployed threshold, each with a 95%
        confidence interval, of the logged predictions a labels CSV gives the truth of."""
        from nnpipe.domains.xray.domain import XRAY
        from nnpipe.monitoring.performance import binary_performance, read_labels

        if labels is None:
            return None
        cfg = XRAY.section(params)
        truth = read_labels(labels, logged, cfg.classes)
        # a retried request (the caller's X-Request-ID again) is scored once: its latest
        latest = logged.drop_duplicates(["request_id", "item"], keep="last")
        scored = truth.merge(latest, on=["request_id", "item"])
        probability = np.array([o["probability"] for o in scored["output"]], dtype=np.float64)
        threshold = np.array([o.get("threshold", 0.5) for o in scored["output"]], dtype=np.float64)
        found = binary_performance(
            scored["label"].to_numpy(np.int64),
            probability,
            probability >= threshold,
            cfg.monitor.min_labels,
            params.seed,
        )
        found["alarm"] = bool(found["roc_auc"] < cfg.monitor.min_roc_auc)
        found["threshold"] = {"min_roc_auc": cfg.monitor.min_roc_auc}
        if found["alarm"]:
            found["reason"] = (
                f"live ROC-AUC {found['roc_auc']:.3f} is below monitor.min_roc_auc "
                f"{cfg.monitor.min_roc_auc:g} on {found['labelled']} labelled predictions"
            )
        return found
