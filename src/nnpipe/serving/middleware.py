"""The ASGI middleware in front of every route: the API key checked from the headers before
any of the body is read, the body counted as it streams in (chunked or not) and cut off at
the limit with 413, a JSON 500 instead of a bare one, a client that left recorded as such
(499: no traceback, no 500), and the request metrics. A plain ASGI middleware: Starlette's
BaseHTTPMiddleware would buffer and cost a task per request."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from nnpipe.serving.auth import authorised
from nnpipe.serving.errors import too_large_message
from nnpipe.serving.metrics import RequestMetrics
from nnpipe.serving.settings import ServeSettings

log = logging.getLogger(__name__)

DISCONNECTED = 499  # the status recorded for a client that left (nginx's convention)
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyTooLarge(StarletteHTTPException):
    """A request body over the size limit, found while it streamed in: raised from the
    ASGI ``receive`` so whatever is reading the body stops there (an HTTPException, so
    FastAPI's own body reader passes it on instead of calling it a parse error)."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


class Exchange:
    """One request as the Guard sees it: its headers, the status answered, whether the
    answer started, the body bytes received and whether the client left first."""

    def __init__(self, scope: Message, receive: Receive, send: Send, limit: int) -> None:
        self.scope, self.raw_receive, self._send, self.limit = scope, receive, send, limit
        self.headers: dict[bytes, bytes] = dict(scope["headers"])
        self.kind = self.header(b"content-type").split(";")[0].strip()
        self.status, self.started, self.left, self.received = 500, False, False, 0

    def header(self, name: bytes) -> str:
        return self.headers.get(name, b"").decode("latin-1")

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status, self.started = message["status"], True
        await self._send(message)

    async def receive(self) -> Message:
        """The next body message, counted: over the limit, the body ends in a 413."""
        message = await self.raw_receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                raise BodyTooLarge(too_large_message(f"over {self.limit:,}", self.kind, self.limit))
        elif message["type"] == "http.disconnect":
            self.left = not self.started
        return message


class Guard:
    """The middleware (see the module's docstring)."""

    def __init__(self, app: Any, settings: ServeSettings, metrics: RequestMetrics) -> None:
        self.app, self.settings, self.metrics = app, settings, metrics

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        path = scope["path"]
        exchange = Exchange(scope, receive, send, self.settings.max_request_bytes)
        refused = self.refused_from_headers(path, exchange)
        if refused is not None:
            await self.refuse(exchange, *refused)
        else:
            await self.forward(exchange)
        if exchange.left:
            log.info("serve: the client left before %s was answered", path)
            exchange.status = DISCONNECTED
        route = scope.get("route")  # the template: no label per unknown path
        self.metrics.record(
            getattr(route, "path", "unmatched"),
            exchange.status,
            time.perf_counter() - start,
            "client_left" if exchange.left else None,
        )

    def refused_from_headers(self, path: str, exchange: Exchange) -> tuple[int, str, str] | None:
        """(status, message, reason) of a request refused before its body is read."""
        length, limit = exchange.header(b"content-length").strip(), exchange.limit
        if not self.settings.is_open(path) and not authorised(
            exchange.headers, self.settings.api_key
        ):
            return (
                401,
                "a valid API key is required (header X-API-Key, or Authorization: Bearer)",
                "unauthorised",
            )
        if length and not length.isdigit():
            return (
                400,
                f"the Content-Length header ({length[:40]}) is not a number of bytes",
                "bad_length",
            )
        if length and int(length) > limit:
            return 413, too_large_message(f"{int(length):,}", exchange.kind, limit), "too_large"
        return None

    async def forward(self, exchange: Exchange) -> None:
        """The request through the app; what it raises answered, if nothing was yet."""
        path = exchange.scope["path"]
        try:
            await self.app(exchange.scope, exchange.receive, exchange.send)
        except BodyTooLarge as exc:
            if not exchange.started:
                await self.refuse(exchange, 413, str(exc.detail), "too_large")
        except Exception as exc:
            if exchange.left or isinstance(exc, ClientDisconnect):
                exchange.left = True
            elif not exchange.started:  # never a bare 500 page; say what happened
                log.exception("serve: %s failed", path)
                await self.refuse(
                    exchange,
                    500,
                    f"internal error: {type(exc).__name__} (the server's log has the details)",
                    "internal",
                )
            else:
                log.exception("serve: %s failed after its answer started", path)

    async def refuse(self, exchange: Exchange, status: int, message: str, reason: str) -> None:
        response = self.metrics.refusal(status, message, exchange.scope["path"], reason, True)
        await response(exchange.scope, exchange.raw_receive, exchange.send)
