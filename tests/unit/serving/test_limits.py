"""The serving limits as pure functions: images refused by their declared size before
decoding, a request's pixels counted as preprocessing allocates them (padded squares),
small images decoded on the loop only when their bytes are small too, PIL's own messages
without reprs, which routes the API key guards, bars and raw windows checked by ingest's
rules, and validation errors said in one readable line."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nnpipe.domains.ohlcv.api.inputs import check_bars, check_windows
from nnpipe.domains.ohlcv.windows import add_features
from nnpipe.domains.xray.api.inputs import INLINE_BYTES, check_pixel_budget, decodes_inline
from nnpipe.domains.xray.images import ImageDecodeError, ImageTooLargeError, decode_image
from nnpipe.serving.api import ServeSettings, request_models
from nnpipe.serving.errors import describe_errors
from nnpipe.serving.predictor import PredictionInputError


def png(shape, dtype=np.uint8) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros(shape, dtype)).save(buf, format="PNG")
    return buf.getvalue()


def header_only_png(width: int, height: int) -> bytes:
    """A PNG signature, an IHDR chunk declaring width x height and an empty IDAT chunk: no
    pixel data at all, so only a check of the header can say more of it than "broken"."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"")


def test_an_image_is_refused_by_its_header_before_its_pixels_are_allocated():
    tall = png((1, 40000))  # a few hundred bytes that decode (and pad) to 40000 x 40000
    with pytest.raises(
        ImageTooLargeError, match="40,000 x 1 pixels is over the limit of 4,096 pixels per side"
    ):
        decode_image(tall, "tall.png", max_side=4096, max_pixels=4096 * 4096)
    # no pixel data to decode: the size limit is said from the header alone, while the
    # decoder, reached without limits, can only call the same bytes truncated
    header = header_only_png(40000, 1)
    with pytest.raises(ImageTooLargeError, match="40,000 x 1 pixels is over the limit"):
        decode_image(header, "tall.png", max_side=4096, max_pixels=4096 * 4096)
    with pytest.raises(ImageDecodeError) as decoded:
        decode_image(header, "tall.png")
    assert not isinstance(decoded.value, ImageTooLargeError), decoded.value
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
    ramp = np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000 + 3
    buf = io.BytesIO()
    Image.fromarray(ramp).save(buf, format="PNG")
    arr = ramp.astype(np.float64)
    expected = np.round((arr - arr.min()) * (255.0 / (arr.max() - arr.min()))).astype(np.uint8)
    np.testing.assert_array_equal(decode_image(buf.getvalue()), expected)


def settings(**extra) -> ServeSettings:
    return ServeSettings(tracking_uri="sqlite:///x.db", models={}, **extra)


def test_a_requests_pixels_are_counted_as_padded_squares_from_the_headers():
    """256 images of 4096 x 1 decode to 1 M pixels, but pad mode makes each a 4096 x 4096
    canvas: 4.3 G pixels, counted (and refused) before any is decoded."""
    sizes = [(f"`images[{i}]`", (4096, 1)) for i in range(256)]
    limits = settings()  # max_batch_pixels 4 x 4096^2: four padded canvases
    with pytest.raises(
        PredictionInputError,
        match=r"over 67,108,864 pixels in all .*"
        r"`images\[4\]` is 4,096 x 1, padded to 16,777,216 pixels",
    ):
        check_pixel_budget(sizes, limits, "pad", None)
    assert check_pixel_budget(sizes[:4], limits, "pad", None) == 4 * 4096**2
    assert check_pixel_budget(sizes, limits, "stretch", None) == 256 * 4096  # no canvas
    # the deployment's own max_side shrinks the image before it is padded
    assert check_pixel_budget(sizes, limits, "pad", 64) == 256 * 4096
    # one image: its padded square against serve.max_pixels
    with pytest.raises(
        PredictionInputError,
        match=r"`image`: 100 x 1 pixels \(padded to a "
        r"square: 10,000 pixels\) is over the limit of .*1,000 pixels in all",
    ):
        check_pixel_budget([("`image`", (100, 1))], settings(max_pixels=1000), "pad", None)


def test_only_images_small_in_bytes_as_well_as_by_header_are_decoded_on_the_loop():
    rng = np.random.default_rng(14)
    flat = png((512, 512))
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (512, 512), dtype=np.uint8)).save(buf, format="PNG")
    noise = buf.getvalue()
    assert len(flat) <= INLINE_BYTES < len(noise)  # same header size, 260 KB to inflate
    assert decodes_inline([("bytes", flat, "flat")] * 4)
    assert not decodes_inline([("bytes", noise, "noise")])
    assert not decodes_inline([("base64", base64.b64encode(noise).decode(), "noise")])
    assert decodes_inline([("base64", base64.b64encode(flat).decode(), "flat")])
    assert not decodes_inline([("bytes", flat, "flat")] * 5)  # too many
    assert not decodes_inline([("bytes", png((1, 513)), "wide")])  # too large a side


def bars_frame(n: int = 40) -> pd.DataFrame:
    close = 100 + np.cumsum(np.sin(np.arange(n)))
    return pd.DataFrame(
        {
            "Open": close - 0.5,
            "High": close + 1,
            "Low": close - 1,
            "Close": close,
            "Volume": 1000 + 10 * (np.arange(n) % 7),
        }
    )


def windows_of(features: list[str], look_back: int = 10) -> np.ndarray:
    rows = add_features(bars_frame(), [f for f in features if f not in bars_frame()])
    rows = rows.dropna()[features].to_numpy(float)
    return np.stack([rows[i : i + look_back] for i in range(3)])


def test_raw_windows_are_checked_by_ingests_bar_rules_naming_window_and_row():
    features = ["Open", "High", "Low", "Close", "Volume"]
    good = windows_of(features)
    check_windows(good, features)
    bad = good.copy()
    bad[1, 3, 1:3] = [0.5, 2.0]  # High < Low
    with pytest.raises(
        PredictionInputError,
        match=r"`windows\[1\]` \(10 rows\) has .*"
        r"row 3: ohlc_inconsistent: .*High 0\.5 < Low 2",
    ):
        check_windows(bad, features)
    bad = good.copy()
    bad[2, 7, 2] = -1.0
    with pytest.raises(
        PredictionInputError,
        match=r"`windows\[2\]` .*row 7: "
        r"price_not_positive: .*Low=-1",
    ):
        check_windows(bad, features)
    bad = good.copy()
    bad[0, 4, 4] = -5
    with pytest.raises(
        PredictionInputError,
        match=r"`windows\[0\]` .*row 4: "
        "volume_negative",
    ):
        check_windows(bad, features)
    bad = good * 1e8  # consistent bars, but no share costs 1e10
    with pytest.raises(
        PredictionInputError,
        match=r"`windows\[0\]` row 0: Open must be a "
        r"price > 0 and at most 1e\+09",
    ):
        check_windows(bad, features)
    check_windows(good[..., :3], features)  # another width: the predictor says the shape


def test_derived_features_in_windows_must_agree_with_their_bars():
    features = ["Open", "High", "Low", "Close", "Volume", "log_return", "hl_range", "volume_z"]
    good = windows_of(features)
    check_windows(good, features)
    for column, row, value, message in (
        ("hl_range", 2, 0.5, "hl_range must be \\(High - Low\\) / Close"),
        ("log_return", 5, 0.3, "log_return must be log\\(Close / the previous"),
        ("volume_z", 1, 9.0, "volume_z, a z-score over 20 volumes, cannot be over 4.2485"),
    ):
        bad = good.copy()
        bad[1, row, features.index(column)] = value
        with pytest.raises(PredictionInputError, match=f"`windows\\[1\\]` row {row}: {message}"):
            check_windows(bad, features)
    first = good.copy()
    first[0, 0, features.index("log_return")] = 0.3  # its previous Close is not sent
    check_windows(first, features)


def test_with_a_key_only_the_probes_and_the_named_public_routes_are_open():
    assert all(settings().is_open(p) for p in ("/models", "/predict/xray", "/docs"))
    keyed = settings(api_key="k")
    assert keyed.is_open("/health") and keyed.is_open("/ready")
    assert not any(
        keyed.is_open(p)
        for p in (
            "/models",
            "/metrics",
            "/docs",
            "/openapi.json",
            "/docs/assets/x.js",
            "/predict/ohlcv",
            "/elsewhere",
        )
    )
    docs = settings(api_key="k", public_routes=("docs",))
    assert docs.is_open("/openapi.json") and docs.is_open("/docs/assets/swagger-ui.css")
    assert not docs.is_open("/models") and not docs.is_open("/metrics")


def test_bars_are_checked_by_ingests_rules():
    good = pd.DataFrame(
        [[1, 2, 0.5, 1.5, 100]] * 3, columns=["Open", "High", "Low", "Close", "Volume"], dtype=float
    )
    check_bars(good)
    bad = good.copy()
    bad.loc[1, ["High", "Low"]] = [0.5, 2.0]
    with pytest.raises(
        PredictionInputError,
        match=r"row 1: ohlc_inconsistent: .*High 0\.5 "
        r"< Low 2",
    ) as refused:
        check_bars(bad)
    assert "2000-" not in str(refused.value)  # the made-up dates are not shown


def test_the_request_schemas_carry_the_limits_and_errors_read_plainly():
    xray, ohlcv = request_models(settings(max_side=8, max_batch=2, max_bars=3))
    with pytest.raises(ValueError) as refused:
        xray.model_validate_json(b'{"data": [[0, 0, 0, 0, 0, 0, 0, 0, 0]]}')
    line = describe_errors(refused.value.errors(), "`data`")
    assert "`data.0`: List should have at most 8 items" in line and "constrained" not in line
    with pytest.raises(ValueError) as refused:
        ohlcv.model_validate_json(b'{"windows": [[[1]], [[1]], [[1]]], "bars": [{"Open": true}]}')
    line = describe_errors(refused.value.errors(), "`bars`")
    assert "`bars.0.Open`: Input should be a valid number" in line and "more" in line
    assert "`windows`: List should have at most 2 items" in describe_errors(
        refused.value.errors(), "`bars`", shown=10
    )
    for bad in (
        b'{"data": [[1e300, 2, 0.5, 1.5, 100]]}',
        b'{"data": [[-1, 2, 0.5, 1.5, 1]]}',
        b'{"data": [[NaN, 2, 0.5, 1.5, 100]]}',
        b'{"data": [[false, 2, 1, 1, 1]]}',
    ):
        with pytest.raises(ValueError):
            ohlcv.model_validate_json(bad)
    parsed = ohlcv.model_validate_json(
        b'{"bars": [{"open": 1, "high": 2, "low": 0.5, "close": 1.5, "volume": 0, "Date": "x"}]}'
    )
    assert parsed.bars[0].High == 2.0  # any case, other columns ignored
