"""The OHLCV routes of ``nnpipe serve``: the next-period forecast from the last look-back
bars (``/predict/ohlcv``) and forecasts for several raw windows (``/predict/ohlcv/batch``),
each from one served series' model (``?series=`` where several are served)."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from fastapi import Query, Request, Response
from pydantic import BaseModel

from nnpipe.domains.ohlcv.api.inputs import check_bars, check_windows, request_model
from nnpipe.domains.ohlcv.monitoring import forecast_output, window_features
from nnpipe.domains.ohlcv.predictor import OhlcvPredictor
from nnpipe.serving.auth import key_dependencies
from nnpipe.serving.endpoints import (
    DomainRouter,
    body_bytes,
    content_type,
    numeric_array,
    parsed,
)
from nnpipe.serving.errors import UnsupportedMediaType
from nnpipe.serving.openapi import POSTED, SCHEMA_REF, answers
from nnpipe.serving.prediction_log import REQUEST_ID_HEADER, log_predictions, request_id_of
from nnpipe.serving.predictor import PredictionInputError
from nnpipe.serving.settings import ServeSettings
from nnpipe.serving.store import ModelStore, NotServedError, Slot

DOMAIN = "ohlcv"  # served slots are "ohlcv/<series>" (the domain's Unit.slot)
BAR_COLUMNS = ["Open", "High", "Low", "Close", "Volume"]


def served_series(settings: ServeSettings) -> list[str]:
    return [k.split("/", 1)[1] for k in settings.models if k.startswith(f"{DOMAIN}/")]


def series_slot(store: ModelStore, settings: ServeSettings, series: str | None) -> Slot:
    """The served model of ``series`` (or of the one series served)."""
    keys = [k for k in settings.models if k.startswith(f"{DOMAIN}/")]
    if not keys:
        store.get(DOMAIN)  # raises: not served, saying what is
    if series is None and len(keys) == 1:
        return store.get(keys[0])
    names = ", ".join(k.split("/", 1)[1] for k in keys)
    if series is None:
        raise PredictionInputError(f"several series are served ({names}); name one with ?series=")
    if f"{DOMAIN}/{series}" not in settings.models:
        raise NotServedError(f"series {series!r} is not served here; served series: {names}")
    return store.get(f"{DOMAIN}/{series}")


def answer(slot: Slot, windows: np.ndarray, store: ModelStore, rid: str) -> dict[str, Any]:
    """Forecasts for raw windows, in the batch shape, logged under the request id ``rid``."""
    predictor = cast(OhlcvPredictor, slot.predictor)
    with slot.lock:
        out = predictor.predict_windows(windows)
    if not np.isfinite(np.asarray([out["forecast"], out["price"]], dtype=float)).all():
        raise PredictionInputError(
            "the model's forecast for these bars is not a finite number: the values are "
            "far outside what it was trained on; send real bars"
        )
    rows = [
        {"forecast": f, "price": p, "target": t}
        for f, p, t in zip(out["forecast"], out["price"], out["target"], strict=True)
    ]
    if store.prediction_log is not None:
        features = list(predictor.spec.features)
        close = features.index("Close")
        x = np.asarray(windows, dtype=np.float64).reshape(len(rows), *predictor.window_shape)
        log_predictions(
            store,
            slot,
            rid,
            [
                forecast_output(r["forecast"], r["price"], w[-1, close])
                for r, w in zip(rows, x, strict=True)
            ],
            [window_features(w, features) for w in x],
        )
    return {
        "request_id": rid,
        "model": slot.info(),
        "series": predictor.spec.series,
        "predictions": rows,
    }


def forecast(slot: Slot, payload: Any, store: ModelStore, rid: str) -> dict[str, Any]:
    """The forecast after the sent bars (a worker thread's work)."""
    import pandas as pd

    if payload.bars is not None:
        frame = pd.DataFrame([b.model_dump() for b in payload.bars], columns=BAR_COLUMNS)
    elif payload.data is not None:
        frame = pd.DataFrame(np.asarray(payload.data, dtype=np.float64), columns=BAR_COLUMNS)
    else:
        raise PredictionInputError(
            "send `bars` (rows with Open, High, Low, Close, "
            "Volume) or `data` (rows of those five numbers)"
        )
    check_bars(frame)
    windows = cast(OhlcvPredictor, slot.predictor).windows_from_bars(frame)
    out = answer(slot, windows, store, rid)
    return {
        **out["predictions"][0],
        "request_id": rid,
        "model": out["model"],
        "series": out["series"],
    }


def forecast_windows(slot: Slot, payload: Any, store: ModelStore, rid: str) -> dict[str, Any]:
    """Forecasts for the sent raw windows (a worker thread's work)."""
    if payload.windows is None:
        raise PredictionInputError(
            "send `windows`: a list of look-back windows of raw feature rows"
        )
    windows = numeric_array(payload.windows, "`windows`", "(n, look_back, features)")
    check_windows(windows, cast(OhlcvPredictor, slot.predictor).spec.features)
    return answer(slot, windows, store, rid)


async def read_payload(request: Request, store: ModelStore, body: type[BaseModel]) -> Any:
    kind = content_type(request)
    if kind != "application/json":
        raise UnsupportedMediaType(
            f"sent as {kind}" if kind else "sent with no content type",
            "application/json (a JSON object with `bars`, `data` or `windows`)",
        )
    return await store.workers.run(
        parsed, body, await body_bytes(request), "invalid request: the JSON body"
    )


def body_doc() -> dict[str, Any]:
    """The request body the routes read, for the OpenAPI (the handlers parse it)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": SCHEMA_REF.format(model="OhlcvJson")}}
            },
        }
    }


def api_router(store: ModelStore, settings: ServeSettings) -> DomainRouter:
    """The OHLCV routes, served from ``store``'s ``ohlcv/<series>`` slots."""
    OhlcvJson = request_model(settings)
    router = DomainRouter(bodies=(OhlcvJson,))
    json_doc = body_doc()
    names = served_series(settings)
    series_query = Query(
        None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="the series, when several are served (another name gets 404)",
        json_schema_extra={"enum": names} if names else None,
    )

    def route(path: str, summary: str) -> Any:
        return router.post(
            path,
            dependencies=key_dependencies(settings, "/predict"),
            openapi_extra=json_doc,
            responses=answers(settings, *POSTED, path="/predict"),
            summary=summary,
        )

    @route("/predict/ohlcv", "Next-period forecast from the last look-back bars")
    async def predict_ohlcv(
        request: Request, response: Response, series: str | None = series_query
    ) -> dict[str, Any]:
        slot = series_slot(store, settings, series)
        rid = request_id_of(request)
        response.headers[REQUEST_ID_HEADER] = rid
        payload = await read_payload(request, store, OhlcvJson)
        return await store.workers.run(forecast, slot, payload, store, rid)

    @route("/predict/ohlcv/batch", "Forecasts for several raw windows (n, look_back, features)")
    async def predict_ohlcv_batch(
        request: Request, response: Response, series: str | None = series_query
    ) -> dict[str, Any]:
        slot = series_slot(store, settings, series)
        rid = request_id_of(request)
        response.headers[REQUEST_ID_HEADER] = rid
        payload = await read_payload(request, store, OhlcvJson)
        return await store.workers.run(forecast_windows, slot, payload, store, rid)

    return router
