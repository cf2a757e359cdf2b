import io

import numpy as np
import pytest
from PIL import Image

from nnpipe.domains.xray.images import (
    ImageDecodeError,
    decode_image,
    encode_png,
    limit_size,
    pixel_digest,
    resize_square,
)


def _png(image: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


GRADIENT = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (20, 1))  # 20 x 25


def test_8bit_grayscale_round_trips_exactly():
    assert np.array_equal(decode_image(_png(Image.fromarray(GRADIENT))), GRADIENT)


def test_16bit_is_stretched_over_its_own_range():
    arr16 = GRADIENT.astype(np.uint16) * 16  # a 12-bit image stored in 16 bits
    out = decode_image(_png(Image.fromarray(arr16)))
    assert out.dtype == np.uint8 and out.max() == 255 and out.min() == 0


def test_rgb_rgba_palette_and_jpeg_become_2d_uint8():
    rgb = Image.fromarray(np.stack([GRADIENT] * 3, axis=-1))
    rgba = rgb.convert("RGBA")
    transparent = np.array(rgba)
    transparent[:, :5, 3] = 0
    for img, fmt in (
        (rgb, "PNG"),
        (rgba, "PNG"),
        (Image.fromarray(transparent), "PNG"),
        (rgb.convert("P"), "PNG"),
        (rgb, "JPEG"),
    ):
        out = decode_image(_png(img, fmt))
        assert out.shape == GRADIENT.shape and out.dtype == np.uint8
    out = decode_image(_png(Image.fromarray(transparent)))
    assert (out[:, :5] == 0).all()  # transparent pixels over a black background


def test_truncated_and_non_images_are_rejected_with_the_name():
    data = _png(Image.fromarray(GRADIENT))
    with pytest.raises(ImageDecodeError, match=r"x\.png"):
        decode_image(data[: len(data) // 2], name="x.png")
    with pytest.raises(ImageDecodeError, match=r"notes\.png"):
        decode_image(b"these are notes, not pixels", name="notes.png")
    buf = io.BytesIO()
    Image.fromarray(GRADIENT).save(buf, format="BMP")
    with pytest.raises(ImageDecodeError, match="not PNG or JPEG"):
        decode_image(buf.getvalue())


def test_resize_pad_keeps_proportions_and_stretch_does_not():
    tall = np.full((100, 50), 200, dtype=np.uint8)
    padded = resize_square(tall, 32, "pad")
    stretched = resize_square(tall, 32, "stretch")
    assert padded.shape == stretched.shape == (32, 32)
    assert padded[:, 0].max() == 0 and padded[:, 16].min() > 150  # black bars at the sides
    assert stretched.min() > 150
    with pytest.raises(ValueError, match="2-D"):
        resize_square(np.zeros((4, 4, 3), np.uint8), 8)


def test_limit_size_and_digest():
    big = np.zeros((1000, 500), dtype=np.uint8)
    assert limit_size(big, 200).shape == (200, 100)
    assert limit_size(GRADIENT, 200) is GRADIENT
    assert pixel_digest(decode_image(encode_png(GRADIENT))) == pixel_digest(GRADIENT)
    assert pixel_digest(GRADIENT) != pixel_digest(GRADIENT.T.copy())
