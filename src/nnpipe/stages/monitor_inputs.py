"""What the monitor compares (:mod:`nnpipe.stages.monitor`): the model asked about (the
version under an alias, or a deploy folder), its reference (the training split promote
described beside it, checked against the sha256 promote recorded) and the prediction
log's window of that version."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nnpipe import store
from nnpipe.config import Params
from nnpipe.domains.contract import Unit
from nnpipe.monitoring.frame import MonitorFrame, MonitorInputError
from nnpipe.monitoring.prediction_log import PredictionLog
from nnpipe.monitoring.report import MonitoredModel
from nnpipe.serving.predictor import confined_path, read_deploy_spec


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


@dataclass(frozen=True)
class MonitorRequest:
    """What ``nnpipe monitor`` was asked (every field has the default a schedule uses)."""

    batch: Path | None = None  # compare this batch instead of the log's window
    labels: Path | None = None  # X-ray: a labels CSV; OHLCV: a CSV of bars (the actuals)
    hours: float | None = None  # the log's window (default: <domain>.monitor.window_hours)
    alias: str = "champion"
    deploy: Path | None = None  # a deploy folder instead of the registered version
    series: str | None = None  # one series of a domain with several
    now: float | None = None
    emit: bool = True  # an alarm emits the retraining event (with a Prefect server)


@dataclass
class Monitored:
    """The model a report is about: its deploy folder and what the registry says of it."""

    unit: Unit
    deploy_dir: Path
    model: MonitoredModel
    model_id: str | None


def resolve_model(
    params: Params, unit: Unit, request: MonitorRequest, unit_key: str | None
) -> Monitored:
    """The model of ``unit`` asked about, refused when its deploy spec says it is the
    model of another unit (``unit_key``: the spec's field naming it, e.g. ``series``)."""
    if request.deploy is not None:
        spec = read_deploy_spec(request.deploy)
        check_unit(spec, unit, unit_key, f"the deploy folder {request.deploy}")
        model = MonitoredModel(
            name=unit.model_name,
            version=f"(deploy folder {request.deploy})",
            alias="",
            variant=str(spec.get("variant")),
        )
        return Monitored(unit, request.deploy, model, None)
    from nnpipe.serving.registry import resolve

    found = resolve(store.tracking_uri(params), unit.model_name, request.alias)
    spec = read_deploy_spec(found.deploy_dir)
    check_unit(spec, unit, unit_key, f"{found.name}@{request.alias} (v{found.version})")
    model = MonitoredModel(
        name=found.name,
        version=found.version,
        alias=request.alias,
        variant=str(spec.get("variant")),
    )
    return Monitored(unit, found.deploy_dir, model, found.model_id)


def check_unit(spec: dict, unit: Unit, unit_key: str | None, what: str) -> None:
    if unit_key is None:
        return  # a domain with one model (X-ray)
    trained_for = spec.get(unit_key)
    if trained_for is not None and str(trained_for) != unit.key:
        raise MonitorInputError(
            f"{what} is the model of {unit_key} {trained_for}, not of {unit.key} (the "
            f"{unit_key} this project's params.yaml names): monitor it in the project whose "
            f"params name {trained_for}, or give each {unit_key} its own registered model "
            "(a {" + unit_key + "} placeholder in its register.model_name)"
        )


def read_reference(monitored: Monitored) -> MonitorFrame:
    """The deployed model's reference, checked against the sha256 promote recorded."""
    spec = read_deploy_spec(monitored.deploy_dir)
    what = f"{monitored.model.name} v{monitored.model.version}"
    name, sha = spec.get("monitor_reference"), spec.get("monitor_reference_sha256")
    if not name or not sha:
        raise MonitorInputError(
            f"{what} has no reference statistics (it was promoted before nnpipe described "
            "a model's training data for the monitor): re-run promote and register "
            "(`nnpipe run`, or `dvc repro -f <domain>-promote` then `nnpipe run`) to "
            "register a version that has them"
        )
    path = confined_path(monitored.deploy_dir, name, f"{what}: monitor_reference")
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != sha:
        raise MonitorInputError(
            f"{what}: its reference statistics {name} are missing or changed since promote "
            "wrote them; re-run promote and register"
        )
    return MonitorFrame.read(path)


def logged_window(
    prediction_log: PredictionLog | None,
    monitored: Monitored,
    since: float,
    until: float,
    min_rows: int,
) -> pd.DataFrame:
    """The logged predictions of the monitored version in ``[since, until)``."""
    if prediction_log is None:
        raise MonitorInputError(
            "no prediction log is kept (serve.prediction_log is empty): set it, serve, "
            "then monitor; or pass --batch to compare a batch"
        )
    version = None if monitored.model.alias == "" else monitored.model.version
    logged = prediction_log.read(monitored.unit.slot, since, until, version)
    what = f"{monitored.model.name} v{monitored.model.version}"
    window = f"{iso(since)} to {iso(until)}"
    if logged.empty:
        raise MonitorInputError(
            f"the prediction log at {prediction_log.backend.description} holds no "
            f"prediction of {what} from {window}: serve it (or `nnpipe predict`) first, "
            "widen the window with --hours, or pass --batch"
        )
    if len(logged) < min_rows:
        raise MonitorInputError(
            f"the prediction log holds {len(logged)} predictions of {what} from {window}, "
            f"fewer than monitor.min_rows ({min_rows}): too few to test; widen the window "
            "with --hours, or lower min_rows"
        )
    return logged
