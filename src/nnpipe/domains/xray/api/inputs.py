"""What an X-ray request carries, read and bounded before the work it would cost is done:
the JSON body's schema (with the server's limits in it), the images' sizes by their
headers (a request by the pixels preprocessing will allocate for its images: a
non-square one is padded to a square), and each image decoded as ingest decodes."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from nnpipe.domains.xray.monitoring import ImageSource
from nnpipe.domains.xray.predictor import XrayPredictor
from nnpipe.serving.endpoints import numeric_array
from nnpipe.serving.predictor import PredictionInputError
from nnpipe.serving.settings import ServeSettings

# Small X-ray work stays on the event loop: a thread hop and the GIL hand-offs it brings
# cost more than decoding a radiograph this small, or a LiteRT run on a few images.
INLINE_SIDE, INLINE_IMAGES = 512, 4  # longest side of each image (padded to a square)
INLINE_BYTES = 2**16  # encoded size of each image (base64: its text): inflating costs too
INLINE_MODEL_PIXELS = 4 * 128 * 128  # model-input pixels of a batch (LiteRT only)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/jpg", "application/octet-stream")
XRAY_ACCEPTED = (
    "a PNG or JPEG image: multipart/form-data with the image as a `file` "
    "field (curl -F file=@image.png), a raw image/png or image/jpeg body, or "
    'JSON {"image": base64} / {"images": [base64, ...]} / {"data": pixel rows '
    "0..255}"
)
# what a request carries, still encoded: (how: "bytes" | "base64" | "array", the value,
# how to name it: a Sent, or a JSON path such as "`images[2]`")
SentImage = tuple[str, Any, Any]


@dataclass(frozen=True)
class Sent:
    """What a client sent, the way error messages name it: never a Python repr."""

    what: str  # "file 'notes.txt'", "the request body", "`images[2]`"
    content_type: str
    size: int

    def __str__(self) -> str:
        return f"{self.what} ({self.content_type or 'no content type'}, {self.size:,} bytes)"


def request_model(settings: ServeSettings) -> type[BaseModel]:
    """The JSON body of the X-ray routes, with this server's limits in its schema."""
    side, batch = settings.max_side, settings.max_batch
    # strict: `false` or "1.5" is no number here (lax pydantic would take them)
    Pixel = Annotated[float, Field(ge=0, le=255, strict=True, allow_inf_nan=False)]
    Row = Annotated[list[Pixel], Field(min_length=1, max_length=side)]
    Image = Annotated[list[Row], Field(min_length=1, max_length=side)]

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

    return XrayJson


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


def decodes_inline(sent: Sequence[SentImage]) -> bool:
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


def decoded(data: bytes, sent: Any, settings: ServeSettings) -> np.ndarray:
    """One sent image decoded (as ingest decodes), within the size limits, or a message
    naming it."""
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


def input_batch(
    predictor: XrayPredictor, sent: list[SentImage], settings: ServeSettings
) -> tuple[np.ndarray, list[ImageSource]]:
    """The sent images as the model's input batch: decoded and resized one at a time
    (a worker thread's work), within the per-request pixel budget; and each image's size
    and mode as sent (what the prediction log keeps of it)."""
    if not sent:
        raise PredictionInputError(f"no image was sent; send {XRAY_ACCEPTED}")
    if len(sent) > settings.max_batch:
        raise PredictionInputError(
            f"{len(sent)} images is over the batch limit of "
            f"{settings.max_batch}: send them in several requests"
        )
    from nnpipe.domains.xray.images import declared_header

    items, sizes, sources = [], [], []  # (bytes or array, its name); (name, (w, h)); as sent
    for how, value, label in sent:
        if how == "base64":
            value, label = from_base64(value, label)
        if isinstance(value, bytes):
            if not value:
                raise PredictionInputError(f"{label} is empty; send {XRAY_ACCEPTED}")
            header = declared_header(value)  # None: unreadable, its decoder says why
            size = header[0] if header else None
            mode = header[1] if header else "unknown"
        else:
            size, mode = (value.shape[1], value.shape[0]), "array"
        items.append((value, label))
        if size is not None:
            sizes.append((label, size))
        sources.append((size, mode))
    spec = predictor.spec
    # every header read and the allocations counted before any image is decoded
    check_pixel_budget(sizes, settings, spec.resize, spec.max_side)
    batch = [
        predictor.to_pixels(decoded(value, label, settings) if isinstance(value, bytes) else value)
        for value, label in items
    ]
    shown = [
        ImageSource(int(size[0]), int(size[1]), mode) if size else ImageSource(0, 0, mode)
        for size, mode in sources
    ]
    return np.stack(batch).astype(np.float32)[..., None], shown
