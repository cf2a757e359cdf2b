"""Who may call what: the API key (header ``X-API-Key``, or ``Authorization: Bearer``),
checked by :class:`~nnpipe.serving.middleware.Guard` from the headers before any of the
body is read, and the routes open without it: the probes always, the routes named in
``serve.public_routes`` where asked, every route where no key is set."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import Security
from fastapi.security import APIKeyHeader

if TYPE_CHECKING:
    from nnpipe.serving.settings import ServeSettings

DOCS_ASSETS = "/docs/assets"  # Swagger UI's JS and CSS, served from a package
OPEN_ROUTES = ("/health", "/ready")  # probes: never behind the API key
PUBLIC_CHOICES = {
    "models": ("/models",),
    "metrics": ("/metrics",),
    "docs": ("/docs", "/docs/oauth2-redirect", "/openapi.json"),
}


def route_is_open(api_key: str | None, public_routes: Sequence[str], path: str) -> bool:
    """Whether ``path`` answers without the API key (always, when no key is set)."""
    if api_key is None or path in OPEN_ROUTES:
        return True
    public = [p for name in public_routes for p in PUBLIC_CHOICES[name]]
    return path in public or ("docs" in public_routes and path.startswith(DOCS_ASSETS + "/"))


def authorised(headers: dict[bytes, bytes], api_key: str | None) -> bool:
    """Whether the request's headers carry the key (compared in constant time)."""
    key = api_key or ""
    given = (
        headers.get(b"x-api-key", b"").decode("latin-1")
        or headers.get(b"authorization", b"").decode("latin-1").removeprefix("Bearer ").strip()
    )
    return hmac.compare_digest(given.encode("utf-8", "replace"), key.encode())


def key_dependencies(settings: ServeSettings, path: str) -> list[Any]:
    """The route's dependencies that declare the key in the OpenAPI (the Guard checks it,
    before FastAPI sees the request): none on a route open without it."""
    if settings.is_open(path):
        return []
    header = APIKeyHeader(
        name="X-API-Key", auto_error=False, description="NNPIPE_API_KEY (or Authorization: Bearer)"
    )
    return [Security(header)]
