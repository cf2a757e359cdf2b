"""What the OpenAPI schema says beyond FastAPI's own: every refusal's status and body
(:class:`~nnpipe.serving.errors.ErrorBody`), the 401 of a route behind the key, and the
JSON bodies the handlers parse themselves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from nnpipe.serving.settings import ServeSettings

SCHEMA_REF = "#/components/schemas/{model}"
POSTED = (400, 404, 413, 415, 422, 503)  # what a prediction route may refuse with
DESCRIBED = {
    400: "a malformed request (Content-Length, multipart form)",
    401: "no valid API key (X-API-Key or Authorization: Bearer)",
    404: "the model (domain or series) is not served here",
    413: "the body is over the size limit",
    415: "a content type the endpoint does not read",
    422: "the input cannot be predicted on; `error` says why",
    503: "the model is not loaded (yet); `error` says why",
}


def answers(settings: ServeSettings, *codes: int, path: str = "") -> dict[int | str, Any]:
    """The refusals a route declares (and its 401, behind the key), each an ErrorBody."""
    if settings.api_key and not settings.is_open(path):
        codes = (*codes, 401)
    # JSON whatever the route's own media type (/metrics is text): said explicitly
    error_body = {"application/json": {"schema": {"$ref": SCHEMA_REF.format(model="ErrorBody")}}}
    return {c: {"description": DESCRIBED[c], "content": error_body} for c in sorted(codes)}


def add_bodies(app: FastAPI, models: Sequence[type[BaseModel]]) -> None:
    """FastAPI's schema, with ``models`` (and the models they use) in its components."""
    bodies = {m.__name__: m.model_json_schema(ref_template=SCHEMA_REF) for m in models}
    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        schema = base_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, body in bodies.items():
            components.update(body.get("$defs", {}))
            components[name] = {k: v for k, v in body.items() if k != "$defs"}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
