"""The X-ray routes of ``nnpipe serve``: one image (``/predict/xray``), several
(``/predict/xray/batch``), and the guide's ``/predict`` (``{"data": ...}`` in,
``{"prediction": ...}`` out). Only a request of a few small images (by their headers,
and by their encoded bytes) is decoded and run on the event loop, where a thread hop
would cost more than the work; any other in a worker thread."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from fastapi import Request, Response
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from nnpipe.domains.xray.api.inputs import (
    IMAGE_TYPES,
    INLINE_MODEL_PIXELS,
    XRAY_ACCEPTED,
    Sent,
    SentImage,
    decodes_inline,
    input_batch,
    pixel_images,
    request_model,
)
from nnpipe.domains.xray.images import encode_png
from nnpipe.domains.xray.monitoring import ImageSource, image_features
from nnpipe.domains.xray.predictor import XrayPredictor
from nnpipe.serving.auth import key_dependencies
from nnpipe.serving.endpoints import DomainRouter, body_bytes, content_type, parsed
from nnpipe.serving.errors import UnsupportedMediaType
from nnpipe.serving.openapi import POSTED, SCHEMA_REF, answers
from nnpipe.serving.prediction_log import REQUEST_ID_HEADER, log_predictions, request_id_of
from nnpipe.serving.predictor import PredictionInputError
from nnpipe.serving.settings import ServeSettings
from nnpipe.serving.store import ModelStore, Slot
from nnpipe.serving.workers import Workers

SLOT = "xray"  # the domain's one served model (its Unit.slot)


def upload_doc() -> dict[str, Any]:
    """The request bodies the routes read, for the OpenAPI (the handlers read the body
    themselves)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    form = {
        "type": "object",
        "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": form},
                "image/png": binary,
                "image/jpeg": binary,
                "application/json": {"schema": {"$ref": SCHEMA_REF.format(model="XrayJson")}},
            },
        }
    }


async def form_images(request: Request, settings: ServeSettings) -> list[SentImage]:
    """The files of a multipart form, each named by its file name and field."""
    form = await request.form(max_files=settings.max_batch, max_fields=settings.max_batch)
    files = [(k, v) for k, v in form.multi_items() if isinstance(v, UploadFile)]
    if not files:
        fields = ", ".join(f"`{k}`" for k in form) or "none"
        raise PredictionInputError(
            f"the form has no file (fields sent: {fields}); send the image as a `file` field"
        )
    sent: list[SentImage] = []
    for key, upload in files:
        data = await upload.read()
        name = f"file {upload.filename or '(no name)'!r} in field `{key}`"
        sent.append(("bytes", data, Sent(name, upload.content_type or "", len(data))))
    return sent


async def json_images(request: Request, workers: Workers, body: type[BaseModel]) -> list[SentImage]:
    payload: Any = await workers.run(parsed, body, await body_bytes(request), "the JSON body")
    if payload.images is not None:
        return [("base64", t, f"`images[{i}]`") for i, t in enumerate(payload.images)]
    if payload.image is not None:
        return [("base64", payload.image, "`image`")]
    if payload.data is not None:
        images = await workers.run(pixel_images, payload)
        return [("array", image, f"`data[{i}]`") for i, image in enumerate(images)]
    raise PredictionInputError(
        "the JSON needs `data` (pixel arrays), `image` or `images` (base64 PNG/JPEG)"
    )


async def read_sent(
    request: Request, settings: ServeSettings, workers: Workers, body: type[BaseModel]
) -> list[SentImage]:
    """What the request carries, still encoded: (how, value, how to name it)."""
    kind = content_type(request)
    if kind == "multipart/form-data":
        return await form_images(request, settings)
    if kind in IMAGE_TYPES:
        data = await body_bytes(request)
        return [("bytes", data, Sent("the request body", kind, len(data)))]
    if kind == "application/json":
        return await json_images(request, workers, body)
    size = request.headers.get("content-length", "")
    raise UnsupportedMediaType(
        f"{kind or 'no content type'}" + (f", {int(size):,} bytes" if size.isdigit() else ""),
        XRAY_ACCEPTED,
    )


def locked_predict(slot: Slot, batch: np.ndarray) -> tuple[dict[str, list], np.ndarray | None]:
    with slot.lock:
        return cast(XrayPredictor, slot.predictor).predict_with_embedding(batch)


async def answer(
    slot: Slot,
    sent: list[SentImage],
    settings: ServeSettings,
    store: ModelStore,
    rid: str,
) -> dict[str, Any]:
    """Predictions for the sent images, in the batch shape (and the guide's), logged
    under the request id ``rid``."""
    workers = store.workers
    predictor = cast(XrayPredictor, slot.predictor)
    if decodes_inline(sent):
        batch, sources = input_batch(predictor, sent, settings)
    else:
        batch, sources = await workers.run(input_batch, predictor, sent, settings)
    if (
        predictor.spec.format == "tflite"
        and batch.size <= INLINE_MODEL_PIXELS
        and slot.lock.acquire(blocking=False)
    ):
        try:
            out, embedding = predictor.predict_with_embedding(batch)
        finally:
            slot.lock.release()
    else:
        out, embedding = await workers.run(locked_predict, slot, batch)
    classes = predictor.spec.classes
    rows = [
        {
            "probability": p,
            "label": lab,
            "threshold": t,
            "probabilities": {classes[0]: 1.0 - p, classes[1]: p},
        }
        for p, lab, t in zip(out["probability"], out["label"], out["threshold"], strict=True)
    ]
    if store.prediction_log is not None:
        log_request(store, slot, rid, rows, batch, sources, embedding, settings.log_images)
    return {
        "request_id": rid,
        "model": slot.info(),
        "predictions": rows,
        "prediction": [[p] for p in out["probability"]],
    }  # the guide's shape


def log_request(
    store: ModelStore,
    slot: Slot,
    rid: str,
    rows: list[dict[str, Any]],
    batch: np.ndarray,
    sources: list[ImageSource],
    embedding: np.ndarray | None,
    images: bool,
) -> None:
    """The request's predictions to the log: what was answered, the images' statistics
    and embeddings (and the images, as the model saw them, with serve.log_images)."""
    log_predictions(
        store,
        slot,
        rid,
        [{k: r[k] for k in ("probability", "label", "threshold")} for r in rows],
        image_features(batch, sources),
        embedding,
        [encode_png(image[..., 0].astype(np.uint8)) for image in batch] if images else None,
    )


def api_router(store: ModelStore, settings: ServeSettings) -> DomainRouter:
    """The X-ray routes, served from ``store``'s ``xray`` slot."""
    XrayJson = request_model(settings)
    router = DomainRouter(bodies=(XrayJson,))
    keyed = key_dependencies(settings, "/predict")

    async def predictions(request: Request, response: Response) -> dict[str, Any]:
        slot = store.get(SLOT)
        rid = request_id_of(request)
        response.headers[REQUEST_ID_HEADER] = rid
        sent = await read_sent(request, settings, store.workers, XrayJson)
        return await answer(slot, sent, settings, store, rid)

    def route(path: str, summary: str) -> Any:
        return router.post(
            path,
            dependencies=keyed,
            openapi_extra=upload_doc(),
            responses=answers(settings, *POSTED, path="/predict"),
            summary=summary,
        )

    @route("/predict/xray", "Pneumonia probability of one chest X-ray (any size, PNG or JPEG)")
    async def predict_xray(request: Request, response: Response) -> dict[str, Any]:
        slot = store.get(SLOT)
        rid = request_id_of(request)
        response.headers[REQUEST_ID_HEADER] = rid
        sent = await read_sent(request, settings, store.workers, XrayJson)
        if len(sent) != 1:
            raise PredictionInputError(
                f"{len(sent)} images sent to the single-image endpoint; use /predict/xray/batch"
            )
        out = await answer(slot, sent, settings, store, rid)
        return {
            **out["predictions"][0],
            "request_id": rid,
            "model": out["model"],
            "prediction": out["prediction"],
        }

    @route("/predict/xray/batch", "Several chest X-rays at once")
    async def predict_xray_batch(request: Request, response: Response) -> dict[str, Any]:
        return await predictions(request, response)

    @route("/predict", 'The guide\'s endpoint: {"data": ...} in, {"prediction": ...} out')
    async def predict_guide(request: Request, response: Response) -> dict[str, Any]:
        return await predictions(request, response)

    return router
