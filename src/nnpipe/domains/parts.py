"""The domain's parts of the generic stages (:mod:`nnpipe.stages.tune`, ``.compress``,
``.promote``, ``.monitor``): what differs between domains in a step they all do alike. A domain
returns each from a hook of its :class:`~nnpipe.domains.contract.Domain` (``tuning()``,
``compression()``, ``promotion()``, ``monitoring()``), implemented in its own module of that step
(``nnpipe.domains.<name>.stages.<step>``), which ``dvc.yaml`` lists as the stage's code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from nnpipe.artifacts import TrainRun, UnitVariants
    from nnpipe.compression.selection import SelectionRule
    from nnpipe.config import Params
    from nnpipe.config.common import Monitor
    from nnpipe.domains.contract import Unit
    from nnpipe.monitoring.drift import Check
    from nnpipe.monitoring.frame import MonitorFrame
    from nnpipe.serving.predictor import Predictor
    from nnpipe.tuning.search import Objective


class TuningPart(Protocol):
    """A domain's part of the tune stage (:mod:`nnpipe.stages.tune`): what a trial
    optimises and how one configuration is fitted (the training code itself)."""

    @property
    def objective(self) -> Objective: ...

    def fit_trial(
        self, params: Params, values: dict[str, Any], epochs: int
    ) -> list[dict[str, Any]]:
        """Fit one configuration (``values`` over the domain's train params) for
        ``epochs`` epochs; the per-epoch history (for several units, one history for
        all: the configuration is the same for every unit)."""
        ...


@dataclass(frozen=True)
class VariantInputs:
    """What the compress stage builds and measures one unit's variants from: the arrays
    (``x_repr`` for full-integer calibration, ``x_test`` and optionally ``x_val`` to run
    every variant on, ``x_tune``/``y_tune`` for pruning's fine-tuning), the model's loss,
    and how to score the built variants: ``score(rows, outputs, reference)`` adds the
    domain's metric and parity columns to each row of status ``ok``, where
    ``outputs(variant, split)`` is a variant's outputs on ``test`` or ``val`` (None when it
    has none) and ``reference`` the Keras reference's test outputs."""

    data: dict[str, np.ndarray]
    loss: str
    score: Callable[[dict[str, dict[str, Any]], VariantOutputs, np.ndarray], None]


class VariantOutputs(Protocol):
    def __call__(self, variant: str, split: str = "test") -> np.ndarray | None: ...


class CompressionPart(Protocol):
    """A domain's part of the compress stage (:mod:`nnpipe.stages.compress`)."""

    @property
    def metric(self) -> str:
        """The column of the variant table sizes are weighed against (test ROC-AUC, ...)."""
        ...

    @property
    def parity(self) -> str:
        """The column that says how close a variant stays to the Keras reference."""
        ...

    def inputs(self, params: Params, unit: Unit) -> VariantInputs: ...

    def report(self, params: Params, unit: Unit) -> tuple[str, list[str]]:
        """The title and notes of the unit's table in ``compression.md``."""
        ...

    def table_fields(self, params: Params) -> dict[str, Any]:
        """Fields ``compression.json`` holds besides the tables (X-ray: the reference's
        threshold)."""
        ...


class PromotionPart(Protocol):
    """A domain's part of the promote stage (:mod:`nnpipe.stages.promote`)."""

    def selection_rule(self, params: Params) -> SelectionRule:
        """The rule (from ``<domain>.promote``) that picks the variant to deploy."""
        ...

    def deploy_spec(
        self, params: Params, unit: Unit, run: TrainRun, table: UnitVariants, variant: str | None
    ) -> dict[str, Any]:
        """What ``deploy.json`` says besides the variant: the preprocessing the served
        model needs (the fields of :meth:`Domain.deploy_spec_model` the domain adds)."""
        ...

    def monitor_reference(self, params: Params, unit: Unit, predictor: Predictor) -> MonitorFrame:
        """The monitoring reference of the unit's deployed model: its training split (a
        sample of ``<domain>.monitor.reference_rows``) described as the prediction log
        describes what it serves, with the deployed model's outputs (and embeddings)."""
        ...


class MonitoringPart(Protocol):
    """A domain's part of the monitor (:mod:`nnpipe.stages.monitor`)."""

    def settings(self, params: Params) -> Monitor:
        """The domain's ``monitor`` section."""
        ...

    def checks(self, params: Params, reference: MonitorFrame, current: MonitorFrame) -> list[Check]:
        """Every drift check of the domain, each at its threshold from params."""
        ...

    def performance(
        self, params: Params, unit: Unit, logged: pd.DataFrame, labels: Path | None
    ) -> dict[str, Any] | None:
        """The live performance of the logged predictions once their truth is known (the
        next bars; a labels CSV), with ``alarm`` set when it crosses params' threshold;
        None when there is nothing to score it with."""
        ...
