"""The search space as keras-tuner sees it, and the oracle that proposes trials in it.

keras-tuner's ``Choice`` takes scalars of one type, so list-valued (and mixed) choices go
to it JSON-encoded and come back decoded (:func:`decode`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import BaseModel

from nnpipe.config import SearchDim, Tune, get_value

if TYPE_CHECKING:
    from nnpipe.tuning.search import Objective

__all__ = ["HYPERBAND_KEYS", "decode", "hyperparameters", "make_oracle"]

HYPERBAND_KEYS = "tuner/"  # keras-tuner's own bookkeeping values in Hyperband trials


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
        # a SearchDim has exactly one of choice and range
        low, high = cast("tuple[float | int, float | int]", dim.range)
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
