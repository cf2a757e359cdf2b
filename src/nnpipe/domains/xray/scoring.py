"""Scoring a classifier on the feature splits, and the numbers its variants are judged
by: what evaluate, compress, promote and register share (a stage never imports another).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from nnpipe.domains.xray.evaluation import choose_threshold, compute_metrics
from nnpipe.domains.xray.features import read_arrays

# compress measures, and promote judges, each variant by its test ROC-AUC and by how often
# its class decisions agree with the Keras reference's
VARIANT_METRIC, VARIANT_PARITY = "roc_auc", "decision_agreement"

Scorer = Callable[[np.ndarray], np.ndarray]  # pixels (n, size, size, 1) -> probabilities


def predict_split(
    predict: Scorer,
    features_dir: Path,
    split: str,
    image_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pixels, labels, scores) of one split, in file order."""
    x, y = read_arrays([features_dir / f"{split}.tfrecord"], image_size)
    return x, y, np.asarray(predict(x), dtype=np.float64).reshape(-1)


def score_model(
    predict: Scorer,
    features_dir: Path,
    image_size: int,
    classes: list[str],
    threshold_rule: str,
    target_specificity: float,
) -> dict:
    """Thresholds from validation, metrics on test; also the test arrays, for logging.
    ``predict`` is the Keras model in evaluate, a registered champion's deployed variant in
    register."""
    _, y_val, p_val = predict_split(predict, features_dir, "val", image_size)
    threshold = choose_threshold(y_val, p_val, threshold_rule, target_specificity)
    spec_threshold = choose_threshold(y_val, p_val, "specificity", target_specificity)
    x, y, p = predict_split(predict, features_dir, "test", image_size)
    metrics = compute_metrics(y, p, threshold, classes, target_specificity, spec_threshold)
    metrics["val_roc_auc"] = compute_metrics(
        y_val, p_val, threshold, classes, target_specificity, spec_threshold
    )["roc_auc"]
    return {"metrics": metrics, "x": x, "y": y, "scores": p}
