"""``nnpipe serve``: the prediction API over the registered champions.

FastAPI (on uvicorn): MLflow 3's own scoring server already brings both, so serving adds
no dependency; it validates requests with pydantic and writes the OpenAPI schema.

The event loop does no work whose cost a client chooses: decoding and resizing images,
parsing a JSON body and running a model happen in worker threads (at most
``decode_threads`` at once; one model run at a time per model, since a LiteRT interpreter
is not thread-safe), so a slow request never holds up ``/health`` or another client. Only
a request of a few small images (by their headers, and by their encoded bytes) is decoded
and run on the loop, where a thread hop would cost more than the work. Every request is
bounded before the work it would cost is done: the API key is checked before the body is
read, the body is counted as it streams in (chunked or not) and cut off at the limit with
413, an image is refused by the size its header declares (a request by the pixels
preprocessing will allocate for its images: a non-square one is padded to a square),
arrays by their lengths (schema limits), and OHLCV windows by ingest's bar rules.

Each served model is a registered version found by alias in the configured registry
(:mod:`nnpipe.serving.registry`) and run by the same predictor code as the MLflow pyfunc
(:mod:`nnpipe.serving.predictor`), so preprocessing is training's. A poller moves a model
to the version its alias points to now: the new one is loaded beside the old, then
swapped in one assignment; a request holds the model it started with. A version the
safe loader refuses (:class:`~nnpipe.errors.RefusedModelError`) is logged, shown in
``/ready`` and ``/models`` and not tried again until the alias moves; the previous one
serves on.
"""

from __future__ import annotations

import base64
import hmac
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import APIKeyHeader
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from nnpipe.errors import NnpipeError, RefusedModelError
from nnpipe.serving.predictor import PredictionInputError, Predictor, load_predictor
from nnpipe.serving.registry import (
    ModelNotFoundError,
    RegisteredDeployable,
    alias_version,
    client_for,
    resolve,
)

log = logging.getLogger(__name__)

IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg", "application/octet-stream")
DOCS_ASSETS = "/docs/assets"  # Swagger UI's JS and CSS, served from a package
OPEN_ROUTES = ("/health", "/ready")  # probes: never behind the API key
PUBLIC_CHOICES = {
    "models": ("/models",),
    "metrics": ("/metrics",),
    "docs": ("/docs", "/docs/oauth2-redirect", "/openapi.json"),
}
MAX_PRICE = 1e9  # per share: 1e300 is no price, and a model fed it answers nonsense
MAX_VOLUME = 1e15
MAX_FEATURE = 1e15  # any raw window value (volumes included)
MAX_FEATURES = 64  # values per window row
DISCONNECTED = 499  # the status recorded for a client that left (nginx's convention)
# Small X-ray work stays on the event loop: a thread hop and the GIL hand-offs it brings
# cost more than decoding a radiograph this small, or a LiteRT run on a few images.
INLINE_SIDE, INLINE_IMAGES = 512, 4  # longest side of each image (padded to a square)
INLINE_BYTES = 2**16  # encoded size of each image (base64: its text): inflating costs too
INLINE_MODEL_PIXELS = 4 * 128 * 128  # model-input pixels of a batch (LiteRT only)
_REPR = re.compile(r"\s*<[^<>]*\bat 0x[0-9a-fA-F]+>")
_TAG = re.compile(r"[\[\]]|^constrained-|^function-")  # pydantic's union branch names


class ServeSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tracking_uri: str
    models: dict[str, str]  # slot ("xray", "ohlcv/SYNTH") -> registered model name
    alias: str = "champion"
    poll_seconds: float = Field(30.0, gt=0)
    api_key: str | None = None
    public_routes: tuple[Literal["models", "metrics", "docs"], ...] = ()
    max_request_bytes: int = Field(10 * 2**20, gt=0)
    max_batch: int = Field(256, gt=0)
    max_pixels: int = Field(4096 * 4096, gt=0)
    max_side: int = Field(4096, gt=0)
    max_batch_pixels: int = Field(4 * 4096 * 4096, gt=0)
    max_bars: int = Field(10_000, gt=0)
    decode_threads: int = Field(2, ge=1)
    threads: int = Field(1, ge=1)

    def is_open(self, path: str) -> bool:
        """Whether ``path`` answers without the API key (always, when no key is set)."""
        if self.api_key is None or path in OPEN_ROUTES:
            return True
        public = [p for name in self.public_routes for p in PUBLIC_CHOICES[name]]
        return path in public or (
            "docs" in self.public_routes and path.startswith(DOCS_ASSETS + "/")
        )


@dataclass
class Slot:
    """One served model: the version its alias pointed to when loaded, and its predictor."""

    key: str
    deployable: RegisteredDeployable
    predictor: Predictor
    loaded_at: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one model run at a time

    def describe(self) -> dict[str, Any]:
        d, spec = self.deployable, self.predictor.spec
        return {
            "name": d.name,
            "version": d.version,
            "alias": d.alias,
            "run_id": d.run_id,
            "variant": spec.get("variant"),
            "format": spec.get("format"),
            "data_hash": d.tags.get("data_hash"),
            "threshold": spec.get("threshold"),
            "metrics": {
                k: v
                for k, v in (spec.get("measured") or {}).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool)
            },
            "promotion_reason": spec.get("reason"),
            "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at)),
        }


class ModelStore:
    """The served models, kept on the version their alias points to."""

    def __init__(
        self,
        settings: ServeSettings,
        loader: Callable[[str, str], RegisteredDeployable] | None = None,
    ) -> None:
        self.settings = settings
        self.slots: dict[str, Slot] = {}
        self.problems: dict[str, str] = {}
        self.refused: dict[str, dict[str, str]] = {}  # slot -> the version refused, why
        self._resolve = loader or (lambda name, alias: resolve(settings.tracking_uri, name, alias))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = None

    def refresh(self) -> list[str]:
        """Load every model whose alias moved (or that is not loaded yet); what changed."""
        changed = []
        if self._client is None:
            self._client = client_for(self.settings.tracking_uri)
        client = self._client
        for key, name in self.settings.models.items():
            current, version = self.slots.get(key), None
            try:
                version = alias_version(client, name, self.settings.alias)
                if version is None:
                    raise ModelNotFoundError(
                        f"{name} has no version under the alias {self.settings.alias!r} yet"
                    )
                if current is not None and current.deployable.version == version:
                    self.problems.pop(key, None)
                    self.refused.pop(key, None)
                    continue
                if self.refused.get(key, {}).get("version") == version:
                    continue  # refused once (and said so); the previous version serves on
                deployable = self._resolve(name, self.settings.alias)
                slot = Slot(
                    key, deployable, load_predictor(deployable.deploy_dir, self.settings.threads)
                )
                self.slots[key] = slot  # one assignment: requests in flight keep the old one
                self.problems.pop(key, None)
                self.refused.pop(key, None)
                before = f"v{current.deployable.version}" if current else "nothing"
                log.info(
                    "serve: %s: %s@%s moved from %s to v%s (%s)",
                    key,
                    name,
                    self.settings.alias,
                    before,
                    deployable.version,
                    slot.predictor.variant,
                )
                changed.append(key)
            except Exception as exc:  # a registry hiccup must never take the server down
                problem = (
                    str(exc) if isinstance(exc, NnpipeError) else f"{type(exc).__name__}: {exc}"
                )
                if isinstance(exc, RefusedModelError):  # not retried until the alias moves
                    problem = f"v{version} refused: {problem}; " + (
                        f"still serving v{current.deployable.version}"
                        if current
                        else "nothing served"
                    )
                    self.refused[key] = {"version": str(version), "reason": problem}
                if self.problems.get(key) != problem:  # once, not at every poll
                    log.warning(
                        "serve: %s: cannot load %s@%s: %s", key, name, self.settings.alias, problem
                    )
                self.problems[key] = problem
        return changed

    def start_polling(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.settings.poll_seconds):
                try:
                    self.refresh()
                except Exception:  # the poller outlives any registry failure
                    log.exception("serve: polling the registry failed; trying again")

        self._thread = threading.Thread(target=loop, name="nnpipe-alias-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def get(self, key: str) -> Slot:
        if key not in self.settings.models:
            served = ", ".join(self.settings.models) or "nothing"
            raise NotServedError(
                f"this server does not serve {key!r} (it serves {served}; "
                "choose with `nnpipe serve --domain`)"
            )
        slot = self.slots.get(key)
        if slot is None:
            raise ModelNotFoundError(
                f"{key} is not loaded yet: {self.problems.get(key, 'loading')}"
            )
        return slot


class NotServedError(NnpipeError, LookupError):
    """A model (domain or series) this server was not asked to serve."""


class UnsupportedMediaType(Exception):
    """A request body of a content type the endpoint does not read."""

    def __init__(self, sent: str, accepted: str) -> None:
        super().__init__(sent)
        self.sent, self.accepted = sent, accepted


class BodyTooLarge(StarletteHTTPException):
    """A request body over the size limit, found while it streamed in: raised from the
    ASGI ``receive`` so whatever is reading the body stops there (an HTTPException, so
    FastAPI's own body reader passes it on instead of calling it a parse error)."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


XRAY_ACCEPTED = (
    "a PNG or JPEG image: multipart/form-data with the image as a `file` "
    "field (curl -F file=@image.png), a raw image/png or image/jpeg body, or "
    'JSON {"image": base64} / {"images": [base64, ...]} / {"data": pixel rows '
    "0..255}"
)


@dataclass(frozen=True)
class Sent:
    """What a client sent, the way error messages name it: never a Python repr."""

    what: str  # "file 'notes.txt'", "the request body", "`images[2]`"
    content_type: str
    size: int

    def __str__(self) -> str:
        return f"{self.what} ({self.content_type or 'no content type'}, {self.size:,} bytes)"


class ErrorBody(BaseModel):
    """Every refusal: one line saying what was wrong and how to send it instead."""

    error: str


def request_models(settings: ServeSettings) -> tuple[type[BaseModel], type[BaseModel]]:
    """The JSON bodies of the X-ray and OHLCV endpoints, with this server's limits in their
    schema (so the OpenAPI says them, and pydantic refuses an oversized array before any
    array is made)."""
    side, batch, rows = settings.max_side, settings.max_batch, settings.max_bars
    # strict: `false` or "1.5" is no number here (lax pydantic would take them)
    Pixel = Annotated[float, Field(ge=0, le=255, strict=True, allow_inf_nan=False)]
    Row = Annotated[list[Pixel], Field(min_length=1, max_length=side)]
    Image = Annotated[list[Row], Field(min_length=1, max_length=side)]
    Price = Annotated[float, Field(gt=0, le=MAX_PRICE, strict=True, allow_inf_nan=False)]
    Volume = Annotated[float, Field(ge=0, le=MAX_VOLUME, strict=True, allow_inf_nan=False)]
    Value = Annotated[
        float, Field(ge=-MAX_FEATURE, le=MAX_FEATURE, strict=True, allow_inf_nan=False)
    ]

    class XrayJson(BaseModel):
        """``data`` holds one image (height x width, 0..255) or a list of them; or
        ``image``/``images`` hold base64 PNG/JPEG."""

        model_config = ConfigDict(extra="forbid")

        data: Image | Annotated[list[Image], Field(min_length=1, max_length=batch)] | None = None
        image: Annotated[str, Field(min_length=1)] | None = None
        images: (
            Annotated[
                list[Annotated[str, Field(min_length=1)]], Field(min_length=1, max_length=batch)
            ]
            | None
        ) = None

    class Bar(BaseModel):
        """One daily bar (the column names as ingest reads them, any case)."""

        model_config = ConfigDict(extra="ignore")

        Open: Price
        High: Price
        Low: Price
        Close: Price
        Volume: Volume

        @model_validator(mode="before")
        @classmethod
        def _any_case(cls, value: Any) -> Any:
            if isinstance(value, dict):
                return {str(k).strip().capitalize(): v for k, v in value.items()}
            return value

    class OhlcvJson(BaseModel):
        """``bars``: rows with Open, High, Low, Close, Volume (oldest first), for one
        forecast; ``data``: the same as lists of five numbers; ``windows``: raw windows
        (look-back rows of the model's features), for a batch."""

        model_config = ConfigDict(extra="forbid")

        bars: Annotated[list[Bar], Field(min_length=1, max_length=rows)] | None = None
        data: (
            Annotated[
                list[tuple[Price, Price, Price, Price, Volume]],
                Field(min_length=1, max_length=rows),
            ]
            | None
        ) = None
        windows: (
            Annotated[
                list[
                    Annotated[
                        list[Annotated[list[Value], Field(min_length=1, max_length=MAX_FEATURES)]],
                        Field(min_length=1, max_length=rows),
                    ]
                ],
                Field(min_length=1, max_length=batch),
            ]
            | None
        ) = None

    return XrayJson, OhlcvJson


def describe_errors(errors: list[dict[str, Any]], fields: str, shown: int = 3) -> str:
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


def numeric_array(value: Any, what: str, shape_hint: str) -> np.ndarray:
    """A JSON list as a float array, or a message saying the rows are ragged."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise PredictionInputError(
            f"{what} must be a numeric array of {shape_hint}, with rows of one length"
        ) from None


def plain(message: str) -> str:
    """A message with any Python repr (``<_io.BytesIO object at 0x...>``) taken out."""
    return _REPR.sub("", message)


def check_bars(frame: Any) -> None:
    """Bars checked by ingest's own rules (prices > 0, High >= Low and the bar's Open and
    Close inside them, volume >= 0), or a 422 naming the rows that break them."""
    import pandas as pd

    from nnpipe.domains.ohlcv.sources import OhlcvDataError, validate_ohlcv

    dated = frame.set_axis(pd.date_range("2000-01-01", periods=len(frame), freq="D"))
    try:
        validate_ohlcv(dated, max_gap_days=10**6, policy="fail", min_rows=1)
    except OhlcvDataError as exc:
        message = str(exc).split("\nTo go on:")[0].replace(" as in the file", " as sent")
        message = re.sub(r" \(\d{4}-\d\d-\d\d\)", "", message).replace("\n  ", "; ")
        message = message.replace("price data", "the bars", 1)
        raise PredictionInputError(f"{message}; send real bars (oldest first)") from None


def check_windows(windows: np.ndarray, features: Sequence[str]) -> None:
    """Raw windows (n, look_back, features) checked as ``/predict/ohlcv`` checks bars, or a
    422 naming the window and its row.

    A window's rows are training's feature rows (:func:`nnpipe.domains.ohlcv.windows.add_features`):
    the five bar columns as they are (the model scales them itself), so ingest's bar rules
    and the bars' bounds apply to them, then derived features, which are no prices: each
    must agree with the bar it is derived from (``hl_range`` = (High - Low) / Close;
    ``log_return`` = log(Close / the row before's Close), from a window's second row on) or
    be within the range it can take (``volume_z``, a z-score over 20 volumes, is at most
    19 / sqrt(20) in size). A window of another width is left to the predictor to refuse."""
    from nnpipe.domains.ohlcv.sources import COLUMNS, PRICE_COLUMNS

    names = list(features)
    if windows.ndim != 3 or windows.shape[2] != len(names) or windows.size == 0:
        return
    col = {name: windows[..., names.index(name)] for name in names}

    def refuse(bad: np.ndarray, what: str) -> None:
        if bad.any():
            i, r = (int(x) for x in np.argwhere(bad)[0])
            row = ", ".join(f"{n}={windows[i, r, k]:g}" for k, n in enumerate(names))
            raise PredictionInputError(
                f"`windows[{i}]` row {r}: {what} ({row}; {int(bad.sum())} row(s) in all "
                f"break this); send windows of real bars, rows of {', '.join(names)}"
            )

    if all(c in col for c in COLUMNS):  # ingest's rules, said by ingest's own check
        o, h, lo, c = (col[n] for n in PRICE_COLUMNS)
        bad = (
            (o <= 0)
            | (h <= 0)
            | (lo <= 0)
            | (c <= 0)
            | (col["Volume"] < 0)
            | (h < np.maximum(o, c))
            | (lo > np.minimum(o, c))
            | (h < lo)
        )
        if bad.any():
            import pandas as pd

            i, windows_bad = int(np.argwhere(bad)[0][0]), int(bad.any(axis=1).sum())
            others = f" ({windows_bad} windows break them)" if windows_bad > 1 else ""
            try:
                check_bars(
                    pd.DataFrame(
                        windows[i][:, [names.index(n) for n in COLUMNS]], columns=list(COLUMNS)
                    )
                )
            except PredictionInputError as exc:
                raise PredictionInputError(
                    str(exc)
                    .replace("the bars", f"`windows[{i}]`", 1)
                    .replace(
                        "; send real bars (oldest first)",
                        f"{others}; send windows of real bars (oldest first)",
                    )
                ) from None
            refuse(
                bad,
                "a bar must have prices > 0, High >= Open, Close and Low, "
                "Low <= Open and Close, and Volume >= 0",
            )
    for name in (c for c in PRICE_COLUMNS if c in col):
        refuse(
            (col[name] <= 0) | (col[name] > MAX_PRICE),
            f"{name} must be a price > 0 and at most {MAX_PRICE:g}",
        )
    if "Volume" in col:
        refuse(
            (col["Volume"] < 0) | (col["Volume"] > MAX_VOLUME),
            f"Volume must be >= 0 and at most {MAX_VOLUME:g}",
        )
    if "hl_range" in col and all(n in col for n in ("High", "Low", "Close")):
        expected = (col["High"] - col["Low"]) / col["Close"]
        refuse(
            ~np.isclose(col["hl_range"], expected, rtol=1e-3, atol=1e-6),
            "hl_range must be (High - Low) / Close of its row",
        )
    elif "hl_range" in col:
        refuse(col["hl_range"] < 0, "hl_range, (High - Low) / Close, must be >= 0")
    if "log_return" in col and "Close" in col and windows.shape[1] > 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = np.log(col["Close"][:, 1:] / col["Close"][:, :-1])
        bad = np.zeros(col["Close"].shape, dtype=bool)
        bad[:, 1:] = ~np.isclose(col["log_return"][:, 1:], expected, rtol=1e-3, atol=1e-6)
        refuse(bad, "log_return must be log(Close / the previous row's Close)")
    if "volume_z" in col:
        from nnpipe.domains.ohlcv.windows import VOLUME_Z_WINDOW

        most = (VOLUME_Z_WINDOW - 1) / VOLUME_Z_WINDOW**0.5  # one volume apart from 19
        refuse(
            np.abs(col["volume_z"]) > most + 1e-6,
            f"volume_z, a z-score over "
            f"{VOLUME_Z_WINDOW} volumes, cannot be over {most:.4f} in size",
        )


def check_pixel_budget(
    sizes: Sequence[tuple[Any, tuple[int, int]]],
    settings: ServeSettings,
    mode: str,
    max_side: int | None,
) -> int:
    """Refuse a request by the sizes its images' headers declare, before any is decoded:
    each image against serve.max_side and serve.max_pixels, and all of them against
    serve.max_batch_pixels, counting the pixels preprocessing will allocate (in ``pad``
    mode the padded square, side = max(width, height), after the deployment's own
    ``max_side``). The pixels counted."""
    from nnpipe.domains.xray.images import ImageTooLargeError, allocated_pixels, check_image_size

    total = 0
    for label, (width, height) in sizes:
        cost = allocated_pixels(width, height, mode, max_side)
        try:
            check_image_size(
                width, height, str(label), settings.max_pixels, settings.max_side, cost
            )
        except ImageTooLargeError as exc:
            raise PredictionInputError(str(exc)) from None
        total += cost
        if total > settings.max_batch_pixels:
            shape = f"{width:,} x {height:,}" + (
                f", padded to {cost:,} pixels" if cost > width * height else ""
            )
            raise PredictionInputError(
                f"the images hold over {settings.max_batch_pixels:,} pixels in all (the "
                f"limit per request), counted as preprocessing allocates them: a non-square "
                f"image is padded to a square ({label} is {shape}); send fewer or smaller "
                "images per request"
            )
    return total


def decodes_inline(sent: Sequence[tuple[str, Any, Any]]) -> bool:
    """Whether the sent images are few and small, by their headers and by their encoded
    bytes (a small header can front megabytes to inflate), so cheap to decode on the
    loop; an unreadable one is not (its decoder says why, in a thread)."""
    from nnpipe.domains.xray.images import declared_size

    if len(sent) > INLINE_IMAGES:
        return False
    for how, value, _ in sent:
        if how == "array":
            size = value.shape
        else:
            if len(value) > INLINE_BYTES:  # the file's bytes, or the base64 text
                return False
            if how == "base64":
                try:
                    value = base64.b64decode(value, validate=True)
                except ValueError:
                    return False
            size = declared_size(value)
        if size is None or max(size) > INLINE_SIDE:
            return False
    return True


class Guard:
    """A plain ASGI middleware: the API key checked from the headers before any of the
    body is read, the body counted as it streams in and cut off at the limit, a JSON 500
    instead of a bare one, a client that left recorded as such (no traceback, no 500),
    and the request metrics. (Starlette's BaseHTTPMiddleware would buffer and cost a task
    per request.)"""

    def __init__(
        self,
        app: Any,
        settings: ServeSettings,
        record: Callable[..., None],
        refuse: Callable[..., JSONResponse],
        too_large: Callable[[str, str], str],
    ):
        self.app, self.settings = app, settings
        self.record, self.refuse, self.too_large = record, refuse, too_large

    def authorised(self, headers: dict[bytes, bytes]) -> bool:
        key = self.settings.api_key or ""
        given = (
            headers.get(b"x-api-key", b"").decode("latin-1")
            or headers.get(b"authorization", b"").decode("latin-1").removeprefix("Bearer ").strip()
        )
        return hmac.compare_digest(given.encode("utf-8", "replace"), key.encode())

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        path, limit = scope["path"], self.settings.max_request_bytes
        state = {"status": 500, "started": False, "left": False, "received": 0}
        headers = dict(scope["headers"])
        kind = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip()

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
            await send(message)

        async def counted() -> dict:
            message = await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > limit:
                    raise BodyTooLarge(self.too_large(f"over {limit:,}", kind))
            elif message["type"] == "http.disconnect":
                state["left"] = not state["started"]
            return message

        async def refuse(status: int, message: str, reason: str) -> None:
            await self.refuse(status, message, path, reason, close=True)(
                scope, receive, send_status
            )

        length = headers.get(b"content-length", b"").decode("latin-1").strip()
        if not self.settings.is_open(path) and not self.authorised(headers):
            await refuse(
                401,
                "a valid API key is required (header X-API-Key, or Authorization: Bearer)",
                "unauthorised",
            )
        elif length and not length.isdigit():
            await refuse(
                400,
                f"the Content-Length header ({length[:40]}) is not a number of bytes",
                "bad_length",
            )
        elif length and int(length) > limit:
            await refuse(413, self.too_large(f"{int(length):,}", kind), "too_large")
        else:
            try:
                await self.app(scope, counted, send_status)
            except BodyTooLarge as exc:
                if not state["started"]:
                    await refuse(413, str(exc.detail), "too_large")
            except Exception as exc:
                if state["left"] or isinstance(exc, ClientDisconnect):
                    state["left"] = True
                elif not state["started"]:  # never a bare 500 page; say what happened
                    log.exception("serve: %s failed", path)
                    await refuse(
                        500,
                        f"internal error: {type(exc).__name__} (the server's log has the details)",
                        "internal",
                    )
                else:
                    log.exception("serve: %s failed after its answer started", path)
        if state["left"]:
            log.info("serve: the client left before %s was answered", path)
            state["status"] = DISCONNECTED
        route = scope.get("route")  # the template: no label per unknown path
        self.record(
            getattr(route, "path", "unmatched"),
            state["status"],
            time.perf_counter() - start,
            "client_left" if state["left"] else None,
        )


def create_app(
    settings: ServeSettings, store: ModelStore | None = None, poll: bool = True
) -> FastAPI:
    """The FastAPI application (models loaded at start-up; the alias poller started)."""
    import anyio
    from fastapi_offline import FastAPIOffline

    store = store or ModelStore(settings)
    metrics = CollectorRegistry()
    requests = Counter(
        "nnpipe_requests",
        "Requests by endpoint and status (499: the client left before the answer)",
        ["endpoint", "status"],
        registry=metrics,
    )
    errors = Counter(
        "nnpipe_request_errors",
        "Refused or failed requests by endpoint and reason",
        ["endpoint", "reason"],
        registry=metrics,
    )
    latency = Histogram(
        "nnpipe_request_seconds",
        "Request latency by endpoint",
        ["endpoint"],
        registry=metrics,
        buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )
    XrayJson, OhlcvJson = request_models(settings)
    workers: dict[str, anyio.CapacityLimiter] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store.refresh()
        if poll:
            store.start_polling()
        yield
        store.stop()

    # /docs from Swagger UI's files in the fastapi-offline package, not a CDN: the page
    # works on a machine with no network (the validator badge, a remote call, is off)
    app = FastAPIOffline(
        title="nnpipe",
        version="1",
        lifespan=lifespan,
        redoc_url=None,
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},
        description="Predictions from the registered champions of nnpipe's pipelines "
        "(chest X-ray classifier, OHLCV forecaster).",
    )
    limit = settings.max_request_bytes

    def error(
        status: int,
        message: str,
        endpoint: str,
        reason: str,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> JSONResponse:
        errors.labels(endpoint, reason).inc()
        # close: the rest of an unread body is not worth reading, nor the connection
        extra = {**(headers or {}), **({"connection": "close"} if close else {})}
        return JSONResponse({"error": plain(message)}, status_code=status, headers=extra or None)

    def too_large(size: str, kind: str) -> str:
        return (
            f"the request body ({size} bytes, {kind or 'no content type'}) is over the "
            f"limit of {limit:,} bytes ({limit / 2**20:g} MiB): send a smaller body, "
            "or start the server with a larger serve.max_request_mb (--max-request-mb)"
        )

    def record(endpoint: str, status: int, seconds: float, reason: str | None) -> None:
        requests.labels(endpoint, str(status)).inc()
        latency.labels(endpoint).observe(seconds)
        if reason:
            errors.labels(endpoint, reason).inc()

    app.add_middleware(Guard, settings=settings, record=record, refuse=error, too_large=too_large)

    async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
        """Off the event loop, at most ``decode_threads`` at once."""
        if "work" not in workers:  # made on the loop that uses it
            workers["work"] = anyio.CapacityLimiter(settings.decode_threads)
        return await anyio.to_thread.run_sync(fn, *args, limiter=workers["work"])

    @app.exception_handler(PredictionInputError)
    @app.exception_handler(NnpipeError)
    async def bad_input(request: Request, exc: Exception):
        if isinstance(exc, ModelNotFoundError):
            return error(503, str(exc), request.url.path, "no_model")
        if isinstance(exc, NotServedError):
            return error(404, str(exc), request.url.path, "not_served")
        return error(422, str(exc), request.url.path, "bad_input")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        fields = ", ".join(f"`{f}`" for f in OhlcvJson.model_fields)
        return error(
            422,
            f"invalid request: {describe_errors(exc.errors(), fields)}",
            request.url.path,
            "invalid",
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            message = f"no endpoint at {request.url.path}; the endpoints are listed at /docs"
        elif exc.status_code == 405:
            message = f"{request.method} is not accepted at {request.url.path}; see /docs"
        else:
            message = str(exc.detail)
        return error(
            exc.status_code,
            message,
            request.url.path,
            "too_large" if exc.status_code == 413 else "http",
            close=exc.status_code == 413,
            headers=exc.headers,
        )

    @app.exception_handler(UnsupportedMediaType)
    async def unsupported(request: Request, exc: UnsupportedMediaType):
        return error(
            415,
            f"the request body ({exc.sent}) is not accepted at "
            f"{request.url.path}; send {exc.accepted}",
            request.url.path,
            "media_type",
        )

    async def body_bytes(request: Request) -> bytes:
        data = bytearray()
        async for chunk in request.stream():  # the Guard cuts it off at the limit
            data += chunk
        return bytes(data)

    def content_type(request: Request) -> str:
        return request.headers.get("content-type", "").split(";")[0].strip().lower()

    def parsed(model: type[BaseModel], body: bytes, what: str) -> Any:
        fields = ", ".join(f"`{f}`" for f in model.model_fields)
        if not body.strip():
            raise PredictionInputError(f"the body is empty; send a JSON object with {fields}")
        try:
            return model.model_validate_json(body)
        except ValidationError as exc:
            raise PredictionInputError(
                f"{what} ({len(body):,} bytes) is not accepted: "
                f"{describe_errors(exc.errors(), fields)}"
            ) from None

    def model_info(slot: Slot) -> dict[str, Any]:
        d = slot.deployable
        return {
            "name": d.name,
            "version": d.version,
            "alias": d.alias,
            "variant": slot.predictor.variant,
        }

    # ------------------------------------------------------------------- X-ray
    def decoded(data: bytes, sent: Sent) -> np.ndarray:
        """One sent image decoded (as ingest decodes), within the size limits, or a
        message naming it."""
        from nnpipe.domains.xray.images import ImageDecodeError, ImageTooLargeError, decode_image

        if not data:
            raise PredictionInputError(f"{sent} is empty; send {XRAY_ACCEPTED}")
        try:
            return decode_image(
                data, name=str(sent), max_pixels=settings.max_pixels, max_side=settings.max_side
            )
        except ImageTooLargeError as exc:
            raise PredictionInputError(str(exc)) from None
        except ImageDecodeError as exc:
            raise PredictionInputError(f"{exc}; send {XRAY_ACCEPTED}") from None

    def from_base64(text: str, what: str) -> tuple[bytes, Sent]:
        try:
            data = base64.b64decode(text, validate=True)
        except ValueError:
            raise PredictionInputError(
                f"{what} ({len(text):,} characters) is not base64 text: send the PNG/JPEG "
                "file's bytes base64-encoded (base64 -w0 image.png)"
            ) from None
        return data, Sent(what, "base64", len(data))

    def pixel_images(payload: Any) -> list[np.ndarray]:
        data = numeric_array(
            payload.data, "`data`", "one image (height x width) or a list of images of one size"
        )
        if data.ndim not in (2, 3):
            raise PredictionInputError(
                "`data` must be one image (2-D: height x width) or a list of images of one "
                f"size (3-D); got shape {data.shape}"
            )
        return [data] if data.ndim == 2 else list(data)

    def xray_batch(slot: Slot, sent: list[tuple[str, Any, Any]]) -> np.ndarray:
        """The sent images as the model's input batch: decoded and resized one at a time
        (a worker thread's work), within the per-request pixel budget."""
        if not sent:
            raise PredictionInputError(f"no image was sent; send {XRAY_ACCEPTED}")
        if len(sent) > settings.max_batch:
            raise PredictionInputError(
                f"{len(sent)} images is over the batch limit of "
                f"{settings.max_batch}: send them in several requests"
            )
        from nnpipe.domains.xray.images import declared_size

        items, sizes = [], []  # (bytes or array, its name); (name, (width, height))
        for how, value, label in sent:
            if how == "base64":
                value, label = from_base64(value, label)
            if isinstance(value, bytes):
                if not value:
                    raise PredictionInputError(f"{label} is empty; send {XRAY_ACCEPTED}")
                size = declared_size(value)  # None: unreadable, its decoder says why
            else:
                size = (value.shape[1], value.shape[0])
            items.append((value, label))
            if size is not None:
                sizes.append((label, size))
        spec = slot.predictor.spec
        # every header read and the allocations counted before any image is decoded
        check_pixel_budget(sizes, settings, spec.get("resize", "pad"), spec.get("max_side"))
        batch = [
            slot.predictor.to_pixels(decoded(value, label) if isinstance(value, bytes) else value)
            for value, label in items
        ]
        return np.stack(batch).astype(np.float32)[..., None]

    def locked_predict(slot: Slot, batch: np.ndarray) -> dict[str, list]:
        with slot.lock:
            return slot.predictor.predict(batch)

    async def xray_answer(slot: Slot, sent: list[tuple[str, Any, Any]]) -> dict[str, Any]:
        if decodes_inline(sent):
            batch = xray_batch(slot, sent)
        else:
            batch = await in_thread(xray_batch, slot, sent)
        if (
            slot.predictor.spec.get("format") == "tflite"
            and batch.size <= INLINE_MODEL_PIXELS
            and slot.lock.acquire(blocking=False)
        ):
            try:
                out = slot.predictor.predict(batch)
            finally:
                slot.lock.release()
        else:
            out = await in_thread(locked_predict, slot, batch)
        classes = slot.predictor.spec["classes"]
        rows = [
            {
                "probability": p,
                "label": lab,
                "threshold": t,
                "probabilities": {classes[0]: 1.0 - p, classes[1]: p},
            }
            for p, lab, t in zip(out["probability"], out["label"], out["threshold"], strict=True)
        ]
        return {
            "model": model_info(slot),
            "predictions": rows,
            "prediction": [[p] for p in out["probability"]],
        }  # the guide's shape

    async def xray_sent(request: Request) -> list[tuple[str, Any, Any]]:
        """What the request carries, still encoded: (how, value, how to name it)."""
        kind = content_type(request)
        if kind == "multipart/form-data":
            form = await request.form(max_files=settings.max_batch, max_fields=settings.max_batch)
            files = [(k, v) for k, v in form.multi_items() if hasattr(v, "read")]
            if not files:
                fields = ", ".join(f"`{k}`" for k in form) or "none"
                raise PredictionInputError(
                    f"the form has no file (fields sent: {fields}); "
                    "send the image as a `file` field"
                )
            sent = []
            for key, upload in files:
                data = await upload.read()
                sent.append(
                    (
                        "bytes",
                        data,
                        Sent(
                            f"file {upload.filename or '(no name)'!r} in field `{key}`",
                            upload.content_type or "",
                            len(data),
                        ),
                    )
                )
            return sent
        if kind in IMAGE_TYPES:
            body = await body_bytes(request)
            return [("bytes", body, Sent("the request body", kind, len(body)))]
        if kind == "application/json":
            body = await body_bytes(request)
            payload = await in_thread(parsed, XrayJson, body, "the JSON body")
            if payload.images is not None:
                return [("base64", t, f"`images[{i}]`") for i, t in enumerate(payload.images)]
            if payload.image is not None:
                return [("base64", payload.image, "`image`")]
            if payload.data is not None:
                images = await in_thread(pixel_images, payload)
                return [("array", image, f"`data[{i}]`") for i, image in enumerate(images)]
            raise PredictionInputError(
                "the JSON needs `data` (pixel arrays), `image` or `images` (base64 PNG/JPEG)"
            )
        size = request.headers.get("content-length", "")
        raise UnsupportedMediaType(
            f"{kind or 'no content type'}" + (f", {int(size):,} bytes" if size.isdigit() else ""),
            XRAY_ACCEPTED,
        )

    # ------------------------------------------------------------------ OHLCV
    def ohlcv_slot(series: str | None) -> Slot:
        keys = [k for k in settings.models if k.startswith("ohlcv/")]
        if not keys:
            store.get("ohlcv")  # raises: not served, saying what is
        if series is None and len(keys) == 1:
            return store.get(keys[0])
        names = ", ".join(k.split("/", 1)[1] for k in keys)
        if series is None:
            raise PredictionInputError(
                f"several series are served ({names}); name one with ?series="
            )
        if f"ohlcv/{series}" not in settings.models:
            raise NotServedError(f"series {series!r} is not served here; served series: {names}")
        return store.get(f"ohlcv/{series}")

    async def ohlcv_payload(request: Request) -> Any:
        kind = content_type(request)
        if kind != "application/json":
            raise UnsupportedMediaType(
                f"sent as {kind}" if kind else "sent with no content type",
                "application/json (a JSON object with `bars`, `data` or `windows`)",
            )
        return await in_thread(
            parsed, OhlcvJson, await body_bytes(request), "invalid request: the JSON body"
        )

    def ohlcv_answer(slot: Slot, windows: np.ndarray) -> dict[str, Any]:
        with slot.lock:
            out = slot.predictor.predict_windows(windows)
        if not np.isfinite(np.asarray([out["forecast"], out["price"]], dtype=float)).all():
            raise PredictionInputError(
                "the model's forecast for these bars is not a finite number: the values are "
                "far outside what it was trained on; send real bars"
            )
        rows = [
            {"forecast": f, "price": p, "target": t}
            for f, p, t in zip(out["forecast"], out["price"], out["target"], strict=True)
        ]
        return {
            "model": model_info(slot),
            "series": slot.predictor.spec.get("series"),
            "predictions": rows,
        }

    def forecast(slot: Slot, payload: Any) -> dict[str, Any]:
        import pandas as pd

        columns = ["Open", "High", "Low", "Close", "Volume"]
        if payload.bars is not None:
            frame = pd.DataFrame([b.model_dump() for b in payload.bars], columns=columns)
        elif payload.data is not None:
            frame = pd.DataFrame(np.asarray(payload.data, dtype=np.float64), columns=columns)
        else:
            raise PredictionInputError(
                "send `bars` (rows with Open, High, Low, Close, "
                "Volume) or `data` (rows of those five numbers)"
            )
        check_bars(frame)
        answer = ohlcv_answer(slot, slot.predictor.windows_from_bars(frame))
        return {**answer["predictions"][0], "model": answer["model"], "series": answer["series"]}

    def forecast_windows(slot: Slot, payload: Any) -> dict[str, Any]:
        if payload.windows is None:
            raise PredictionInputError(
                "send `windows`: a list of look-back windows of raw feature rows"
            )
        windows = numeric_array(payload.windows, "`windows`", "(n, look_back, features)")
        check_windows(windows, slot.predictor.spec["features"])
        return ohlcv_answer(slot, windows)

    # ----------------------------------------------------------------- routes
    key_header = APIKeyHeader(
        name="X-API-Key", auto_error=False, description="NNPIPE_API_KEY (or Authorization: Bearer)"
    )
    keyed = [Security(key_header)] if settings.api_key else []  # declared; Guard checks
    described = {
        400: "a malformed request (Content-Length, multipart form)",
        401: "no valid API key (X-API-Key or Authorization: Bearer)",
        404: "the model (domain or series) is not served here",
        413: "the body is over the size limit",
        415: "a content type the endpoint does not read",
        422: "the input cannot be predicted on; `error` says why",
        503: "the model is not loaded (yet); `error` says why",
    }

    def answers(*codes: int, path: str = "") -> dict[int | str, dict[str, Any]]:
        if settings.api_key and not settings.is_open(path):
            codes = (*codes, 401)
        # JSON whatever the route's own media type (/metrics is text): said explicitly
        error_body = {"application/json": {"schema": {"$ref": ref.format(model="ErrorBody")}}}
        return {c: {"description": described[c], "content": error_body} for c in sorted(codes)}

    def protected(path: str) -> list[Any]:
        return [] if settings.is_open(path) else keyed

    posted = (400, 404, 413, 415, 422, 503)
    ref = "#/components/schemas/{model}"
    served_series = [k.split("/", 1)[1] for k in settings.models if k.startswith("ohlcv/")]
    series_query = Query(
        None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="the series, when several are served (another name gets 404)",
        json_schema_extra={"enum": served_series} if served_series else None,
    )

    @app.get("/health", summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        summary="Readiness: every model this server was asked to serve is loaded",
        responses={503: {"description": "a model is not loaded; the body says which"}},
    )
    async def ready() -> JSONResponse:
        missing = {
            k: store.problems.get(k, "loading") for k in settings.models if k not in store.slots
        }
        body = {
            "ready": not missing,
            "alias": settings.alias,
            "models": {k: s.deployable.version for k, s in store.slots.items()},
            "problems": missing,
        }
        if store.refused:  # served on the previous version, or not at all
            body["refused"] = dict(store.refused)
        if missing:
            body["waiting_for"] = {k: f"{settings.models[k]}@{settings.alias}" for k in missing}
        return JSONResponse(body, status_code=200 if not missing else 503)

    @app.get(
        "/models",
        summary="What is served: name, version, alias, variant, metrics",
        dependencies=protected("/models"),
        responses=answers(path="/models"),
    )
    async def models() -> dict[str, Any]:
        return {
            "alias": settings.alias,
            "poll_seconds": settings.poll_seconds,
            "models": {k: s.describe() for k, s in store.slots.items()},
            "problems": store.problems,
        }

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        dependencies=protected("/metrics"),
        responses=answers(path="/metrics"),
    )
    async def prometheus():
        return PlainTextResponse(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    bodies = {
        m.__name__: m.model_json_schema(ref_template=ref) for m in (XrayJson, OhlcvJson, ErrorBody)
    }
    upload_doc = {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                },
                "image/png": {"schema": {"type": "string", "format": "binary"}},
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"$ref": ref.format(model="XrayJson")}},
            },
        }
    }
    json_doc = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": ref.format(model="OhlcvJson")}}},
        }
    }

    @app.post(
        "/predict/xray",
        dependencies=keyed,
        openapi_extra=upload_doc,
        responses=answers(*posted, path="/predict"),
        summary="Pneumonia probability of one chest X-ray (any size, PNG or JPEG)",
    )
    async def predict_xray(request: Request) -> dict[str, Any]:
        slot = store.get("xray")
        sent = await xray_sent(request)
        if len(sent) != 1:
            raise PredictionInputError(
                f"{len(sent)} images sent to the single-image endpoint; use /predict/xray/batch"
            )
        answer = await xray_answer(slot, sent)
        return {
            **answer["predictions"][0],
            "model": answer["model"],
            "prediction": answer["prediction"],
        }

    @app.post(
        "/predict/xray/batch",
        dependencies=keyed,
        openapi_extra=upload_doc,
        responses=answers(*posted, path="/predict"),
        summary="Several chest X-rays at once",
    )
    async def predict_xray_batch(request: Request) -> dict[str, Any]:
        slot = store.get("xray")
        return await xray_answer(slot, await xray_sent(request))

    @app.post(
        "/predict",
        dependencies=keyed,
        openapi_extra=upload_doc,
        responses=answers(*posted, path="/predict"),
        summary='The guide\'s endpoint: {"data": ...} in, {"prediction": ...} out',
    )
    async def predict_guide(request: Request) -> dict[str, Any]:
        slot = store.get("xray")
        return await xray_answer(slot, await xray_sent(request))

    @app.post(
        "/predict/ohlcv",
        dependencies=keyed,
        openapi_extra=json_doc,
        responses=answers(*posted, path="/predict"),
        summary="Next-period forecast from the last look-back bars",
    )
    async def predict_ohlcv(
        request: Request,
        series: str | None = series_query,
    ) -> dict[str, Any]:
        slot = ohlcv_slot(series)
        return await in_thread(forecast, slot, await ohlcv_payload(request))

    @app.post(
        "/predict/ohlcv/batch",
        dependencies=keyed,
        openapi_extra=json_doc,
        responses=answers(*posted, path="/predict"),
        summary="Forecasts for several raw windows (n, look_back, features)",
    )
    async def predict_ohlcv_batch(
        request: Request,
        series: str | None = series_query,
    ) -> dict[str, Any]:
        slot = ohlcv_slot(series)
        return await in_thread(forecast_windows, slot, await ohlcv_payload(request))

    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """FastAPI's schema, with the JSON bodies the handlers parse themselves (off the
        event loop) added to its components."""
        schema = base_openapi()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, body in bodies.items():
            components.update(body.get("$defs", {}))
            components[name] = {k: v for k, v in body.items() if k != "$defs"}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.store = store
    return app
