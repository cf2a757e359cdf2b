"""The monitor's runs: one experiment per domain (``<prefix>-<domain>-monitoring``, a
model-training one, described), one run per monitored model, tagged with the registered
version, its metrics also attached to the version's logged model (so the model's page
in the MLflow UI lists them), and the version tagged with the last result."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from nnpipe.config import Params
from nnpipe.store import artifact_root
from nnpipe.tracking.experiments import EXPERIMENT_KIND, NOTE, configure
from nnpipe.tracking.runs import run_tags


def monitoring_experiment(params: Params, domain: str) -> str:
    name = f"{params.mlflow.experiment_prefix}-{domain}-monitoring"
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if mlflow.get_tracking_uri().startswith("sqlite:") and not params.mlflow.tracking_uri:
        location = (artifact_root() / name).as_uri()
    tags = {
        EXPERIMENT_KIND[0]: EXPERIMENT_KIND[1],
        NOTE: (
            f"`nnpipe monitor --domain {domain}`: one run per check of a deployed model "
            "(tags `nnpipe.model_name`, `nnpipe.model_version`): each drift check's "
            "statistic and p-value, live performance (`live.*`) once the truth is known, "
            "and the HTML report (`monitor/monitor.html`)."
        ),
    }
    try:
        return mlflow.create_experiment(name, artifact_location=location, tags=tags)
    except MlflowException:  # created concurrently
        found = mlflow.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def log_monitor_run(
    params: Params,
    domain: str,
    *,
    model_name: str,
    version: str,
    model_id: str | None,
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    files: list[Path],
    description: str,
) -> str:
    """Record one monitoring result; the run's id."""
    configure(params)
    experiment_id = monitoring_experiment(params, domain)
    all_tags: dict[str, Any] = {
        **run_tags(domain, "monitor"),
        "nnpipe.model_name": model_name,
        "nnpipe.model_version": version,
        NOTE: description,
        **tags,
    }
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"monitor {model_name} v{version}",
        tags=all_tags,
    ) as run:
        clean = {k.replace("@", "_"): float(v) for k, v in metrics.items()}
        mlflow.log_metrics(clean)
        if model_id:  # the version's logged model lists the monitor's numbers too
            try:
                mlflow.log_metrics({f"monitor.{k}": v for k, v in clean.items()}, model_id=model_id)
            except MlflowException:
                pass  # a logged model from another store: the run has them anyway
        for path in files:
            if path.is_file():
                mlflow.log_artifact(str(path), artifact_path="monitor")
        if version.isdigit():
            client = MlflowClient()
            for key, value in (
                ("monitor.alarm", tags.get("monitor.alarm", "")),
                ("monitor.run_id", run.info.run_id),
            ):
                client.set_model_version_tag(model_name, version, key, value)
        return run.info.run_id
