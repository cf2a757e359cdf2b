"""``nnpipe serve``: the prediction API over the registered champions.

FastAPI (on uvicorn): MLflow 3's own scoring server already brings both, so serving adds
no dependency; it validates requests with pydantic and writes the OpenAPI schema.

This module wires the app: the middleware (:mod:`.middleware`: the API key checked before
the body is read, the body counted as it streams in and cut off at the limit with 413),
the refusals (:mod:`.errors`), the metrics (:mod:`.metrics`), the routes every server has
(:mod:`.routes`) and one router per registered domain, which the domain's ``api_router``
hook makes (``nnpipe.domains.<name>.api``); its handlers take their models from the model
store (:mod:`.store`: the alias poller, the loaded versions, the refused ones).

The event loop does no work whose cost a client chooses: decoding, parsing a JSON body
and running a model happen in worker threads (:mod:`.workers`; one model run at a time
per model, since a LiteRT interpreter is not thread-safe), so a slow request never holds
up ``/health`` or another client. Every request is bounded before the work it would cost
is done, by the limits in :class:`~nnpipe.serving.settings.ServeSettings`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from pydantic import BaseModel

from nnpipe.domains.registry import DOMAINS
from nnpipe.serving.auth import DOCS_ASSETS
from nnpipe.serving.endpoints import DomainRouter
from nnpipe.serving.errors import ErrorBody, add_error_handlers
from nnpipe.serving.metrics import RequestMetrics
from nnpipe.serving.middleware import Guard
from nnpipe.serving.openapi import add_bodies
from nnpipe.serving.routes import shared_router
from nnpipe.serving.settings import ServeSettings
from nnpipe.serving.store import ModelStore

__all__ = ["ModelStore", "ServeSettings", "create_app", "domain_routers", "request_models"]


def domain_routers(store: ModelStore, settings: ServeSettings) -> list[DomainRouter]:
    """Every registered domain's routes, in the registry's order (a route of a domain
    this server does not serve says so, with 404)."""
    return [domain.api_router(store, settings) for domain in DOMAINS.values()]


def request_models(settings: ServeSettings) -> tuple[type[BaseModel], ...]:
    """The JSON bodies of every domain's routes, with this server's limits in their
    schema (so the OpenAPI says them, and pydantic refuses an oversized array before any
    array is made), in the registry's order."""
    routers = domain_routers(ModelStore(settings), settings)
    return tuple(body for router in routers for body in router.bodies)


def create_app(
    settings: ServeSettings, store: ModelStore | None = None, poll: bool = True
) -> FastAPI:
    """The FastAPI application (models loaded at start-up; the alias poller started)."""
    from fastapi_offline import FastAPIOffline

    store = store or ModelStore(settings)
    metrics = RequestMetrics()
    routers = domain_routers(store, settings)
    # /docs from Swagger UI's files in the fastapi-offline package, not a CDN: the page
    # works on a machine with no network (the validator badge, a remote call, is off)
    app = FastAPIOffline(
        title="nnpipe",
        version="1",
        lifespan=_lifespan(store, poll),
        redoc_url=None,
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},
        description="Predictions from the registered champions of nnpipe's pipelines "
        f"({', '.join(_lowered(domain.title) for domain in DOMAINS.values())}).",
    )
    app.add_middleware(Guard, settings=settings, metrics=metrics)
    add_error_handlers(app, metrics, _fields_at(routers))
    app.include_router(shared_router(store, settings, metrics))
    for router in routers:
        app.include_router(router)
    add_bodies(app, [*(body for router in routers for body in router.bodies), ErrorBody])
    app.state.store = store
    return app


def _lifespan(
    store: ModelStore, poll: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store.refresh()
        if poll:
            store.start_polling()
        yield
        store.stop()

    return lifespan


def _fields_at(routers: list[DomainRouter]) -> Callable[[str], str]:
    """The JSON fields the route at a path accepts (a validation error of its query
    names them)."""
    fields = {path: router.fields for router in routers for path in router.paths()}
    return lambda path: fields.get(path, "")


def _lowered(title: str) -> str:
    return title[:1].lower() + title[1:]
