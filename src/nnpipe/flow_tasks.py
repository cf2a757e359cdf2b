"""Prefect adapter: the one task that runs any registered stage, and the loop over them.

The flows in ``flows/`` are thin: each names a domain and calls :func:`run_domain`. A
stage runs in-process only when DVC says it is stale (or ``force``), then is committed to
``dvc.lock``; steps that touch the network are retried, errors in the user's input are not
(retrying cannot fix them). Every flow run sends nnpipe's own log lines to the Prefect
API (whichever process runs it) and ends with its report: the summary logged, and
published with the compression table as artifacts under stable keys (``xray-summary``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, cast

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.logging.handlers import APILogHandler
from prefect.states import Failed, State

from nnpipe import run_report, store
from nnpipe.artifacts import read_compression, read_promotion, read_registration
from nnpipe.config import ParamsError, load_params
from nnpipe.domains.registry import get_domain
from nnpipe.dvc import repo as dvc_repo
from nnpipe.errors import NnpipeError
from nnpipe.layout import domain_layout
from nnpipe.project_lock import ProjectBusy, clean_after_killed_runs, hold_project
from nnpipe.stages import PIPELINES, STAGES, tracking_errors_reported

log = logging.getLogger(__name__)


def describe_flow(domain: str) -> str:
    """A flow's description from the domain registry: what it trains, then its stages in
    order (the same stages, and names, as ``dvc repro``)."""
    stages = "; ".join(f"{s.name} ({s.description})" for s in PIPELINES[domain])
    return (
        f"{get_domain(domain).title}. Stages, as in dvc.yaml (each skipped when DVC "
        "finds it current): "
        f"{stages}. Publishes the artifacts {run_report.artifact_key(domain, 'summary')} "
        f"and {run_report.artifact_key(domain, 'compression')}."
    )


def send_nnpipe_logs_to_prefect() -> None:
    """Make nnpipe's own log lines (stages, epochs, gate) part of the flow run's logs in
    the Prefect API, in whichever process runs the flow: a worker's or ``serve``'s
    subprocess runs no nnpipe entry point, so nothing there sets the ``nnpipe`` logger's
    level, and its INFO lines stopped at the root logger's WARNING; and the API handler is
    only there when PREFECT_LOGGING_EXTRA_LOGGERS names ``nnpipe`` in that process."""
    logger = logging.getLogger("nnpipe")
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    if not any(isinstance(h, APILogHandler) for h in logger.handlers):
        logger.addHandler(APILogHandler())


INPUT_ERROR = "InputError"  # the state name of a stage failed by the user's input


# DVC's hashes decide what is current (see nnpipe.dvc.repo), so Prefect's own cache is off.
@task(cache_policy=NO_CACHE, log_prints=True)
def run_stage(
    name: str,
    params_file: str,
    force: bool = False,
    known_current: bool = False,
) -> dict[str, Any] | State:
    """Run one stage (``xray-train``) unless DVC says it is up to date.

    An error in the user's input ends the task Failed with its message and no traceback
    (it is not a bug, and retrying cannot fix it); any other exception, a network error
    say, fails the task normally and so is retried where the stage allows it.
    """
    try:
        with tracking_errors_reported():  # MLflow's own retries were the retries
            return _run_stage(name, params_file, force, known_current)
    except NnpipeError as exc:
        get_run_logger().error("%s: %s", name, exc)
        return Failed(name=INPUT_ERROR, message=str(exc))


def _retry_unless_input_error(task: Any, task_run: Any, state: State) -> bool:
    """Prefect's retry condition: retry failures, but not an error in the user's input."""
    return state.name != INPUT_ERROR


def _run_stage(
    name: str,
    params_file: str,
    force: bool,
    known_current: bool = False,
) -> dict[str, Any]:
    """``known_current``: DVC said so at the start of this flow run and nothing before
    this stage has run since (so asking again would get the same answer)."""
    logger = get_run_logger()
    root = dvc_repo.find_root()
    target = name
    params = load_params(params_file)
    stage = STAGES[name]
    if (
        root is not None
        and not force
        and (known_current or dvc_repo.stage_is_current(target, root))
    ):
        if not (stage.watches_source and get_domain(stage.domain).source_changed(params)):
            logger.info("%s is up to date (dvc status); skipped", target)
            return {"stage": name, "skipped": True}
        logger.info("%s: the source's files changed since the last run", target)
    logger.info("running %s", target)
    started = time.monotonic()
    result = stage.run(params)
    # the run's summary prints each stage's wall time (``seconds``)
    result = {**result, "seconds": time.monotonic() - started}
    logger.info("%s finished in %.1f s", target, result["seconds"])
    if root is not None:
        dvc_repo.commit_stage(target, root)
    else:
        logger.warning("not inside a DVC project: %s ran but is not recorded in dvc.lock", target)
    return result


@task(name="push-data", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[5, 30])
def push_data(targets: list[str], root: str) -> dict[str, Any]:
    """Send the run's outputs to the project's default DVC remote, when it has one (the
    stack's object storage, say), so ``dvc pull`` on another machine gets what ran here."""
    logger = get_run_logger()
    remote = dvc_repo.default_remote(Path(root))
    if remote is None:
        logger.info("no default DVC remote (dvc remote add -d ...): outputs stay local")
        return {"remote": None, "pushed": 0}
    pushed = dvc_repo.push_outputs(targets, Path(root))
    logger.info("dvc push to %s: %d file(s) sent", remote, pushed)
    return {"remote": remote, "pushed": pushed}


def _experiment_id(tracking_uri: str, run_id: str) -> str | None:
    """The run's experiment, for its link; None (the link shows the run id) when the
    tracking store cannot say."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient(tracking_uri).get_run(run_id).info.experiment_id
    except (MlflowException, OSError) as exc:
        log.warning("no MLflow link for run %s: %s", run_id, exc)
        return None


@task(name="publish-report", cache_policy=NO_CACHE)
def publish_report(domain: str, params_file: str) -> list[str]:
    """Log the run's summary and publish it, with the compression table, as artifacts
    under stable keys (the UI shows each key's history across runs). Read from the
    stages' files, so a run whose stages were all current still reports."""
    params = load_params(params_file)
    layout = domain_layout(params, domain)
    lines = get_domain(domain).summary_lines(params)
    for line in lines:
        log.info("[%s] %s", domain, line)
    uri = store.tracking_uri(params)
    registrations = read_registration(layout.registration, domain).units()
    links = {
        unit: run_report.mlflow_links(
            uri,
            _experiment_id(uri, record.run_id),
            record.run_id,
            record.model_name,
            record.version,
        )
        for unit, record in registrations.items()
    }
    promotion = read_promotion(layout.promotion, domain) if layout.promotion.is_file() else None
    keys = [run_report.artifact_key(domain, "summary")]
    create_markdown_artifact(
        markdown=run_report.summary_markdown(domain, layout, lines, links, promotion),
        key=keys[0],
        description=f"{domain}: test metrics, gate decision, registered model",
    )
    if layout.compression.is_file():
        keys.append(run_report.artifact_key(domain, "compression"))
        create_table_artifact(
            table=run_report.compression_rows(
                read_compression(layout.compression, domain), promotion
            ),
            key=keys[1],
            description=f"{domain}: compression variants (full table: {layout.compression_report})",
        )
    return keys


def run_domain(
    domain: str,
    params_file: str = "params.yaml",
    force: bool = False,
    reason: str = "",
) -> dict[str, dict[str, Any]] | State:
    """Run every stage of a domain in order; a failed stage stops the ones after it and
    its Failed state becomes the flow's. Then the run's report (see
    :func:`publish_report`) and the push of its outputs. ``reason``: why the run was
    asked for, when a trigger asked (the monitor's alarm), for its log."""
    send_nnpipe_logs_to_prefect()
    if reason:
        get_run_logger().info("%s: run asked for by %s", domain, reason)
    params = load_params(params_file)  # fail before any work on a bad params file
    root = dvc_repo.find_root()
    if root is not None and Path(params_file).resolve() != root / "params.yaml":
        raise ParamsError(
            f"inside the DVC project {root}, the pipeline runs on its params.yaml (what "
            f"dvc.lock records), not {params_file}; copy the values in, or use -S overrides"
        )
    if root is not None:
        try:
            dvc_repo.check_params_present([spec.name for spec in PIPELINES[domain]], root)
        except ParamsError as exc:  # an expected outcome: its line, not a traceback
            get_run_logger().error("%s", exc)
            return Failed(message=str(exc))
    # one run at a time (a worker's or `nnpipe schedule`'s flow run takes it here; under
    # `nnpipe run` this process holds it already)
    try:
        with hold_project(f"the {domain} flow", root):
            clean_after_killed_runs([params.paths.data, params.paths.models, params.paths.reports])
            return _run_domain_stages(domain, params_file, force, root)
    except ProjectBusy as exc:  # an expected outcome: its line, not a traceback
        get_run_logger().error("%s", exc)
        return Failed(message=str(exc))


def _run_domain_stages(
    domain: str,
    params_file: str,
    force: bool,
    root: Path | None,
) -> dict[str, dict[str, Any]] | State:
    results: dict[str, dict[str, Any]] = {}
    names = [spec.name for spec in PIPELINES[domain]]
    current = set() if root is None or force else dvc_repo.current_stages(names, root)
    nothing_ran = True
    for spec in PIPELINES[domain]:
        name = spec.name
        options: dict[str, Any] = {"task_run_name": name}
        if spec.touches_network:
            options |= {
                "retries": 2,
                "retry_delay_seconds": [5, 30],
                "retry_condition_fn": _retry_unless_input_error,
            }
        state = run_stage.with_options(name=name, **options)(
            name, str(Path(params_file)), force, nothing_ran and name in current, return_state=True
        )
        if state.is_failed():
            return Failed(message=f"{name}: {state.message}")
        results[spec.step] = cast(dict[str, Any], state.result())  # it did not fail
        nothing_ran = nothing_ran and bool(results[spec.step].get("skipped"))
    report = publish_report(domain, str(Path(params_file)), return_state=True)
    if report.is_failed():  # the model is registered: a report's failure does not undo it
        get_run_logger().warning("the run's report was not published: %s", report.message)
    if root is not None:
        pushed = push_data(names, str(root), return_state=True)
        if pushed.is_failed():
            return Failed(message=f"dvc push: {pushed.message}")
    return results
