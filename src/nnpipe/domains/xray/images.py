"""Decoding and resizing of radiographs: one implementation for ingest, featurize and serving.

Radiographs arrive as PNG or JPEG of any size and mode: 8- or 16-bit grayscale, RGB, RGBA,
palette. Everything becomes one 2-D ``uint8`` array, so later steps see a single format.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from nnpipe.errors import NnpipeError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})


class ImageDecodeError(NnpipeError, ValueError):
    """A file that should be an image could not be decoded (truncated, corrupt, not an image)."""


class ImageTooLargeError(ImageDecodeError):
    """An image whose header declares more pixels, or a longer side, than allowed."""


def allocated_pixels(
    width: int, height: int, mode: str = "pad", max_side: int | None = None
) -> int:
    """The most pixels preprocessing holds for an image of this size at once: the decoded
    image, and in ``pad`` mode the square canvas it is letterboxed into (its side after
    :func:`limit_size` to ``max_side``), which for a 4096 x 1 image is 4096 x 4096."""
    side = max(width, height)
    if max_side:
        side = min(side, max_side)
    return max(width * height, side * side if mode == "pad" else 0)


def check_image_size(
    width: int,
    height: int,
    name: str,
    max_pixels: int | None,
    max_side: int | None,
    allocated: int | None = None,
) -> None:
    """Refuse an image by its declared size, before its pixels are allocated: a 138-byte
    PNG can declare 40000 x 1 pixels, and padding that to a square would allocate 1.6 G.
    ``allocated`` (see :func:`allocated_pixels`) is what counts against ``max_pixels``
    when preprocessing will hold more than the decoded width x height."""
    pixels = max(width * height, allocated or 0)
    if (max_side is not None and max(width, height) > max_side) or (
        max_pixels is not None and pixels > max_pixels
    ):
        limits = [
            f"{max_side:,} pixels per side" if max_side is not None else "",
            f"{max_pixels:,} pixels in all" if max_pixels is not None else "",
        ]
        padded = f" (padded to a square: {pixels:,} pixels)" if pixels > width * height else ""
        raise ImageTooLargeError(
            f"{name}: {width:,} x {height:,} pixels{padded} is over the limit of "
            f"{' and '.join(x for x in limits if x)}: downscale it before sending"
        )


def to_grayscale_uint8(image: Image.Image) -> np.ndarray:
    """Convert a PIL image of any mode to a 2-D uint8 array.

    16- and 32-bit images are stretched from their own min..max: radiographs stored as
    16-bit usually use 10 to 12 bits, and dividing by 65535 would leave them nearly black.
    Transparent pixels are composited over black, the background of a radiograph.
    """
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.array(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        if hi <= lo:
            return np.zeros(arr.shape, dtype=np.uint8)
        # in place: the same arithmetic without two more float64 copies of a large image
        arr -= lo
        arr *= 255.0 / (hi - lo)
        return np.round(arr, out=arr).astype(np.uint8)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "L":
        image = image.convert("L")
    return np.asarray(image, dtype=np.uint8).copy()


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's header, without decoding it; None if unreadable."""
    header = declared_header(data)
    return None if header is None else header[0]


def declared_header(data: bytes) -> tuple[tuple[int, int], str] | None:
    """(width, height) and PIL's mode (``L``, ``RGB``, ``I;16``) from an image's header,
    without decoding it; None if unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.size, image.mode
    except Exception:  # whatever it is, decode_image will say it
        return None


def decode_image(
    data: bytes,
    name: str = "<bytes>",
    *,
    max_pixels: int | None = None,
    max_side: int | None = None,
) -> np.ndarray:
    """Decode PNG/JPEG bytes to a 2-D uint8 array, or raise :class:`ImageDecodeError`.

    ``max_pixels``/``max_side`` refuse an image by the size its header declares, before
    decoding (serving sets them; PIL's decompression-bomb limit applies in any case)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                check_image_size(*image.size, name, max_pixels, max_side)
                image.load()  # forces a full decode: truncated files fail here, not later
                if image.format not in ("PNG", "JPEG", "MPO"):
                    raise ImageDecodeError(f"{name}: {image.format} is not PNG or JPEG")
                array = to_grayscale_uint8(image)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError:
        # PIL's own message names its BytesIO object, which means nothing to the sender
        raise ImageDecodeError(
            f"{name}: not a readable PNG/JPEG image (its bytes are no image format PIL knows)"
        ) from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageTooLargeError(
            f"{name}: declares more pixels than PIL's decompression-"
            f"bomb limit ({Image.MAX_IMAGE_PIXELS:,}): downscale it "
            "before sending"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        # PIL's messages can name its BytesIO object (`<_io.BytesIO object at 0x...>`)
        why = re.sub(r"\s*<[^<>]*\bat 0x[0-9a-fA-F]+>", "", str(exc)).strip() or type(exc).__name__
        raise ImageDecodeError(f"{name}: not a readable PNG/JPEG image ({why})") from None
    if array.ndim != 2 or min(array.shape) < 1:
        raise ImageDecodeError(f"{name}: decoded to an empty image")
    return array


def read_image(path: str | Path) -> np.ndarray:
    """Read and decode an image file; an unreadable file is an :class:`ImageDecodeError`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageDecodeError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return decode_image(data, name=str(path))


def limit_size(image: np.ndarray, max_side: int) -> np.ndarray:
    """Downscale so the longer side is at most ``max_side``, keeping the aspect ratio."""
    h, w = image.shape
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def resize_square(image: np.ndarray, size: int, mode: str = "pad") -> np.ndarray:
    """Resize a 2-D uint8 image to ``size`` x ``size``.

    ``pad`` letterboxes with black to a square first, so a tall radiograph keeps the
    proportions of its anatomy; ``stretch`` resizes directly.
    """
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image, got shape {image.shape}")
    if mode == "pad":
        h, w = image.shape
        side = max(h, w)
        if h != w:
            canvas = np.zeros((side, side), dtype=np.uint8)
            top, left = (side - h) // 2, (side - w) // 2
            canvas[top : top + h, left : left + w] = image
            image = canvas
    elif mode != "stretch":
        raise ValueError(f"resize mode must be 'pad' or 'stretch', got {mode!r}")
    if image.shape == (size, size):
        return image
    resample = Image.Resampling.LANCZOS if image.shape[0] > size else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(image).resize((size, size), resample), dtype=np.uint8)


def encode_png(image: np.ndarray) -> bytes:
    """Lossless PNG bytes of a 2-D uint8 image (deterministic for equal pixels)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def pixel_digest(image: np.ndarray) -> str:
    """Content hash of the decoded pixels (and shape): equal images, whatever their file."""
    digest = hashlib.sha256()
    digest.update(f"{image.shape[0]}x{image.shape[1]}:".encode())
    digest.update(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
    return digest.hexdigest()
