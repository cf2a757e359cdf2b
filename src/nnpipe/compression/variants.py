"""Building one variant: TFLite conversion (float32, float16, dynamic range, full int8),
magnitude pruning with tensorflow-model-optimization, and running a ``.tflite`` file
with LiteRT (``ai_edge_litert``, the successor of ``tf.lite.Interpreter``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import numpy as np

from nnpipe.keras_env import keras, tf

log = logging.getLogger(__name__)

RECURRENT = (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN)


def has_recurrent_layers(model: keras.Model) -> bool:
    return any(isinstance(layer, RECURRENT) for layer in model.layers)


def _representative(data: np.ndarray, batch: int) -> Callable[[], Iterator[list[np.ndarray]]]:
    def generate() -> Iterator[list[np.ndarray]]:
        for i in range(0, len(data), batch):
            yield [data[i : i + batch].astype(np.float32)]

    return generate


def check_representative(data: np.ndarray | None, input_shape: tuple) -> None:
    """A representative dataset must exist and match the model's input (without batch)."""
    if data is None or len(data) == 0:
        raise ValueError(
            "the representative dataset is empty: full-integer quantization "
            "needs training inputs to calibrate its ranges"
        )
    if tuple(data.shape[1:]) != tuple(input_shape):
        raise ValueError(
            f"representative inputs have shape {tuple(data.shape[1:])}, the "
            f"model takes {tuple(input_shape)}"
        )


def to_tflite(
    model: keras.Model,
    variant: str,
    representative: np.ndarray | None = None,
) -> bytes:
    """Convert ``model``; ``variant`` is one of the tflite_* names (pruned ones convert as
    tflite_float32 / tflite_int8).

    Recurrent models are converted from a concrete function with a fixed batch of one:
    with a dynamic batch the converter emits ``TensorListReserve`` ops that the builtin
    op set cannot run. A single-input latency is what serving needs anyway.
    """
    input_shape = tuple(model.input_shape[1:])
    if has_recurrent_layers(model):
        spec = tf.TensorSpec((1, *input_shape), tf.float32)
        concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    else:
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant == "tflite_float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "tflite_dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant == "tflite_int8":
        check_representative(representative, input_shape)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        batch = 1 if has_recurrent_layers(model) else 32
        # check_representative raised if there was none
        converter.representative_dataset = _representative(cast(np.ndarray, representative), batch)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif variant != "tflite_float32":
        raise ValueError(f"unknown TFLite variant {variant!r}")
    return converter.convert()


# --------------------------------------------------------------------------- pruning


def _prunable(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D, *RECURRENT))


def pruning_schedule(steps: int, initial_sparsity: float, final_sparsity: float) -> Any:
    """The guide's PolynomialDecay over ``steps`` training steps."""
    import tensorflow_model_optimization as tfmot

    # masks are updated every `frequency` steps (tfmot's default 100 would never fire on a
    # small dataset); the schedule ends on an update step so the final sparsity is reached
    frequency = max(1, steps // 10)
    end_step = max(frequency, frequency * ((steps - 1) // frequency))
    return tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=initial_sparsity,
        final_sparsity=final_sparsity,
        begin_step=0,
        end_step=end_step,
        frequency=frequency,
    )


def prune(
    model: keras.Model,
    *,
    x: np.ndarray,
    y: np.ndarray,
    loss: str | Callable,
    initial_sparsity: float,
    final_sparsity: float,
    epochs: int,
    batch_size: int,
    learning_rate: float,
) -> keras.Model:
    """Magnitude pruning with the guide's PolynomialDecay schedule, fine-tuned on (x, y),
    then ``strip_pruning``: a plain Keras model whose pruned weights are exact zeros.

    The schedule ends after ``epochs`` passes over the data (its end step derives from the
    data size); only Dense, Conv2D and recurrent layers are wrapped, so layers such as the
    built-in scaling stay as they are.
    """
    import tensorflow_model_optimization as tfmot

    steps = math.ceil(len(x) / batch_size) * epochs
    schedule = pruning_schedule(steps, initial_sparsity, final_sparsity)

    def wrap(layer: keras.layers.Layer) -> keras.layers.Layer:
        fresh = layer.__class__.from_config(layer.get_config())  # never prune the original
        if _prunable(layer):
            return tfmot.sparsity.keras.prune_low_magnitude(fresh, pruning_schedule=schedule)
        return fresh

    pruned = keras.models.clone_model(model, clone_function=wrap)
    _copy_weights(model, pruned)
    pruned.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss)
    pruned.fit(
        x.astype(np.float32),
        y.astype(np.float32),
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        shuffle=True,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    return tfmot.sparsity.keras.strip_pruning(pruned)


def _copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Copy trained weights layer by layer into the pruning-wrapped clone."""
    for src, dst in zip(source.layers, target.layers, strict=True):
        inner = getattr(dst, "layer", dst)
        inner.set_weights(src.get_weights())


def sparsity(model: keras.Model) -> float:
    """Share of exact zeros among the kernels of prunable layers."""
    zeros = total = 0
    for layer in model.layers:
        if _prunable(layer):
            for weight in layer.trainable_weights:
                if "bias" in weight.name:
                    continue
                values = weight.numpy()
                zeros += int((values == 0).sum())
                total += values.size
    return zeros / total if total else 0.0


# --------------------------------------------------------------------------- running


def latency(
    predict_one: Callable[[np.ndarray], object], sample: np.ndarray, runs: int, warmup: int = 5
) -> dict[str, float]:
    """Median and p99 wall time of one single-input prediction, in milliseconds."""
    for _ in range(warmup):
        predict_one(sample)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        predict_one(sample)
        times.append((time.perf_counter() - start) * 1000)
    return {
        "latency_ms_median": float(np.median(times)),
        "latency_ms_p99": float(np.percentile(times, 99)),
    }


def throughput(
    predict_batch: Callable[[np.ndarray], object], x: np.ndarray, repeats: int = 3
) -> float:
    """Inputs per second over the whole array, best of ``repeats``."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        predict_batch(x)
        best = min(best, time.perf_counter() - start)
    return float(len(x) / best)
