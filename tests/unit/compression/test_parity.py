"""The X-ray parity check: a variant judged at its own validation threshold, because
quantization and pruning shift scores without changing their order."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.domains.xray.params import XrayEvaluate
from nnpipe.domains.xray.stages.compress import PARITY, score_variant

CLASSES = ["normal", "pneumonia"]


def split(seed: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    scores = 1 / (1 + np.exp(-(2.5 * (y - 0.5) + rng.normal(0, 1, n))))
    return y, scores


def test_a_shifted_variant_agrees_at_its_own_threshold_not_at_the_references():
    from nnpipe.domains.xray.evaluation import choose_threshold

    ev = XrayEvaluate()
    y_val, ref_val = split(0)
    y_test, ref_test = split(1)
    ref_threshold = choose_threshold(y_val, ref_val, ev.threshold, ev.target_specificity)
    shift = lambda s: s**3  # noqa: E731 - monotone: same ranking, lower scores
    row = score_variant(
        y_test, shift(ref_test), y_val, shift(ref_val), ref_test, ref_threshold, ev, CLASSES
    )
    assert row["threshold"] == pytest.approx(ref_threshold**3)
    assert row[PARITY] == pytest.approx(1.0)
    assert row["agreement_at_reference_threshold"] < 0.9
    assert row["roc_auc"] > 0.8


def test_the_reference_itself_has_full_parity_and_its_own_metrics():
    ev = XrayEvaluate(threshold="specificity", target_specificity=0.8)
    y_val, ref_val = split(2)
    y_test, ref_test = split(3)
    from nnpipe.domains.xray.evaluation import choose_threshold

    t = choose_threshold(y_val, ref_val, ev.threshold, ev.target_specificity)
    row = score_variant(y_test, ref_test, y_val, ref_val, ref_test, t, ev, CLASSES)
    assert row[PARITY] == row["agreement_at_reference_threshold"] == 1.0
    assert row["max_abs_diff"] == 0.0 and row["threshold"] == t
    assert set(row) >= {"roc_auc", "accuracy", "sensitivity_at_specificity", "f1_positive"}
