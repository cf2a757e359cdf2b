"""The serving limits as pure functions: images refused by their declared size before
decoding, PIL's own messages without reprs, which routes the API key guards, bars checked
by ingest's rules, and validation errors said in one readable line."""

from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nnpipe.serving.api import ServeSettings, check_bars, describe_errors, request_models
from nnpipe.serving.predictor import PredictionInputError
from nnpipe.xray.images import ImageDecodeError, ImageTooLargeError, decode_image


def png(shape, dtype=np.uint8) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros(shape, dtype)).save(buf, format="PNG")
    return buf.getvalue()


def test_an_image_is_refused_by_its_header_before_its_pixels_are_allocated():
    tall = png((1, 40000))  # a few hundred bytes that decode (and pad) to 40000 x 40000
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match="40,000 x 1 pixels is over the limit of "
                                                 "4,096 pixels per side"):
        decode_image(tall, "tall.png", max_side=4096, max_pixels=4096 * 4096)
    assert time.perf_counter() - start < 1
    with pytest.raises(ImageTooLargeError, match="16,777,216 pixels in all"):
        decode_image(png((4097, 4096)), "big.png", max_pixels=4096 * 4096)
    assert decode_image(png((4096, 1)), max_side=4096).shape == (4096, 1)
    assert decode_image(tall).shape == (1, 40000)  # ingest sets no limit of its own


def test_pils_bomb_limit_holds_and_messages_name_no_python_objects(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageTooLargeError, match="decompression-bomb limit"):
        decode_image(png((100, 100)), "bomb.png")
    monkeypatch.undo()
    for data in (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, png((64, 64))[:40], b"\xff\xd8\xff\xe0"):
        with pytest.raises(ImageDecodeError) as refused:
            decode_image(data, "sent.png")
        assert "object at 0x" not in str(refused.value) and "<_io" not in str(refused.value)


def test_sixteen_bit_images_convert_as_before():
    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000 + 3)
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, format="PNG")
    arr = ramp.astype(np.float64)
    expected = np.round((arr - arr.min()) * (255.0 / (arr.max() - arr.min()))).astype(np.uint8)
    np.testing.assert_array_equal(decode_image(buf.getvalue()), expected)


def settings(**extra) -> ServeSettings:
    return ServeSettings(tracking_uri="sqlite:///x.db", models={}, **extra)


def test_with_a_key_only_the_probes_and_the_named_public_routes_are_open():
    assert all(settings().is_open(p) for p in ("/models", "/predict/xray", "/docs"))
    keyed = settings(api_key="k")
    assert keyed.is_open("/health") and keyed.is_open("/ready")
    assert not any(keyed.is_open(p) for p in ("/models", "/metrics", "/docs",
                                             "/openapi.json", "/docs/assets/x.js",
                                             "/predict/ohlcv", "/elsewhere"))
    docs = settings(api_key="k", public_routes=("docs",))
    assert docs.is_open("/openapi.json") and docs.is_open("/docs/assets/swagger-ui.css")
    assert not docs.is_open("/models") and not docs.is_open("/metrics")


def test_bars_are_checked_by_ingests_rules():
    good = pd.DataFrame([[1, 2, 0.5, 1.5, 100]] * 3,
                        columns=["Open", "High", "Low", "Close", "Volume"], dtype=float)
    check_bars(good)
    bad = good.copy()
    bad.loc[1, ["High", "Low"]] = [0.5, 2.0]
    with pytest.raises(PredictionInputError, match=r"row 1: ohlc_inconsistent: .*High 0\.5 "
                                                   r"< Low 2") as refused:
        check_bars(bad)
    assert "2000-" not in str(refused.value)  # the made-up dates are not shown


def test_the_request_schemas_carry_the_limits_and_errors_read_plainly():
    xray, ohlcv = request_models(settings(max_side=8, max_batch=2, max_bars=3))
    with pytest.raises(ValueError) as refused:
        xray.model_validate_json(b'{"data": [[0, 0, 0, 0, 0, 0, 0, 0, 0]]}')
    line = describe_errors(refused.value.errors(), "`data`")
    assert "`data.0`: List should have at most 8 items" in line and "constrained" not in line
    with pytest.raises(ValueError) as refused:
        ohlcv.model_validate_json(b'{"windows": [[[1]], [[1]], [[1]]], "bars": '
                                  b'[{"Open": true}]}')
    line = describe_errors(refused.value.errors(), "`bars`")
    assert "`bars.0.Open`: Input should be a valid number" in line and "more" in line
    assert "`windows`: List should have at most 2 items" in describe_errors(
        refused.value.errors(), "`bars`", shown=10)
    for bad in (b'{"data": [[1e300, 2, 0.5, 1.5, 100]]}', b'{"data": [[-1, 2, 0.5, 1.5, 1]]}',
                b'{"data": [[NaN, 2, 0.5, 1.5, 100]]}', b'{"data": [[false, 2, 1, 1, 1]]}'):
        with pytest.raises(ValueError):
            ohlcv.model_validate_json(bad)
    parsed = ohlcv.model_validate_json(b'{"bars": [{"open": 1, "high": 2, "low": 0.5, '
                                       b'"close": 1.5, "volume": 0, "Date": "x"}]}')
    assert parsed.bars[0].High == 2.0  # any case, other columns ignored
