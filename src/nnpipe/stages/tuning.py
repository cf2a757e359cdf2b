"""What both domains' ``tune`` stages share: the search under an MLflow run with one nested
run per trial, and the files it leaves for ``train``.

Outputs: ``models/<domain>-hyperparameters.json`` (the values ``train`` applies over
``<domain>.train``; with tuning off it says so and holds none), ``reports/<domain>/
tuning.json`` (DVC metrics: best value, trials, why the search stopped) and
``tuning.csv`` (one row per trial, a DVC plot). Nothing is replaced when no trial finishes.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from nnpipe import tracking
from nnpipe.artifacts import Hyperparameters, TuningSummary
from nnpipe.config import DomainSection, Params, get_value, with_values
from nnpipe.domains.registry import get_domain
from nnpipe.io import atomic_write_text
from nnpipe.layout import domain_layout
from nnpipe.stages import require
from nnpipe.tuning.oracle import make_oracle
from nnpipe.tuning.search import (
    BASELINE,
    Objective,
    SearchResult,
    TrialResult,
    run_search,
)
from nnpipe.tuning.trials import FitTrial, execute_trial

log = logging.getLogger(__name__)


def tuned_train(train: BaseModel, values: Mapping[str, Any]) -> Any:
    """The train params with tuned values applied (validated again, as on load)."""
    return with_values(train, dict(values))


def effective_train(params: Params, domain: str) -> tuple[Any, Hyperparameters]:
    """The train params the tune stage's file says to use, and that file's record."""
    layout = domain_layout(params, domain)
    record = Hyperparameters.read(require(layout.hyperparameters, "tune", domain), domain)
    section: DomainSection = get_domain(domain).section(params)
    return tuned_train(section.train, record.values), record


def tuning_tags(record: Hyperparameters) -> dict[str, str]:
    """Tags of a training run saying where its hyper-parameters came from."""
    if not record.tuned:
        return {"nnpipe.tuned": "false"}
    return {
        "nnpipe.tuned": "true",
        "nnpipe.tuning_run": str(record.run_id),
        "nnpipe.tuned_values": json.dumps(record.values),
    }


def trials_csv(trials: list[TrialResult]) -> str:
    keys = sorted({k for t in trials for k in t.values})
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    # ``run`` numbers the trials in the order they ran (1 is the baseline, where there is
    # one): the trial ids are the tuner's strings, which a plot cannot place on an axis
    writer.writerow(
        [
            "run",
            "trial",
            "status",
            "objective",
            "best_epoch",
            "epochs",
            "seconds",
            *keys,
            "worker",
            "reason",
        ]
    )
    for number, t in enumerate(trials, start=1):
        writer.writerow(
            [
                number,
                t.trial_id,
                t.status,
                "" if t.objective is None else t.objective,
                t.best_epoch or "",
                t.epochs,
                round(t.seconds, 2),
                *[
                    json.dumps(t.values[k])
                    if isinstance(t.values.get(k), list)
                    else t.values.get(k, "")
                    for k in keys
                ],
                t.worker,
                t.reason or "",
            ]
        )
    return buf.getvalue()


def _write(
    params: Params, domain: str, record: Hyperparameters, summary: TuningSummary, rows: str
) -> None:
    layout = domain_layout(params, domain)
    layout.reports.mkdir(parents=True, exist_ok=True)
    atomic_write_text(layout.tuning_trials, rows)
    summary.write(layout.tuning)
    record.write(layout.hyperparameters)  # last: what train reads


def trial_name(trial: TrialResult) -> str:
    """``trial-3 dropout=0.23 learning_rate=0.0012``: the trial and the values it tried,
    so the compare view's run names tell trials apart."""

    def show(v: Any) -> str:
        if isinstance(v, list):
            return ".".join(map(str, v))
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    shown = [f"{k}={show(v)}" for k, v in sorted(trial.values.items())]
    return " ".join([f"trial-{trial.trial_id}", *shown])


def _log_trials(result: SearchResult, objective: Objective) -> None:
    for t in result.trials:
        tracking.log_child_run(
            trial_name(t),
            params={**t.values, "epochs": t.epochs},
            history=t.history,
            metrics={f"best_{objective.name}": t.objective} if t.objective is not None else {},
            tags={
                "nnpipe.trial": t.trial_id,
                "nnpipe.trial_status": t.status,
                "nnpipe.trial_worker": t.worker,
                **({"nnpipe.trial_failure": t.reason} if t.reason else {}),
            },
            failed=t.status != "completed",
            started=t.started,
            seconds=t.seconds,
        )


def _record_tuning_off(params: Params, domain: str) -> dict:
    """Tuning is off: the files say so (``train`` then uses ``<domain>.train`` as written)."""
    reason = f"{domain}.tune.enabled is false: train uses {domain}.train as written"
    log.info("tune: %s", reason)
    _write(
        params,
        domain,
        Hyperparameters(tuned=False, values={}, reason=reason),
        TuningSummary(enabled=False),
        trials_csv([]),
    )
    return {"stage": "tune", "tuned": False}


def _log_search_params(params: Params, tune: Any) -> None:
    tracking.log_params(
        {
            "tune": tune.model_dump(mode="json", exclude={"search_space"}),
            "search_space": {
                k: json.dumps(d.model_dump(exclude_none=True)) for k, d in tune.search_space.items()
            },
            "seed": params.seed,
        }
    )


def _search(
    params: Params, domain: str, fit_trial: FitTrial, objective: Objective, state: Path
) -> SearchResult:
    """The search itself: trials asked of the oracle, run here or on the Dask cluster."""
    cfg: DomainSection = get_domain(domain).section(params)
    tune = cfg.tune
    call = partial(
        execute_trial,
        fit_trial,
        domain,
        params.model_dump(mode="json"),
        str(Path.cwd().resolve()),
        objective=objective,
    )
    parallel = tune.dask.workers if tune.executor == "dask" else 1
    log.info(
        "tune: %s search over %s, up to %d trials of %d epochs, %d at a time, budget %d s",
        tune.algorithm,
        ", ".join(tune.search_space),
        tune.max_trials,
        tune.epochs,
        parallel,
        tune.time_budget_seconds,
    )
    oracle = make_oracle(tune, cfg.train, objective, params.seed, state)
    baseline = {k: get_value(cfg.train, k) for k in tune.search_space} if tune.baseline else None

    def search(run_batch) -> SearchResult:
        return run_search(
            oracle,
            tune.search_space,
            run_batch,
            parallel=parallel,
            epochs=tune.epochs,
            time_budget=tune.time_budget_seconds,
            baseline=baseline,
        )

    if tune.executor == "dask":
        from nnpipe.tuning.cluster import search_on_dask

        return search_on_dask(f"{domain}-tune-trials", tune.dask, call, search)
    return search(lambda specs: [call(s) for s in specs])


def _summary(tune: Any, objective: Objective, result: SearchResult, run_id: str) -> TuningSummary:
    """What ``tuning.json`` says of a finished search (raises, saying why, when no trial
    finished)."""
    best = result.best(objective)
    failed = [t for t in result.trials if t.status != "completed"]
    return TuningSummary(
        enabled=True,
        algorithm=tune.algorithm,
        objective=objective.name,
        direction=objective.direction,
        best_value=best.objective,
        best_trial=best.trial_id,
        baseline_kept=best.trial_id == BASELINE,
        trials=len(result.trials),
        completed=len(result.completed),
        failed=len(failed),
        stopped_because=result.stopped_because,
        run_id=run_id,
    )


def _log_search_result(result: SearchResult, objective: Objective) -> None:
    _log_trials(result, objective)
    failed = [t for t in result.trials if t.status != "completed"]
    tracking.log_metrics({"trials_completed": len(result.completed), "trials_failed": len(failed)})
    best = result.best(objective)  # raises, saying why, when no trial finished
    tracking.log_metrics({f"best_{objective.name}": best.objective})
    tracking.set_tags(
        {"nnpipe.best_trial": best.trial_id, "nnpipe.stopped_because": result.stopped_because}
    )


def run_tuning(params: Params, domain: str, fit_trial: FitTrial, objective: Objective) -> dict:
    """Search the space in ``<domain>.tune`` (each trial fitted by ``fit_trial``), or
    record that tuning is off."""
    from nnpipe.dvc.folder_hash import directory_md5

    features = domain_layout(params, domain).features
    require(features / "meta.json", "featurize", domain)
    data_hash = directory_md5(features)
    tune = get_domain(domain).section(params).tune
    if not tune.enabled:
        return _record_tuning_off(params, domain)
    name = tracking.run_name("tune", tune.algorithm, f"{tune.max_trials}trials", f"{tune.epochs}ep")
    with (
        tempfile.TemporaryDirectory(prefix="nnpipe-tune-") as state,
        tracking.start_run(params, domain, "tune", data_hash=data_hash, run_name=name) as mlrun,
    ):
        _log_search_params(params, tune)
        result = _search(params, domain, fit_trial, objective, Path(state))
        _log_search_result(result, objective)
        summary = _summary(tune, objective, result, mlrun.info.run_id)
    best = result.best(objective)
    _write(
        params,
        domain,
        Hyperparameters.model_validate({"tuned": True, "values": best.values, **summary.record()}),
        summary,
        trials_csv(result.trials),
    )
    log.info(
        "tune: best trial %s, %s %.4f with %s (%d of %d trials completed)",
        best.trial_id,
        objective.name,
        best.objective,
        best.values,
        len(result.completed),
        len(result.trials),
    )
    return {
        "stage": "tune",
        "tuned": True,
        "best": best.values,
        "best_value": best.objective,
        "trials": len(result.trials),
    }
