"""compress: the deployable variants of the X-ray CNN, each measured by running it.

Variants (``xray.compress.variants``): the Keras float32 reference; TFLite float32,
float16, dynamic range and full int8 (calibrated on training images); magnitude-pruned
(PolynomialDecay 0.30 -> 0.80, fine-tuned, stripped) as TFLite float32 and int8. For each:
file size and gzip size, test ROC-AUC computed from the variant's own outputs (LiteRT
interpreter, not the Keras model) at the variant's own decision threshold (chosen on
validation by evaluate's rule: quantization and pruning shift scores), single-input
latency (median, p99; fixed threads), batch throughput, sparsity, and parity with the
Keras model (share of test images given the reference's class). Every variant is built
in a child process: one that fails or crashes is an "unsupported" row with the reason.
Output:
``models/xray-variants/`` (the ``.tflite`` files and the pruned model),
``reports/xray/compression.json`` (DVC metrics) and ``compression.md``.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import get_args

import numpy as np

from nnpipe import tracking
from nnpipe.artifacts import CompressionTable
from nnpipe.compression.runner import (
    clean_job_dir,
    predictions,
    reference_predictions,
    run_variants,
)
from nnpipe.compression.table import add_ratios, markdown
from nnpipe.config import Params
from nnpipe.domains.xray.artifacts import XrayFeatures, XrayTrainRun
from nnpipe.domains.xray.domain import XRAY
from nnpipe.domains.xray.evaluation import choose_threshold, compute_metrics
from nnpipe.domains.xray.features import read_arrays
from nnpipe.domains.xray.params import XrayEvaluate, XrayGateMetric
from nnpipe.domains.xray.scoring import VARIANT_METRIC, VARIANT_PARITY
from nnpipe.io import atomic_directory, atomic_write_text, read_json
from nnpipe.layout import domain_layout
from nnpipe.stages import cli_main, require

log = logging.getLogger(__name__)

METRIC, PARITY = VARIANT_METRIC, VARIANT_PARITY


GATE_METRICS = get_args(XrayGateMetric)


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
    evaluate's rule (quantization and pruning shift scores, so the reference's threshold
    would misjudge them), and its agreement with the reference's class decisions."""
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


def run(params: Params, domain: str) -> dict:
    cfg = XRAY.section(params)
    c = cfg.compress
    layout = domain_layout(params, domain)
    meta = XrayFeatures.read(require(layout.features / "meta.json", "featurize", domain), domain)
    metrics = read_json(require(layout.evaluation, "evaluate", domain))
    run_info = XrayTrainRun.read(require(layout.model / "run.json", "train", domain), domain)
    model_path = require(layout.model / "model.keras", "train", domain)
    size = meta.image_size
    x_train, y_train = read_arrays([layout.features / "train.tfrecord"], size)
    x_test, y_test = read_arrays([layout.features / "test.tfrecord"], size)
    x_val, y_val = read_arrays([layout.features / "val.tfrecord"], size)
    rng = np.random.default_rng(params.seed)
    pick = rng.permutation(len(x_train))[: c.representative_samples]
    data = {
        "x_repr": x_train[pick],
        "x_test": x_test,
        "x_val": x_val,
        "x_tune": x_train,
        "y_tune": y_train.astype(np.float32).reshape(-1, 1),
    }
    job = {
        "model": str(model_path.resolve()),
        "variants": c.variants,
        "threads": c.threads,
        "latency_runs": c.latency_runs,
        "seed": params.seed,
        "loss": "binary_crossentropy",
        "prune": c.prune.model_dump(),
    }
    layout.reports.mkdir(parents=True, exist_ok=True)
    with (
        atomic_directory(layout.variants) as out,
        tempfile.TemporaryDirectory(dir=layout.reports, prefix=".compress.") as staging,
    ):
        rows = run_variants(out, job, data, timeout=c.timeout_seconds)
        reference = reference_predictions(out, rows).reshape(-1)
        for name, row in rows.items():
            scores, val_scores = predictions(out, name), predictions(out, name, "val")
            if row["status"] == "ok" and scores is not None and val_scores is not None:
                row |= score_variant(
                    y_test,
                    scores.reshape(-1),
                    y_val,
                    val_scores.reshape(-1),
                    reference,
                    metrics["threshold"],
                    cfg.evaluate,
                    cfg.classes,
                )
        clean_job_dir(out, rows)
        rows = add_ratios(rows, METRIC)
        table = CompressionTable(
            metric=METRIC,
            parity=PARITY,
            threshold=metrics["threshold"],
            run_id=run_info.run_id,
            variants=rows,
        )
        report = markdown(
            rows,
            METRIC,
            PARITY,
            "X-ray model variants (test split)",
            [
                "Metric: test ROC-AUC from each variant's own outputs; parity: share of test "
                "images given the reference's class, each variant at its own threshold chosen "
                f"on validation (the reference's: {metrics['threshold']:.3f}).",
                f"Latency: one image, {c.threads} thread(s), {c.latency_runs} runs.",
            ],
        )
        json_tmp = table.write(Path(staging) / "compression.json")
        md_tmp = atomic_write_text(Path(staging) / "compression.md", report)
        with tracking.start_run(params, domain, "compress", run_id=run_info.run_id):
            # the table is the artifact; one summary number on the run (register adds the
            # deployed variant's size and metric)
            tracking.log_metrics(
                {"compression.variants_built": sum(r["status"] == "ok" for r in rows.values())}
            )
            tracking.log_artifacts(json_tmp, "compression")
            tracking.log_artifacts(md_tmp, "compression")
        json_tmp.replace(layout.compression)
        md_tmp.replace(layout.compression_report)
    for name, row in rows.items():
        if row["status"] == "ok":
            log.info(
                "compress: %-15s %8.1f KiB (x%.3f), AUC %.4f, agreement %.3f, %.3f ms",
                name,
                row["size_bytes"] / 1024,
                row.get("size_ratio", 1.0),
                row[METRIC],
                row[PARITY],
                row["latency_ms_median"],
            )
        else:
            log.warning("compress: %-15s unsupported: %s", name, row["reason"])
    return {"stage": "compress", "variants": {n: r["status"] for n, r in rows.items()}}


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
