"""``nnpipe serve``: the prediction API over the registered champions.

FastAPI (on uvicorn): MLflow 3's own scoring server already brings both, so serving adds
no dependency; it validates requests with pydantic, writes the OpenAPI schema, and runs
async handlers that call the predictor directly (a TFLite variant answers in well under a
millisecond, so a thread hop would cost more than it saves; a LiteRT interpreter is not
thread-safe anyway). Scale out with processes, not threads.

Each served model is a registered version found by alias in the configured registry
(:mod:`nnpipe.serving.registry`) and run by the same predictor code as the MLflow pyfunc
(:mod:`nnpipe.serving.predictor`), so preprocessing is training's. A poller moves a model
to the version its alias points to now: the new one is loaded beside the old, then
swapped in one assignment; a request holds the model it started with.
"""

from __future__ import annotations

import base64
import hmac
import logging
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from nnpipe.errors import NnpipeError
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


class ServeSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tracking_uri: str
    models: dict[str, str]  # slot ("xray", "ohlcv/SYNTH") -> registered model name
    alias: str = "champion"
    poll_seconds: float = Field(30.0, gt=0)
    api_key: str | None = None
    max_request_bytes: int = Field(10 * 2**20, gt=0)
    max_batch: int = Field(256, gt=0)
    threads: int = Field(1, ge=1)


@dataclass
class Slot:
    """One served model: the version its alias pointed to when loaded, and its predictor."""

    key: str
    deployable: RegisteredDeployable
    predictor: Predictor
    loaded_at: float = field(default_factory=time.time)

    def describe(self) -> dict[str, Any]:
        d, spec = self.deployable, self.predictor.spec
        return {"name": d.name, "version": d.version, "alias": d.alias, "run_id": d.run_id,
                "variant": spec.get("variant"), "format": spec.get("format"),
                "data_hash": d.tags.get("data_hash"), "threshold": spec.get("threshold"),
                "metrics": {k: v for k, v in (spec.get("measured") or {}).items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool)},
                "promotion_reason": spec.get("reason"),
                "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.loaded_at))}


class ModelStore:
    """The served models, kept on the version their alias points to."""

    def __init__(self, settings: ServeSettings,
                 loader: Callable[[str, str], RegisteredDeployable] | None = None) -> None:
        self.settings = settings
        self.slots: dict[str, Slot] = {}
        self.problems: dict[str, str] = {}
        self._resolve = loader or (lambda name, alias: resolve(settings.tracking_uri, name,
                                                               alias))
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
            try:
                current = self.slots.get(key)
                version = alias_version(client, name, self.settings.alias)
                if version is None:
                    raise ModelNotFoundError(f"{name} has no version under the alias "
                                             f"{self.settings.alias!r} yet")
                if current is not None and current.deployable.version == version:
                    continue
                deployable = self._resolve(name, self.settings.alias)
                slot = Slot(key, deployable, load_predictor(deployable.deploy_dir,
                                                            self.settings.threads))
                self.slots[key] = slot  # one assignment: requests in flight keep the old one
                self.problems.pop(key, None)
                before = f"v{current.deployable.version}" if current else "nothing"
                log.info("serve: %s: %s@%s moved from %s to v%s (%s)", key, name,
                         self.settings.alias, before, deployable.version,
                         slot.predictor.variant)
                changed.append(key)
            except Exception as exc:  # a registry hiccup must never take the server down
                problem = str(exc) if isinstance(exc, NnpipeError) else \
                    f"{type(exc).__name__}: {exc}"
                if self.problems.get(key) != problem:  # once, not at every poll
                    log.warning("serve: %s: cannot load %s@%s: %s", key, name,
                                self.settings.alias, problem)
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
            raise NotServedError(f"this server does not serve {key!r} (it serves {served}; "
                                 "choose with `nnpipe serve --domain`)")
        slot = self.slots.get(key)
        if slot is None:
            raise ModelNotFoundError(f"{key} is not loaded yet: "
                                     f"{self.problems.get(key, 'loading')}")
        return slot


class NotServedError(NnpipeError, LookupError):
    """A model (domain or series) this server was not asked to serve."""


class UnsupportedMediaType(Exception):
    """A request body of a content type the endpoint does not read."""


class RequestTooLarge(NnpipeError):
    """A request body over the server's size limit."""


XRAY_ACCEPTED = ("a PNG or JPEG image: multipart/form-data with the image as a `file` "
                 "field (curl -F file=@image.png), a raw image/png or image/jpeg body, or "
                 'JSON {"image": base64} / {"images": [base64, ...]} / {"data": pixel rows '
                 "0..255}")


@dataclass(frozen=True)
class Sent:
    """What a client sent, the way error messages name it: never a Python repr."""

    what: str  # "file 'notes.txt'", "the request body", "`images[2]`"
    content_type: str
    size: int

    def __str__(self) -> str:
        return f"{self.what} ({self.content_type or 'no content type'}, {self.size:,} bytes)"


class XrayJson(BaseModel):
    """The guide's request shape: ``data`` holds one image (height x width, 0..255) or a
    list of them; or ``image``/``images`` hold base64 PNG/JPEG."""

    model_config = ConfigDict(extra="forbid")

    data: list | None = None
    image: str | None = None
    images: list[str] | None = None


class OhlcvJson(BaseModel):
    """``bars``: rows with Open, High, Low, Close, Volume (oldest first), for one forecast;
    ``data``: the same as lists of five numbers; ``windows``: raw windows, for a batch."""

    model_config = ConfigDict(extra="forbid")

    bars: list[dict[str, float]] | None = None
    data: list[list[float]] | None = None
    windows: list[list[list[float]]] | None = None


def describe_errors(errors: list[dict[str, Any]], fields: str) -> str:
    """Pydantic's validation errors as one line: where, and what was expected; unknown
    fields and broken JSON said plainly (never the input's repr)."""
    parts = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        where = ".".join(loc)
        if e.get("type") == "extra_forbidden":
            parts.append(f"unknown field `{where}` (accepted fields: {fields})")
        elif e.get("type") in ("json_invalid", "json_type"):
            why = (e.get("ctx") or {}).get("error") or e.get("msg", "")
            parts.append(f"not valid JSON ({why})")
        elif e.get("type") == "missing" and not where:
            parts.append(f"the body is empty; send a JSON object with {fields}")
        else:
            parts.append(f"{f'`{where}`' if where else 'the body'}: "
                         f"{e.get('msg', 'invalid')}")
    return "; ".join(parts)


def numeric_array(value: Any, what: str, shape_hint: str) -> np.ndarray:
    """A JSON list as a float array, or a message saying the rows are ragged."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise PredictionInputError(f"{what} must be a numeric array of {shape_hint}, with "
                                   "rows of one length") from None


def create_app(settings: ServeSettings, store: ModelStore | None = None,
               poll: bool = True) -> FastAPI:
    """The FastAPI application (models loaded at start-up; the alias poller started)."""
    from fastapi_offline import FastAPIOffline

    store = store or ModelStore(settings)
    metrics = CollectorRegistry()
    requests = Counter("nnpipe_requests", "Requests by endpoint and status",
                       ["endpoint", "status"], registry=metrics)
    errors = Counter("nnpipe_request_errors", "Refused or failed requests by endpoint and "
                     "reason", ["endpoint", "reason"], registry=metrics)
    latency = Histogram("nnpipe_request_seconds", "Request latency by endpoint", ["endpoint"],
                        registry=metrics, buckets=(.001, .002, .005, .01, .02, .05, .1, .25,
                                                   .5, 1, 2.5, 5))

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
        title="nnpipe", version="1", lifespan=lifespan, redoc_url=None,
        static_url=DOCS_ASSETS, swagger_ui_parameters={"validatorUrl": None},
        description="Predictions from the registered champions of nnpipe's pipelines "
                    "(chest X-ray classifier, OHLCV forecaster).")
    limit = settings.max_request_bytes

    def error(status: int, message: str, endpoint: str, reason: str) -> JSONResponse:
        errors.labels(endpoint, reason).inc()
        return JSONResponse({"error": message}, status_code=status)

    def too_large(size: str, kind: str) -> str:
        return (f"the request body ({size} bytes, {kind or 'no content type'}) is over the "
                f"limit of {limit:,} bytes ({limit / 2**20:g} MiB): send a smaller image, "
                "or start the server with a larger --max-request-mb")

    async def guard(app: Any, scope: dict, receive: Callable, send: Callable) -> None:
        """Size limit, a JSON 500 instead of a bare one, and the request metrics: a plain
        ASGI middleware (Starlette's BaseHTTPMiddleware costs a task and a stream per
        request, about a millisecond here)."""
        start = time.perf_counter()
        path = scope["path"]
        status = 500
        started = False

        async def send_status(message: dict) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"").decode("latin-1").strip()
        kind = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip()
        if length and not length.isdigit():
            await error(400, f"the Content-Length header ({length[:40]}) is not a number of "
                             "bytes", path, "bad_length")(scope, receive, send_status)
        elif length and int(length) > limit:
            await error(413, too_large(f"{int(length):,}", kind), path, "too_large",
                        )(scope, receive, send_status)
        else:
            try:
                await app(scope, receive, send_status)
            except Exception as exc:  # never a bare 500 page; say what happened
                log.exception("serve: %s failed", path)
                if not started:
                    await error(500, f"internal error: {type(exc).__name__} (the server's "
                                     "log has the details)", path,
                                "internal")(scope, receive, send_status)
        route = scope.get("route")  # the template: no label per unknown path
        endpoint = getattr(route, "path", "unmatched")
        requests.labels(endpoint, str(status)).inc()
        latency.labels(endpoint).observe(time.perf_counter() - start)

    def guarded(app: Any) -> Callable:
        async def middleware(scope: dict, receive: Callable, send: Callable) -> None:
            if scope["type"] != "http":
                return await app(scope, receive, send)
            return await guard(app, scope, receive, send)
        return middleware

    app.add_middleware(guarded)

    @app.exception_handler(PredictionInputError)
    @app.exception_handler(NnpipeError)
    async def bad_input(request: Request, exc: Exception):
        if isinstance(exc, ModelNotFoundError):
            return error(503, str(exc), request.url.path, "no_model")
        if isinstance(exc, NotServedError):
            return error(404, str(exc), request.url.path, "not_served")
        if isinstance(exc, RequestTooLarge):
            return error(413, str(exc), request.url.path, "too_large")
        return error(422, str(exc), request.url.path, "bad_input")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        fields = ", ".join(f"`{f}`" for f in OhlcvJson.model_fields)
        kind = request.headers.get("content-type", "").split(";")[0].strip()
        sent = "" if kind == "application/json" else \
            f" (sent as {kind}; send application/json)" if kind else \
            " (sent with no content type; send application/json)"
        return error(422, f"invalid request: {describe_errors(exc.errors(), fields)}{sent}",
                     request.url.path, "invalid")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            message = (f"no endpoint at {request.url.path}; the endpoints are listed at "
                       "/docs")
        elif exc.status_code == 405:
            message = f"{request.method} is not accepted at {request.url.path}; see /docs"
        else:
            message = str(exc.detail)
        return error(exc.status_code, message, request.url.path, "http")

    async def authorised(request: Request) -> None:  # async: no thread hop per request
        if settings.api_key is None:
            return
        given = request.headers.get("x-api-key") or \
            request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), settings.api_key.encode()):
            raise PermissionError

    @app.exception_handler(PermissionError)
    async def denied(request: Request, exc: PermissionError):
        return error(401, "a valid API key is required (header X-API-Key)", request.url.path,
                     "unauthorised")

    async def body_bytes(request: Request) -> bytes:
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > limit:
                raise RequestTooLarge(too_large(f"over {limit:,}",
                                                request.headers.get("content-type", "")))
        return bytes(data)

    def model_info(slot: Slot) -> dict[str, Any]:
        d = slot.deployable
        return {"name": d.name, "version": d.version, "alias": d.alias,
                "variant": slot.predictor.variant}

    def xray_answer(slot: Slot, images: Any) -> dict[str, Any]:
        if len(images) > settings.max_batch:
            raise PredictionInputError(f"{len(images)} images is over the batch limit of "
                                       f"{settings.max_batch}")
        out = slot.predictor.predict(images)
        classes = slot.predictor.spec["classes"]
        rows = [{"probability": p, "label": lab, "threshold": t,
                 "probabilities": {classes[0]: 1.0 - p, classes[1]: p}}
                for p, lab, t in zip(out["probability"], out["label"], out["threshold"],
                                     strict=True)]
        return {"model": model_info(slot), "predictions": rows,
                "prediction": [[p] for p in out["probability"]]}  # the guide's shape

    def decoded(data: bytes, sent: Sent) -> np.ndarray:
        """One sent image decoded (as ingest decodes), or a message naming it."""
        from nnpipe.xray.images import ImageDecodeError, decode_image

        if not data:
            raise PredictionInputError(f"{sent} is empty; send {XRAY_ACCEPTED}")
        try:
            return decode_image(data, name=str(sent))
        except ImageDecodeError as exc:
            raise PredictionInputError(f"{exc}; send {XRAY_ACCEPTED}") from None

    def from_base64(text: str, what: str) -> np.ndarray:
        try:
            data = base64.b64decode(text, validate=True)
        except ValueError:
            raise PredictionInputError(
                f"{what} ({len(text):,} characters) is not base64 text: send the PNG/JPEG "
                "file's bytes base64-encoded (base64 -w0 image.png)") from None
        return decoded(data, Sent(what, "base64", len(data)))

    async def xray_images(request: Request) -> list[Any]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            form = await request.form()
            files = [(k, v) for k, v in form.multi_items() if hasattr(v, "read")]
            if not files:
                fields = ", ".join(f"`{k}`" for k in form) or "none"
                raise PredictionInputError(f"the form has no file (fields sent: {fields}); "
                                           "send the image as a `file` field")
            images = []
            for key, upload in files:
                data = await upload.read()
                sent = Sent(f"file {upload.filename or '(no name)'!r} in field `{key}`",
                            upload.content_type or "", len(data))
                images.append(decoded(data, sent))
            return images
        if kind in IMAGE_TYPES:
            body = await body_bytes(request)
            return [decoded(body, Sent("the request body", kind, len(body)))]
        if kind == "application/json":
            body = await body_bytes(request)
            try:
                payload = XrayJson.model_validate_json(body)
            except ValidationError as exc:
                fields = ", ".join(f"`{f}`" for f in XrayJson.model_fields)
                raise PredictionInputError(
                    f"the JSON body ({len(body):,} bytes) is not accepted: "
                    f"{describe_errors(exc.errors(), fields)}") from None
            if payload.images is not None:
                return [from_base64(t, f"`images[{i}]`") for i, t in enumerate(payload.images)]
            if payload.image is not None:
                return [from_base64(payload.image, "`image`")]
            if payload.data is not None:
                data = numeric_array(payload.data, "`data`",
                                     "one image (height x width) or a list of images of "
                                     "one size")
                if data.ndim not in (2, 3):
                    raise PredictionInputError(
                        "`data` must be one image (2-D: height x width) or a list of images "
                        f"of one size (3-D); got shape {data.shape}")
                return [data] if data.ndim == 2 else list(data)
            raise PredictionInputError("the JSON needs `data` (pixel arrays), `image` or "
                                       "`images` (base64 PNG/JPEG)")
        size = request.headers.get("content-length", "")
        raise UnsupportedMediaType(f"{kind or 'no content type'}"
                                   + (f", {int(size):,} bytes" if size.isdigit() else ""))

    @app.exception_handler(UnsupportedMediaType)
    async def unsupported(request: Request, exc: UnsupportedMediaType):
        return error(415, f"the request body ({exc}) is not accepted at {request.url.path}; "
                          f"send {XRAY_ACCEPTED}", request.url.path, "media_type")

    @app.get("/health", summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: every model this server was asked to serve is "
                               "loaded")
    async def ready():
        missing = {k: store.problems.get(k, "loading") for k in settings.models
                   if k not in store.slots}
        body = {"ready": not missing, "alias": settings.alias,
                "models": {k: s.deployable.version for k, s in store.slots.items()},
                "problems": missing}
        if missing:
            body["waiting_for"] = {k: f"{settings.models[k]}@{settings.alias}"
                                   for k in missing}
        return JSONResponse(body, status_code=200 if not missing else 503)

    @app.get("/models", summary="What is served: name, version, alias, variant, metrics")
    async def models() -> dict[str, Any]:
        return {"alias": settings.alias, "poll_seconds": settings.poll_seconds,
                "models": {k: s.describe() for k, s in store.slots.items()},
                "problems": store.problems}

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus():
        return PlainTextResponse(generate_latest(metrics), media_type=CONTENT_TYPE_LATEST)

    upload_doc = {"requestBody": {"content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"}}}},
        "image/png": {"schema": {"type": "string", "format": "binary"}},
        "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {"schema": XrayJson.model_json_schema()}}}}

    @app.post("/predict/xray", dependencies=[Depends(authorised)], openapi_extra=upload_doc,
              summary="Pneumonia probability of one chest X-ray (any size, PNG or JPEG)")
    async def predict_xray(request: Request) -> dict[str, Any]:
        slot = store.get("xray")
        images = await xray_images(request)
        if len(images) != 1:
            raise PredictionInputError(f"{len(images)} images sent to the single-image "
                                       "endpoint; use /predict/xray/batch")
        answer = xray_answer(slot, images)
        return {**answer["predictions"][0], "model": answer["model"],
                "prediction": answer["prediction"]}

    @app.post("/predict/xray/batch", dependencies=[Depends(authorised)],
              openapi_extra=upload_doc, summary="Several chest X-rays at once")
    async def predict_xray_batch(request: Request) -> dict[str, Any]:
        return xray_answer(store.get("xray"), await xray_images(request))

    @app.post("/predict", dependencies=[Depends(authorised)], openapi_extra=upload_doc,
              summary="The guide's endpoint: {\"data\": ...} in, {\"prediction\": ...} out")
    async def predict_guide(request: Request) -> dict[str, Any]:
        return xray_answer(store.get("xray"), await xray_images(request))

    def ohlcv_slot(series: str | None) -> Slot:
        keys = [k for k in settings.models if k.startswith("ohlcv/")]
        if not keys:
            store.get("ohlcv")  # raises: not served, saying what is
        if series is None and len(keys) == 1:
            return store.get(keys[0])
        names = ", ".join(k.split("/", 1)[1] for k in keys)
        if series is None:
            raise PredictionInputError(f"several series are served ({names}); name one "
                                       "with ?series=")
        if f"ohlcv/{series}" not in settings.models:
            raise NotServedError(f"series {series!r} is not served here; served series: "
                                 f"{names}")
        return store.get(f"ohlcv/{series}")

    def ohlcv_answer(slot: Slot, windows: np.ndarray) -> dict[str, Any]:
        out = slot.predictor.predict_windows(windows)
        rows = [{"forecast": f, "price": p, "target": t}
                for f, p, t in zip(out["forecast"], out["price"], out["target"], strict=True)]
        return {"model": model_info(slot), "series": slot.predictor.spec.get("series"),
                "predictions": rows}

    @app.post("/predict/ohlcv", dependencies=[Depends(authorised)],
              summary="Next-period forecast from the last look-back bars")
    async def predict_ohlcv(payload: OhlcvJson, series: str | None = None) -> dict[str, Any]:
        slot = ohlcv_slot(series)
        import pandas as pd

        if payload.bars is not None:
            frame = pd.DataFrame(payload.bars)
        elif payload.data is not None:
            rows = numeric_array(payload.data, "`data`", "rows [Open, High, Low, Close, "
                                 "Volume]")
            if rows.ndim != 2 or rows.shape[1] != 5:
                raise PredictionInputError("`data` rows must be [Open, High, Low, Close, "
                                           f"Volume], got shape {rows.shape}")
            frame = pd.DataFrame(rows, columns=["Open", "High", "Low", "Close", "Volume"])
        else:
            raise PredictionInputError("send `bars` (rows with Open, High, Low, Close, "
                                       "Volume) or `data` (rows of those five numbers)")
        answer = ohlcv_answer(slot, slot.predictor.windows_from_bars(frame))
        return {**answer["predictions"][0], "model": answer["model"],
                "series": answer["series"]}

    @app.post("/predict/ohlcv/batch", dependencies=[Depends(authorised)],
              summary="Forecasts for several raw windows (n, look_back, features)")
    async def predict_ohlcv_batch(payload: OhlcvJson, series: str | None = None,
                                  ) -> dict[str, Any]:
        slot = ohlcv_slot(series)
        if payload.windows is None:
            raise PredictionInputError("send `windows`: a list of look-back windows of raw "
                                       "feature rows")
        if len(payload.windows) > settings.max_batch:
            raise PredictionInputError(f"{len(payload.windows)} windows is over the batch "
                                       f"limit of {settings.max_batch}")
        return ohlcv_answer(slot, numeric_array(payload.windows, "`windows`",
                                                "(n, look_back, features)"))

    app.state.store = store
    return app
