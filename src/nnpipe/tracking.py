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
from nnpipe.liveness import current_owner, parse_owner
from nnpipe.store import artifact_root, tracking_uri

log = logging.getLogger(__name__)


class MissingRunError(NnpipeError, LookupError):
    """A run recorded in a stage output is not in the configured tracking store."""


class TrackingUnavailable(NnpipeError):
    """The tracking server did not answer (down, unreachable, or stalled)."""


HTTP_SETTINGS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "http_timeout_seconds",
                 "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "http_max_retries",
                 "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "http_backoff_factor"}
HTTP_JITTER = "0.5"  # seconds of random jitter per retry (MLflow's default: 1)
_user_http_env: dict[str, str | None] | None = None  # the environment before nnpipe set it


def configure_http(params: Params) -> None:
    """Bound MLflow's requests to a server: MLflow reads these variables on every request,
    and its defaults (7 retries, 120 s timeouts, backoff to 2 min) kept a stage waiting
    12 minutes on a server that was down. The user's environment wins over params."""
    global _user_http_env
    if _user_http_env is None:
        _user_http_env = {k: os.environ.get(k) for k in
                          (*HTTP_SETTINGS, "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER")}
    for key, field in HTTP_SETTINGS.items():
        if _user_http_env[key] is None:
            os.environ[key] = str(getattr(params.mlflow, field))
    if _user_http_env["MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"] is None:
        os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_JITTER"] = HTTP_JITTER


def unavailable_error(exc: BaseException) -> TrackingUnavailable | None:
    """The plain error for ``exc`` if it says the tracking server could not be reached
    (after MLflow's retries), else None: an outage is not a bug, so no traceback."""
    import requests

    text = str(exc)
    if isinstance(exc, MlflowException):
        reachable = not (text.startswith("API request to ") and "failed with" in text
                         and ("exception" in text or "Max retries" in text))
    else:
        reachable = not isinstance(exc, (requests.exceptions.ConnectionError,
                                         requests.exceptions.Timeout))
    if reachable:
        return None
    uri = mlflow.get_tracking_uri()
    cause = ("it did not answer within MLFLOW_HTTP_REQUEST_TIMEOUT="
             f"{os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT', '?')} s"
             if "timeout" in text.lower() or "timed out" in text.lower()
             else "connection refused or unreachable")
    retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "?")
    return TrackingUnavailable(
        f"the MLflow tracking server at {uri} is not answering ({cause}; tried "
        f"{int(retries) + 1 if retries.isdigit() else '?'} times). Start it (e.g. "
        f"`mlflow server --host 127.0.0.1 --port {_port(uri)} --backend-store-uri ...`), "
        "or point mlflow.tracking_uri in params.yaml (or MLFLOW_TRACKING_URI) at a running "
        "one, then run again (the next run ends what this one left RUNNING or PENDING)")


def _port(uri: str) -> str:
    from urllib.parse import urlsplit

    try:
        return str(urlsplit(uri).port or 5000)
    except ValueError:
        return "5000"


def configure(params: Params, root: Path | None = None) -> str:
    """Point MLflow (tracking and registry) at the configured store; return its URI."""
    configure_http(params)
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


# MLflow 3's UI opens an experiment on GenAI's traces page unless this tag says it is
# model training (the value the UI's "Machine learning" experiment type writes)
EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
NOTE = "mlflow.note.content"  # the description the UI shows and edits


def data_note(params: Params, domain: str) -> str:
    """What the domain's data is, saying plainly when it is nnpipe's synthetic data."""
    source = params.domain(domain).ingest.source
    if source == "synthetic":
        return ("SYNTHETIC data generated by nnpipe (`ingest.source: synthetic`), not real "
                "data: the numbers show the pipeline works, not how a model would do on "
                "real data.")
    return f"data from `{domain}.ingest.source: {source}`."


def experiment_description(params: Params, domain: str) -> str:
    return (f"nnpipe's `{domain}` pipeline (ingest, featurize, tune, train, evaluate, "
            f"compress, promote, register), trained on {data_note(params, domain)}\n\n"
            "One run per trained model (`nnpipe.stage = train`): its per-epoch curves, the "
            "best epoch's values (`best_*`, the weights kept), the test metrics beside "
            "their baselines (`test_*`), figures and the compression table "
            "(`compression/compression.md`). Each tuning search is a `tune` run with one "
            "child run per trial: select the trials and press Compare.")


def _describe_experiment(experiment: Any, params: Params, domain: str) -> None:
    """Tag an experiment as model training and describe it (once; a user's edit stays)."""
    client = MlflowClient()
    tags = experiment.tags or {}
    if tags.get(EXPERIMENT_KIND[0]) != EXPERIMENT_KIND[1]:
        client.set_experiment_tag(experiment.experiment_id, *EXPERIMENT_KIND)
    if not tags.get(NOTE):
        client.set_experiment_tag(experiment.experiment_id, NOTE,
                                  experiment_description(params, domain))


# A saved view of the runs table (MLflow 3.17 keeps them as experiment tags with this
# prefix; its "Views" menu lists them): the headline metric columns, which the table does
# not show by default. Opened by ``#/experiments/<id>/runs?viewStateShareKey=headline``.
SAVED_VIEW_PREFIX = "mlflow.sharedViewState."
HEADLINE_VIEW = "headline"
UI_WORKFLOW = "workflowType=machine_learning"  # the UI's "Model training" mode, not GenAI


def set_headline_view(metrics: list[str]) -> None:
    """Save the runs-table view "Headline metrics" on the active run's experiment."""
    import json
    import time

    columns = ["attributes.`Run Name`", "attributes.`Dataset`",
               *(f"metrics.`{m}`" for m in metrics)]
    state = {"selectedColumns": columns, "orderByKey": "attributes.start_time",
             "orderByAsc": False}
    value = json.dumps({"name": "Headline metrics", "createdAt": int(time.time() * 1000),
                        "state": json.dumps(state)})
    MlflowClient().set_experiment_tag(mlflow.active_run().info.experiment_id,
                                      SAVED_VIEW_PREFIX + HEADLINE_VIEW, value)


def ensure_experiment(params: Params, domain: str, root: Path | None = None) -> str:
    """One experiment per domain, a model-training one with a description; with the local
    store its artifacts go to ``mlartifacts/``."""
    name = f"{params.mlflow.experiment_prefix}-{domain}"
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        _describe_experiment(found, params, domain)  # older stores: created without them
        return found.experiment_id
    location = None
    if mlflow.get_tracking_uri().startswith("sqlite:") and not params.mlflow.tracking_uri:
        location = (artifact_root(root) / name).as_uri()
    tags = {EXPERIMENT_KIND[0]: EXPERIMENT_KIND[1], NOTE: experiment_description(params, domain)}
    try:
        return mlflow.create_experiment(name, artifact_location=location, tags=tags)
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
    end_abandoned_runs(experiment_id)
    with mlflow.start_run(run_id=run_id, experiment_id=None if run_id else experiment_id,
                          run_name=run_name) as run:
        owner = {OWNER_TAG: current_owner().token()}  # a resumed run is ours now
        if run_id is None:
            mlflow.set_tags({**run_tags(domain, stage, data_hash), **owner})
        else:
            mlflow.set_tags({f"nnpipe.{stage}": "done", **owner})
        yield run


OWNER_TAG = "nnpipe.owner"  # host:pid:start of the process that has the run open
_cleaned: set[tuple[str, str]] = set()  # (store, experiment) already looked at here


def end_abandoned_runs(experiment_id: str) -> list[str]:
    """End the runs of ``experiment_id`` that a killed process left RUNNING (their owner's
    process is gone; a live owner's, or another host's, are left alone): status KILLED,
    and their logged models still PENDING marked FAILED. Once per process and experiment;
    returns the ids it ended."""
    key = (mlflow.get_tracking_uri(), experiment_id)
    if key in _cleaned:
        return []
    _cleaned.add(key)
    client = MlflowClient()
    ended = []
    for run in client.search_runs([experiment_id], "attributes.status = 'RUNNING'",
                                  max_results=1000):
        owner = parse_owner(run.data.tags.get(OWNER_TAG, ""))
        if owner is None or owner.is_alive():
            continue
        client.set_tag(run.info.run_id, "nnpipe.ended_by",
                       f"the next run: its process ({owner.token()}) was gone")
        fail_pending_models(client, experiment_id, run.info.run_id)
        client.set_terminated(run.info.run_id, status="KILLED")
        log.warning("MLflow run %s was left RUNNING by process %d, which is gone (killed?): "
                    "marked KILLED", run.info.run_id, owner.pid)
        ended.append(run.info.run_id)
    return ended


def fail_pending_models(client: MlflowClient, experiment_id: str, run_id: str) -> None:
    """Mark FAILED the logged models of ``run_id`` whose upload never finished."""
    from mlflow.entities import LoggedModelStatus

    for model in client.search_logged_models([experiment_id],
                                             filter_string=f"source_run_id = '{run_id}'"):
        if model.status == LoggedModelStatus.PENDING:
            client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
            log.warning("logged model %s of run %s never finished uploading: marked FAILED",
                        model.model_id, run_id)


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


def run_name(*parts: Any) -> str:
    """A run name that tells runs apart: what was trained, its key settings, and when
    (month-day-time, to the second), e.g. ``medical_cnn-f32.64.128-lr0.001-1201-103045``."""
    import time

    shown = [".".join(map(str, p)) if isinstance(p, (list, tuple)) else str(p)
             for p in parts if p not in (None, "")]
    return "-".join([*shown, time.strftime("%m%d-%H%M%S")])


def architecture_params(train: Any, architecture: str,
                        owned: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    """The train params that apply to ``architecture``: ``owned`` maps each architecture
    to the fields only it reads; the fields the other architectures own are left out (a
    medical_cnn run logs no ``vit.*`` sizes). ``architecture`` is the resolved name
    (``model: auto`` says which one it chose)."""
    mine = set(owned.get(architecture, ()))
    others = {f for fields in owned.values() for f in fields} - mine
    values = {k: v for k, v in train.model_dump().items() if k not in others}
    return {**values, "architecture": architecture}


def _metric_points(values: Mapping[str, Any], prefix: str, step: int) -> list[Any]:
    from mlflow.entities import Metric

    now = int(__import__("time").time() * 1000)
    return [Metric(f"{prefix}{k}", float(v), now, step) for k, v in flatten(values).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)]


def log_metrics(values: Mapping[str, Any], prefix: str = "", step: int | None = None) -> None:
    """Log the numeric entries of ``values`` (nested ones flattened, others skipped) on the
    active run only. Written with the client on purpose: MLflow's fluent ``log_metrics``
    also attaches a metric to every model the run logged at the same step, which put
    compression values and epoch-1 numbers on the logged model's page."""
    points = _metric_points(values, prefix, step or 0)
    client = MlflowClient()
    run_id = mlflow.active_run().info.run_id
    for i in range(0, len(points), 900):
        client.log_batch(run_id, metrics=points[i:i + 900])


def log_best_epoch(history: list[dict[str, Any]], best: Mapping[str, Any], model_id: str,
                   dataset: Any) -> None:
    """The kept (best) epoch's values as ``best_*`` run metrics, its validation ones also on
    the logged model with the validation dataset, and ``best_epoch`` (1-based)."""
    values = {k: v for k, v in best.items() if k != "epoch" and v is not None}
    log_metrics({"best_epoch": best["epoch"], "epochs_run": len(history)})
    log_metrics({k: v for k, v in values.items() if not k.startswith("val_")}, prefix="best_")
    log_model_metrics({k: v for k, v in values.items() if k.startswith("val_")}, model_id,
                      dataset, prefix="best_")


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
        if isinstance(value, (int, float)) and not isinstance(value, bool):  # None: not measured
            mlflow.log_metric(f"{prefix}{key}", float(value), model_id=model_id,
                              dataset=dataset)


def keras_requirements() -> list[str]:
    """Pinned requirements of the logged model, given so MLflow need not infer them (slow)."""
    from importlib.metadata import version

    return [f"{pkg}=={version(pkg)}" for pkg in ("tensorflow", "tf-keras", "numpy")]


@dataclass(frozen=True)
class LoggedModel:
    uri: str  # models:/m-...
    model_id: str


def log_keras_model(model: keras.Model, input_example: np.ndarray, best_epoch: int,
                    params: Mapping[str, Any] | None = None) -> LoggedModel:
    """Log the model with a signature and an input example, at the step of the epoch whose
    weights it holds (``best_epoch``, 1-based): MLflow copies that step's metrics onto the
    logged model, so its page shows the kept epoch's values, not the first epoch's."""
    from mlflow.models import infer_signature

    signature = infer_signature(input_example, model.predict(input_example, verbose=0))
    info = mlflow.tensorflow.log_model(
        model, name="model", signature=signature, input_example=input_example,
        pip_requirements=keras_requirements(), step=max(best_epoch - 1, 0),
        params={k: str(v) for k, v in flatten(params or {}).items()} or None)
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


def deployable_signature(deploy_dir: Path, input_example: np.ndarray) -> Any:
    """The deployable's signature, from what its predictor returns for ``input_example``.

    Marked as the model's own (as MLflow marks a signature it takes from ``predict``'s
    type hints), so MLflow documents it but does not convert inputs to it: the pyfunc
    takes more than this one form (any image size, tables of bars or image bytes), and
    MLflow's tensor enforcement would refuse those."""
    import pandas as pd
    from mlflow.models import infer_signature

    from nnpipe.serving.predictor import load_predictor

    output = pd.DataFrame(load_predictor(deploy_dir).predict_input(input_example))
    signature = infer_signature(input_example, output)
    signature._is_signature_from_type_hint = True
    return signature


def log_deployable(deploy_dir: Path, keras_variant: bool, input_example: np.ndarray,
                   ) -> LoggedModel:
    """Log a deploy folder as an MLflow pyfunc (the model the registry versions), with
    nnpipe's code inside so it loads wherever its requirements are installed, and with a
    signature and an input example (the model version page shows both)."""
    import nnpipe
    from nnpipe.serving import pyfunc

    code = Path(pyfunc.__file__).with_name("mlflow_model.py")  # models from code, no pickle
    signature = deployable_signature(deploy_dir, input_example)
    with warnings.catch_warnings():
        # predict() takes arrays and tables, so it has no type hints for MLflow to check
        warnings.filterwarnings("ignore", message="Add type hints to the `predict` method")
        info = mlflow.pyfunc.log_model(
            name="deployable", python_model=str(code),
            artifacts={pyfunc.ARTIFACT: str(deploy_dir.resolve())},
            code_paths=[str(Path(nnpipe.__file__).resolve().parent)],
            pip_requirements=serving_requirements(keras_variant),
            signature=signature, input_example=input_example,
            # a step no metric uses: MLflow copies the metrics of the model's step onto it,
            # and step 0 holds the first epoch's (this model is the deployed variant, which
            # register measures itself)
            step=-1)
    return LoggedModel(info.model_uri, info.model_id)


def describe_model(name: str, description: str, version: str | None = None) -> None:
    """Set the description the registry's pages show, of a model or of one version."""
    client = MlflowClient()
    if version is None:
        client.update_registered_model(name, description=description)
    else:
        client.update_model_version(name, version, description=description)
