"""The tune stage's files: ``models/<domain>-hyperparameters.json`` (what train applies)
and ``reports/<domain>/tuning.json`` (the search's outcome), see :mod:`nnpipe.artifacts`."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import model_validator

from nnpipe.artifacts.base import Artifact, Record

SEARCH_FIELDS = (
    "algorithm",
    "objective",
    "direction",
    "best_value",
    "best_trial",
    "baseline_kept",
    "trials",
    "completed",
    "failed",
    "stopped_because",
    "run_id",
)


class SearchOutcome(Record):
    """What a finished search found and why it stopped (all set, or none when tuning is
    off: :meth:`missing` says which a finished search lacks)."""

    algorithm: str | None = None
    objective: str | None = None
    direction: str | None = None  # "max" or "min"
    best_value: float | None = None
    best_trial: str | None = None
    baseline_kept: bool | None = None
    trials: int | None = None
    completed: int | None = None
    failed: int | None = None
    stopped_because: str | None = None
    run_id: str | None = None

    def missing(self) -> list[str]:
        return [k for k in SEARCH_FIELDS if getattr(self, k) is None]


class TuningSummary(Artifact, SearchOutcome):
    """``reports/<domain>/tuning.json``: whether tuning ran and, if so, its outcome."""

    STAGE: ClassVar[str] = "tune"
    WHAT: ClassVar[str] = "tuning summary (tuning.json)"

    enabled: bool

    @model_validator(mode="after")
    def _finished_search(self) -> Self:
        if self.enabled and self.missing():
            raise ValueError(f"a finished search but no {', '.join(self.missing())}")
        return self


class Hyperparameters(Artifact, SearchOutcome):
    """``models/<domain>-hyperparameters.json``: the values train applies over
    ``<domain>.train`` (none when tuning is off, with the reason), and the search's
    outcome when it ran."""

    STAGE: ClassVar[str] = "tune"
    WHAT: ClassVar[str] = "tuned hyper-parameters (hyperparameters.json)"

    tuned: bool
    values: dict[str, Any]
    reason: str | None = None
    enabled: bool | None = None

    @model_validator(mode="after")
    def _finished_search(self) -> Self:
        if self.tuned and self.missing():
            raise ValueError(f"tuned but no {', '.join(self.missing())}")
        return self
