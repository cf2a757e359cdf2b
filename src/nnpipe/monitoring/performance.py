"""Live performance once the truth arrives: a labels CSV for logged X-ray predictions
(matched by request id), scored as evaluate scores the test split, with confidence
intervals (a bootstrap for ROC-AUC, Wilson's interval for the rates)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnpipe.monitoring.frame import MonitorInputError

_SHOWN = 5


def read_labels(path: Path, logged: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """A labels CSV (``request_id``, optional ``item`` (default 0), ``label``: a class name
    or its index) as (request_id, item, label index); every row must name a logged
    prediction, or nothing is scored."""
    if not path.is_file():
        raise MonitorInputError(f"the labels file {path} does not exist")
    try:
        table = pd.read_csv(path, dtype={"request_id": str, "label": str})
    except (ValueError, pd.errors.ParserError) as exc:
        raise MonitorInputError(f"{path} is not a readable CSV: {exc}") from None
    missing = [c for c in ("request_id", "label") if c not in table]
    if missing:
        raise MonitorInputError(
            f"{path} lacks the column(s) {missing}: give request_id (as the server "
            "returned it), label (a class name or 0/1) and optionally item (the image's "
            f"place in a batch request); it has {list(table.columns)}"
        )
    if table.empty:
        raise MonitorInputError(f"{path} holds no labels")
    table["item"] = table["item"].astype(int) if "item" in table else 0
    names = {c.lower(): i for i, c in enumerate(classes)} | {str(i): i for i in range(len(classes))}
    table["label"] = table["label"].astype(str).str.strip().str.lower()
    bad = table.loc[~table["label"].isin(list(names)), "label"].unique().tolist()
    if bad:
        raise MonitorInputError(
            f"{path}: label(s) {bad[:_SHOWN]} are not one of {classes} (or 0/1)"
        )
    table["label"] = table["label"].map(names).astype(int)
    known = set(zip(logged["request_id"], logged["item"], strict=True))
    unknown = [
        f"{r}#{i}"
        for r, i in zip(table["request_id"], table["item"], strict=True)
        if (r, i) not in known
    ]
    if unknown:
        raise MonitorInputError(
            f"{path}: {len(unknown)} of {len(table)} labels name predictions the log does not "
            f"hold for this model (request_id#item: {', '.join(unknown[:_SHOWN])}"
            f"{', ...' if len(unknown) > _SHOWN else ''}); give the request ids the server "
            "returned, for predictions inside the monitor's window"
        )
    if table.duplicated(["request_id", "item"]).any():
        raise MonitorInputError(f"{path} labels some predictions twice")
    return table[["request_id", "item", "label"]]


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson's score interval for a proportion (sound for small n and rates near 0 or 1)."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (float(centre - half), float(centre + half))


def binary_performance(
    y: np.ndarray,
    probability: np.ndarray,
    predicted: np.ndarray,
    min_labels: int,
    seed: int,
    resamples: int = 1000,
) -> dict[str, Any]:
    """ROC-AUC (with a 95% bootstrap interval), sensitivity and specificity at the
    decisions served (with Wilson intervals)."""
    from sklearn.metrics import roc_auc_score

    if len(y) < min_labels:
        raise MonitorInputError(
            f"{len(y)} labelled predictions are too few to score (monitor.min_labels is "
            f"{min_labels}); label more, or lower it"
        )
    if len(set(y.tolist())) < 2:
        raise MonitorInputError(
            "the labels hold one class only: ROC-AUC needs both; label predictions of both"
        )
    auc = float(roc_auc_score(y, probability))
    rng = np.random.default_rng(seed)
    aucs = []
    for _ in range(resamples):
        pick = rng.integers(0, len(y), len(y))
        if len(set(y[pick].tolist())) == 2:
            aucs.append(roc_auc_score(y[pick], probability[pick]))
    positives, negatives = y == 1, y == 0
    tp = int(np.sum(predicted & positives))
    tn = int(np.sum(~predicted & negatives))
    return {
        "labelled": len(y),
        "roc_auc": auc,
        "roc_auc_ci95": [float(np.quantile(aucs, 0.025)), float(np.quantile(aucs, 0.975))],
        "sensitivity": tp / int(positives.sum()),
        "sensitivity_ci95": list(wilson_interval(tp, int(positives.sum()))),
        "specificity": tn / int(negatives.sum()),
        "specificity_ci95": list(wilson_interval(tn, int(negatives.sum()))),
    }
