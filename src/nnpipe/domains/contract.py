"""The contract between nnpipe's generic code and a domain (chest X-rays, stock prices, the
next one): what a domain declares (its stages, its plots, its unit of work) and the hooks
the generic stages, the flows, the CLI and the server call.

Generic code reaches a domain only through :mod:`nnpipe.domains.registry` and this
contract, never by testing a domain's name or finding a function by its name. A domain's
declaration (``nnpipe.domains.<name>.domain``) stays light: it imports its own modules
inside the hooks, so asking the registry costs no TensorFlow import, and ``dvc.yaml``'s
code dependencies of one domain's stages stay that domain's code (see ``nnpipe.dvc.pipeline_file``).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar, cast

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from nnpipe.artifacts import DeploySpec, PromotedSpec, TrainRun
    from nnpipe.config import Params
    from nnpipe.domains.parts import CompressionPart, MonitoringPart, PromotionPart, TuningPart
    from nnpipe.monitoring.frame import MonitorFrame
    from nnpipe.serving.endpoints import DomainRouter
    from nnpipe.serving.predictor import Predictor
    from nnpipe.serving.settings import ServeSettings
    from nnpipe.serving.store import ModelStore

    Runner = Callable[[np.ndarray], np.ndarray]

TaskType = Literal["image", "sequence", "tabular"]
# a domain's section of params.yaml (its ``params_model``: XrayParams, OhlcvParams, ...)
SectionT = TypeVar("SectionT", covariant=True)


@dataclass(frozen=True)
class Output:
    """A stage's output. Small reports (``cache=False``) live in git, so ``dvc exp show``,
    ``dvc metrics diff`` and ``dvc plots diff`` can read them at every commit and
    experiment; large ones (models, data, figures) live in DVC's cache, from which
    ``dvc exp apply`` and ``dvc checkout`` bring them back. Plots are outputs like any
    other: how they are drawn is declared once, in ``dvc.yaml``'s top-level ``plots``."""

    path: str
    kind: Literal["out", "metric"] = "out"  # metric: headline numbers `dvc metrics` shows
    cache: bool = True


class StageModule(Protocol):
    """What every stage module provides: ``run`` does the step's file I/O around core
    calls; ``main`` is its command line (``python -m nnpipe stage <step> --domain <d>``)."""

    def run(self, params: Params, domain: str) -> dict[str, Any]: ...

    def main(self, argv: list[str] | None = None) -> int: ...


@dataclass(frozen=True)
class Stage:
    """One step of one domain's pipeline: its ``dvc.yaml`` stage and Prefect task are both
    named ``<domain>-<step>``. Its code is ``nnpipe.domains.<domain>.stages.<step>``, or,
    for a step every domain does alike (``generic``), ``nnpipe.stages.<step>`` calling the
    domain's part of it (a hook of :class:`Domain`, in that same domain module)."""

    domain: str
    step: str
    description: str
    params: tuple[str, ...]  # keys under the domain's section; "seed" etc. are global
    deps: tuple[str, ...]  # data this stage reads (code deps are derived from its imports)
    outs: tuple[Output, ...]
    touches_network: bool = False  # retried by the Prefect flow
    # inputs DVC cannot see (a folder or URL named by a param) that make the stage stale
    # even when `dvc status` says current: the domain's `source_changed` hook says
    watches_source: bool = False
    generic: bool = False  # the code is nnpipe.stages.<step>, with the domain's part
    # keys inside its ``params`` sections that the stage never reads (``train.epochs`` for
    # tune): ``dvc.yaml`` lists the section's other keys, so changing one of these does
    # not make the stage stale
    unread: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The ``dvc.yaml`` stage and Prefect task name."""
        return f"{self.domain}-{self.step}"

    @property
    def domain_module_name(self) -> str:
        """The domain's code of this step: the whole stage, or its part of a generic one."""
        return f"nnpipe.domains.{self.domain}.stages.{self.step}"

    @property
    def module_name(self) -> str:
        """The stage module (``run``, ``main``)."""
        return f"nnpipe.stages.{self.step}" if self.generic else self.domain_module_name

    @property
    def code_modules(self) -> tuple[str, ...]:
        """The modules whose code (with all they import) the stage runs: ``dvc.yaml``'s
        code dependencies. A generic stage reaches its domain's part through a hook,
        which an import walk does not follow, so it is named here."""
        if self.generic:
            return (self.module_name, self.domain_module_name)
        return (self.module_name,)

    def module(self) -> StageModule:
        """The stage's module, imported when asked for (stage modules import TensorFlow
        and MLflow); a test checks every registered stage's module has ``run``/``main``."""
        return cast(StageModule, importlib.import_module(self.module_name))

    def run(self, params: Params) -> dict[str, Any]:
        return self.module().run(params, self.domain)


@dataclass(frozen=True)
class Plot:
    """How ``dvc plots show`` draws one of a domain's report files (a path under
    ``reports/<domain>/``; an empty spec for a folder of images)."""

    path: str
    spec: dict[str, Any]


@dataclass(frozen=True)
class Unit:
    """The domain's unit of work: what one registered model covers. X-ray has one (the
    classifier); OHLCV has one per price series. ``slot`` is where the server serves it
    (``xray``, ``ohlcv/GOOG``)."""

    key: str  # "" for a domain's one model, else the series name: per-unit records' key
    slot: str
    model_name: str


@dataclass(frozen=True)
class Schedule:
    """When the domain's Prefect deployment runs: ``nnpipe prefect-yaml`` writes it into
    prefect.yaml (for ``prefect deploy``), ``nnpipe schedule`` serves it from there."""

    deployment: str  # the deployment's name
    cron: str
    timezone: str = "UTC"
    note: str = ""  # prefect.yaml's comment on it, after the domain's title


class Domain(ABC, Generic[SectionT]):
    """A kind of data and model. Subclasses live in ``nnpipe.domains.<name>.domain``;
    one instance per domain is listed in :mod:`nnpipe.domains.registry`."""

    name: str  # the params section, the stage-name prefix, the folder under data/, ...
    title: str  # what it trains, for the flow's description
    task: TaskType  # for `model: auto` (the guide's choose_model)
    # the model of the domain's params.yaml section (``nnpipe.domains.<name>.params``);
    # nnpipe.config.model places it under the ``name`` key
    params_model: type[SectionT]
    predict_input: str  # what `nnpipe predict` reads, for its --help
    schedule: Schedule | None = None  # no deployment in prefect.yaml without one
    # when the domain's monitor runs (its own deployment); its alarms trigger the training
    # deployment above
    monitor_schedule: Schedule | None = None
    # a domain of several units keeps one record per unit under this key in its files
    # (``"series"``: ``{"series": {"GOOG": {...}}}``); one unit: the record is the file
    unit_key: str | None = None
    # whether serving logs the model's embedding of each input (its penultimate layer),
    # which the domain's monitor compares (images: yes; price windows: their features)
    logs_embedding: bool = False
    labels_input: str = ""  # what `nnpipe monitor --labels` reads, for its --help

    def section(self, params: Params) -> SectionT:
        """This domain's section of the loaded params, typed as its ``params_model``."""
        section = getattr(params, self.name, None)
        if not isinstance(section, self.params_model):
            raise TypeError(
                f"params have no {self.name!r} section of type {self.params_model.__name__}: "
                "load them with nnpipe.config.load_params"
            )
        return section

    @property
    def flow_entrypoint(self) -> str:
        """The Prefect flow for this domain, as ``prefect.yaml`` and ``nnpipe schedule``
        name it (``flows/<name>_training.py:<name>_training``)."""
        return f"flows/{self.name}_training.py:{self.name}_training"

    @property
    def flow_name(self) -> str:
        return f"{self.name}-training"

    @property
    def monitor_entrypoint(self) -> str:
        """The domain's monitoring flow (``flows/<name>_monitor.py:<name>_monitor``)."""
        return f"flows/{self.name}_monitor.py:{self.name}_monitor"

    @property
    def monitor_flow_name(self) -> str:
        return f"{self.name}-monitor"

    @abstractmethod
    def stages(self) -> tuple[Stage, ...]:
        """The pipeline's steps in order."""

    @abstractmethod
    def plots(self) -> Sequence[Plot]:
        """The report files ``dvc plots`` draws, and how."""

    @abstractmethod
    def units(self, params: Params) -> list[Unit]:
        """What the run trains and registers, one entry per model."""

    @abstractmethod
    def train_run_model(self) -> type[TrainRun]:
        """The model of train's ``run.json`` (one per unit, under ``models/<domain>/<key>``)."""

    @abstractmethod
    def deploy_spec_model(self) -> type[PromotedSpec]:
        """The model of promote's ``deploy.json``, which serving reads."""

    @abstractmethod
    def tuning(self) -> TuningPart:
        """The domain's part of the tune stage."""

    @abstractmethod
    def compression(self) -> CompressionPart:
        """The domain's part of the compress stage."""

    @abstractmethod
    def promotion(self) -> PromotionPart:
        """The domain's part of the promote stage."""

    @abstractmethod
    def monitoring(self) -> MonitoringPart:
        """The domain's part of the monitor: its drift checks and live performance."""

    @abstractmethod
    def source_changed(self, params: Params) -> bool:
        """Whether the ingest stage's source (a folder, a URL) changed since the raw data
        was written: inputs DVC cannot see."""

    @abstractmethod
    def summary_lines(self, params: Params) -> list[str]:
        """The run's closing lines (test metrics, the gate's decision), from the reports."""

    @abstractmethod
    def predictor(self, directory: Path, spec: DeploySpec, runner: Runner) -> Predictor:
        """The predictor serving a checked deploy folder (``runner`` runs its model)."""

    @abstractmethod
    def predict_files(self, predictor: Predictor, path: Path) -> pd.DataFrame:
        """Batch predictions (``nnpipe predict``) for the files at ``path``, one row each;
        an unreadable file is a row with its ``error``, not a failure of the batch."""

    @abstractmethod
    def monitor_batch(self, params: Params, predictor: Predictor, path: Path) -> MonitorFrame:
        """A batch (``nnpipe monitor --batch``: the files ``nnpipe predict`` reads)
        described as the prediction log describes what is served, with the predictor's
        outputs (``nnpipe.domains.<name>.batch``)."""

    @abstractmethod
    def api_router(self, store: ModelStore, settings: ServeSettings) -> DomainRouter:
        """The domain's routes in ``nnpipe serve`` (``nnpipe.domains.<name>.api``): one
        FastAPI router whose handlers take their models from ``store`` (by the slots of
        :meth:`units`), with the JSON bodies they parse for the OpenAPI schema."""

    def served_models(self, params: Params) -> dict[str, str]:
        """Registered model names per served slot."""
        return {unit.slot: unit.model_name for unit in self.units(params)}
