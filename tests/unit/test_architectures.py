"""Every architecture of the guide, built from the default params: one training step lowers
the loss on a learnable toy problem, save and reload predict the same, TFLite converts and
agrees, magnitude pruning reaches its sparsity (PRUNED_HERE); the training switches (auto,
regularisation, clipping, batch norm, mixed precision) do what they say."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from nnpipe.architectures import choose_model, resolve_model
from nnpipe.compression.litert import TfliteRunner
from nnpipe.compression.variants import prune, sparsity, to_tflite
from nnpipe.domains.ohlcv.models import build_forecaster
from nnpipe.domains.ohlcv.params import OhlcvTrain
from nnpipe.domains.ohlcv.scaling import TrainOnlyScaler
from nnpipe.domains.xray.models import build_model
from nnpipe.domains.xray.params import XrayTrain
from nnpipe.fitting import precision_policy
from nnpipe.keras_env import keras, tf
from nnpipe.saved_models import load_model

IMAGE = 16
LOOK_BACK, FEATURES = 8, 5


def images(n: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positive images have a bright square in the middle: learnable by any architecture."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 120, (n, IMAGE, IMAGE, 1)).astype("float32")
    y = (np.arange(n) % 2).astype("float32")
    x[y == 1, 4:12, 4:12] += 120
    return x, y


def windows(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The target is the mean of the last bar's prices: learnable from the window."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(90, 110, (n, LOOK_BACK, FEATURES)).astype("float32")
    y = x[:, -1, :4].mean(axis=1, keepdims=True).astype("float32")
    return x, y


def scaler(x: np.ndarray) -> TrainOnlyScaler:
    return TrainOnlyScaler().fit(x.reshape(-1, x.shape[-1]))


def image_model(name: str, **changes) -> keras.Model:
    cfg = XrayTrain.model_validate(
        {"model": name, "dropout": 0.0, "learning_rate": 3e-3, **changes}
    )
    keras.utils.set_random_seed(1)
    return build_model(cfg, IMAGE, 60.0, 50.0)


def sequence_model(name: str, **changes) -> keras.Model:
    x, _ = windows()
    cfg = OhlcvTrain.model_validate(
        {"model": name, "dropout": 0.0, "units": [6, 6], "learning_rate": 3e-4, **changes}
    )
    keras.utils.set_random_seed(1)
    return build_forecaster(cfg, LOOK_BACK, scaler(x))


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


def converts(model: keras.Model, x: np.ndarray) -> None:
    runner = TfliteRunner(to_tflite(model, "tflite_float32"))
    np.testing.assert_allclose(
        runner.predict(x[:4]), model.predict(x[:4], verbose=0), rtol=1e-4, atol=1e-4
    )


# pruned here: the layers that no other test prunes (the ViT's, with nnpipe's own layer,
# goes through the compress stage's worker in tests/integration/test_architectures_images;
# the CNNs through the flow project's; recurrent layers in tests/unit/compression)
PRUNED_HERE = {"mlp_mixer", "transformer"}


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


@pytest.mark.parametrize("name", ["feedforward", "small_cnn", "medical_cnn", "vit", "mlp_mixer"])
def test_every_image_architecture_learns_reloads_and_converts(name, tmp_path):
    x, y = images()
    model = image_model(name)
    assert model.output_shape == (None, 1) and model.layers[-1].dtype == "float32"
    step_lowers_the_loss(model, x, y)
    same_after_reload(model, x, tmp_path)
    converts(model, x)
    if name in PRUNED_HERE:
        prunes(model, x, y, "binary_crossentropy")


@pytest.mark.parametrize("name", ["lstm", "gru", "simple_rnn", "transformer"])
def test_every_sequence_architecture_learns_reloads_and_converts(name, tmp_path):
    x, y = windows()
    # stacked for the LSTM (the default params' shape): each recurrent layer adds seconds
    # of TFLite conversion, and the other cells' ops convert the same stacked or not
    model = sequence_model(name, units=[6, 6] if name == "lstm" else [6])
    step_lowers_the_loss(model, x, (y - 90) / 20)
    same_after_reload(model, x, tmp_path)
    converts(model, x)
    if name in PRUNED_HERE:
        prunes(model, x, (y - 90) / 20, "mse")


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
