"""The routes every server has, whichever domains it serves: liveness (``/health``),
readiness (``/ready``), what is served (``/models``) and the Prometheus metrics
(``/metrics``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from nnpipe.serving.auth import key_dependencies
from nnpipe.serving.metrics import RequestMetrics
from nnpipe.serving.openapi import answers
from nnpipe.serving.settings import ServeSettings
from nnpipe.serving.store import ModelStore


def readiness(store: ModelStore, settings: ServeSettings) -> tuple[dict[str, Any], int]:
    """``/ready``'s body and status: 503 while a model asked for is not loaded."""
    missing = {k: store.problems.get(k, "loading") for k in settings.models if k not in store.slots}
    body: dict[str, Any] = {
        "ready": not missing,
        "alias": settings.alias,
        "models": {k: s.deployable.version for k, s in store.slots.items()},
        "problems": missing,
    }
    if store.refused:  # served on the previous version, or not at all
        body["refused"] = dict(store.refused)
    if missing:
        body["waiting_for"] = {k: f"{settings.models[k]}@{settings.alias}" for k in missing}
    # a broken log is reported, never a reason to take the server out of rotation:
    # predictions go on (and are counted as dropped) while it is fixed
    body["prediction_log"] = (
        store.prediction_log.status() if store.prediction_log is not None else {"ok": None}
    )
    return body, 200 if not missing else 503


def shared_router(store: ModelStore, settings: ServeSettings, metrics: RequestMetrics) -> APIRouter:
    router = APIRouter()

    @router.get("/health", summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/ready",
        summary="Readiness: every model this server was asked to serve is loaded",
        responses={503: {"description": "a model is not loaded; the body says which"}},
    )
    async def ready() -> JSONResponse:
        body, status = readiness(store, settings)
        return JSONResponse(body, status_code=status)

    @router.get(
        "/models",
        summary="What is served: name, version, alias, variant, metrics",
        dependencies=key_dependencies(settings, "/models"),
        responses=answers(settings, path="/models"),
    )
    async def models() -> dict[str, Any]:
        return {
            "alias": settings.alias,
            "poll_seconds": settings.poll_seconds,
            "models": {k: s.describe() for k, s in store.slots.items()},
            "problems": store.problems,
        }

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        dependencies=key_dependencies(settings, "/metrics"),
        responses=answers(settings, path="/metrics"),
    )
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    if store.prediction_log is not None:
        metrics.watch_prediction_log(store.prediction_log)

    return router
