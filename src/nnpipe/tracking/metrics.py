"""What a run records: params, metrics (per epoch, best epoch, on a logged model),
artifacts, tags, datasets, and child runs written after the fact (tuning trials)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import mlflow
import mlflow.data
import numpy as np
from mlflow.entities import LoggedModelInput, Metric, Param, RunTag
from mlflow.tracking import MlflowClient


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params as dotted keys, the names ``dvc params diff`` shows too."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def log_params(params: Mapping[str, Any]) -> None:
    mlflow.log_params({k: ("null" if v is None else v) for k, v in flatten(params).items()})


def _metric_points(values: Mapping[str, Any], prefix: str, step: int) -> list[Any]:
    now = int(time.time() * 1000)
    return [
        Metric(f"{prefix}{k}", float(v), now, step)
        for k, v in flatten(values).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]


def log_metrics(values: Mapping[str, Any], prefix: str = "", step: int | None = None) -> None:
    """Log the numeric entries of ``values`` (nested ones flattened, others skipped) on the
    active run only. Written with the client on purpose: MLflow's fluent ``log_metrics``
    also attaches a metric to every model the run logged at the same step, which put
    compression values and epoch-1 numbers on the logged model's page."""
    points = _metric_points(values, prefix, step or 0)
    client = MlflowClient()
    run_id = cast(mlflow.ActiveRun, mlflow.active_run()).info.run_id  # the caller's run
    for i in range(0, len(points), 900):
        client.log_batch(run_id, metrics=points[i : i + 900])


def log_best_epoch(
    history: list[dict[str, Any]], best: Mapping[str, Any], model_id: str, dataset: Any
) -> None:
    """The kept (best) epoch's values as ``best_*`` run metrics, its validation ones also on
    the logged model with the validation dataset, and ``best_epoch`` (1-based)."""
    values = {k: v for k, v in best.items() if k != "epoch" and v is not None}
    log_metrics({"best_epoch": best["epoch"], "epochs_run": len(history)})
    log_metrics({k: v for k, v in values.items() if not k.startswith("val_")}, prefix="best_")
    log_model_metrics(
        {k: v for k, v in values.items() if k.startswith("val_")}, model_id, dataset, prefix="best_"
    )


def log_artifacts(path: Path, artifact_path: str) -> None:
    """Log a file or a folder's files under ``artifact_path`` in the active run."""
    if path.is_dir():
        mlflow.log_artifacts(str(path), artifact_path=artifact_path)
    else:
        mlflow.log_artifact(str(path), artifact_path=artifact_path)


def set_tags(tags: Mapping[str, Any]) -> None:
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def _child_points(
    history: list[dict[str, Any]], metrics: Mapping[str, Any], timestamp: int
) -> list[Metric]:
    """A child run's metrics: ``history`` rows as per-epoch steps, ``metrics`` at step 0."""
    points = [
        Metric(k, float(v), timestamp, int(row["epoch"]))
        for row in history
        for k, v in row.items()
        if k != "epoch" and isinstance(v, (int, float))
    ]
    points += [
        Metric(k, float(v), timestamp, 0)
        for k, v in flatten(metrics).items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    return points


def log_child_run(
    name: str,
    *,
    params: Mapping[str, Any],
    history: list[dict[str, Any]],
    metrics: Mapping[str, Any],
    tags: Mapping[str, Any],
    failed: bool,
    started: float,
    seconds: float,
) -> str:
    """A finished (or failed) run nested under the active one, written after the fact:
    how a tuning trial, which may have run on another machine, shows in MLflow's compare
    view. ``history`` rows become per-epoch metric steps; times are the trial's own."""
    parent = cast(mlflow.ActiveRun, mlflow.active_run())  # the caller's run
    client = MlflowClient()
    start_ms, end_ms = int(started * 1000), int((started + seconds) * 1000)
    inherited = {
        k: v
        for k, v in client.get_run(parent.info.run_id).data.tags.items()
        if k.startswith(("nnpipe.", "git_commit", "mlflow.source.git", "prefect.", "dvc."))
    }
    inherited["nnpipe.stage"] = f"{inherited.get('nnpipe.stage', 'run')}-child"
    run = client.create_run(
        parent.info.experiment_id,
        start_time=start_ms,
        run_name=name,
        tags={**inherited, "mlflow.parentRunId": parent.info.run_id},
    )
    points = _child_points(history, metrics, end_ms)
    for i in range(0, max(len(points), 1), 900):
        client.log_batch(
            run.info.run_id,
            metrics=points[i : i + 900],
            params=[Param(k, str(v)) for k, v in flatten(params).items()] if i == 0 else [],
            tags=[RunTag(k, str(v)) for k, v in tags.items()] if i == 0 else [],
        )
    client.set_terminated(
        run.info.run_id, status="FAILED" if failed else "FINISHED", end_time=end_ms
    )
    return run.info.run_id


def log_dataset(
    features: np.ndarray,
    targets: np.ndarray,
    *,
    name: str,
    source: str,
    digest: str,
    context: str,
    model_id: str | None = None,
) -> Any:
    """Record a dataset the run used, with the DVC hash of its files as its digest (DVC's
    ``.dir`` md5 is 36 characters, MLflow's limit); return it for :func:`log_model_metrics`."""
    with warnings.catch_warnings():  # a local path matches two equivalent source types
        warnings.filterwarnings("ignore", message="The specified dataset source")
        # mlflow.data sets its from_* constructors at import time, unseen by type checkers
        dataset = mlflow.data.from_numpy(  # type: ignore[attr-defined]
            features, targets=targets, source=source, name=name, digest=digest[:36]
        )
    model = LoggedModelInput(model_id) if model_id else None
    mlflow.log_input(dataset, context=context, model=model)
    return dataset


def log_model_metrics(
    values: Mapping[str, float | None], model_id: str, dataset: Any, prefix: str = ""
) -> None:
    """Metrics attached to the logged model and the dataset they were measured on, so the
    MLflow UI shows them on the model's page next to that dataset."""
    for key, value in values.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):  # None: not measured
            mlflow.log_metric(f"{prefix}{key}", float(value), model_id=model_id, dataset=dataset)
