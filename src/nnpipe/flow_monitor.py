"""Prefect adapter of the monitor: its flow's one task (the monitor stage, in the flow's
process: it is quick and trains nothing) and its report published as an artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.states import Failed, State

from nnpipe import run_report
from nnpipe.config import load_params
from nnpipe.domains.registry import get_domain
from nnpipe.errors import NnpipeError
from nnpipe.flow_tasks import INPUT_ERROR, send_nnpipe_logs_to_prefect
from nnpipe.stages import tracking_errors_reported


def describe_monitor_flow(domain: str) -> str:
    return (
        f"{get_domain(domain).title}: the deployed model's monitor. Compares the prediction "
        "log's last window (or a batch) with the model's training data (drift checks, each "
        "at its threshold in params), scores logged predictions once their truth is known, "
        f"publishes the artifact {run_report.artifact_key(domain, 'monitor')} and, on an "
        "alarm, emits the event that triggers the training deployment."
    )


@task(name="monitor", cache_policy=NO_CACHE)
def _monitor(
    domain: str, params_file: str, hours: float | None, batch: str | None, labels: str | None
) -> dict[str, Any] | State:
    from nnpipe.stages.monitor import MonitorRequest, run

    request = MonitorRequest(
        batch=Path(batch) if batch else None,
        labels=Path(labels) if labels else None,
        hours=hours,
    )
    try:
        with tracking_errors_reported():
            return run(load_params(params_file), domain, request)
    except NnpipeError as exc:  # nothing to compare is an outcome: its line, no traceback
        get_run_logger().error("%s-monitor: %s", domain, exc)
        return Failed(name=INPUT_ERROR, message=str(exc))


def monitor_domain(
    domain: str,
    params_file: str = "params.yaml",
    hours: float | None = None,
    batch: str | None = None,
    labels: str | None = None,
) -> dict[str, Any] | State:
    """The monitor of one domain as a flow: its report published as the markdown
    artifact ``<domain>-monitor``; an input it cannot compare (an empty window, a model
    without reference statistics) fails the run with that message, not a traceback."""
    from nnpipe.monitoring.report import MonitorReport, markdown

    send_nnpipe_logs_to_prefect()
    state = _monitor(domain, params_file, hours, batch, labels, return_state=True)
    if state.is_failed():
        return Failed(message=f"{domain}-monitor: {state.message}")
    result = cast(dict[str, Any], state.result())
    reports = [MonitorReport.model_validate(r) for r in result["reports"]]
    create_markdown_artifact(
        markdown=markdown(reports),
        key=run_report.artifact_key(domain, "monitor"),
        description=f"{domain}: drift of the served inputs and live performance",
    )
    return result
