"""The prediction API (`nnpipe serve`) and batch prediction (`nnpipe predict`) on the flow
project's registered versions: through FastAPI's test client and a real server process,
every bad input answered with its status and message, and an alias move picked up during
a stream of requests without one failing."""

from __future__ import annotations

import base64
import io
import json
import re
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import BIN, free_port, nnpipe, server_process, shared_data
from fastapi.testclient import TestClient
from mlflow import MlflowClient
from PIL import Image

from nnpipe.io import read_json
from nnpipe.serving.api import ServeSettings, create_app

pytestmark = pytest.mark.integration


def uri(project) -> str:
    return f"sqlite:///{project / 'mlflow.db'}"


def settings(project, **extra) -> ServeSettings:
    return ServeSettings(
        **{
            "tracking_uri": uri(project),
            "poll_seconds": 3600,
            "models": {"xray": "xray-classifier", "ohlcv/SYNTH": "ohlcv-forecaster"},
            **extra,
        }
    )


def png(shape=(60, 48), seed=0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)).save(
        buf, format="PNG"
    )
    return buf.getvalue()


@pytest.fixture
def api(flow_project):
    # the flow's OHLCV model is only `challenger` (it does not beat persistence): serve that
    with TestClient(create_app(settings(flow_project, alias="challenger"))) as client:
        yield client


def test_an_uploaded_image_of_any_size_gets_probabilities_threshold_and_version(api, flow_project):
    deploy = read_json(flow_project / "models/xray-deploy/deploy.json")
    upload = api.post("/predict/xray", files={"file": ("x.png", png(), "image/png")})
    raw = api.post("/predict/xray", content=png(), headers={"content-type": "image/png"})
    b64 = api.post("/predict/xray", json={"image": base64.b64encode(png()).decode()})
    for response in (upload, raw, b64):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["threshold"] == deploy["threshold"]
        assert body["label"] in ("normal", "pneumonia")
        assert body["probabilities"]["pneumonia"] == pytest.approx(body["probability"])
        assert body["model"] == {
            "name": "xray-classifier",
            "version": "1",
            "alias": "challenger",
            "variant": deploy["variant"],
        }
    assert upload.json()["probability"] == raw.json()["probability"] == b64.json()["probability"]


def test_the_guides_request_shape_still_works(api):
    image = np.random.default_rng(1).integers(0, 256, (32, 32)).tolist()
    one = api.post("/predict", json={"data": image})
    two = api.post("/predict", json={"data": [image, image]})
    assert one.status_code == two.status_code == 200
    assert len(one.json()["prediction"]) == 1 and len(two.json()["prediction"]) == 2
    assert two.json()["prediction"][0] == one.json()["prediction"][0]


def test_batches_and_the_forecaster(api, flow_project):
    files = [("file", (f"{i}.png", png(seed=i), "image/png")) for i in range(3)]
    batch = api.post("/predict/xray/batch", files=files)
    assert batch.status_code == 200 and len(batch.json()["predictions"]) == 3
    bars = [
        dict(zip(["Open", "High", "Low", "Close", "Volume"], row, strict=True))
        for row in np.loadtxt(
            flow_project / "data/ohlcv/raw/SYNTH.csv",
            delimiter=",",
            skiprows=1,
            usecols=(1, 2, 3, 4, 5),
        )[-15:].tolist()
    ]
    one = api.post("/predict/ohlcv", json={"bars": bars})
    assert one.status_code == 200, one.text
    assert one.json()["series"] == "SYNTH" and one.json()["target"] == "close"
    assert abs(one.json()["price"] - bars[-1]["Close"]) / bars[-1]["Close"] < 0.5
    window = [[b[k] for k in ("Open", "High", "Low", "Close", "Volume")] for b in bars[-10:]]
    many = api.post("/predict/ohlcv/batch", json={"windows": [window, window]})
    assert many.status_code == 200 and len(many.json()["predictions"]) == 2
    assert many.json()["predictions"][0]["price"] == pytest.approx(one.json()["price"])


@pytest.mark.parametrize(
    "path, kwargs, status, message",
    [
        (
            "/predict/xray",
            {"content": b"GIF89a-not-a-png", "headers": {"content-type": "image/png"}},
            422,
            "not a readable PNG/JPEG image",
        ),
        (
            "/predict/xray",
            {"content": png()[:40], "headers": {"content-type": "image/png"}},
            422,
            "not a readable PNG/JPEG image",
        ),
        (
            "/predict/xray",
            {"content": b"", "headers": {"content-type": "image/png"}},
            422,
            "the request body (image/png, 0 bytes) is empty",
        ),
        # a non-image upload: named by file name, content type and size, and what is accepted
        (
            "/predict/xray",
            {"files": {"file": ("notes.txt", b"hello world", "text/plain")}},
            422,
            "file 'notes.txt' in field `file` (text/plain, 11 bytes): not a readable PNG/JPEG",
        ),
        (
            "/predict/xray",
            {"files": {"file": ("notes.txt", b"hello world", "text/plain")}},
            422,
            "send a PNG or JPEG image: multipart/form-data",
        ),
        (
            "/predict/xray",
            {"json": {"images": [base64.b64encode(b"hello").decode()]}},
            422,
            "`images[0]` (base64, 5 bytes): not a readable PNG/JPEG",
        ),
        (
            "/predict/xray",
            {"json": {"img": "x"}},
            422,
            "unknown field `img` (accepted fields: `data`, `image`, `images`)",
        ),
        ("/predict/xray", {"json": {"image": 5}}, 422, "`image`: Input should be a valid string"),
        ("/predict/xray", {"content": b"hello"}, 415, "(no content type, 5 bytes) is not accepted"),
        ("/predict/xray", {"json": {"data": [[1, 2], [3]]}}, 422, "must be a numeric array"),
        ("/predict/xray", {"json": {"data": [1, 2, 3]}}, 422, "`data"),
        (
            "/predict/xray",
            {"json": {"data": [[[1, 2], [3, 4]], [[1], [2]]]}},
            422,
            "must be a numeric array",
        ),
        (
            "/predict/xray",
            {
                "content": b'{"data": [[NaN, 1], [1, 1]]}',
                "headers": {"content-type": "application/json"},
            },
            422,
            "`data.0.0`: Input should be a finite number",
        ),
        (
            "/predict/xray",
            {"json": {"data": [[999.0, 1], [1, 1]]}},
            422,
            "less than or equal to 255",
        ),
        ("/predict/xray", {"json": {"image": "%%% not base64"}}, 422, "base64"),
        ("/predict/xray", {"json": {}}, 422, "needs `data`"),
        (
            "/predict/xray",
            {"content": b"{", "headers": {"content-type": "application/json"}},
            422,
            "the JSON body (1 bytes) is not accepted: not valid JSON",
        ),
        (
            "/predict/xray",
            {"content": b"hello", "headers": {"content-type": "text/plain"}},
            415,
            "not accepted",
        ),
        (
            "/predict/xray",
            {"files": {"other": (None, "text")}},
            422,
            "no file (fields sent: `other`)",
        ),
        (
            "/predict/xray",
            {"content": b"x" * (2**20 + 1), "headers": {"content-type": "image/png"}},
            413,
            "the request body (1,048,577 bytes, image/png) is over the limit of 1,048,576",
        ),
        ("/predict/ohlcv", {"json": {"data": [[1, 2, 0.5, 1.5, 100]] * 3}}, 422, "needs 10"),
        ("/predict/ohlcv", {"json": {"data": [[1, 2, 3]] * 12}}, 422, "`data.0` has too few items"),
        (
            "/predict/ohlcv",
            {"json": {"bars": [{"Open": 1}] * 12}},
            422,
            "`bars.0.High`: Field required",
        ),
        ("/predict/ohlcv", {"json": {"data": "many"}}, 422, "invalid request"),
        (
            "/predict/ohlcv",
            {"json": {"data": [[1, 2, 3, 4, 5], [1, 2]]}},
            422,
            "`data.1` has too few items",
        ),  # ragged rows: was a 500
        ("/predict/ohlcv", {"json": {"bar": []}}, 422, "unknown field `bar`"),
        (
            "/predict/ohlcv",
            {"content": b"{", "headers": {"content-type": "application/json"}},
            422,
            "not valid JSON",
        ),
        (
            "/predict/ohlcv",
            {"content": b"hi", "headers": {"content-type": "text/plain"}},
            415,
            "(sent as text/plain) is not accepted at /predict/ohlcv; send application/json",
        ),
        ("/predict/ohlcv/batch", {"json": {"windows": [[[1.0] * 5] * 4]}}, 422, "shape"),
        (
            "/predict/ohlcv/batch",
            {"json": {"windows": [[[1.0] * 5] * 4, [[1.0] * 5]]}},
            422,
            "rows of one length",
        ),
        (
            "/predict/ohlcv?series=NOPE",
            {"json": {"data": [[1] * 5] * 12}},
            404,
            "series 'NOPE' is not served here; served series: SYNTH",
        ),
        ("/nowhere", {}, 404, "no endpoint at /nowhere"),
    ],
)
def test_every_bad_input_gets_a_4xx_that_says_what_is_wrong(
    flow_project, path, kwargs, status, message
):
    app = create_app(settings(flow_project, alias="challenger", max_request_bytes=2**20))
    with TestClient(app) as api:
        response = api.post(path, **kwargs)
        assert response.status_code == status, response.text
        assert message in response.json()["error"]
        assert not re.search(r"<[\w.]+ object at 0x|<_io\.|Traceback", response.text)
        assert api.get("/health").status_code == 200  # and the server is still there
        metrics = api.get("/metrics").text
    assert f'status="{status}"' in metrics and "nnpipe_request_errors_total" in metrics


def test_readiness_metadata_schema_and_api_key(flow_project):
    app = create_app(settings(flow_project, api_key="s3cret"))  # alias champion
    with TestClient(app) as api:
        ready = api.get("/ready")
        # the OHLCV model never passed its gate: no champion, and readiness says so
        assert ready.status_code == 503 and "ohlcv/SYNTH" in ready.json()["problems"]
        assert api.get("/models").status_code == 401  # protected too, with a key set
        models = api.get("/models", headers={"x-api-key": "s3cret"}).json()["models"]
        assert models["xray"]["version"] == "1" and models["xray"]["variant"]
        assert models["xray"]["data_hash"] and "roc_auc" in models["xray"]["metrics"]
        image = {"content": png(), "headers": {"content-type": "image/png"}}
        assert api.post("/predict/xray", **image).status_code == 401
        wrong = {**image, "headers": {**image["headers"], "x-api-key": "guess"}}
        assert api.post("/predict/xray", **wrong).status_code == 401
        right = {**image, "headers": {**image["headers"], "x-api-key": "s3cret"}}
        assert api.post("/predict/xray", **right).status_code == 200
        ohlcv = api.post(
            "/predict/ohlcv", json={"data": [[1] * 5] * 12}, headers={"x-api-key": "s3cret"}
        )
        assert ohlcv.status_code == 503 and "champion" in ohlcv.json()["error"]
        paths = api.get("/openapi.json", headers={"x-api-key": "s3cret"}).json()["paths"]
        assert {
            "/predict/xray",
            "/predict/xray/batch",
            "/predict",
            "/predict/ohlcv",
            "/health",
            "/ready",
            "/models",
            "/metrics",
        } <= set(paths)


def test_an_alias_move_is_picked_up_during_a_stream_of_requests(flow_copy):
    client = MlflowClient(uri(flow_copy), uri(flow_copy))
    v1 = client.get_model_version("xray-classifier", "1")
    app = create_app(settings(flow_copy, poll_seconds=0.2, models={"xray": "xray-classifier"}))
    seen, failures, stop = [], [], threading.Event()
    with TestClient(app) as api:

        def stream() -> None:
            while not stop.is_set():
                r = api.post("/predict/xray", content=png(), headers={"content-type": "image/png"})
                (seen if r.status_code == 200 else failures).append(
                    r.json()["model"]["version"] if r.status_code == 200 else r.text
                )

        thread = threading.Thread(target=stream)
        thread.start()
        try:
            time.sleep(1.0)
            logged = client.get_logged_model(v1.source.removeprefix("models:/"))
            v2 = client.create_model_version(
                "xray-classifier", logged.artifact_location, run_id=v1.run_id, tags=v1.tags
            )
            client.set_registered_model_alias("xray-classifier", "champion", v2.version)
            deadline = time.monotonic() + 120
            while (models := api.get("/models").json())["models"]["xray"]["version"] != str(
                v2.version
            ):
                assert time.monotonic() < deadline, f"the alias move was not picked up: {models}"
                time.sleep(0.2)
            time.sleep(0.5)
        finally:
            stop.set()
            thread.join()
    assert failures == []
    assert seen[0] == "1" and seen[-1] == str(v2.version) and len(seen) > 10


def test_a_real_server_process_on_loopback(flow_project, tmp_path):
    port = free_port()
    cmd = [str(BIN / "nnpipe"), "serve", "--port", str(port), "--domain", "xray"]
    with server_process(
        cmd, f"http://127.0.0.1:{port}/ready", tmp_path / "serve.log", cwd=flow_project
    ):
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict/xray",
            data=png(),
            headers={"Content-Type": "image/png"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = json.loads(resp.read())
    assert body["model"]["version"] == "1" and 0 <= body["probability"] <= 1
    assert "127.0.0.1" in (tmp_path / "serve.log").read_text()


def test_mlflow_models_serve_answers_for_the_same_version(flow_project, tmp_path, api):
    port = free_port()
    env = {**__import__("os").environ, "MLFLOW_TRACKING_URI": uri(flow_project)}
    cmd = [
        str(BIN / "mlflow"),
        "models",
        "serve",
        "-m",
        "models:/xray-classifier/1",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    image = np.random.default_rng(5).integers(0, 256, (40, 36)).tolist()
    with server_process(cmd, f"http://127.0.0.1:{port}/ping", tmp_path / "mlflow.log", env=env):
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"inputs": [image]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            theirs = json.loads(resp.read())["predictions"][0]
    ours = api.post("/predict", json={"data": image}).json()["predictions"][0]
    assert theirs["probability"] == pytest.approx(ours["probability"], abs=1e-6)
    assert theirs["label"] == ours["label"]


@pytest.mark.realdata
def test_nnpipe_predict_on_the_shared_real_data(flow_project, tmp_path):
    import pandas as pd

    npz = shared_data("xray", "pneumoniamnist_dev.npz")
    nnpipe(flow_project, "predict", str(npz), "-o", str(tmp_path / "xray.csv"))
    table = pd.read_csv(tmp_path / "xray.csv")
    with np.load(npz) as data:
        expected = sum(len(data[k]) for k in data.files if k.endswith("images"))
    assert len(table) == expected and table["error"].isna().all()
    assert set(table["label"]) <= {"normal", "pneumonia"}
    assert (table["model_version"] == 1).all()
    goog = shared_data("ohlcv", "GOOG.csv")
    nnpipe(
        flow_project,
        "predict",
        "--domain",
        "ohlcv",
        str(goog),
        "-o",
        str(tmp_path / "goog.csv"),
        "--alias",
        "challenger",
    )
    forecasts = pd.read_csv(tmp_path / "goog.csv")
    assert len(forecasts) == 2148 - 10 + 1 and (forecasts["price"] > 0).all()
    assert forecasts["last_bar"].iloc[-1] == "2013-03-01"


def test_docs_and_its_assets_are_served_locally(api):
    """/docs works offline: Swagger UI's files come from this server (the fastapi-offline
    package), the page names no other host, and the bundle reads OpenAPI 3.1."""
    page = api.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    refs = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert refs and not re.search(r"https?://|//[a-z]", page.text, re.IGNORECASE), refs
    assert all(r.startswith("/") for r in refs), refs
    kinds = {}
    for ref in refs:
        asset = api.get(ref)
        assert asset.status_code == 200, ref
        kinds[ref.rsplit(".", 1)[-1]] = (asset.headers["content-type"], asset.content)
    assert "javascript" in kinds["js"][0] and b"SwaggerUIBundle" in kinds["js"][1]
    assert "text/css" in kinds["css"][0] and b".swagger-ui" in kinds["css"][1]
    assert re.search(rb'PACKAGE_VERSION:"5\.', kinds["js"][1])  # Swagger UI 5 reads 3.1
    assert api.get("/openapi.json").json()["openapi"].startswith("3.1")


def test_nnpipe_serve_refuses_a_server_that_would_never_be_ready_and_says_what_is(
    flow_project, monkeypatch
):
    # the default domains (params.yaml's serve.domains) include OHLCV, whose gate refused
    # a champion on synthetic data: the server would never be ready
    done = nnpipe(flow_project, "serve", "--port", str(free_port()), check=False)
    assert done.returncode == 2, done.stderr[-3000:]
    message = done.stderr
    assert "ohlcv-forecaster (ohlcv/SYNTH)" in message and "'champion'" in message
    record = read_json(flow_project / "reports/ohlcv/registration.json")["series"]["SYNTH"]
    assert record["reason"] in message and "reports/ohlcv/registration.json" in message
    assert "nnpipe serve --domain xray --port" in message
    assert "nnpipe serve --alias challenger --port" in message and "--wait" in message
    assert message.count("\n") < 15 and "Traceback" not in message
    # the hint the run's summary prints is the command that is ready
    from nnpipe.config import load_params
    from nnpipe.serving.serve_plan import serve_hint

    monkeypatch.chdir(flow_project)
    params = load_params()
    assert serve_hint(params) == "nnpipe serve --domain xray"
    only_xray = params.model_copy(
        update={"serve": params.serve.model_copy(update={"domains": ["xray"]})}
    )
    assert serve_hint(only_xray) == "nnpipe serve"


def test_wait_keeps_a_server_up_that_is_ready_once_the_alias_points_somewhere(flow_copy, tmp_path):
    port, log_path = free_port(), tmp_path / "serve.log"
    cmd = [str(BIN / "nnpipe"), "serve", "--wait", "--poll-seconds", "0.2", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with server_process(cmd, f"{base}/health", log_path, cwd=flow_copy):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/ready", timeout=10)
        body = json.loads(refused.value.read())
        assert refused.value.code == 503 and body["ready"] is False
        assert body["waiting_for"] == {"ohlcv/SYNTH": "ohlcv-forecaster@champion"}
        assert (
            "ohlcv-forecaster has no version under the alias 'champion'"
            in body["problems"]["ohlcv/SYNTH"]
        )
        assert body["models"] == {"xray": "1"}  # what is there is served meanwhile
        time.sleep(2.0)  # about ten polls
        client = MlflowClient(uri(flow_copy), uri(flow_copy))
        client.set_registered_model_alias("ohlcv-forecaster", "champion", "1")
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/ready", timeout=10) as resp:
                    ready = json.loads(resp.read())
                break
            except urllib.error.HTTPError:
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.2)
    assert ready["ready"] is True and ready["models"] == {"xray": "1", "ohlcv/SYNTH": "1"}
    log = log_path.read_text()
    assert log.count("cannot load ohlcv-forecaster@champion") == 1, log[-3000:]  # said once
    assert "moved from nothing to v1" in log
