"""Every architecture of the guide, built from the default params (tests/toy_models.py),
converts to TFLite and agrees with Keras; magnitude pruning reaches its sparsity on the
layers no other test prunes (PRUNED_HERE). TFLite's converter takes seconds per model, so
this lives here; that each architecture learns, saves and reloads is
tests/unit/test_architectures.py."""

from __future__ import annotations

import numpy as np
import pytest
from toy_models import (
    IMAGE_ARCHITECTURES,
    SEQUENCE_ARCHITECTURES,
    image_model,
    images,
    sequence_model,
    sequence_units,
    windows,
)

from nnpipe.compression.litert import TfliteRunner
from nnpipe.compression.variants import prune, sparsity, to_tflite
from nnpipe.keras_env import keras

pytestmark = pytest.mark.integration

# pruned here: the layers that no other test prunes (the ViT's, with nnpipe's own layer,
# goes through the compress stage's worker in tests/integration/test_architectures_images;
# the CNNs through the flow project's; recurrent layers in tests/unit/compression)
PRUNED_HERE = {"mlp_mixer", "transformer"}


def converts(model: keras.Model, x: np.ndarray) -> None:
    runner = TfliteRunner(to_tflite(model, "tflite_float32"))
    np.testing.assert_allclose(
        runner.predict(x[:4]), model.predict(x[:4], verbose=0), rtol=1e-4, atol=1e-4
    )


def prunes(model: keras.Model, x: np.ndarray, y: np.ndarray, loss: str) -> None:
    """The compress stage's pruning: the target sparsity, no wrappers left, same outputs'
    shape."""
    pruned = prune(
        model,
        x=x,
        y=y.reshape(len(y), -1),
        loss=loss,
        initial_sparsity=0.3,
        final_sparsity=0.6,
        epochs=1,
        batch_size=8,
        learning_rate=1e-4,
    )
    assert sparsity(pruned) == pytest.approx(0.6, abs=0.05)
    assert not any("prune" in type(layer).__name__.lower() for layer in pruned.layers)
    out = pruned.predict(x[:4], verbose=0)
    assert out.shape == (4, 1) and np.isfinite(out).all()


@pytest.mark.parametrize("name", IMAGE_ARCHITECTURES)
def test_every_image_architecture_converts_and_prunes(name):
    x, y = images()
    model = image_model(name)
    converts(model, x)
    if name in PRUNED_HERE:
        prunes(model, x, y, "binary_crossentropy")


@pytest.mark.parametrize("name", SEQUENCE_ARCHITECTURES)
def test_every_sequence_architecture_converts_and_prunes(name):
    x, y = windows()
    model = sequence_model(name, units=sequence_units(name))
    converts(model, x)
    if name in PRUNED_HERE:
        prunes(model, x, (y - 90) / 20, "mse")
