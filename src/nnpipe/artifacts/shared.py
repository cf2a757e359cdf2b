"""The files every domain's stages write alike (one record for one model, or one per
series): ``run.json``'s shared fields, ``history.json``, ``compression.json``,
``deploy.json``, ``promotion.json`` and ``registration.json`` (see :mod:`nnpipe.artifacts`;
the tune stage's files are :mod:`nnpipe.artifacts.tuning`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ConfigDict

from nnpipe.artifacts.base import Artifact, Record, per_series
from nnpipe.domains.registry import get_domain


def per_unit(path: str | os.PathLike[str], domain: str | None) -> bool:
    """Whether a domain's file holds one record per unit (``{"series": {...}}``): its
    :attr:`~nnpipe.domains.contract.Domain.unit_key` says; with no domain named, the
    file's own shape."""
    if domain is None:
        return per_series(Path(path))
    return get_domain(domain).unit_key is not None


# train: run.json --------------------------------------------------------------------


class TrainRun(Artifact):
    """``models/<domain>[/<series>]/run.json``: the MLflow run and logged model of a
    trained model (the fields every domain's train writes; domains add theirs)."""

    STAGE: ClassVar[str] = "train"
    WHAT: ClassVar[str] = "training run record (run.json)"

    run_id: str
    experiment_id: str
    model_uri: str
    model_id: str
    tracking_uri: str
    data_hash: str
    best_epoch: int
    hyperparameters: dict[str, Any]


EpochRow = dict[str, int | float | None]  # "epoch" (from 1) and each logged metric


class TrainHistory(Artifact):
    """``models/<domain>[/<series>]/history.json``: the per-epoch metrics of a training
    run, oldest first (before it was versioned the file was the bare list)."""

    STAGE: ClassVar[str] = "train"
    WHAT: ClassVar[str] = "per-epoch training history (history.json)"

    epochs: list[EpochRow]

    @classmethod
    def problem(cls, data: Any) -> str | None:
        if isinstance(data, list):  # the epochs alone: the file before it was versioned
            return (
                "is a bare list of epochs: it was written by an nnpipe from before its "
                "files were versioned"
            )
        return super().problem(data)


# compress: compression.json ----------------------------------------------------------

VariantRows = dict[str, dict[str, Any]]  # variant -> measured row (columns vary by domain)


class UnitVariants(Record):
    """One model's variant table, and the training run it was made from."""

    run_id: str
    variants: VariantRows


class CompressionTable(Artifact):
    """``reports/<domain>/compression.json`` for one model."""

    STAGE: ClassVar[str] = "compress"
    WHAT: ClassVar[str] = "variant table (compression.json)"

    metric: str
    parity: str
    threshold: float
    run_id: str
    variants: VariantRows

    def units(self) -> dict[str, UnitVariants]:
        return {"": UnitVariants(run_id=self.run_id, variants=self.variants)}


class SeriesCompressionTable(Artifact):
    """``reports/<domain>/compression.json`` with one table per series."""

    STAGE: ClassVar[str] = "compress"
    WHAT: ClassVar[str] = "variant table (compression.json)"

    metric: str
    parity: str
    series: dict[str, UnitVariants]

    def units(self) -> dict[str, UnitVariants]:
        return dict(self.series)


def read_compression(
    path: str | os.PathLike[str], domain: str | None = None
) -> CompressionTable | SeriesCompressionTable:
    """A ``compression.json`` of either shape."""
    shape = SeriesCompressionTable if per_unit(path, domain) else CompressionTable
    return shape.read(path, domain)


# promote: deploy.json and promotion.json ---------------------------------------------

DEPLOY_FILE = "deploy.json"  # a deploy folder's spec, beside the variant's file


class DeploySpec(Artifact):
    """``deploy.json`` in a deploy folder, as serving reads it: the domain, the chosen
    variant and its file (the domain's preprocessing settings are extra fields here, so
    serving reads any domain's; :class:`PromotedSpec` is the whole record)."""

    model_config = ConfigDict(extra="allow")
    STAGE: ClassVar[str] = "promote"
    WHAT: ClassVar[str] = "deploy record (deploy.json)"

    # the model serving reads this record as (None: this one); a domain's whole record
    # (XrayDeploySpec) names its served view, which holds the fields serving uses only
    SERVED: ClassVar[type[DeploySpec] | None] = None

    domain: str
    variant: str | None
    file: str | None
    format: str | None
    sha256: str | None

    @classmethod
    def served_model(cls) -> type[DeploySpec]:
        """The model serving parses a ``deploy.json`` of this kind with."""
        return cls.SERVED or cls


class PromotedSpec(DeploySpec):
    """``deploy.json`` as promote writes it: also the training run, the rule's metric and
    parity, why this variant, and the chosen variant's and the reference's measurements.
    A domain's model adds its preprocessing settings."""

    run_id: str
    metric: str
    parity: str
    reason: str
    verdicts: dict[str, str]
    reference_file: str | None
    measured: dict[str, Any] | None
    reference: dict[str, Any] | None
    # what the monitor compares live inputs with (nnpipe.monitoring.frame): the training
    # split as the deployed model sees it; None in a folder promoted before nnpipe kept it
    monitor_reference: str | None = None
    monitor_reference_sha256: str | None = None


class PromotionRow(Record):
    """A promotion's DVC metrics: the choice, why, and the chosen variant's numbers
    (named by the domain's metric and parity: extra fields)."""

    model_config = ConfigDict(extra="allow")

    variant: str | None
    reason: str
    verdicts: dict[str, str]


class Promotion(Artifact, PromotionRow):
    """``reports/<domain>/promotion.json`` for one model."""

    model_config = ConfigDict(extra="allow")
    STAGE: ClassVar[str] = "promote"
    WHAT: ClassVar[str] = "promotion summary (promotion.json)"

    def units(self) -> dict[str, PromotionRow]:
        return {"": PromotionRow.model_validate(self.record())}


class SeriesPromotion(Artifact):
    """``reports/<domain>/promotion.json`` with one summary per series."""

    STAGE: ClassVar[str] = "promote"
    WHAT: ClassVar[str] = "promotion summary (promotion.json)"

    series: dict[str, PromotionRow]

    def units(self) -> dict[str, PromotionRow]:
        return dict(self.series)


def read_promotion(
    path: str | os.PathLike[str], domain: str | None = None
) -> Promotion | SeriesPromotion:
    """A ``promotion.json`` of either shape."""
    shape = SeriesPromotion if per_unit(path, domain) else Promotion
    return shape.read(path, domain)


# register: registration.json ---------------------------------------------------------


class RegistrationRecord(Record):
    """What register did for one model: the version, its aliases and the gate's decision
    (the gate's fields only when a version was registered)."""

    model_name: str
    registered: bool
    version: str | None
    aliases: list[str]
    promoted: bool
    reason: str
    champion_now: str | None
    run_id: str
    variant: str | None = None
    gate_metric: str | None = None
    candidate_value: float | None = None
    champion_before: str | None = None
    champion_before_value: float | None = None
    champion_before_scored: str | None = None
    model_uri: str | None = None


class Registration(Artifact, RegistrationRecord):
    """``reports/<domain>/registration.json`` for one model."""

    STAGE: ClassVar[str] = "register"
    WHAT: ClassVar[str] = "registration record (registration.json)"

    def units(self) -> dict[str, RegistrationRecord]:
        return {"": RegistrationRecord.model_validate(self.record())}


class SeriesRegistration(Artifact):
    """``reports/<domain>/registration.json`` with one record per series."""

    STAGE: ClassVar[str] = "register"
    WHAT: ClassVar[str] = "registration record (registration.json)"

    series: dict[str, RegistrationRecord]

    def units(self) -> dict[str, RegistrationRecord]:
        return dict(self.series)


def read_registration(
    path: str | os.PathLike[str], domain: str | None = None
) -> Registration | SeriesRegistration:
    """A ``registration.json`` of either shape."""
    shape = SeriesRegistration if per_unit(path, domain) else Registration
    return shape.read(path, domain)
