"""The X-ray pipeline's files between stages (see :mod:`nnpipe.artifacts`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict

from nnpipe.artifacts import Artifact, PromotedSpec, TrainRun


class XrayFeatures(Artifact):
    """``data/xray/features/meta.json``: how the images were featurized, the split counts
    and the training split's pixel statistics."""

    STAGE: ClassVar[str] = "featurize"
    WHAT: ClassVar[str] = "X-ray features record (meta.json)"

    domain: str
    classes: list[str]
    image_size: int
    resize: str
    normalization: str
    pixel_mean: float
    pixel_std: float
    counts: dict[str, dict[str, int]]  # split -> class -> images
    official_splits: bool
    raw_content_sha256: str

    def class_counts(self, split: str, classes: list[str]) -> list[int]:
        """A split's image count per class, in the order of ``classes``."""
        return [self.counts[split][c] for c in classes]


class XrayTrainRun(TrainRun):
    """``models/xray/run.json``."""

    best_val_auc: float | None


class XrayDeploySpec(PromotedSpec):
    """``models/xray-deploy/deploy.json``: the variant and featurize's preprocessing."""

    model_config = ConfigDict(extra="forbid")

    classes: list[str]
    image_size: int
    resize: str
    max_side: int | None
    threshold: float
