"""MLflow's HTTP to a tracking server, bounded, and its outage told plainly.

Apart from :mod:`nnpipe.tracking` so a stage command can name an outage without importing
what tracking imports (TensorFlow, the serving code): DVC lists a stage's own imports as
its dependencies, and an edit to those must not re-run every stage.
"""

from __future__ import annotations

import os

import mlflow
from mlflow.exceptions import MlflowException

from nnpipe.config import Params
from nnpipe.errors import NnpipeError


class TrackingUnavailable(NnpipeError):
    """The tracking server did not answer (down, unreachable, or stalled)."""


HTTP_SETTINGS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "http_timeout_seconds",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "http_max_retries",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "http_backoff_factor",
}
HTTP_JITTER = "0.5"  # seconds of random jitter per retry (MLflow's default: 1)
_user_http_env: dict[str, str | None] | None = None  # the environment before nnpipe set it


def configure_http(params: Params) -> None:
    """Bound MLflow's requests to a server: MLflow reads these variables on every request,
    and its defaults (7 retries, 120 s timeouts, backoff to 2 min) kept a stage waiting
    12 minutes on a server that was down. The user's environment wins over params."""
    global _user_http_env
    if _user_http_env is None:
        _user_http_env = {
            k: os.environ.get(k) for k in (*HTTP_SETTINGS, "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER")
        }
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
        reachable = not (
            text.startswith("API request to ")
            and "failed with" in text
            and ("exception" in text or "Max retries" in text)
        )
    else:
        reachable = not isinstance(
            exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
        )
    if reachable:
        return None
    uri = mlflow.get_tracking_uri()
    cause = (
        "it did not answer within MLFLOW_HTTP_REQUEST_TIMEOUT="
        f"{os.environ.get('MLFLOW_HTTP_REQUEST_TIMEOUT', '?')} s"
        if "timeout" in text.lower() or "timed out" in text.lower()
        else "connection refused or unreachable"
    )
    retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "?")
    return TrackingUnavailable(
        f"the MLflow tracking server at {uri} is not answering ({cause}; tried "
        f"{int(retries) + 1 if retries.isdigit() else '?'} times). Start it (e.g. "
        f"`mlflow server --host 127.0.0.1 --port {_port(uri)} --backend-store-uri ...`), "
        "or point mlflow.tracking_uri in params.yaml (or MLFLOW_TRACKING_URI) at a running "
        "one, then run again (the next run ends what this one left RUNNING or PENDING)"
    )


def _port(uri: str) -> str:
    from urllib.parse import urlsplit

    try:
        return str(urlsplit(uri).port or 5000)
    except ValueError:
        return "5000"
