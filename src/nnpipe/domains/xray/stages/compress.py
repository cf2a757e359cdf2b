"""The X-ray part of the compress stage (:mod:`nnpipe.stages.compress`).

Variants are calibrated on training images (full int8) and fine-tuned on them (pruning);
each is scored by its test ROC-AUC from its own outputs (LiteRT interpreter, not the Keras
model) at its own decision threshold, chosen on validation by evaluate's rule
(quantization and pruning shift scores, so the reference's threshold would misjudge
them), and by its parity with the Keras model: the share of test images given the
reference's class.
"""

from __future__ import annotations

from functools import partial
from typing import Any, get_args

import numpy as np

from nnpipe.config import Params
from nnpipe.domains.contract import Unit
from nnpipe.domains.parts import VariantInputs, VariantOutputs
from nnpipe.domains.xray.artifacts import XrayEvaluation, XrayFeatures
from nnpipe.domains.xray.domain import XRAY
from nnpipe.domains.xray.evaluation import choose_threshold, compute_metrics
from nnpipe.domains.xray.features import read_arrays
from nnpipe.domains.xray.params import XrayEvaluate, XrayGateMetric
from nnpipe.domains.xray.scoring import VARIANT_METRIC, VARIANT_PARITY
from nnpipe.layout import domain_layout
from nnpipe.stages import require

GATE_METRICS = get_args(XrayGateMetric)
METRIC, PARITY = VARIANT_METRIC, VARIANT_PARITY


def score_variant(
    y_test: np.ndarray,
    scores: np.ndarray,
    y_val: np.ndarray,
    val_scores: np.ndarray,
    reference: np.ndarray,
    reference_threshold: float,
    ev: XrayEvaluate,
    classes: list[str],
) -> dict:
    """A variant's test metrics at its OWN decision threshold, chosen on validation by
    evaluate's rule, and its agreement with the reference's class decisions."""
    threshold = choose_threshold(y_val, val_scores, ev.threshold, ev.target_specificity)
    spec_threshold = choose_threshold(y_val, val_scores, "specificity", ev.target_specificity)
    m = compute_metrics(y_test, scores, threshold, classes, ev.target_specificity, spec_threshold)
    decisions = reference >= reference_threshold
    return {
        **{k: m[k] for k in GATE_METRICS},
        "threshold": threshold,
        PARITY: float(np.mean((scores >= threshold) == decisions)),
        "agreement_at_reference_threshold": float(
            np.mean((scores >= reference_threshold) == decisions)
        ),
        "max_abs_diff": float(np.max(np.abs(scores - reference))),
    }


def reference_threshold(params: Params) -> float:
    """The Keras model's decision threshold, as evaluate chose it on validation."""
    layout = domain_layout(params, XRAY.name)
    return XrayEvaluation.read(
        require(layout.evaluation, "evaluate", XRAY.name), XRAY.name
    ).threshold


def score_rows(
    params: Params,
    y_test: np.ndarray,
    y_val: np.ndarray,
    rows: dict[str, dict[str, Any]],
    outputs: VariantOutputs,
    reference: np.ndarray,
) -> None:
    cfg = XRAY.section(params)
    threshold = reference_threshold(params)
    for name, row in rows.items():
        scores, val_scores = outputs(name), outputs(name, "val")
        if row["status"] == "ok" and scores is not None and val_scores is not None:
            row |= score_variant(
                y_test,
                scores.reshape(-1),
                y_val,
                val_scores.reshape(-1),
                reference.reshape(-1),
                threshold,
                cfg.evaluate,
                cfg.classes,
            )


class XrayCompression:
    metric = METRIC
    parity = PARITY

    def inputs(self, params: Params, unit: Unit) -> VariantInputs:
        layout = domain_layout(params, XRAY.name)
        meta = XrayFeatures.read(
            require(layout.features / "meta.json", "featurize", XRAY.name), XRAY.name
        )
        size = meta.image_size
        x_train, y_train = read_arrays([layout.features / "train.tfrecord"], size)
        x_test, y_test = read_arrays([layout.features / "test.tfrecord"], size)
        x_val, y_val = read_arrays([layout.features / "val.tfrecord"], size)
        rng = np.random.default_rng(params.seed)
        pick = rng.permutation(len(x_train))[: XRAY.section(params).compress.representative_samples]
        data = {
            "x_repr": x_train[pick],
            "x_test": x_test,
            "x_val": x_val,
            "x_tune": x_train,
            "y_tune": y_train.astype(np.float32).reshape(-1, 1),
        }
        return VariantInputs(
            data, "binary_crossentropy", partial(score_rows, params, y_test, y_val)
        )

    def report(self, params: Params, unit: Unit) -> tuple[str, list[str]]:
        c = XRAY.section(params).compress
        return (
            "X-ray model variants (test split)",
            [
                "Metric: test ROC-AUC from each variant's own outputs; parity: share of test "
                "images given the reference's class, each variant at its own threshold chosen "
                f"on validation (the reference's: {reference_threshold(params):.3f}).",
                f"Latency: one image, {c.threads} thread(s), {c.latency_runs} runs.",
            ],
        )

    def table_fields(self, params: Params) -> dict[str, Any]:
        return {"threshold": reference_threshold(params)}
