"""Writing a deploy folder: the variant promotion chose, the reference beside it, the
variant table, and ``deploy.json`` with what serving needs (see
:mod:`nnpipe.serving.predictor`)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from nnpipe.artifacts import PromotedSpec, PromotionRow
from nnpipe.compression.selection import Selection
from nnpipe.compression.table import REFERENCE
from nnpipe.io import atomic_write_json
from nnpipe.monitoring.frame import REFERENCE_FILE, MonitorFrame
from nnpipe.serving.predictor import DEPLOY_FILE, file_sha256


def variant_file(variants: Path, variant: str) -> Path:
    """Where compress left a variant's model file."""
    return variants / (f"{variant}.keras" if variant == REFERENCE else f"{variant}.tflite")


def write_deploy_folder(
    dest: Path, variants: Path, selection: Selection, rows: dict, spec: dict[str, Any]
) -> dict:
    """Fill ``dest`` (a staging folder) and return its ``deploy.json`` record."""
    dest.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        **spec,
        **selection.as_dict(),
        "file": None,
        "format": None,
        "sha256": None,
        "reference_file": None,
        "measured": None,
        "reference": None,
    }
    reference = variant_file(variants, REFERENCE)
    if reference.is_file():
        shutil.copy2(reference, dest / "reference.keras")
        record["reference_file"] = "reference.keras"
        record["reference"] = rows.get(REFERENCE)
    if selection.variant is not None:
        source = variant_file(variants, selection.variant)
        name = "model.keras" if selection.variant == REFERENCE else "model.tflite"
        shutil.copy2(source, dest / name)
        # the sha256 is the version's lineage: serving refuses a file that no longer has it
        record |= {
            "file": name,
            "format": "keras" if name.endswith(".keras") else "tflite",
            "sha256": file_sha256(dest / name),
            "measured": rows[selection.variant],
        }
    atomic_write_json(dest / "variants.json", rows)
    PromotedSpec.model_validate(record).write(dest / DEPLOY_FILE)  # typed: serving reads it back
    return record


def add_monitor_reference(dest: Path, record: dict[str, Any], frame: MonitorFrame) -> dict:
    """Write the monitoring reference into a filled deploy folder and name it, with its
    sha256, in ``deploy.json``; the record as rewritten."""
    path = frame.write(dest / REFERENCE_FILE)
    record = {
        **record,
        "monitor_reference": REFERENCE_FILE,
        "monitor_reference_sha256": file_sha256(path),
    }
    PromotedSpec.model_validate(record).write(dest / DEPLOY_FILE)
    return record


def promotion_summary(spec: PromotedSpec) -> PromotionRow:
    """The DVC metrics of a promotion: the choice, why, and its numbers next to the
    reference's (sizes as ratios)."""
    chosen = spec.measured or {}
    shown = (
        "size_bytes",
        "gzip_bytes",
        "size_ratio",
        "gzip_ratio",
        "latency_ms_median",
        "latency_ratio",
        spec.metric,
        spec.parity,
        "threshold",
    )
    return PromotionRow(
        variant=spec.variant,
        reason=spec.reason,
        verdicts=spec.verdicts,
        **{k: chosen[k] for k in shown if k in chosen},
    )
