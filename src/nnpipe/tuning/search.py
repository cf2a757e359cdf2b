"""The search itself: a keras-tuner oracle asked for trials, trials run by an executor,
results told back, until the oracle, the trial count or the time budget says stop.

Driving the oracle directly (rather than ``Tuner.search``) is what lets the same loop run
trials one after another in this process or several at a time on Dask workers: the
oracle only proposes hyper-parameters and ranks results. Hyperband's later rounds train a
promoted configuration from scratch for its larger epoch budget (no warm start from the
earlier round's weights, which may live on another worker).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from nnpipe.config import SearchDim, Tune, get_value
from nnpipe.errors import NnpipeError

log = logging.getLogger(__name__)

HYPERBAND_KEYS = "tuner/"  # keras-tuner's own bookkeeping values in Hyperband trials


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


def _encoded(value: Any) -> Any:
    return json.dumps(value) if isinstance(value, (list, dict)) else value


def _choices(dim: SearchDim) -> list[Any]:
    """keras-tuner's Choice takes scalars of one type: lists (and mixed types) go as JSON."""
    values = list(dim.choice or ())
    kinds = {type(v) for v in values}
    if any(isinstance(v, (list, dict)) for v in values) or len(kinds) > 1:
        return [json.dumps(v) for v in values]
    return values


def hyperparameters(space: Mapping[str, SearchDim], train: BaseModel):
    """The search space as keras-tuner HyperParameters; a range is integer where the
    train parameter is an integer."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    for name, dim in space.items():
        if dim.choice is not None:
            hp.Choice(name, _choices(dim))
            continue
        low, high = dim.range
        current = get_value(train, name)
        if isinstance(current, int) and not isinstance(current, bool):
            hp.Int(
                name,
                int(low),
                int(high),
                step=int(dim.step) if dim.step else 1,
                sampling=dim.sampling,
            )
        else:
            hp.Float(name, float(low), float(high), step=dim.step, sampling=dim.sampling)
    return hp


def decode(values: Mapping[str, Any], space: Mapping[str, SearchDim]) -> dict[str, Any]:
    """A trial's values as train parameters (JSON-encoded choices decoded, bookkeeping
    dropped)."""
    out = {}
    for name, value in values.items():
        if name.startswith(HYPERBAND_KEYS):
            continue
        dim = space.get(name)
        if (
            dim is not None
            and dim.choice is not None
            and isinstance(value, str)
            and _choices(dim) != list(dim.choice)
        ):
            value = json.loads(value)
        out[name] = value
    return out


def make_oracle(tune: Tune, train: BaseModel, objective: Objective, seed: int, directory: Path):
    """The configured keras-tuner oracle over the search space in params."""
    import keras_tuner as kt

    common = {
        "objective": kt.Objective(objective.name, objective.direction),
        "hyperparameters": hyperparameters(tune.search_space, train),
        "tune_new_entries": False,
        "allow_new_entries": False,
        "seed": seed,
        # the loop decides what many failures mean (see run_search)
        "max_consecutive_failed_trials": 10**9,
    }
    # the baseline trial (params as written) is one of max_trials
    trials = max(1, tune.max_trials - 1) if tune.baseline else tune.max_trials
    if tune.algorithm == "random":
        oracle = kt.oracles.RandomSearchOracle(max_trials=trials, **common)
    elif tune.algorithm == "bayesian":
        oracle = kt.oracles.BayesianOptimizationOracle(
            max_trials=trials, num_initial_points=min(2, trials), **common
        )
    else:
        oracle = kt.oracles.HyperbandOracle(
            max_epochs=tune.epochs, factor=tune.hyperband_factor, **common
        )
    oracle.verbose = 0
    oracle._set_project_dir(str(directory), "search")  # where keras-tuner keeps its state
    return oracle


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
        return pick(done, key=lambda t: t.objective)


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
        batch = []
        for i in range(parallel - len(pending)):
            trial = oracle.create_trial(f"worker-{i}")
            if trial.status != "RUNNING":  # STOPPED: done; IDLE: waiting on a round
                break
            batch.append(trial)
        if not batch and not pending:
            stopped = (
                "the tuner had no more trials to give (max_trials reached, or every "
                "Hyperband bracket run)"
            )
            break
        specs = pending + [
            TrialSpec(
                t.trial_id,
                decode(t.hyperparameters.values, space),
                int(t.hyperparameters.values.get("tuner/epochs", epochs)),
            )
            for t in batch
        ]
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
        outcomes = {r.trial_id: r for r in run_batch(specs)}
        for spec in specs:
            done = outcomes[spec.trial_id]
            log.info(
                "tuning: trial %s %s in %.0f s%s",
                spec.trial_id,
                done.status,
                done.seconds,
                f", {oracle.objective.name} {done.objective:.4g}"
                if done.objective is not None
                else f": {done.reason}",
            )
        results.extend(outcomes[s.trial_id] for s in pending)  # not the oracle's
        pending = []
        for trial in batch:
            result = outcomes[trial.trial_id]
            objective = oracle.objective.name
            if result.status == "completed":
                oracle.update_trial(trial.trial_id, {objective: result.objective})
                trial.status = "COMPLETED"
            else:
                log.warning("tuning trial %s failed: %s", trial.trial_id, result.reason)
                trial.status = "FAILED"
            oracle.end_trial(trial)
            results.append(result)
    log.info(
        "tuning: %d trials (%d completed); stopped because %s",
        len(results),
        sum(r.status == "completed" for r in results),
        stopped,
    )
    return SearchResult(results, stopped)


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
