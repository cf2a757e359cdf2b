"""The flow run's report builders (what the Prefect artifacts show), on small files."""

import pytest

from nnpipe.artifacts import Promotion, Registration, SeriesCompressionTable, SeriesPromotion
from nnpipe.io import atomic_write_json
from nnpipe.layout import DomainLayout
from nnpipe.run_report import (
    artifact_key,
    compression_rows,
    headline_metrics,
    metrics_beside_baselines,
    mlflow_links,
    summary_markdown,
)


def layout(tmp_path) -> DomainLayout:
    return DomainLayout(
        raw=tmp_path,
        features=tmp_path,
        model=tmp_path,
        reports=tmp_path,
        variants=tmp_path,
        hyperparameters=tmp_path,
        deploy=tmp_path,
    )


def test_artifact_keys_are_what_prefect_accepts():
    assert artifact_key("xray", "summary") == "xray-summary"
    assert artifact_key("ohlcv", "compression") == "ohlcv-compression"
    with pytest.raises(ValueError, match="lowercase"):
        artifact_key("x ray", "summary")


def test_baselines_sit_beside_the_metric_they_are_a_baseline_of(tmp_path):
    path = tmp_path / "metrics.json"
    atomic_write_json(
        path,
        {
            "SYNTH": {
                "test": {"rmse": 1.0, "mae": 0.8, "relative_mae": 1.5},
                "baseline": {"persistence_rmse": 0.7, "moving_average_rmse": 1.6},
                "walk_forward": {"folds": 2},
            }
        },
    )
    rows = metrics_beside_baselines(headline_metrics(path)["SYNTH"])
    assert rows["rmse"] == {"model": 1.0, "persistence": 0.7, "moving_average": 1.6}
    assert rows["walk_forward folds"] == {"model": 2.0}
    atomic_write_json(
        path, {"test": {"accuracy": 0.9}, "baseline": {"accuracy": 0.5}, "threshold": 0.4}
    )
    assert metrics_beside_baselines(headline_metrics(path)[""]) == {
        "accuracy": {"model": 0.9, "baseline": 0.5},
        "threshold": {"model": 0.4},
    }


def test_links_go_to_the_tracking_server_or_to_make_ui():
    remote = mlflow_links("http://mlflow:5000/", "3", "abc", "xray-classifier", "2")
    assert remote.run == "http://mlflow:5000/#/experiments/3/runs/abc"
    assert remote.version == "http://mlflow:5000/#/models/xray-classifier/versions/2"
    local = mlflow_links("sqlite:////p/mlflow.db", None, "abc", "m", None)
    assert local.run == "run id abc" and local.version is None and "make ui" in local.note


def test_summary_shows_metrics_gate_variant_and_links(tmp_path):
    lay = layout(tmp_path)
    atomic_write_json(lay.metrics, {"test": {"roc_auc": 0.9}, "baseline": {}})
    Registration.model_validate(
        {
            "model_name": "xray-classifier",
            "registered": True,
            "variant": "tflite_int8",
            "version": "2",
            "aliases": ["challenger"],
            "promoted": False,
            "reason": "roc_auc 0.9 is 0.02 worse than v1's",
            "gate_metric": "roc_auc",
            "candidate_value": 0.9,
            "champion_before": "1",
            "champion_before_value": 0.92,
            "champion_before_scored": "re-scored",
            "champion_now": "1",
            "run_id": "r2",
        },
    ).write(lay.registration)
    links = {"": mlflow_links("sqlite:///x.db", "1", "r2", "xray-classifier", "2")}
    text = summary_markdown(
        "xray",
        lay,
        ["gate: refused"],
        links,
        Promotion(variant="tflite_int8", reason="tflite_int8: smallest", verdicts={}),
    )
    for part in (
        "| roc_auc | 0.9 |",
        "**not promoted**: roc_auc 0.9 is 0.02 worse",
        "`tflite_int8`",
        "v1 0.92 (re-scored)",
        "champion now: v1",
        "(http://127.0.0.1:5000/#/experiments/1/runs/r2)",
        "(http://127.0.0.1:5000/#/models/xray-classifier/versions/2)",
        "Deployed variant: tflite_int8: smallest",
        "gate: refused",
    ):
        assert part in text, part


def test_compression_rows_mark_the_deployed_variant():
    compression = SeriesCompressionTable.model_validate(
        {
            "metric": "mae",
            "parity": "max_abs_diff",
            "series": {
                "A": {
                    "run_id": "r1",
                    "variants": {
                        "keras_float32": {"status": "ok", "mae": 1.23456, "size_bytes": 100},
                        "tflite_int8": {"status": "unsupported", "reason": "no int8 LSTM"},
                    },
                }
            },
        }
    )
    promotion = SeriesPromotion.model_validate(
        {
            "series": {
                "A": {
                    "variant": "keras_float32",
                    "reason": "keras_float32: the smallest",
                    "verdicts": {"keras_float32": "chosen"},
                }
            }
        }
    )
    rows = compression_rows(compression, promotion)
    assert [(r["series"], r["variant"], r["promote"]) for r in rows] == [
        ("A", "keras_float32", "chosen"),
        ("A", "tflite_int8", ""),
    ]
    assert rows[0]["mae"] == 1.2346 and rows[1]["note"] == "no int8 LSTM"
