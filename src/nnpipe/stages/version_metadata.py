"""What a registered version says about itself: its tags (what the deployable is, why that
variant, its model file's sha256) and the description its registry page shows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nnpipe import tracking
from nnpipe.artifacts import PromotedSpec, TrainRun
from nnpipe.champion_gate import GateDecision
from nnpipe.config import Params
from nnpipe.errors import NnpipeError
from nnpipe.serving.registry import MODEL_SHA256_TAG


def deploy_tags(deploy: PromotedSpec) -> dict[str, Any]:
    """Version tags that say what a registered deployable is and why that variant, and
    the sha256 of its model file (serving refuses a file that does not have it)."""
    if not deploy.sha256:
        raise NnpipeError(
            "the deploy folder's deploy.json records no sha256 of its model "
            "file (written by an older promote): re-run promote "
            "(`nnpipe run`, or `dvc repro -f <domain>-promote`)"
        )
    measured = deploy.measured or {}
    return {
        "variant": deploy.variant,
        "format": deploy.format,
        MODEL_SHA256_TAG: deploy.sha256,
        "promotion_reason": deploy.reason[:4000],
        **{
            k: measured[k]
            for k in ("size_bytes", "gzip_bytes", "size_ratio", "latency_ms_median")
            if measured.get(k) is not None
        },
    }


def version_description(
    params: Params,
    domain: str,
    *,
    model_description: str,
    run_info: TrainRun,
    deploy: PromotedSpec,
    headline: Mapping[str, float | None],
    decision: GateDecision,
) -> str:
    """What a registered version is, the data it was trained on, its headline test
    metrics and the gate's decision: the text the version's page shows."""
    numbers = "\n".join(f"- {k}: {v:.4g}" for k, v in headline.items() if v is not None)
    verdict = "promoted to `champion`" if decision.promote else "NOT promoted to `champion`"
    return (
        f"{model_description}\n\n"
        f"This version deploys the `{deploy.variant}` variant ({deploy.format}) of "
        f"training run `{run_info.run_id}`, trained on "
        f"{tracking.data_note(params, domain)} Features: DVC hash "
        f"`{run_info.data_hash}`.\n\nTest metrics:\n{numbers}\n\n"
        f"Gate: {verdict}: {decision.reason}\n\nWhy this variant: {deploy.reason}"
    )
