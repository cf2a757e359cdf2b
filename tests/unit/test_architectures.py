"""Every architecture of the guide, built from the default params (tests/toy_models.py):
one training step lowers the loss on a learnable toy problem, save and reload predict the
same (TFLite conversion and pruning of each: tests/integration/test_architectures_convert);
the training switches (auto, regularisation, clipping, batch norm, mixed precision) do what
they say."""

from __future__ import annotations

import logging

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

from nnpipe.architectures import choose_model, resolve_model
from nnpipe.domains.xray.params import XrayTrain
from nnpipe.fitting import precision_policy
from nnpipe.keras_env import keras, tf
from nnpipe.saved_models import load_model


def step_lowers_the_loss(model: keras.Model, x: np.ndarray, y: np.ndarray) -> None:
    def loss() -> float:  # training mode (batch statistics), no update
        return float(model.compiled_loss(tf.constant(y), model(x, training=True)))

    before = loss()
    model.train_on_batch(x, y)
    assert loss() < before


def same_after_reload(model: keras.Model, x: np.ndarray, tmp_path) -> None:
    model.save(tmp_path / "model.keras")
    again = load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(
        again.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("name", IMAGE_ARCHITECTURES)
def test_every_image_architecture_learns_and_reloads(name, tmp_path):
    x, y = images()
    model = image_model(name)
    assert model.output_shape == (None, 1) and model.layers[-1].dtype == "float32"
    step_lowers_the_loss(model, x, y)
    same_after_reload(model, x, tmp_path)


@pytest.mark.parametrize("name", SEQUENCE_ARCHITECTURES)
def test_every_sequence_architecture_learns_and_reloads(name, tmp_path):
    x, y = windows()
    model = sequence_model(name, units=sequence_units(name))
    step_lowers_the_loss(model, x, (y - 90) / 20)
    same_after_reload(model, x, tmp_path)


def test_the_guides_feedforward_and_stacked_rnn_shapes():
    ff = image_model("feedforward")
    dense = [layer.units for layer in ff.layers if isinstance(layer, keras.layers.Dense)]
    assert dense == [128, 64, 1]  # Dense 128 (+ Dropout), Dense 64, the head
    assert any(isinstance(layer, keras.layers.Dropout) for layer in ff.layers)
    rnn = sequence_model("lstm", units=[64, 32])  # the guide's create_rnn
    lstms = [layer for layer in rnn.layers if isinstance(layer, keras.layers.LSTM)]
    assert [(layer.units, layer.return_sequences) for layer in lstms] == [(64, True), (32, False)]


def test_vit_and_mixer_sizes_come_from_params():
    vit = image_model("vit", vit={"patch_size": 8, "depth": 3, "width": 24, "heads": 3})
    attention = [
        layer for layer in vit.layers if isinstance(layer, keras.layers.MultiHeadAttention)
    ]
    assert len(attention) == 3 and attention[0].get_config()["num_heads"] == 3
    assert vit.get_layer("patches").output_shape == (None, 4, 24)  # (16 / 8)^2 patches
    mixer = image_model("mlp_mixer", mlp_mixer={"depth": 1, "token_mlp": 7, "channel_mlp": 9})
    assert mixer.get_layer("mixer0_token_mlp1").units == 7
    assert mixer.get_layer("mixer0_channel_mlp1").units == 9
    assert mixer.get_layer("mixer0_token_mlp2").units == 16  # back to the 4 x 4 patches
    with pytest.raises(ValueError, match="patch_size 5 does not divide the image size 16"):
        image_model("vit", vit={"patch_size": 5})
    with pytest.raises(ValueError, match="multiple of heads"):
        XrayTrain.model_validate({"vit": {"width": 10, "heads": 3}})


def test_auto_is_the_guides_choose_model():
    assert choose_model("image", (64, 64, 1)) == "medical_cnn"
    assert choose_model("image", (4, 4, 1)) == "feedforward"  # too small for 3 poolings
    assert choose_model("sequence", (60, 5)) == "lstm"
    assert choose_model("tabular", (10,)) == "feedforward"
    with pytest.raises(ValueError, match="unknown task type 'audio'"):
        choose_model("audio", (1,))
    assert resolve_model("image", "auto", (32, 32, 1)) == "medical_cnn"
    assert resolve_model("image", "vit", (32, 32, 1)) == "vit"
    assert image_model("auto").name == "medical_cnn"
    assert sequence_model("auto").name == "lstm_forecaster"


def test_regularisation_clipping_and_batch_norm_switches():
    model = image_model("small_cnn", l1=1e-3, l2=0.0, clip_norm=1.0)
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert conv.kernel_regularizer.get_config() == pytest.approx({"l1": 1e-3, "l2": 0.0})
    assert len(model.losses) > 0  # the penalty is part of the loss
    assert model.optimizer.get_config()["clipnorm"] == 1.0
    plain = image_model("small_cnn", l1=0.0, l2=0.0)
    assert not plain.losses
    seq = sequence_model("gru", l2=1e-4, clip_value=0.5)
    assert seq.optimizer.get_config()["clipvalue"] == 0.5
    assert any(getattr(layer, "kernel_regularizer", None) is not None for layer in seq.layers)

    def norms(model):
        return sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)

    assert norms(image_model("medical_cnn")) == 3  # the architecture calls for it
    assert norms(image_model("medical_cnn", batch_norm=False)) == 0
    assert norms(image_model("feedforward")) == 0
    assert norms(image_model("feedforward", batch_norm=True)) == 2


def gpus(monkeypatch, capabilities: list[tuple[int, int] | None]) -> None:
    """TensorFlow reports these GPUs (compute capabilities; None: not reported) and no
    others, whatever this machine has."""
    devices = [tf.config.PhysicalDevice(f"/physical_device:GPU:{i}", "GPU") for i in range(9)]
    details = dict(zip(devices, capabilities, strict=False))
    monkeypatch.setattr(
        tf.config,
        "list_physical_devices",
        lambda kind=None: list(details) if kind in ("GPU", None) else [],
    )
    monkeypatch.setattr(
        tf.config.experimental,
        "get_device_details",
        lambda device: {} if details[device] is None else {"compute_capability": details[device]},
    )


def test_only_gpus_of_compute_capability_7_or_newer_have_fast_float16(monkeypatch):
    from nnpipe.fitting import fast_float16_devices

    gpus(monkeypatch, [(6, 1), (7, 0), None, (8, 6)])
    assert fast_float16_devices() == ["/physical_device:GPU:1", "/physical_device:GPU:3"]
    gpus(monkeypatch, [])
    assert fast_float16_devices() == []


@pytest.mark.parametrize("capabilities", [[], [(6, 1)]], ids=["cpu only", "gpu 6.1"])
def test_mixed_precision_is_refused_without_fast_float16_with_a_warning(
    monkeypatch, caplog, capabilities
):
    """Stated here, not read from this machine: on a GPU of compute capability 7.0+ the
    params' mixed precision is applied, which is the next test."""
    gpus(monkeypatch, capabilities)
    with caplog.at_level(logging.WARNING, logger="nnpipe.fitting"):
        model = image_model("small_cnn", mixed_precision=True)
    assert "training in float32" in caplog.text
    assert all(layer.dtype_policy.name == "float32" for layer in model.layers)
    assert not isinstance(model.optimizer, keras.mixed_precision.LossScaleOptimizer)


def test_mixed_precision_is_applied_where_the_hardware_supports_it(monkeypatch, caplog):
    """With a fast-float16 device present (stated here: CI has no GPU), layers compute in
    float16, the head in float32, and the optimizer scales the loss."""
    gpus(monkeypatch, [(7, 0)])
    assert precision_policy(True) == "mixed_float16"
    keras.mixed_precision.set_global_policy("float32")
    with caplog.at_level(logging.WARNING, logger="nnpipe.fitting"):
        model = image_model("small_cnn", mixed_precision=True)
    assert "training in float32" not in caplog.text
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert conv.compute_dtype == "float16"
    assert model.layers[-1].compute_dtype == "float32"
    assert isinstance(model.optimizer, keras.mixed_precision.LossScaleOptimizer)
    x, y = images()
    step_lowers_the_loss(model, x, y)  # and it trains (float16 kernels, on the CPU in CI)
    # the builder leaves the global policy as it found it
    assert keras.mixed_precision.global_policy().name == "float32"


def test_accumulated_steps_make_the_update_of_one_large_batch():
    """4 accumulated batches of 8 move the weights exactly as one batch of 32, with one
    optimizer update, and fit still reports the loss and metrics."""
    from nnpipe.fitting import accumulate_gradients

    x, y = images(32)
    big = image_model("feedforward", feedforward={"units": [16]}, learning_rate=1e-2)
    small = image_model("feedforward", feedforward={"units": [16]}, learning_rate=1e-2)
    small.set_weights(big.get_weights())
    big.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    history = accumulate_gradients(small, 4).fit(
        x, y, batch_size=8, epochs=1, shuffle=False, verbose=0
    )
    assert int(small.optimizer.iterations) == int(big.optimizer.iterations) == 1
    for a, b in zip(small.get_weights(), big.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert {"loss", "accuracy", "auc"} <= set(history.history)
    # 8 batches of 8 with 4 accumulated: two updates, and the model still saves as itself
    accumulate_gradients(big, 1)  # 1: unchanged
    small.fit(
        np.concatenate([x, x]),
        np.concatenate([y, y]),
        batch_size=8,
        epochs=1,
        shuffle=False,
        verbose=0,
    )
    assert int(small.optimizer.iterations) == 3
    assert type(small).__name__ == "Sequential"
