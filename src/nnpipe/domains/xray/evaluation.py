"""Metrics and figures of a binary radiograph classifier.

Every threshold (the decision threshold, and the one meant to reach a target specificity)
is chosen on the validation split and only applied to the test split, so no test metric is
tuned on the test set.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import (
    average_precision_score,
    classification_report,
    confusion_matrix,
    roc_auc_score,
    roc_curve,
)


def choose_threshold(
    y_true: np.ndarray, scores: np.ndarray, strategy: str, target_specificity: float
) -> float:
    """A probability threshold from validation predictions.

    ``youden`` maximises sensitivity + specificity - 1; ``specificity`` is the lowest
    threshold whose specificity still reaches the target (the most sensitive such point).
    """
    if len(np.unique(y_true)) < 2:
        raise ValueError("choosing a threshold needs both classes in the validation split")
    fpr, tpr, thresholds = roc_curve(y_true, scores)
    finite = np.isfinite(thresholds)
    fpr, tpr, thresholds = fpr[finite], tpr[finite], thresholds[finite]
    if strategy == "youden":
        best = int(np.argmax(tpr - fpr))
    elif strategy == "specificity":
        ok = np.flatnonzero(1.0 - fpr >= target_specificity)
        if not len(ok):  # no score separates enough negatives: call everything negative
            return float(np.nextafter(np.max(scores), np.inf))
        best = int(ok[-1])
    else:
        raise ValueError(f"unknown threshold strategy {strategy!r}; use youden or specificity")
    return float(np.clip(thresholds[best], 0.0, 1.0))


def rates_at(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float]:
    """(sensitivity, specificity) of the decisions ``scores >= threshold``."""
    y_true = np.asarray(y_true).astype(int).reshape(-1)
    pred = np.asarray(scores).reshape(-1) >= threshold
    pos, neg = y_true == 1, y_true == 0
    sens = float(pred[pos].mean()) if pos.any() else 0.0
    spec = float((~pred[neg]).mean()) if neg.any() else 0.0
    return sens, spec


def compute_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    classes: list[str],
    target_specificity: float,
    specificity_threshold: float,
) -> dict:
    """Accuracy, ROC-AUC, average precision, per-class report and confusion matrix.

    ``threshold`` is the decision threshold, ``specificity_threshold`` the one chosen on
    validation to reach ``target_specificity``; both come from validation, so the test
    sensitivity reported at the target specificity is not tuned on the test set.
    """
    y_true = np.asarray(y_true).astype(int).reshape(-1)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(y_true) != len(scores):
        raise ValueError(f"{len(y_true)} labels but {len(scores)} scores")
    if len(np.unique(y_true)) < 2:
        raise ValueError("the test split holds one class only; ROC-AUC is undefined")
    y_pred = (scores >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    report = classification_report(
        y_true, y_pred, labels=[0, 1], target_names=classes, output_dict=True, zero_division=0
    )
    metrics = {
        "n": len(y_true),
        "threshold": float(threshold),
        "accuracy": float((y_pred == y_true).mean()),
        "roc_auc": float(roc_auc_score(y_true, scores)),
        "average_precision": float(average_precision_score(y_true, scores)),
        "sensitivity": float(tp / (tp + fn)) if tp + fn else 0.0,
        "specificity": float(tn / (tn + fp)) if tn + fp else 0.0,
        "target_specificity": float(target_specificity),
        "specificity_threshold": float(specificity_threshold),
        "sensitivity_at_specificity": rates_at(y_true, scores, specificity_threshold)[0],
        "specificity_at_specificity_threshold": rates_at(y_true, scores, specificity_threshold)[1],
        "f1_positive": float(report[classes[1]]["f1-score"]),
        "confusion_matrix": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
        "per_class": {
            name: {k: float(report[name][k]) for k in ("precision", "recall", "f1-score")}
            | {"support": int(report[name]["support"])}
            for name in classes
        },
    }
    return metrics


def headline_metrics(metrics: dict) -> dict[str, float | dict[str, float]]:
    """The few numbers a user compares across experiments (``dvc exp show``), beside the
    baselines a classifier must beat: the majority class's accuracy and the positive share
    (the average precision of a random ranking)."""
    cm = metrics["confusion_matrix"]
    n = cm["tn"] + cm["fp"] + cm["fn"] + cm["tp"]
    positives = cm["tp"] + cm["fn"]
    return {
        "test": {
            k: float(metrics[k])
            for k in ("roc_auc", "accuracy", "sensitivity", "specificity", "average_precision")
        },
        "val": {"roc_auc": float(metrics["val_roc_auc"])},
        "threshold": float(metrics["threshold"]),
        "baseline": {
            "accuracy": max(positives, n - positives) / n,
            "average_precision": positives / n,
        },
    }


def roc_table(y_true: np.ndarray, scores: np.ndarray) -> list[dict[str, float]]:
    """ROC points as rows, the layout of a DVC plot."""
    fpr, tpr, thr = roc_curve(y_true, scores)
    return [
        {"fpr": float(f), "tpr": float(t), "threshold": float(min(h, 1.0))}
        for f, t, h in zip(fpr, tpr, thr, strict=True)
    ]


def plot_roc(y_true: np.ndarray, scores: np.ndarray, auc: float, path: Path) -> None:
    fpr, tpr, _ = roc_curve(y_true, scores)
    fig = Figure(figsize=(4.5, 4.5), dpi=100)
    ax = fig.subplots()
    ax.plot(fpr, tpr, label=f"model (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, test split")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


def plot_confusion(metrics: dict, classes: list[str], path: Path) -> None:
    cm = metrics["confusion_matrix"]
    grid = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]])
    fig = Figure(figsize=(4.5, 4), dpi=100)
    ax = fig.subplots()
    ax.imshow(grid, cmap="Blues")
    for (i, j), value in np.ndenumerate(grid):
        ax.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            color="white" if value > grid.max() / 2 else "black",
        )
    ax.set_xticks([0, 1], labels=classes)
    ax.set_yticks([0, 1], labels=classes)
    ax.set(
        xlabel="predicted",
        ylabel="actual",
        title=f"confusion matrix (threshold {metrics['threshold']:.3f})",
    )
    fig.tight_layout()
    fig.savefig(path)


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    """Loss and AUC per epoch, train against validation."""
    epochs = [row["epoch"] for row in history]
    fig = Figure(figsize=(9, 3.5), dpi=100)
    axes = fig.subplots(1, 2)
    for ax, key in zip(axes, ("loss", "auc"), strict=True):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = [row.get(prefix + key) for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, label=(prefix or "train_") + key)
        ax.set(xlabel="epoch", title=key)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
