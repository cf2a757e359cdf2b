"""The search itself: a keras-tuner oracle asked for trials, trials run by an executor,
results told back, until the oracle, the trial count or the time budget says stop.

Driving the oracle directly (rather than ``Tuner.search``) is what lets the same loop run
trials one after another in this process or several at a time on Dask workers: the
oracle only proposes hyper-parameters and ranks results. Hyperband's later rounds train a
promoted configuration from scratch for its larger epoch budget (no warm start from the
earlier round's weights, which may live on another worker).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from nnpipe.config import SearchDim
from nnpipe.errors import NnpipeError
from nnpipe.tuning.oracle import decode

log = logging.getLogger(__name__)


class TuningFailedError(NnpipeError):
    """No trial finished: nothing to choose from."""


@dataclass(frozen=True)
class Objective:
    name: str  # a key of the per-epoch history, e.g. val_auc
    direction: str  # max | min

    def best(self, values: list[float]) -> float:
        return max(values) if self.direction == "max" else min(values)


@dataclass
class TrialResult:
    trial_id: str
    values: dict[str, Any]  # the train parameters this trial set
    epochs: int
    status: str  # completed | failed
    objective: float | None = None
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    reason: str | None = None
    started: float = 0.0  # wall-clock seconds since the epoch
    seconds: float = 0.0
    worker: str = ""  # host:pid of the process that ran it


@dataclass(frozen=True)
class TrialSpec:
    trial_id: str
    values: dict[str, Any]
    epochs: int


@dataclass
class SearchResult:
    trials: list[TrialResult]
    stopped_because: str

    @property
    def completed(self) -> list[TrialResult]:
        return [t for t in self.trials if t.status == "completed"]

    def best(self, objective: Objective) -> TrialResult:
        done = self.completed
        if not done:
            reasons = "; ".join(f"trial {t.trial_id}: {t.reason}" for t in self.trials[:5])
            raise TuningFailedError(
                f"no tuning trial finished ({len(self.trials)} tried; {reasons}). Narrow "
                "tune.search_space (a lower learning-rate range stops divergence) or switch "
                "tuning off with tune.enabled=false"
            )
        pick = max if objective.direction == "max" else min
        return pick(done, key=lambda t: cast(float, t.objective))  # completed: measured


Executor = Callable[[list[TrialSpec]], list[TrialResult]]


BASELINE = "baseline"  # the trial id of the params as written


def describe_values(values: Mapping[str, Any]) -> str:
    """A trial's values as one short line: ``dense_units=64 dropout=0.197``."""
    return (
        " ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in sorted(values.items())
        )
        or "(the values as written)"
    )


def run_search(
    oracle,
    space: Mapping[str, SearchDim],
    run_batch: Executor,
    *,
    parallel: int,
    epochs: int,
    time_budget: float,
    baseline: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SearchResult:
    """Ask the oracle for up to ``parallel`` trials at a time, run them, tell it the
    results; a failed trial (NaN loss, any error) is reported failed and the search goes
    on. No new trial starts once ``time_budget`` seconds have passed.

    ``baseline`` (the searched keys' values as written in params) runs first, as trial
    ``baseline`` on the same budget, so the search replaces the written values only with a
    configuration that scores better on that budget (ties keep the baseline). The oracle is
    not told of it: its values need not lie in the search space.
    """
    start = clock()
    results: list[TrialResult] = []
    started = 0
    # the baseline is one of the trials asked for; the oracle is given the others
    oracle_trials = getattr(oracle, "max_trials", None)
    planned = oracle_trials + (baseline is not None) if oracle_trials else "?"
    pending = [TrialSpec(BASELINE, dict(baseline), epochs)] if baseline is not None else []
    while True:
        if clock() - start >= time_budget:
            stopped = f"the time budget of {time_budget:.0f} s was reached"
            break
        batch = _ask(oracle, parallel - len(pending))
        if not batch and not pending:
            stopped = (
                "the tuner had no more trials to give (max_trials reached, or every "
                "Hyperband bracket run)"
            )
            break
        specs = pending + [_spec(t, space, epochs) for t in batch]
        started = _announce(specs, started, planned)
        outcomes = _run(run_batch, specs, oracle.objective.name)
        results.extend(outcomes[s.trial_id] for s in pending)  # not the oracle's
        pending = []
        results += _tell(oracle, batch, outcomes)
    return _finish(results, stopped)


def _finish(results: list[TrialResult], stopped: str) -> SearchResult:
    """The search's result, its trial counts and why it stopped logged."""
    log.info(
        "tuning: %d trials (%d completed); stopped because %s",
        len(results),
        sum(r.status == "completed" for r in results),
        stopped,
    )
    return SearchResult(results, stopped)


def _spec(trial: Any, space: Mapping[str, SearchDim], epochs: int) -> TrialSpec:
    """What an oracle's trial runs: its values decoded, its epochs (Hyperband's, if set)."""
    values = trial.hyperparameters.values
    return TrialSpec(trial.trial_id, decode(values, space), int(values.get("tuner/epochs", epochs)))


def _announce(specs: list[TrialSpec], started: int, planned: int | str) -> int:
    """Log the trials about to run; the count started so far, these included."""
    for spec in specs:
        started += 1
        log.info(
            "tuning: trial %s (%d/%s), %d epochs: %s",
            spec.trial_id,
            started,
            planned,
            spec.epochs,
            describe_values(spec.values),
        )
    return started


def _ask(oracle, room: int) -> list[Any]:
    """Up to ``room`` new trials from the oracle (fewer when it has none ready)."""
    batch = []
    for i in range(room):
        trial = oracle.create_trial(f"worker-{i}")
        if trial.status != "RUNNING":  # STOPPED: done; IDLE: waiting on a round
            break
        batch.append(trial)
    return batch


def _run(run_batch: Executor, specs: list[TrialSpec], objective: str) -> dict[str, TrialResult]:
    """Run one batch of trials; their results by trial id, each logged."""
    outcomes = {r.trial_id: r for r in run_batch(specs)}
    for spec in specs:
        done = outcomes[spec.trial_id]
        log.info(
            "tuning: trial %s %s in %.0f s%s",
            spec.trial_id,
            done.status,
            done.seconds,
            f", {objective} {done.objective:.4g}"
            if done.objective is not None
            else f": {done.reason}",
        )
    return outcomes


def _tell(oracle, batch: list[Any], outcomes: dict[str, TrialResult]) -> list[TrialResult]:
    """Tell the oracle how its trials ended; their results, in the order asked."""
    told = []
    for trial in batch:
        result = outcomes[trial.trial_id]
        if result.status == "completed":
            oracle.update_trial(trial.trial_id, {oracle.objective.name: result.objective})
            trial.status = "COMPLETED"
        else:
            log.warning("tuning trial %s failed: %s", trial.trial_id, result.reason)
            trial.status = "FAILED"
        oracle.end_trial(trial)
        told.append(result)
    return told


def best_of_history(
    history: list[dict[str, Any]],
    objective: Objective,
) -> tuple[float | None, int | None]:
    """The objective's best epoch value, ignoring NaN epochs; None when there is none."""
    scored = [
        (row[objective.name], row["epoch"])
        for row in history
        if isinstance(row.get(objective.name), (int, float)) and math.isfinite(row[objective.name])
    ]
    if not scored:
        return None, None
    value = objective.best([v for v, _ in scored])
    return value, next(e for v, e in scored if v == value)
