"""Serving a deploy folder: training's preprocessing on any image or bars, the variant's
own outputs, clear errors for bad input, and the same answers through MLflow's pyfunc."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nnpipe.compression.litert import TfliteRunner
from nnpipe.compression.variants import to_tflite
from nnpipe.domains.ohlcv.models import build_forecaster, export_forecaster
from nnpipe.domains.ohlcv.params import OhlcvTrain
from nnpipe.domains.ohlcv.scaling import TrainOnlyScaler
from nnpipe.domains.xray.images import resize_square
from nnpipe.domains.xray.models import build_model
from nnpipe.domains.xray.params import XrayTrain
from nnpipe.errors import NnpipeError
from nnpipe.keras_env import make_deterministic
from nnpipe.serving.predictor import PredictionInputError, file_sha256, load_predictor

SIZE = 16


@pytest.fixture(scope="module")
def xray_deploy(tmp_path_factory):
    make_deterministic(0)
    model = build_model(
        XrayTrain(model="small_cnn", filters=[4, 8], dense_units=8), SIZE, 100.0, 50.0
    )
    folder = tmp_path_factory.mktemp("xray-deploy")
    (folder / "model.tflite").write_bytes(to_tflite(model, "tflite_float32"))
    model.save(folder / "model.keras")
    spec = {
        "domain": "xray",
        "variant": "tflite_float32",
        "format": "tflite",
        "file": "model.tflite",
        "classes": ["normal", "pneumonia"],
        "threshold": 0.5,
        "image_size": SIZE,
        "resize": "pad",
        "max_side": None,
        "sha256": file_sha256(folder / "model.tflite"),
        "schema_version": 1,
    }
    (folder / "deploy.json").write_text(json.dumps(spec))
    return folder


def png(array: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, format="PNG")
    return buf.getvalue()


def test_images_of_any_size_and_mode_get_featurize_preprocessing(xray_deploy):
    p = load_predictor(xray_deploy)
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (40, 30), dtype=np.uint8)
    expected = (
        TfliteRunner((xray_deploy / "model.tflite").read_bytes())
        .predict(resize_square(gray, SIZE, "pad").astype(np.float32)[None, ..., None])
        .reshape(-1)
    )
    rgb = np.repeat(gray[..., None], 3, axis=2)
    for image in (
        png(gray),
        base64.b64encode(png(gray)).decode(),
        png(rgb),
        gray,
        gray.astype(float),
    ):
        out = p.predict([image])
        assert out["probability"] == pytest.approx(expected.tolist(), abs=1e-6)
        assert out["label"] == [("pneumonia" if expected[0] >= 0.5 else "normal")]
        assert out["threshold"] == [0.5]


def test_the_keras_format_serves_the_same_model(xray_deploy, tmp_path):
    spec = json.loads((xray_deploy / "deploy.json").read_text())
    for name in ("model.keras", "model.tflite"):
        (tmp_path / name).write_bytes((xray_deploy / name).read_bytes())
    (tmp_path / "deploy.json").write_text(
        json.dumps(
            {
                **spec,
                "format": "keras",
                "file": "model.keras",
                "sha256": file_sha256(tmp_path / "model.keras"),
            }
        )
    )
    x = np.random.default_rng(1).integers(0, 256, (5, SIZE, SIZE)).astype(np.float64)
    keras_out = load_predictor(tmp_path).predict(x)["probability"]
    tflite_out = load_predictor(xray_deploy).predict(x)["probability"]
    assert keras_out == pytest.approx(tflite_out, abs=1e-5)


@pytest.mark.parametrize(
    "bad, message",
    [
        (b"not an image", "not a readable PNG/JPEG image"),
        ("%%%", "base64"),
        (np.zeros(7), "must be 2-D"),
        (np.full((8, 8), np.nan), "NaN"),
        (np.full((8, 8), 300.0), "0..255"),
    ],
)
def test_bad_images_are_refused_saying_what_is_wrong(xray_deploy, bad, message):
    with pytest.raises(NnpipeError, match=message):
        load_predictor(xray_deploy).predict([bad])


def test_a_folder_that_deploys_nothing_says_why(tmp_path):
    (tmp_path / "deploy.json").write_text(
        json.dumps(
            {"domain": "xray", "variant": None, "file": None, "reason": "no candidate qualifies"}
        )
    )
    with pytest.raises(NnpipeError, match="deploys nothing: no candidate qualifies"):
        load_predictor(tmp_path)
    with pytest.raises(NnpipeError, match="not a deploy folder"):
        load_predictor(tmp_path / "missing")


LOOK_BACK, COLUMNS = 5, ["Open", "High", "Low", "Close", "Volume"]


def bars(n: int) -> pd.DataFrame:
    close = 100 + np.cumsum(np.random.default_rng(2).normal(0, 1, n))
    return pd.DataFrame(
        {
            "Open": close - 0.2,
            "High": close + 1,
            "Low": close - 1,
            "Close": close,
            "Volume": np.full(n, 1e6),
        }
    )


@pytest.fixture(scope="module", params=["close", "log_return"])
def ohlcv_deploy(request, tmp_path_factory):
    make_deterministic(0)
    frame = bars(60)
    scaler = TrainOnlyScaler(COLUMNS).fit(frame[COLUMNS].to_numpy(float))
    target = TrainOnlyScaler(["target"]).fit(frame[["Close"]].to_numpy(float))
    model = export_forecaster(build_forecaster(OhlcvTrain(units=[4]), LOOK_BACK, scaler), target)
    folder = tmp_path_factory.mktemp("ohlcv-deploy")
    (folder / "model.tflite").write_bytes(to_tflite(model, "tflite_float32"))
    (folder / "deploy.json").write_text(
        json.dumps(
            {
                "domain": "ohlcv",
                "variant": "tflite_float32",
                "format": "tflite",
                "file": "model.tflite",
                "look_back": LOOK_BACK,
                "horizon": 1,
                "target": request.param,
                "features": COLUMNS,
                "derived": [],
                "sha256": file_sha256(folder / "model.tflite"),
                "schema_version": 1,
            }
        )
    )
    return folder


def test_bars_become_the_last_window_and_forecasts_become_prices(ohlcv_deploy):
    p = load_predictor(ohlcv_deploy)
    frame = bars(12)
    from_bars = p.predict_windows(p.windows_from_bars(frame))
    window = frame[COLUMNS].to_numpy(float)[-LOOK_BACK:]
    from_window = p.predict_windows(window[None])
    assert from_bars == from_window
    last_close = frame["Close"].iloc[-1]
    f = from_bars["forecast"][0]
    expected = f if p.spec.target == "close" else last_close * np.exp(f)
    assert from_bars["price"][0] == pytest.approx(expected)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: bars(3), "needs 5"),
        (lambda: bars(10).drop(columns="Volume"), "lack column"),
        (lambda: np.zeros((2, 4, 5)), r"shape \(n, 5, 5\)"),
        (lambda: np.full((1, 5, 5), np.nan), "NaN"),
    ],
)
def test_bad_bars_are_refused_saying_what_is_wrong(ohlcv_deploy, make, message):
    with pytest.raises(PredictionInputError, match=message):
        load_predictor(ohlcv_deploy).predict_input(make())


def test_the_mlflow_pyfunc_serves_the_same_predictions(xray_deploy, tmp_path):
    import mlflow.pyfunc

    from nnpipe.serving import pyfunc

    code = pyfunc.__file__.replace("pyfunc.py", "mlflow_model.py")
    mlflow.pyfunc.save_model(
        tmp_path / "m", python_model=code, artifacts={pyfunc.ARTIFACT: str(xray_deploy)}
    )
    loaded = mlflow.pyfunc.load_model(str(tmp_path / "m"))
    x = np.random.default_rng(3).integers(0, 256, (4, 20, 24)).astype(np.float64)
    direct = load_predictor(xray_deploy).predict(x)
    assert loaded.predict(x).to_dict("list") == direct
    table = pd.DataFrame({"image": [png(x[0].astype(np.uint8))]})
    assert loaded.predict(table)["probability"][0] == pytest.approx(direct["probability"][0])
