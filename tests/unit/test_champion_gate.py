import math

from nnpipe.champion_gate import decide_promotion


def test_first_model_above_floor_becomes_champion():
    d = decide_promotion("roc_auc", 0.91, 0.8, None, 0.0)
    assert d.promote and "no champion yet" in d.reason


def test_below_floor_is_refused_with_numbers():
    d = decide_promotion("roc_auc", 0.75, 0.8, None, 0.0)
    assert not d.promote and "0.7500" in d.reason and "0.8000" in d.reason


def test_worse_than_champion_is_refused_unless_within_max_drop():
    assert not decide_promotion("roc_auc", 0.90, 0.8, 0.92, 0.0, "3").promote
    assert decide_promotion("roc_auc", 0.90, 0.8, 0.92, 0.03, "3").promote
    assert decide_promotion("roc_auc", 0.93, 0.8, 0.92, 0.0, "3").promote


def test_nan_is_refused():
    assert not decide_promotion("roc_auc", math.nan, 0.0, None, 0.0).promote


# lower is better (errors such as relative MAE): the bound is a ceiling


def test_error_metric_at_the_ceiling_is_refused():
    d = decide_promotion("relative_mae", 1.0, 1.0, None, 0.0, higher_is_better=False)
    assert not d.promote and "not below the ceiling max_value=1.0000" in d.reason


def test_error_metric_below_the_ceiling_becomes_the_first_champion():
    d = decide_promotion("relative_mae", 0.97, 1.0, None, 0.0, higher_is_better=False)
    assert d.promote and "clears the ceiling" in d.reason and "no champion yet" in d.reason


def test_nan_error_metric_is_refused():
    d = decide_promotion("relative_mae", math.nan, 1.0, 0.9, 0.5, "2", higher_is_better=False)
    assert not d.promote and "NaN" in d.reason


def test_error_metric_worse_than_champion_beyond_tolerance_is_refused():
    d = decide_promotion("relative_mae", 0.95, 1.0, 0.90, 0.02, "4", higher_is_better=False)
    assert not d.promote and "worse than champion v4" in d.reason and "0.9000" in d.reason


def test_error_metric_within_tolerance_or_better_than_champion_is_promoted():
    assert decide_promotion(
        "relative_mae", 0.91, 1.0, 0.90, 0.02, "4", higher_is_better=False
    ).promote
    assert decide_promotion(
        "relative_mae", 0.92, 1.0, 0.90, 0.025, "4", higher_is_better=False
    ).promote
    assert decide_promotion(
        "relative_mae", 0.85, 1.0, 0.90, 0.0, "4", higher_is_better=False
    ).promote
    assert not decide_promotion(
        "relative_mae", 0.9001, 1.0, 0.90, 0.0, "4", higher_is_better=False
    ).promote
