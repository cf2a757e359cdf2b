"""MLflow adapter: the only package that talks to the tracking server and model registry.

Configured from the environment and params when a stage calls it, never at import time.
By default the store is a SQLite file and an artifact folder inside the project; set
``MLFLOW_TRACKING_URI`` (or ``mlflow.tracking_uri`` in params) to use a server instead.

- :mod:`~nnpipe.tracking.experiments`: the store and one experiment per domain;
- :mod:`~nnpipe.tracking.runs`: runs, tagged, and the ones a killed process left open;
- :mod:`~nnpipe.tracking.metrics`: what a run records (params, metrics, artifacts, child runs);
- :mod:`~nnpipe.tracking.packaging`: a Keras model logged as an MLflow model;
- :mod:`~nnpipe.tracking.registry`: registered versions, aliases and tags;
- :mod:`~nnpipe.tracking.monitoring`: the monitor's experiment and runs (imported by
  the monitor alone, so no pipeline stage's code depends on it).

Callers use the names below (``from nnpipe import tracking; tracking.start_run(...)``).
The deployable pyfunc is packaged by :mod:`nnpipe.serving.deployable` (it is serving's
model; this adapter knows nothing of serving).
"""

from __future__ import annotations

from typing import Any

from nnpipe.liveness import current_owner
from nnpipe.tracking.experiments import (
    EXPERIMENT_KIND,
    HEADLINE_VIEW,
    NOTE,
    SAVED_VIEW_PREFIX,
    UI_WORKFLOW,
    configure,
    data_note,
    ensure_experiment,
    experiment_description,
    set_headline_view,
)
from nnpipe.tracking.metrics import (
    flatten,
    log_artifacts,
    log_best_epoch,
    log_child_run,
    log_dataset,
    log_metrics,
    log_model_metrics,
    log_params,
    set_tags,
)
from nnpipe.tracking.packaging import (
    LoggedModel,
    keras_requirements,
    log_keras_model,
    model_location,
)
from nnpipe.tracking.registry import (
    ModelVersionInfo,
    describe_model,
    find_version,
    register_model,
    set_alias,
    tag_version,
    version_by_alias,
)
from nnpipe.tracking.runs import (
    OWNER_TAG,
    MissingRunError,
    architecture_params,
    end_abandoned_runs,
    fail_pending_models,
    git_commit,
    prefect_flow_run_id,
    run_name,
    run_tags,
    start_run,
)

__all__ = [
    "EXPERIMENT_KIND",
    "HEADLINE_VIEW",
    "NOTE",
    "OWNER_TAG",
    "SAVED_VIEW_PREFIX",
    "UI_WORKFLOW",
    "EpochMetricsLogger",
    "LoggedModel",
    "MissingRunError",
    "ModelVersionInfo",
    "architecture_params",
    "configure",
    "current_owner",
    "data_note",
    "describe_model",
    "end_abandoned_runs",
    "ensure_experiment",
    "experiment_description",
    "fail_pending_models",
    "find_version",
    "flatten",
    "git_commit",
    "keras_requirements",
    "log_artifacts",
    "log_best_epoch",
    "log_child_run",
    "log_dataset",
    "log_keras_model",
    "log_metrics",
    "log_model_metrics",
    "log_params",
    "model_location",
    "prefect_flow_run_id",
    "register_model",
    "run_name",
    "run_tags",
    "set_alias",
    "set_headline_view",
    "set_tags",
    "start_run",
    "tag_version",
    "version_by_alias",
]


def __getattr__(name: str) -> Any:
    """The Keras callback, imported when first asked for: it needs TensorFlow, which
    the adapter's other users (the monitor's runs, the registry) do not."""
    if name == "EpochMetricsLogger":
        from nnpipe.tracking.callbacks import EpochMetricsLogger

        return EpochMetricsLogger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
