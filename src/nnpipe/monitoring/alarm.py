"""The monitor's alarm as Prefect knows it: the event's name and the resource it is about
(the registered model), shared by the monitor that emits it (:mod:`nnpipe.monitor_events`)
and the training deployments' triggers that listen for it (``prefect.yaml``)."""

from __future__ import annotations

ALARM_EVENT = "nnpipe.monitor.alarm"
RESOURCE_PREFIX = "nnpipe.model."


def resource_id(model_name: str) -> str:
    return f"{RESOURCE_PREFIX}{model_name}"
