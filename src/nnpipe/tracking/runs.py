"""MLflow runs: started (or resumed) tagged with what made them, and the runs a killed
process left RUNNING ended by the next one."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

import mlflow
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from nnpipe.config import Params
from nnpipe.errors import NnpipeError
from nnpipe.liveness import current_owner, parse_owner
from nnpipe.tracking.experiments import configure, ensure_experiment

log = logging.getLogger(__name__)


class MissingRunError(NnpipeError, LookupError):
    """A run recorded in a stage output is not in the configured tracking store."""


def git_commit() -> str | None:
    """The commit of the working tree, with ``-dirty`` when it has uncommitted changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
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
def start_run(
    params: Params,
    domain: str,
    stage: str,
    *,
    run_id: str | None = None,
    run_name: str | None = None,
    data_hash: str | None = None,
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
    owner = {OWNER_TAG: current_owner().token()}  # a resumed run is ours now
    if run_id is None:
        tags = {**run_tags(domain, stage, data_hash), **owner}
    else:
        tags = {f"nnpipe.{stage}": "done", **owner}
    # the tags go in with the run: a process killed just after creating it leaves a run
    # with its owner, which the next run can then end
    with mlflow.start_run(
        run_id=run_id,
        experiment_id=None if run_id else experiment_id,
        run_name=run_name,
        tags=tags,
    ) as run:
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
    for run in client.search_runs(
        [experiment_id], "attributes.status = 'RUNNING'", max_results=1000
    ):
        owner = parse_owner(run.data.tags.get(OWNER_TAG, ""))
        if owner is None or owner.is_alive():
            continue
        client.set_tag(
            run.info.run_id,
            "nnpipe.ended_by",
            f"the next run: its process ({owner.token()}) was gone",
        )
        fail_pending_models(client, experiment_id, run.info.run_id)
        client.set_terminated(run.info.run_id, status="KILLED")
        log.warning(
            "MLflow run %s was left RUNNING by process %d, which is gone (killed?): marked KILLED",
            run.info.run_id,
            owner.pid,
        )
        ended.append(run.info.run_id)
    return ended


def fail_pending_models(client: MlflowClient, experiment_id: str, run_id: str) -> None:
    """Mark FAILED the logged models of ``run_id`` whose upload never finished."""
    for model in client.search_logged_models(
        [experiment_id], filter_string=f"source_run_id = '{run_id}'"
    ):
        if model.status == LoggedModelStatus.PENDING:
            client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
            log.warning(
                "logged model %s of run %s never finished uploading: marked FAILED",
                model.model_id,
                run_id,
            )


def run_name(*parts: Any) -> str:
    """A run name that tells runs apart: what was trained, its key settings, and when
    (month-day-time, to the second), e.g. ``medical_cnn-f32.64.128-lr0.001-1201-103045``."""
    shown = [
        ".".join(map(str, p)) if isinstance(p, (list, tuple)) else str(p)
        for p in parts
        if p not in (None, "")
    ]
    return "-".join([*shown, time.strftime("%m%d-%H%M%S")])


def architecture_params(
    train: Any, architecture: str, owned: Mapping[str, tuple[str, ...]]
) -> dict[str, Any]:
    """The train params that apply to ``architecture``: ``owned`` maps each architecture
    to the fields only it reads; the fields the other architectures own are left out (a
    medical_cnn run logs no ``vit.*`` sizes). ``architecture`` is the resolved name
    (``model: auto`` says which one it chose)."""
    mine = set(owned.get(architecture, ()))
    others = {f for fields in owned.values() for f in fields} - mine
    values = {k: v for k, v in train.model_dump().items() if k not in others}
    return {**values, "architecture": architecture}
