"""The monitor's alarm as a Prefect event: the retraining deployment of the model's
domain has a trigger on it (``prefect.yaml``), so an alarm starts a training flow run.

The event's resource is the registered model (``nnpipe.model.<name>``), so one trigger
per domain matches its models by name; the payload says why, for the flow run's logs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from nnpipe.monitoring.alarm import ALARM_EVENT, resource_id

if TYPE_CHECKING:
    from nnpipe.monitoring.report import MonitorReport

__all__ = ["ALARM_EVENT", "emit_alarm"]

log = logging.getLogger(__name__)


def emit_alarm(report: MonitorReport, slot: str) -> str | None:
    """Emit the alarm to the configured Prefect server; the event's id, or None when no
    server is configured (PREFECT_API_URL unset: a temporary server would hear nobody)."""
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        return None
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    event = emit_event(
        event=ALARM_EVENT,
        resource={
            "prefect.resource.id": resource_id(report.model.name),
            "prefect.resource.name": report.model.name,
            "nnpipe.domain": report.domain,
            "nnpipe.slot": slot,
            "nnpipe.model_version": report.model.version,
        },
        payload={
            # one line: the training flow's `reason` parameter (a string) is made from it
            "reason": f"the monitor's alarm for {report.model.name} v{report.model.version}: "
            + "; ".join(report.alarm_reasons),
            "reasons": report.alarm_reasons,
            "drifted_checks": report.drifted_checks,
            "rows": report.rows,
            "window": report.window.model_dump(mode="json"),
        },
    )
    EventsWorker.drain_all(timeout=30, at_exit=False)  # sent before this process ends
    if event is None:
        return None
    log.info("monitor: emitted %s for %s (event %s)", ALARM_EVENT, report.model.name, event.id)
    return str(event.id)
