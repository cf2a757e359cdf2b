"""What every domain's prediction routes share: the router a domain's ``api_router`` hook
returns, and reading a request's body as it streams in, parsing it as JSON (a worker's
work) and refusing it in one line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError

from nnpipe.serving.errors import describe_errors
from nnpipe.serving.predictor import PredictionInputError


class DomainRouter(APIRouter):
    """A domain's routes, with the JSON bodies their handlers parse themselves (off the
    event loop, so FastAPI never sees them): the app adds those to its OpenAPI schema's
    components, where the routes' ``openapi_extra`` refers to them by name."""

    def __init__(self, bodies: Sequence[type[BaseModel]]) -> None:
        super().__init__()
        self.bodies = tuple(bodies)

    @property
    def fields(self) -> str:
        """The JSON fields its routes accept, as a refusal names them."""
        return ", ".join(f"`{f}`" for body in self.bodies for f in body.model_fields)

    def paths(self) -> list[str]:
        return [getattr(route, "path", "") for route in self.routes]


async def body_bytes(request: Request) -> bytes:
    data = bytearray()
    async for chunk in request.stream():  # the Guard cuts it off at the limit
        data += chunk
    return bytes(data)


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def parsed(model: type[BaseModel], body: bytes, what: str) -> Any:
    """The body validated as ``model``, or a refusal naming what was wrong in one line."""
    fields = ", ".join(f"`{f}`" for f in model.model_fields)
    if not body.strip():
        raise PredictionInputError(f"the body is empty; send a JSON object with {fields}")
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise PredictionInputError(
            f"{what} ({len(body):,} bytes) is not accepted: {describe_errors(exc.errors(), fields)}"
        ) from None


def numeric_array(value: Any, what: str, shape_hint: str) -> np.ndarray:
    """A JSON list as a float array, or a message saying the rows are ragged."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise PredictionInputError(
            f"{what} must be a numeric array of {shape_hint}, with rows of one length"
        ) from None
