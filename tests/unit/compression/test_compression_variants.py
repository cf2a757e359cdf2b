"""Each conversion, pruning and the LiteRT runner, on tiny models (a CNN and an LSTM)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from nnpipe.compression.litert import TfliteRunner
from nnpipe.compression.variants import (
    check_representative,
    has_recurrent_layers,
    latency,
    prune,
    sparsity,
    throughput,
    to_tflite,
)
from nnpipe.keras_env import keras, make_deterministic


@pytest.fixture(scope="module")
def cnn():
    make_deterministic(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (96, 12, 12, 1)).astype(np.float32)
    y = (x[:, :6].mean(axis=(1, 2, 3)) > x[:, 6:].mean(axis=(1, 2, 3))).astype(np.float32)
    model = keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(12, 12, 1)),
            keras.layers.Rescaling(1 / 255.0),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.Flatten(),  # 800 x 64 weights: sizes are dominated by weights
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile("adam", "binary_crossentropy")
    model.fit(x, y, epochs=3, verbose=0)
    return model, x, y


@pytest.fixture(scope="module")
def lstm():
    make_deterministic(0)
    rng = np.random.default_rng(1)
    x = rng.normal(100, 5, (64, 10, 3)).astype(np.float32)
    y = x[:, -1, 0:1]
    inputs = keras.Input((10, 3))
    h = keras.layers.Rescaling(0.01)(inputs)
    h = keras.layers.LSTM(8)(h)
    out = keras.layers.Dense(1)(h)
    model = keras.Model(inputs, keras.layers.Rescaling(100.0)(out))
    model.compile("adam", "mse")
    model.fit(x, y, epochs=2, verbose=0)
    return model, x, y


@pytest.mark.parametrize("variant", ["tflite_float32", "tflite_float16", "tflite_dynamic"])
def test_float_conversions_match_keras(cnn, variant):
    model, x, _ = cnn
    runner = TfliteRunner(to_tflite(model, variant))
    ref = model.predict(x, verbose=0)
    out = runner.predict(x)
    tolerance = 1e-5 if variant == "tflite_float32" else 2e-2
    np.testing.assert_allclose(out, ref, atol=tolerance)


def test_int8_conversion_is_integer_only_and_close(cnn):
    model, x, _ = cnn
    content = to_tflite(model, "tflite_int8", x[:32])
    runner = TfliteRunner(content)
    assert runner.input["dtype"] == np.int8 and runner.output["dtype"] == np.int8
    out = runner.predict(x)
    assert np.abs(out - model.predict(x, verbose=0)).max() < 0.1
    assert len(content) < len(to_tflite(model, "tflite_float32")) / 2


def test_lstm_converts_with_a_fixed_batch_and_runs_one_window_at_a_time(lstm):
    model, x, _ = lstm
    assert has_recurrent_layers(model)
    runner = TfliteRunner(to_tflite(model, "tflite_float32"))
    assert runner.fixed_batch
    np.testing.assert_allclose(runner.predict(x), model.predict(x, verbose=0), rtol=1e-4)


@pytest.mark.parametrize(
    "data, message", [(np.zeros((0, 12, 12, 1)), "empty"), (np.zeros((4, 10, 10, 1)), "shape")]
)
def test_bad_representative_data_is_refused(cnn, data, message):
    model, _, _ = cnn
    with pytest.raises(ValueError, match=message):
        check_representative(data, model.input_shape[1:])
    with pytest.raises(ValueError, match=message):
        to_tflite(model, "tflite_int8", data)


def test_unknown_variant_is_refused(cnn):
    with pytest.raises(ValueError, match="unknown"):
        to_tflite(cnn[0], "tflite_int3")


def test_pruning_reaches_the_sparsity_strips_wrappers_and_gzips_smaller(cnn):
    model, x, y = cnn
    pruned = prune(
        model,
        x=x,
        y=y.reshape(-1, 1),
        loss="binary_crossentropy",
        initial_sparsity=0.3,
        final_sparsity=0.8,
        epochs=2,
        batch_size=16,
        learning_rate=1e-4,
    )
    assert sparsity(model) < 0.05
    assert sparsity(pruned) == pytest.approx(0.8, abs=0.03)
    assert not any("prune" in type(layer).__name__.lower() for layer in pruned.layers)
    dense = gzip.compress(to_tflite(model, "tflite_float32"))
    sparse = gzip.compress(to_tflite(pruned, "tflite_float32"))
    assert len(sparse) < 0.7 * len(dense)


def test_pruning_works_on_an_lstm(lstm):
    model, x, y = lstm
    pruned = prune(
        model,
        x=x,
        y=y,
        loss="mse",
        initial_sparsity=0.3,
        final_sparsity=0.5,
        epochs=1,
        batch_size=16,
        learning_rate=1e-4,
    )
    assert sparsity(pruned) == pytest.approx(0.5, abs=0.05)


def test_latency_and_throughput_are_measured(cnn):
    model, x, _ = cnn
    runner = TfliteRunner(to_tflite(model, "tflite_float32"), threads=1)
    stats = latency(runner.predict, x[:1], runs=20)
    assert 0 < stats["latency_ms_median"] <= stats["latency_ms_p99"]
    assert throughput(runner.predict, x) > 0
