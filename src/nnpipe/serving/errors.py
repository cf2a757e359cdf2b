"""How the API refuses: one JSON line (``{"error": ...}``) saying what was wrong and how to
send it instead, never a Python repr nor a bare 500 page; and the exception handlers that
turn nnpipe's errors, FastAPI's validation errors and Starlette's HTTP errors into it."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from nnpipe.errors import NnpipeError
from nnpipe.serving.predictor import PredictionInputError
from nnpipe.serving.registry import ModelNotFoundError
from nnpipe.serving.store import NotServedError

if TYPE_CHECKING:
    from nnpipe.serving.metrics import RequestMetrics

_REPR = re.compile(r"\s*<[^<>]*\bat 0x[0-9a-fA-F]+>")
_TAG = re.compile(r"[\[\]]|^constrained-|^function-")  # pydantic's union branch names


class ErrorBody(BaseModel):
    """Every refusal: one line saying what was wrong and how to send it instead."""

    error: str


class UnsupportedMediaType(Exception):
    """A request body of a content type the endpoint does not read."""

    def __init__(self, sent: str, accepted: str) -> None:
        super().__init__(sent)
        self.sent, self.accepted = sent, accepted


def plain(message: str) -> str:
    """A message with any Python repr (``<_io.BytesIO object at 0x...>``) taken out."""
    return _REPR.sub("", message)


def error_response(
    status: int, message: str, close: bool = False, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    # close: the rest of an unread body is not worth reading, nor the connection
    extra = {**(headers or {}), **({"connection": "close"} if close else {})}
    return JSONResponse({"error": plain(message)}, status_code=status, headers=extra or None)


def too_large_message(size: str, kind: str, limit: int) -> str:
    return (
        f"the request body ({size} bytes, {kind or 'no content type'}) is over the "
        f"limit of {limit:,} bytes ({limit / 2**20:g} MiB): send a smaller body, "
        "or start the server with a larger serve.max_request_mb (--max-request-mb)"
    )


def describe_errors(errors: Sequence[Any], fields: str, shown: int = 3) -> str:
    """Pydantic's validation errors as one line: where, and what was expected; unknown
    fields and broken JSON said plainly (never the input's repr); the first few only."""
    parts: list[str] = []
    for e in errors:
        # no union tags (`list[list[constrained-float]]`): where in the JSON, only
        loc = [str(p) for p in e.get("loc", ()) if p != "body" and not _TAG.search(str(p))]
        where = ".".join(loc)
        if e.get("type") == "extra_forbidden":
            parts.append(f"unknown field `{where}` (accepted fields: {fields})")
        elif e.get("type") in ("json_invalid", "json_type"):
            why = (e.get("ctx") or {}).get("error") or e.get("msg", "")
            parts.append(f"not valid JSON ({why})")
        elif e.get("type") == "missing" and not where:
            parts.append(f"the body is empty; send a JSON object with {fields}")
        elif e.get("type") == "missing" and loc[-1].isdigit():  # a short row (a tuple)
            parts.append(f"`{'.'.join(loc[:-1])}` has too few items")
        else:
            parts.append(f"{f'`{where}`' if where else 'the body'}: {e.get('msg', 'invalid')}")
    parts = list(dict.fromkeys(parts))
    more = f"; and {len(parts) - shown} more" if len(parts) > shown else ""
    return "; ".join(parts[:shown]) + more


def add_error_handlers(
    app: FastAPI, metrics: RequestMetrics, fields_at: Callable[[str], str]
) -> None:
    """Every error a route raises, answered as an :class:`ErrorBody` and counted;
    ``fields_at(path)``: the JSON fields the route at ``path`` accepts."""

    @app.exception_handler(PredictionInputError)
    @app.exception_handler(NnpipeError)
    async def bad_input(request: Request, exc: NnpipeError) -> JSONResponse:
        path = request.url.path
        if isinstance(exc, ModelNotFoundError):
            return metrics.refusal(503, str(exc), path, "no_model")
        if isinstance(exc, NotServedError):
            return metrics.refusal(404, str(exc), path, "not_served")
        return metrics.refusal(422, str(exc), path, "bad_input")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        path = request.url.path
        described = describe_errors(exc.errors(), fields_at(path))
        return metrics.refusal(422, f"invalid request: {described}", path, "invalid")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        path, status = request.url.path, exc.status_code
        if status == 404:
            message = f"no endpoint at {path}; the endpoints are listed at /docs"
        elif status == 405:
            message = f"{request.method} is not accepted at {path}; see /docs"
        else:
            message = str(exc.detail)
        reason = "too_large" if status == 413 else "http"
        return metrics.refusal(status, message, path, reason, status == 413, exc.headers)

    @app.exception_handler(UnsupportedMediaType)
    async def unsupported(request: Request, exc: UnsupportedMediaType) -> JSONResponse:
        path = request.url.path
        message = f"the request body ({exc.sent}) is not accepted at {path}; send {exc.accepted}"
        return metrics.refusal(415, message, path, "media_type")
