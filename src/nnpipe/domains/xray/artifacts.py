"""The X-ray pipeline's files between stages (see :mod:`nnpipe.artifacts`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field

from nnpipe.artifacts import Artifact, DeploySpec, PromotedSpec, Record, TrainRun


class XrayManifest(Artifact):
    """``data/xray/raw/manifest.json``: what ingest kept of the source, counted per class
    and official split, and what it dropped (duplicates, conflicts, rejected files)."""

    STAGE: ClassVar[str] = "ingest"
    WHAT: ClassVar[str] = "X-ray ingest manifest (manifest.json)"

    source: str
    classes: list[str]
    images: int
    per_class: dict[str, int]
    per_official_split: dict[str, dict[str, int]]  # official split ("all": none) -> class
    patients: int
    duplicates_removed: int
    label_conflicts_dropped: int
    duplicates_kept_in_train_only: int
    rejected: list[dict[str, str]]  # a rejected file's source and reason
    ignored_files: int
    content_sha256: str
    source_fingerprint: str | None  # None: a source of no local files


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


class ConfusionCounts(Record):
    """The test split's decisions at the chosen threshold."""

    tn: int
    fp: int
    fn: int
    tp: int


class ClassReport(Record):
    """One class's precision, recall and F1 on the test split (scikit-learn's names)."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    precision: float
    recall: float
    f1_score: float = Field(alias="f1-score")
    support: int


class XrayEvaluation(Artifact):
    """``reports/xray/evaluation.json``: every test metric evaluate measured, at the
    thresholds chosen on validation, and the training run it scored."""

    STAGE: ClassVar[str] = "evaluate"
    WHAT: ClassVar[str] = "X-ray evaluation (evaluation.json)"

    n: int
    threshold: float  # the decision threshold, chosen on validation
    accuracy: float
    roc_auc: float
    average_precision: float
    sensitivity: float
    specificity: float
    f1_positive: float
    target_specificity: float
    specificity_threshold: float  # chosen on validation to reach target_specificity
    sensitivity_at_specificity: float
    specificity_at_specificity_threshold: float
    confusion_matrix: ConfusionCounts
    per_class: dict[str, ClassReport]
    val_roc_auc: float
    run_id: str
    model_id: str
    data_hash: str


class XrayServedSpec(DeploySpec):
    """What serving reads of an X-ray ``deploy.json``: the variant, the preprocessing
    featurize applied and the decision threshold (promote's other fields are extras)."""

    classes: list[str]
    image_size: int
    resize: str = "pad"
    max_side: int | None = None
    threshold: float


class XrayDeploySpec(PromotedSpec, XrayServedSpec):
    """``models/xray-deploy/deploy.json``: the variant and featurize's preprocessing."""

    model_config = ConfigDict(extra="forbid")
    SERVED: ClassVar[type[DeploySpec] | None] = XrayServedSpec

    resize: str
    max_side: int | None
