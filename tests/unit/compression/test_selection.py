"""The promotion rule on hand-made variant tables: smallest within tolerance with parity,
ties by latency, candidates, and what happens when nothing qualifies."""

from __future__ import annotations

import pytest

from nnpipe.compression.selection import SelectionRule, select_variant


def row(size, auc, agreement, latency=1.0, status="ok"):
    return {
        "status": status,
        "size_bytes": size,
        "gzip_bytes": size // 2,
        "roc_auc": auc,
        "decision_agreement": agreement,
        "latency_ms_median": latency,
        "reason": None if status == "ok" else "the worker killed by SIGSEGV",
    }


TABLE = {
    "keras_float32": row(1000, 0.950, 1.0, latency=2.0),
    "tflite_float32": row(900, 0.950, 1.0, latency=0.3),
    "tflite_float16": row(480, 0.950, 1.0, latency=0.3),
    "tflite_dynamic": row(260, 0.949, 0.99, latency=0.2),
    "tflite_int8": row(255, 0.948, 0.985, latency=0.4),
    "pruned_int8": row(250, 0.930, 0.90, latency=0.4),
}
XRAY = SelectionRule(
    metric="roc_auc",
    higher_is_better=True,
    tolerance=0.005,
    parity="decision_agreement",
    parity_bound=0.97,
    parity_higher_is_better=True,
)


def test_the_smallest_qualifying_variant_wins_and_every_verdict_says_why():
    choice = select_variant(TABLE, XRAY.__class__(**{**XRAY.__dict__, "size_tie": 0.0}))
    assert choice.variant == "tflite_int8"
    assert "pruned_int8" not in choice.reason
    assert choice.verdicts["pruned_int8"].startswith("roc_auc 0.93 is 0.02 worse")
    assert choice.verdicts["keras_float32"] == "not a candidate (promote.candidates)"
    assert choice.verdicts["tflite_float16"] == "qualifies"


def test_near_equal_sizes_are_a_tie_that_latency_breaks():
    choice = select_variant(TABLE, XRAY)  # 255 and 260 bytes are within 5%
    assert choice.variant == "tflite_dynamic"
    assert "fastest wins" in choice.reason and "tflite_int8" in choice.reason


def test_parity_below_the_bound_disqualifies():
    rule = SelectionRule(**{**XRAY.__dict__, "parity_bound": 0.995, "size_tie": 0.0})
    choice = select_variant(TABLE, rule)
    assert choice.variant == "tflite_float16"
    assert "below the minimum 0.995" in choice.verdicts["tflite_dynamic"]


def test_candidates_limit_the_choice_and_unsupported_rows_are_skipped():
    table = {**TABLE, "tflite_float16": row(480, 0, 0, status="unsupported")}
    rule = SelectionRule(**{**XRAY.__dict__, "candidates": ["tflite_float16", "tflite_float32"]})
    choice = select_variant(table, rule)
    assert choice.variant == "tflite_float32"
    assert choice.verdicts["tflite_float16"].startswith("unsupported: the worker killed")


@pytest.mark.parametrize("fallback, expected", [("reference", "keras_float32"), ("none", None)])
def test_when_nothing_qualifies_the_fallback_decides_and_says_so(fallback, expected):
    rule = SelectionRule(
        **{
            **XRAY.__dict__,
            "tolerance": 0.0,
            "parity_bound": 1.0,
            "candidates": ["pruned_int8", "tflite_int8"],
            "fallback": fallback,
        }
    )
    choice = select_variant(TABLE, rule)
    assert choice.variant == expected
    assert choice.reason.startswith("no candidate variant qualifies")
    assert f"promote.fallback={fallback}" in choice.reason


def test_lower_is_better_metrics_and_differences_work_the_other_way():
    table = {
        "keras_float32": {
            "status": "ok",
            "size_bytes": 100,
            "relative_mae": 1.00,
            "max_relative_diff": 0.0,
            "latency_ms_median": 5.0,
        },
        "tflite_int8": {
            "status": "ok",
            "size_bytes": 30,
            "relative_mae": 1.10,
            "max_relative_diff": 0.02,
            "latency_ms_median": 2.0,
        },
        "tflite_dynamic": {
            "status": "ok",
            "size_bytes": 35,
            "relative_mae": 1.01,
            "max_relative_diff": 0.001,
            "latency_ms_median": 1.0,
        },
    }
    rule = SelectionRule(
        metric="relative_mae",
        higher_is_better=False,
        tolerance=0.02,
        parity="max_relative_diff",
        parity_bound=0.01,
        parity_higher_is_better=False,
        size_tie=0.0,
    )
    choice = select_variant(table, rule)
    assert choice.variant == "tflite_dynamic"
    assert "0.1 worse" in choice.verdicts["tflite_int8"]


def test_without_a_measured_reference_nothing_is_chosen():
    table = {**TABLE, "keras_float32": row(1000, 0, 0, status="unsupported")}
    choice = select_variant(table, XRAY)
    assert choice.variant is None and "reference was not measured" in choice.reason
