"""evaluate: test-split metrics with every threshold chosen on the validation split.

Output in ``reports/<domain>``: ``metrics.json`` (the headline numbers, for ``dvc metrics
diff`` and ``dvc exp show``), ``evaluation.json`` (every number measured), ``plots/``
(ROC points and per-image decisions, as DVC plots) and ``figures/`` (ROC curve, confusion
matrix, training curves as PNG). All of it is logged to the training run in MLflow too,
before any output is replaced, so a tracking failure leaves the previous reports intact.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from nnpipe import tracking
from nnpipe.artifacts import TrainHistory
from nnpipe.config import Params
from nnpipe.domains.xray.artifacts import XrayEvaluation, XrayFeatures, XrayTrainRun
from nnpipe.domains.xray.domain import XRAY
from nnpipe.domains.xray.evaluation import (
    headline_metrics,
    plot_confusion,
    plot_history,
    plot_roc,
    roc_table,
)
from nnpipe.domains.xray.scoring import Scorer, score_model
from nnpipe.io import atomic_directory, atomic_write_json
from nnpipe.keras_env import keras
from nnpipe.layout import domain_layout
from nnpipe.saved_models import load_model
from nnpipe.stages import cli_main, require

log = logging.getLogger(__name__)

HEADLINE = ("roc_auc", "accuracy", "sensitivity_at_specificity")
# what the run and its logged model show of the test metrics (metrics.json has them all):
# at the chosen threshold, and the sensitivity at the target specificity
TRACKED = (
    "roc_auc",
    "average_precision",
    "accuracy",
    "sensitivity",
    "specificity",
    "f1_positive",
    "threshold",
    "sensitivity_at_specificity",
    "specificity_at_specificity_threshold",
)
# the training run's columns in the MLflow UI's run list
HEADLINE_VIEW = [
    f"test_{k}"
    for k in (
        "roc_auc",
        "baseline_roc_auc",
        "accuracy",
        "baseline_accuracy",
        "sensitivity",
        "specificity",
        "threshold",
    )
] + ["best_val_auc", "best_epoch", "deployed.size_bytes", "deployed.roc_auc"]


def baselines(y: np.ndarray) -> dict[str, float]:
    """What a model with no skill scores on the test split: chance AUC, and the accuracy
    and average precision of always answering the majority class / the prevalence."""
    positive = float(np.mean(y))
    return {
        "baseline_roc_auc": 0.5,
        "baseline_accuracy": max(positive, 1 - positive),
        "baseline_average_precision": positive,
    }


def keras_scorer(model: keras.Model) -> Scorer:
    return lambda x: model.predict(x, batch_size=256, verbose=0).reshape(-1)


def write_reports(
    plots: Path,
    figures: Path,
    y: np.ndarray,
    scores: np.ndarray,
    metrics: dict[str, Any],
    classes: list[str],
    history: list[dict[str, Any]],
) -> None:
    decisions = [
        {"image": i, "actual": classes[int(a)], "predicted": classes[int(p)]}
        for i, (a, p) in enumerate(zip(y, scores >= metrics["threshold"], strict=True))
    ]
    atomic_write_json(plots / "roc.json", roc_table(y, scores))
    atomic_write_json(plots / "confusion.json", decisions)
    plot_roc(y, scores, metrics["roc_auc"], figures / "roc.png")
    plot_confusion(metrics, classes, figures / "confusion_matrix.png")
    plot_history(history, figures / "training_curves.png")


def log_to_mlflow(
    params: Params,
    domain: str,
    run_info: XrayTrainRun,
    scored: dict[str, Any],
    outputs: tuple[Path, Path, Path],
) -> None:
    """Everything evaluate found, on the training run: the test metrics and baselines on
    the logged model with the test dataset, figures, plots and evaluation.json
    (``outputs``: the figures, the plots and evaluation.json as staged)."""
    figures, plots, evaluation = outputs
    cfg = XRAY.section(params)
    metrics = scored["metrics"]
    features = domain_layout(params, domain).features
    with tracking.start_run(params, domain, "evaluate", run_id=run_info.run_id):
        # tags, not params: evaluate may re-run on the same training run with new settings
        tracking.set_tags({f"evaluate.{k}": v for k, v in cfg.evaluate.model_dump().items()})
        test_set = tracking.log_dataset(
            scored["x"],
            scored["y"],
            name=f"{domain}-test",
            digest=run_info.data_hash,
            source=str((features / "test.tfrecord").resolve()),
            context="testing",
            model_id=run_info.model_id,
        )
        tracking.set_headline_view(HEADLINE_VIEW)
        tracking.log_model_metrics(
            {**{k: metrics[k] for k in TRACKED}, **baselines(scored["y"])},
            run_info.model_id,
            test_set,
            prefix="test_",
        )
        tracking.log_artifacts(figures, "figures")
        tracking.log_artifacts(plots, "plots")
        tracking.log_artifacts(evaluation, "evaluation")


def log_summary(evaluation: XrayEvaluation) -> None:
    log.info(
        "evaluate: test AUC %.4f, accuracy %.4f at threshold %.3f; sensitivity %.3f at the "
        "threshold for specificity >= %.2f (test specificity %.3f)",
        evaluation.roc_auc,
        evaluation.accuracy,
        evaluation.threshold,
        evaluation.sensitivity_at_specificity,
        evaluation.target_specificity,
        evaluation.specificity_at_specificity_threshold,
    )


def run(params: Params, domain: str) -> dict:
    cfg = XRAY.section(params)
    layout = domain_layout(params, domain)
    meta = XrayFeatures.read(require(layout.features / "meta.json", "featurize", domain), domain)
    run_info = XrayTrainRun.read(require(layout.model / "run.json", "train", domain), domain)
    history = TrainHistory.read(require(layout.model / "history.json", "train", domain), domain)
    model = load_model(require(layout.model / "model.keras", "train", domain))
    scored = score_model(
        keras_scorer(model),
        layout.features,
        meta.image_size,
        cfg.classes,
        cfg.evaluate.threshold,
        cfg.evaluate.target_specificity,
    )
    metrics = scored["metrics"] | {
        "data_hash": run_info.data_hash,
        "run_id": run_info.run_id,
        "model_id": run_info.model_id,
    }
    scored["metrics"] = metrics
    evaluation = XrayEvaluation.model_validate(metrics)

    layout.reports.mkdir(parents=True, exist_ok=True)
    with (
        atomic_directory(layout.plots) as plots,
        atomic_directory(layout.figures) as figures,
        tempfile.TemporaryDirectory(dir=layout.reports, prefix=".evaluate.") as staging,
    ):
        write_reports(
            plots, figures, scored["y"], scored["scores"], metrics, cfg.classes, history.epochs
        )
        metrics_tmp = evaluation.write(Path(staging) / layout.evaluation.name)
        headline_tmp = atomic_write_json(
            Path(staging) / layout.metrics.name, headline_metrics(metrics)
        )
        log_to_mlflow(params, domain, run_info, scored, (figures, plots, metrics_tmp))
        metrics_tmp.replace(layout.evaluation)
        headline_tmp.replace(layout.metrics)
    log_summary(evaluation)
    return {
        "stage": "evaluate",
        "roc_auc": evaluation.roc_auc,
        "accuracy": evaluation.accuracy,
        "threshold": evaluation.threshold,
    }


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
