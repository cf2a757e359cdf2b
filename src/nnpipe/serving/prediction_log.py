"""What the routes hand the prediction log: one record per prediction of a request, made
from what the handler has at hand (the outputs it returns, the input's monitored
features, the model's embeddings), under the request's id. Never raises: a record that
cannot be made is counted as dropped, and the request is answered as if it were logged."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from starlette.requests import Request

from nnpipe.monitoring.prediction_log import LoggedPrediction, request_id
from nnpipe.serving.store import ModelStore, Slot

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"


def request_id_of(request: Request) -> str:
    """The caller's ``X-Request-ID`` when it is a plain token, else a new id."""
    return request_id(request.headers.get(REQUEST_ID_HEADER))


def log_predictions(
    store: ModelStore,
    slot: Slot,
    rid: str,
    outputs: Sequence[dict[str, Any]],
    features: Sequence[dict[str, Any]],
    embeddings: np.ndarray | None = None,
    images: Sequence[bytes | None] | None = None,
) -> None:
    prediction_log = store.prediction_log
    if prediction_log is None:
        return
    try:
        info = slot.info()
        domain = slot.key.split("/", 1)[0]
        prediction_log.record(
            [
                LoggedPrediction(
                    request_id=rid,
                    item=i,
                    domain=domain,
                    slot=slot.key,
                    model=info["name"],
                    version=str(info["version"]),
                    variant=info["variant"],
                    output=output,
                    features=feature,
                    embedding=None if embeddings is None else embeddings[i],
                    image=None if images is None else images[i],
                )
                for i, (output, feature) in enumerate(zip(outputs, features, strict=True))
            ]
        )
    except Exception as exc:  # a record never fails the request it describes
        prediction_log.count_dropped(
            len(outputs), f"cannot make a record: {type(exc).__name__}: {exc}"
        )
        log.warning("prediction log: cannot make a record: %s", exc)
