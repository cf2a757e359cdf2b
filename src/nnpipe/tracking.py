"""MLflow adapter: the only module that talks to the tracking server and model registry.

Configured from the environment and params when a stage calls it, never at import time.
By default the store is a SQLite file and an artifact folder inside the project; set
``MLFLOW_TRACKING_URI`` (or ``mlflow.tracking_uri`` in params) to use a server instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.data
import mlflow.tensorflow
import numpy as np
from mlflow.entities import LoggedModelInput
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from nnpipe.config import Params
from nnpipe.errors import NnpipeError
from nnpipe.keras_env import keras
from nnpipe.store import artifact_root, tracking_uri

log = logging.getLogger(__name__)


class MissingRunError(NnpipeError, LookupError):
    """A run recorded in a stage output is not in the configured tracking store."""


def configure(params: Params, root: Path | None = None) -> str:
    """Point MLflow (tracking and registry) at the configured store; return its URI."""
    uri = tracking_uri(params, root)
    exported = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    # MLflow also exports the URI to the environment for child processes. Undo that: the
    # environment is the user's setting, and a long-lived process (a Prefect worker, a test
    # session) that later runs another project must not be sent to this one's store.
    for key, value in exported.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return uri


def ensure_experiment(params: Params, domain: str, root: Path | None = None) -> str:
    """One experiment per domain; with the local store its artifacts go to ``mlartifacts/``."""
    name = f"{params.mlflow.experiment_prefix}-{domain}"
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = None
    if mlflow.get_tracking_uri().startswith("sqlite:") and not params.mlflow.tracking_uri:
        location = (artifact_root(root) / name).as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=location)
    except MlflowException:  # created concurrently by another process
        found = mlflow.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def git_commit() -> str | None:
    """The commit of the working tree, with ``-dirty`` when it has uncommitted changes."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def prefect_flow_run_id() -> str | None:
    """The Prefect flow-run id when a flow is running this code, without importing Prefect."""
    if "prefect" not in sys.modules:
        return None
    from prefect.runtime import flow_run

    run_id = flow_run.id
    return str(run_id) if run_id else None


def run_tags(domain: str, stage: str, data_hash: str | None = None) -> dict[str, str]:
    """Tags of a new run: what made it, from which commit, data and Prefect flow run."""
    tags = {"nnpipe.domain": domain, "nnpipe.stage": stage}
    commit = git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit.removesuffix("-dirty")
        tags["git_commit"] = commit
    flow_run_id = prefect_flow_run_id()
    if flow_run_id:
        tags["prefect.flow_run_id"] = flow_run_id
    if data_hash:
        tags["dvc.data_hash"] = data_hash
    return tags


@contextlib.contextmanager
def start_run(params: Params, domain: str, stage: str, *, run_id: str | None = None,
              run_name: str | None = None, data_hash: str | None = None,
              ) -> Iterator[mlflow.ActiveRun]:
    """Start (or, with ``run_id``, resume) a run in the domain's experiment, tagged."""
    configure(params)
    experiment_id = ensure_experiment(params, domain)
    if run_id is not None:
        try:
            MlflowClient().get_run(run_id)
        except MlflowException as exc:
            raise MissingRunError(
                f"MLflow run {run_id} (written by the train stage) is not in the store at "
                f"{mlflow.get_tracking_uri()}. Retrain (`dvc repro -f {domain}-train`) or point "
                "MLFLOW_TRACKING_URI at the store it was logged to."
            ) from exc
    with mlflow.start_run(run_id=run_id, experiment_id=None if run_id else experiment_id,
                          run_name=run_name) as run:
        if run_id is None:
            mlflow.set_tags(run_tags(domain, stage, data_hash))
        else:
            mlflow.set_tag(f"nnpipe.{stage}", "done")
        yield run


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


def log_metrics(values: Mapping[str, Any], prefix: str = "", step: int | None = None) -> None:
    """Log the numeric entries of ``values`` (nested ones flattened, others skipped)."""
    flat = flatten(values)
    mlflow.log_metrics(step=step, metrics={f"{prefix}{k}": float(v) for k, v in flat.items()
                        if isinstance(v, (int, float)) and not isinstance(v, bool)})


def log_variant_metrics(rows: Mapping[str, Mapping[str, Any]], measures: tuple[str, ...]) -> None:
    """The compress table on the training run: ``<variant>.<measure>`` per built variant."""
    for name, row in rows.items():
        if row.get("status") == "ok":
            log_metrics({k: row[k] for k in ("size_bytes", "gzip_bytes", *measures,
                                             "latency_ms_median", "throughput_per_s")
                         if row.get(k) is not None}, prefix=f"{name}.")


def log_artifacts(path: Path, artifact_path: str) -> None:
    """Log a file or a folder's files under ``artifact_path`` in the active run."""
    if path.is_dir():
        mlflow.log_artifacts(str(path), artifact_path=artifact_path)
    else:
        mlflow.log_artifact(str(path), artifact_path=artifact_path)


def set_tags(tags: Mapping[str, Any]) -> None:
    mlflow.set_tags({k: str(v) for k, v in tags.items()})


def log_child_run(name: str, *, params: Mapping[str, Any], history: list[dict[str, Any]],
                  metrics: Mapping[str, Any], tags: Mapping[str, Any], failed: bool,
                  started: float, seconds: float) -> str:
    """A finished (or failed) run nested under the active one, written after the fact:
    how a tuning trial, which may have run on another machine, shows in MLflow's compare
    view. ``history`` rows become per-epoch metric steps; times are the trial's own."""
    from mlflow.entities import Metric, Param, RunTag

    parent = mlflow.active_run()
    client = MlflowClient()
    start_ms, end_ms = int(started * 1000), int((started + seconds) * 1000)
    inherited = {k: v for k, v in client.get_run(parent.info.run_id).data.tags.items()
                 if k.startswith(("nnpipe.", "git_commit", "mlflow.source.git", "prefect.",
                                  "dvc."))}
    inherited["nnpipe.stage"] = f"{inherited.get('nnpipe.stage', 'run')}-child"
    run = client.create_run(parent.info.experiment_id, start_time=start_ms, run_name=name,
                            tags={**inherited, "mlflow.parentRunId": parent.info.run_id})
    points = [Metric(k, float(v), end_ms, int(row["epoch"])) for row in history
              for k, v in row.items() if k != "epoch" and isinstance(v, (int, float))]
    points += [Metric(k, float(v), end_ms, 0) for k, v in flatten(metrics).items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for i in range(0, max(len(points), 1), 900):
        client.log_batch(run.info.run_id, metrics=points[i:i + 900],
                         params=[Param(k, str(v)) for k, v in flatten(params).items()]
                         if i == 0 else [],
                         tags=[RunTag(k, str(v)) for k, v in tags.items()] if i == 0 else [])
    client.set_terminated(run.info.run_id, status="FAILED" if failed else "FINISHED",
                          end_time=end_ms)
    return run.info.run_id


class EpochMetricsLogger(keras.callbacks.Callback):
    """Logs every epoch's metrics (and learning rate) to the active MLflow run."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        # ReduceLROnPlateau adds the learning rate to ``logs`` as ``lr``
        mlflow.log_metrics({k: float(v) for k, v in (logs or {}).items() if np.isscalar(v)},
                           step=epoch)


def log_dataset(features: np.ndarray, targets: np.ndarray, *, name: str, source: str,
                digest: str, context: str, model_id: str | None = None) -> Any:
    """Record a dataset the run used, with the DVC hash of its files as its digest (DVC's
    ``.dir`` md5 is 36 characters, MLflow's limit); return it for :func:`log_model_metrics`."""
    with warnings.catch_warnings():  # a local path matches two equivalent source types
        warnings.filterwarnings("ignore", message="The specified dataset source")
        dataset = mlflow.data.from_numpy(features, targets=targets, source=source, name=name,
                                         digest=digest[:36])
    model = LoggedModelInput(model_id) if model_id else None
    mlflow.log_input(dataset, context=context, model=model)
    return dataset


def log_model_metrics(values: Mapping[str, float], model_id: str, dataset: Any,
                      prefix: str = "") -> None:
    """Metrics attached to the logged model and the dataset they were measured on, so the
    MLflow UI shows them on the model's page next to that dataset."""
    for key, value in values.items():
        mlflow.log_metric(f"{prefix}{key}", float(value), model_id=model_id, dataset=dataset)


def keras_requirements() -> list[str]:
    """Pinned requirements of the logged model, given so MLflow need not infer them (slow)."""
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("tensorflow", "tf-keras", "numpy")]


@dataclass(frozen=True)
class LoggedModel:
    uri: str  # models:/m-...
    model_id: str


def log_keras_model(model: keras.Model, input_example: np.ndarray) -> LoggedModel:
    """Log the model with a signature and an input example."""
    from mlflow.models import infer_signature

    signature = infer_signature(input_example, model.predict(input_example, verbose=0))
    info = mlflow.tensorflow.log_model(model, name="model", signature=signature,
                                       input_example=input_example,
                                       pip_requirements=keras_requirements())
    return LoggedModel(info.model_uri, info.model_id)


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: str
    run_id: str | None
    tags: dict[str, str]


def register_model(model_uri: str, name: str, tags: Mapping[str, str]) -> ModelVersionInfo:
    return _info(mlflow.register_model(model_uri, name,
                                       tags={k: str(v) for k, v in tags.items()}))


def _info(mv: Any) -> ModelVersionInfo:
    return ModelVersionInfo(mv.name, str(mv.version), mv.run_id, dict(mv.tags or {}))


def version_by_alias(name: str, alias: str) -> ModelVersionInfo | None:
    """The version an alias points to, or None where the model or alias does not exist.

    Any other failure (the server is down, access denied) raises: reading it as "no
    champion" would let a model past the gate unjudged.
    """
    try:
        return _info(MlflowClient().get_model_version_by_alias(name, alias))
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def find_version(name: str, run_id: str, tags: Mapping[str, str] | None = None,
                 ) -> ModelVersionInfo | None:
    """The registered version made from ``run_id`` (and carrying ``tags``), if any, so a
    re-run does not register a duplicate."""
    try:
        found = MlflowClient().search_model_versions(f"name='{name}' and run_id='{run_id}'")
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    found = [mv for mv in found
             if all((mv.tags or {}).get(k) == str(v) for k, v in (tags or {}).items())]
    return _info(max(found, key=lambda mv: int(mv.version))) if found else None


def set_alias(name: str, alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, alias, version)


def tag_version(name: str, version: str, tags: Mapping[str, Any]) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def serving_requirements(keras_variant: bool) -> list[str]:
    """Pinned requirements of the deployable pyfunc: what its code imports (TensorFlow
    only when the deployed variant is the Keras model)."""
    from importlib.metadata import version

    packages = ["mlflow", "numpy", "pandas", "pillow", "scipy", "ai-edge-litert"]
    if keras_variant:
        packages += ["tensorflow", "tf-keras"]
    return [f"{pkg}=={version(pkg)}" for pkg in packages]


def log_deployable(deploy_dir: Path, keras_variant: bool) -> LoggedModel:
    """Log a deploy folder as an MLflow pyfunc (the model the registry versions), with
    nnpipe's code inside so it loads wherever its requirements are installed."""
    import nnpipe
    from nnpipe.serving import pyfunc

    code = Path(pyfunc.__file__).with_name("mlflow_model.py")  # models from code, no pickle
    with warnings.catch_warnings():
        # predict() takes arrays and tables, so it has no type hints for MLflow to check
        warnings.filterwarnings("ignore", message="Add type hints to the `predict` method")
        info = mlflow.pyfunc.log_model(
            name="deployable", python_model=str(code),
            artifacts={pyfunc.ARTIFACT: str(deploy_dir.resolve())},
            code_paths=[str(Path(nnpipe.__file__).resolve().parent)],
            pip_requirements=serving_requirements(keras_variant))
    return LoggedModel(info.model_uri, info.model_id)


def load_deployed(name: str, alias: str) -> Any | None:
    """The predictor of a registered deployable version, or None when that version is
    not one (a model registered before nnpipe published deploy folders)."""
    import mlflow.pyfunc

    model = mlflow.pyfunc.load_model(f"models:/{name}@{alias}")
    try:
        inner = model.unwrap_python_model()
    except MlflowException:
        return None
    return getattr(inner, "predictor", None)
