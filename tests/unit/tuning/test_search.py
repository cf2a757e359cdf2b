"""The search loop with keras-tuner's real oracles: trials proposed, failures recorded and
survived, budgets kept. The trials here are plain functions of the hyper-parameters (what
is under test is the loop, not a model); real trials run in tests/integration."""

from __future__ import annotations

import math

import pytest

from nnpipe.config import SearchDim, Tune
from nnpipe.domains.xray.params import XrayTrain
from nnpipe.tuning.oracle import decode, hyperparameters, make_oracle
from nnpipe.tuning.search import (
    Objective,
    TrialResult,
    TuningFailedError,
    best_of_history,
    run_search,
)
from nnpipe.tuning.trials import execute_trial

SPACE = {
    "filters": SearchDim(choice=[[8, 16], [16, 32, 64]]),
    "dense_units": SearchDim(range=(16, 64), step=16),
    "dropout": SearchDim(range=(0.1, 0.5)),
    "learning_rate": SearchDim(range=(1e-4, 1e-2), sampling="log"),
}
OBJ = Objective("val_auc", "max")


def score(values: dict) -> float:
    """A made-up validation AUC: more dropout is better, up to a point."""
    return 0.5 + values["dropout"] - 0.1 * len(values["filters"])


def executor(fail_if=lambda v: False, calls=None):
    def run_batch(specs):
        out = []
        for s in specs:
            if calls is not None:
                calls.append(s)
            if fail_if(s.values):
                out.append(
                    TrialResult(
                        s.trial_id,
                        s.values,
                        s.epochs,
                        "failed",
                        reason="no epoch has a finite val_auc",
                    )
                )
            else:
                out.append(
                    TrialResult(
                        s.trial_id,
                        s.values,
                        s.epochs,
                        "completed",
                        objective=score(s.values),
                        best_epoch=1,
                    )
                )
        return out

    return run_batch


def oracle(tmp_path, **tune):
    cfg = Tune(search_space=SPACE, **{"max_trials": 5, "epochs": 4, "baseline": False, **tune})
    return make_oracle(cfg, XrayTrain(), OBJ, seed=3, directory=tmp_path), cfg


def test_the_space_follows_the_train_params_types():
    hp = hyperparameters(SPACE, XrayTrain())
    kinds = {p.name: type(p).__name__ for p in hp.space}
    assert kinds == {
        "filters": "Choice",
        "dense_units": "Int",
        "dropout": "Float",
        "learning_rate": "Float",
    }
    # list choices travel as JSON and come back as lists
    values = {"filters": "[16, 32, 64]", "dense_units": 32, "tuner/epochs": 2}
    assert decode(values, SPACE) == {"filters": [16, 32, 64], "dense_units": 32}


@pytest.mark.parametrize("algorithm", ["random", "bayesian", "hyperband"])
def test_every_algorithm_proposes_valid_train_params_and_finds_the_best(tmp_path, algorithm):
    o, cfg = oracle(tmp_path, algorithm=algorithm)
    calls = []
    result = run_search(
        o, SPACE, executor(calls=calls), parallel=2, epochs=cfg.epochs, time_budget=600
    )
    assert result.trials and len(result.completed) == len(result.trials)
    if algorithm != "hyperband":
        assert len(result.trials) == cfg.max_trials
    else:  # brackets: short trials first, then the promoted ones with more epochs
        assert {s.epochs for s in calls} >= {2, 4}
    for spec in calls:
        XrayTrain.model_validate({**XrayTrain().model_dump(), **spec.values})
        assert 0.1 <= spec.values["dropout"] <= 0.5
    best = result.best(OBJ)
    assert best.objective == max(t.objective for t in result.trials)


@pytest.mark.parametrize("algorithm", ["random", "bayesian"])
def test_the_params_as_written_run_first_as_one_of_the_trials(tmp_path, algorithm):
    o, cfg = oracle(tmp_path, algorithm=algorithm, baseline=True)
    written = {
        "filters": [8, 16, 32],
        "dense_units": 128,
        "dropout": 0.3,  # not in SPACE
        "learning_rate": 1e-3,
    }
    calls = []
    result = run_search(
        o,
        SPACE,
        executor(calls=calls),
        parallel=2,
        epochs=cfg.epochs,
        time_budget=600,
        baseline=written,
    )
    assert [c.trial_id for c in calls[:1]] == ["baseline"] and calls[0].values == written
    assert calls[0].epochs == cfg.epochs and len(calls) == cfg.max_trials  # one of the budget
    assert len(calls[1].values) == len(SPACE)  # the first batch also held an oracle trial
    assert len(result.trials) == cfg.max_trials


def test_the_search_keeps_the_baseline_unless_a_trial_beats_it(tmp_path):
    best = {"filters": [8], "dense_units": 16, "dropout": 0.9, "learning_rate": 1e-3}
    o, cfg = oracle(tmp_path, baseline=True)
    result = run_search(
        o, SPACE, executor(), parallel=1, epochs=cfg.epochs, time_budget=600, baseline=best
    )  # score 1.3: nothing in SPACE reaches it
    assert result.best(OBJ).trial_id == "baseline"

    def tie(specs):  # every trial scores the same: the baseline, first, wins the tie
        return [
            TrialResult(s.trial_id, s.values, s.epochs, "completed", objective=0.7) for s in specs
        ]

    o, cfg = oracle(tmp_path / "tie", baseline=True)
    result = run_search(
        o, SPACE, tie, parallel=2, epochs=cfg.epochs, time_budget=600, baseline=best
    )
    assert result.best(OBJ).trial_id == "baseline"
    worst = {**best, "dropout": 0.0, "filters": [8, 16, 32, 64]}  # score 0.1: beaten
    o, cfg = oracle(tmp_path / "worst", baseline=True)
    result = run_search(
        o, SPACE, executor(), parallel=1, epochs=cfg.epochs, time_budget=600, baseline=worst
    )
    assert result.best(OBJ).trial_id != "baseline"


def test_a_failed_trial_is_recorded_and_the_search_goes_on(tmp_path):
    o, cfg = oracle(tmp_path)
    result = run_search(
        o,
        SPACE,
        executor(fail_if=lambda v: v["dropout"] > 0.3),
        parallel=1,
        epochs=cfg.epochs,
        time_budget=600,
    )
    failed = [t for t in result.trials if t.status == "failed"]
    assert failed and len(result.trials) == cfg.max_trials  # it did not stop at the failure
    assert result.best(OBJ).status == "completed"
    assert all(t.reason for t in failed)


def test_no_finished_trial_is_an_error_that_says_how_to_fix_it(tmp_path):
    o, cfg = oracle(tmp_path, max_trials=3)
    result = run_search(
        o, SPACE, executor(fail_if=lambda v: True), parallel=1, epochs=cfg.epochs, time_budget=600
    )
    with pytest.raises(TuningFailedError, match=r"no tuning trial finished.*tune.enabled=false"):
        result.best(OBJ)


def test_no_trial_starts_after_the_time_budget(tmp_path):
    o, cfg = oracle(tmp_path, max_trials=50)
    ticks = iter(range(0, 10_000, 10))  # each look at the clock: 10 s later
    result = run_search(
        o,
        SPACE,
        executor(),
        parallel=1,
        epochs=cfg.epochs,
        time_budget=35,
        clock=lambda: next(ticks),
    )
    assert 1 <= len(result.trials) < 50
    assert "time budget of 35 s" in result.stopped_because


def test_best_of_history_skips_nan_epochs():
    rows = [
        {"epoch": 1, "val_auc": 0.6},
        {"epoch": 2, "val_auc": None},
        {"epoch": 3, "val_auc": math.nan},
        {"epoch": 4, "val_auc": 0.7},
    ]
    assert best_of_history(rows, OBJ) == (0.7, 4)
    assert best_of_history([{"epoch": 1, "val_auc": None}], OBJ) == (None, None)


# a domain's trial function, as its tune stage passes it
def fit_trial(params, domain, values, epochs):
    if values.get("mode") == "diverge":
        return [{"epoch": 1, "loss": None, "val_auc": None}]
    if values.get("mode") == "crash":
        raise RuntimeError("out of memory")
    return [{"epoch": 1, "loss": 0.5, "val_auc": 0.8}, {"epoch": 2, "loss": 0.4, "val_auc": 0.9}]


@pytest.mark.parametrize(
    "mode, status, reason",
    [
        ("ok", "completed", None),
        ("diverge", "failed", "no epoch has a finite val_auc (the loss diverged)"),
        ("crash", "failed", "RuntimeError: out of memory"),
    ],
)
def test_a_trial_failure_becomes_its_result(tmp_path, mode, status, reason):
    from nnpipe.tuning.search import TrialSpec

    result = execute_trial(
        fit_trial, "xray", {}, str(tmp_path), TrialSpec("7", {"mode": mode}, 2), objective=OBJ
    )
    assert result.status == status and result.reason == reason
    assert result.worker and result.seconds >= 0
    if status == "completed":
        assert (result.objective, result.best_epoch) == (pytest.approx(0.9), 2)


def test_a_worker_that_cannot_see_the_project_says_so(tmp_path):
    from nnpipe.tuning.search import TrialSpec

    result = execute_trial(
        fit_trial, "xray", {}, str(tmp_path / "elsewhere"), TrialSpec("0", {}, 1), objective=OBJ
    )
    assert result.status == "failed" and "shared filesystem" in result.reason


def test_the_search_space_is_checked_on_load_nested_sizes_included():
    from nnpipe.config import ParamsError, load_params, with_values

    space = {"vit.depth": {"choice": [1, 2, 3]}, "dropout": {"range": [0.1, 0.3]}}
    ok = load_params("params.yaml", ["xray.train.model=vit", f"xray.tune.search_space={space}"])
    assert set(ok.xray.tune.search_space) == {"vit.depth", "dropout"}
    tuned = with_values(ok.xray.train, {"vit.depth": 3, "dropout": 0.2})
    assert tuned.vit.depth == 3 and tuned.vit.width == ok.xray.train.vit.width
    hp = hyperparameters(ok.xray.tune.search_space, ok.xray.train)
    assert {p.name: type(p).__name__ for p in hp.space} == {
        "vit.depth": "Choice",
        "dropout": "Float",
    }
    with pytest.raises(ParamsError, match=r"vit\.dpth is not a train parameter.*vit\.depth"):
        load_params("params.yaml", ["xray.tune.search_space={vit.dpth: {choice: [1]}}"])
    with pytest.raises(ParamsError, match=r"vit\.heads: 3 is not a valid train\.vit\.heads"):
        load_params("params.yaml", ["xray.tune.search_space={vit.heads: {choice: [2, 3]}}"])
