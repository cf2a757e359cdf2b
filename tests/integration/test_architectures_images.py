"""Each image architecture the flow project does not already run (it runs medical_cnn)
goes through the same stages (tune, train, evaluate, compress with TFLite and pruning,
promote, register) with no special case, and its deployed variant serves a prediction; the
training switches ride along (gradient accumulation, streaming from disk, clipping by norm
and value, L1, mixed precision refused on this CPU)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from stage_runs import PRUNED, check_outputs, run_pipeline

from nnpipe.io import read_json
from nnpipe.serving.api import ServeSettings, create_app
from nnpipe.serving.predictor import load_predictor

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "model, switches",
    [
        ("small_cnn", ["xray.train.clip_value=0.5"]),
        ("feedforward", ["xray.train.l1=1e-5", "xray.train.clip_norm=1.0"]),
        (
            "vit",
            [
                "xray.train.gradient_accumulation_steps=2",
                "xray.train.stream_from_disk=true",
                # tuned too, over an architecture size (a dotted key)
                "xray.tune.enabled=true",
                "xray.tune.max_trials=2",
                "xray.tune.epochs=1",
                "xray.tune.search_space={vit.depth: {choice: [1, 2]}}",
                f"xray.compress.variants={PRUNED}",
                # deployed in Keras format: the API serves the ViT's own layers
                "xray.promote.candidates=[keras_float32]",
            ],
        ),
        ("mlp_mixer", ["xray.train.mixed_precision=true", "xray.train.batch_norm=true"]),
    ],
)
def test_image_architecture_runs_every_stage_and_serves(flow_copy, model, switches):
    params = run_pipeline(flow_copy, "xray", [f"xray.train.model={model}", *switches])
    check_outputs(flow_copy, params, "xray")
    tuning = read_json(flow_copy / "models" / "xray-hyperparameters.json")
    assert tuning["tuned"] == ("xray.tune.enabled=true" in switches)
    if tuning["tuned"]:
        assert set(tuning["values"]) == {"vit.depth"} and tuning["trials"] == 2
    predictor = load_predictor(flow_copy / "models" / "xray-deploy")
    size = params.xray.featurize.image_size
    image = np.random.default_rng(0).integers(0, 256, (size * 2, size * 2))
    answer = predictor.predict([image])
    assert 0.0 <= answer["probability"][0] <= 1.0
    if model == "vit":
        assert_api_serves(flow_copy, image, answer["probability"][0], "keras_float32")


def assert_api_serves(project, image, probability: float, variant: str) -> None:
    """The prediction API, on the project's registry, answers with the version the
    pipeline registered, the deployed variant, and the local predictor's probability."""
    registration = read_json(project / "reports" / "xray" / "registration.json")
    settings = ServeSettings(
        tracking_uri=f"sqlite:///{project / 'mlflow.db'}",
        poll_seconds=3600,
        models={"xray": "xray-classifier"},
        alias="challenger",
    )
    buf = io.BytesIO()
    Image.fromarray(image.astype(np.uint8)).save(buf, format="PNG")
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/predict/xray", content=buf.getvalue(), headers={"content-type": "image/png"}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {
        "name": "xray-classifier",
        "version": registration["version"],
        "alias": "challenger",
        "variant": variant,
    }
    assert body["probability"] == pytest.approx(probability, abs=1e-5)
