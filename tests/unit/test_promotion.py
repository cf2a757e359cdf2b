import math

from nnpipe.promotion import decide_promotion


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
