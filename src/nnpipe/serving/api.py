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
from pydantic import BaseModel, ConfigDict, Field

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
                    raise ModelNotFoundError(f"no version of {name} has the alias "
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
                self.problems[key] = f"{type(exc).__name__}: {exc}"
                log.warning("serve: %s: cannot load %s@%s: %s", key, name,
                            self.settings.alias, exc)
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
        slot = self.slots.get(key)
        if slot is None:
            raise ModelNotFoundError(self.problems.get(key, f"no model is served as {key!r}"))
        return slot


class UnsupportedMediaType(Exception):
    """A request body of a content type the endpoint does not read."""


class XrayJson(BaseModel):
    """The guide's request shape: ``data`` holds one image (height x width, 0..255) or a
    list of them; or ``image``/``images`` hold base64 PNG/JPEG."""

    data: list | None = None
    image: str | None = None
    images: list[str] | None = None


class OhlcvJson(BaseModel):
    """``bars``: rows with Open, High, Low, Close, Volume (oldest first), for one forecast;
    ``data``: the same as lists of five numbers; ``windows``: raw windows, for a batch."""

    bars: list[dict[str, float]] | None = None
    data: list[list[float]] | None = None
    windows: list[list[list[float]]] | None = None


def create_app(settings: ServeSettings, store: ModelStore | None = None,
               poll: bool = True) -> FastAPI:
    """The FastAPI application (models loaded at start-up; the alias poller started)."""
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

    app = FastAPI(title="nnpipe", version="1", lifespan=lifespan,
                  description="Predictions from the registered champions of nnpipe's "
                              "pipelines (chest X-ray classifier, OHLCV forecaster).")

    def error(status: int, message: str, endpoint: str, reason: str) -> JSONResponse:
        errors.labels(endpoint, reason).inc()
        return JSONResponse({"error": message}, status_code=status)

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

        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or
                                   int(length) > settings.max_request_bytes):
            await error(413, f"the request body is over the limit of "
                             f"{settings.max_request_bytes} bytes", path, "too_large",
                        )(scope, receive, send_status)
        else:
            try:
                await app(scope, receive, send_status)
            except Exception as exc:  # never a bare 500 page; say what happened
                log.exception("serve: %s failed", path)
                if not started:
                    await error(500, f"internal error: {type(exc).__name__}", path,
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
        return error(422, str(exc), request.url.path, "bad_input")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        details = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                            for e in exc.errors())
        return error(422, f"invalid request: {details}", request.url.path, "invalid")

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
            if len(data) > settings.max_request_bytes:
                raise PredictionInputError(f"the request body is over the limit of "
                                           f"{settings.max_request_bytes} bytes")
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

    async def xray_images(request: Request) -> list[Any]:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            form = await request.form()
            files = [v for _, v in form.multi_items() if hasattr(v, "read")]
            if not files:
                raise PredictionInputError("the form has no file; send the image as a "
                                           "`file` field")
            return [await f.read() for f in files]
        if kind in IMAGE_TYPES:
            body = await body_bytes(request)
            if not body:
                raise PredictionInputError("the request body is empty; send a PNG or JPEG")
            return [body]
        if kind == "application/json":
            try:
                payload = XrayJson.model_validate_json(await body_bytes(request))
            except ValueError as exc:
                raise PredictionInputError(f"the JSON is not valid: {exc}") from None
            if payload.images is not None:
                return list(payload.images)
            if payload.image is not None:
                return [payload.image]
            if payload.data is not None:
                try:
                    data = np.asarray(payload.data, dtype=np.float64)
                except (TypeError, ValueError):
                    raise PredictionInputError(
                        "`data` must be a numeric array: one image (height x width) or a "
                        "list of images of one size") from None
                if data.ndim not in (2, 3):
                    raise PredictionInputError(
                        "`data` must be one image (2-D: height x width) or a list of images "
                        f"of one size (3-D); got shape {data.shape}")
                return [data] if data.ndim == 2 else list(data)
            raise PredictionInputError("the JSON needs `data` (pixel arrays), `image` or "
                                       "`images` (base64 PNG/JPEG)")
        raise UnsupportedMediaType(kind)

    @app.exception_handler(UnsupportedMediaType)
    async def unsupported(request: Request, exc: UnsupportedMediaType):
        return error(415, f"content type {str(exc)!r} is not accepted; send multipart/form-"
                          "data with a `file`, image/png, image/jpeg, or JSON",
                     request.url.path, "media_type")

    @app.get("/health", summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready", summary="Readiness: every configured model is loaded")
    async def ready():
        missing = {k: store.problems.get(k, "not loaded") for k in settings.models
                   if k not in store.slots}
        body = {"ready": not missing, "models": {k: s.deployable.version
                                                 for k, s in store.slots.items()},
                "problems": missing}
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
        if series is None and len(keys) == 1:
            return store.get(keys[0])
        if series is None:
            raise PredictionInputError(f"several series are served ({', '.join(keys)}); "
                                       "name one with ?series=")
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
            rows = np.asarray(payload.data, dtype=np.float64)
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
        return ohlcv_answer(slot, np.asarray(payload.windows, dtype=np.float64))

    app.state.store = store
    return app
