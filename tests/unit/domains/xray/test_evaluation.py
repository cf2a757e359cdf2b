import numpy as np
import pytest

from nnpipe.domains.xray.evaluation import (
    choose_threshold,
    compute_metrics,
    plot_confusion,
    plot_history,
    plot_roc,
    rates_at,
    roc_table,
)

CLASSES = ["normal", "pneumonia"]


def test_youden_threshold_separates_separable_scores():
    y = np.array([0, 0, 0, 1, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    t = choose_threshold(y, s, "youden", 0.9)
    assert 0.3 < t <= 0.7
    m = compute_metrics(y, s, t, CLASSES, 0.9, t)
    assert m["accuracy"] == 1.0 and m["roc_auc"] == 1.0
    assert m["confusion_matrix"] == {"tn": 3, "fp": 0, "fn": 0, "tp": 3}


def test_specificity_threshold_reaches_the_target_on_validation():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(200), np.ones(200)].astype(int)
    s = np.r_[rng.normal(0.4, 0.15, 200), rng.normal(0.6, 0.15, 200)]
    t = choose_threshold(y, s, "specificity", 0.9)
    spec = ((s < t) & (y == 0)).sum() / (y == 0).sum()
    assert spec >= 0.9


def test_metrics_match_hand_counts():
    y = np.array([0, 0, 1, 1, 1])
    s = np.array([0.2, 0.6, 0.4, 0.7, 0.9])
    m = compute_metrics(y, s, 0.5, CLASSES, 0.5, 0.65)
    assert m["confusion_matrix"] == {"tn": 1, "fp": 1, "fn": 1, "tp": 2}
    assert m["sensitivity"] == pytest.approx(2 / 3)
    assert m["specificity"] == pytest.approx(0.5)
    assert m["per_class"]["pneumonia"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["normal"]["support"] == 2
    # the specificity threshold comes from validation and is applied as given
    assert m["sensitivity_at_specificity"] == pytest.approx(2 / 3)
    assert m["specificity_at_specificity_threshold"] == pytest.approx(1.0)
    assert rates_at(y, s, 0.95) == (0.0, 1.0)


def test_unreachable_specificity_calls_everything_negative():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.9, 0.9, 0.9, 0.9, 0.9])  # no threshold separates anything
    t = choose_threshold(y, s, "specificity", 0.9)
    assert rates_at(y, s, t) == (0.0, 1.0)


def test_one_class_is_rejected():
    with pytest.raises(ValueError, match="one class"):
        compute_metrics(np.ones(4), np.linspace(0, 1, 4), 0.5, CLASSES, 0.9, 0.5)
    with pytest.raises(ValueError, match="both classes"):
        choose_threshold(np.ones(4), np.linspace(0, 1, 4), "youden", 0.9)


def test_plots_are_written(tmp_path):
    y = np.array([0, 1, 0, 1])
    s = np.array([0.1, 0.9, 0.4, 0.6])
    m = compute_metrics(y, s, 0.5, CLASSES, 0.9, 0.5)
    plot_roc(y, s, m["roc_auc"], tmp_path / "roc.png")
    plot_confusion(m, CLASSES, tmp_path / "cm.png")
    plot_history(
        [
            {"epoch": 1, "loss": 1.0, "val_loss": 1.1, "auc": 0.5, "val_auc": 0.4},
            {"epoch": 2, "loss": 0.8, "val_loss": 0.9, "auc": 0.7, "val_auc": 0.6},
        ],
        tmp_path / "h.png",
    )
    for name in ("roc.png", "cm.png", "h.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    rows = roc_table(y, s)
    assert rows[0]["fpr"] == 0.0 and rows[-1]["tpr"] == 1.0
