"""Running a ``.tflite`` model with LiteRT (``ai_edge_litert``, the successor of the
deprecated ``tf.lite.Interpreter``). Light on purpose: numpy and LiteRT only, so a
serving process that runs a TFLite variant never imports TensorFlow.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np


@dataclass
class TfliteRunner:
    """A ``.tflite`` model run by LiteRT with a fixed thread count.

    A LiteRT interpreter is not thread-safe (its tensors are shared state), and callers
    such as MLflow's scoring server predict from several threads at once: calls take turns.
    """

    content: bytes
    threads: int = 1
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_content=self.content, num_threads=self.threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.fixed_batch = int(self.input["shape_signature"][0]) > 0

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        if self.input["dtype"] == np.float32:
            return x.astype(np.float32)
        scale, zero = self.input["quantization"]
        info = np.iinfo(self.input["dtype"])
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input["dtype"])

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        if self.output["dtype"] == np.float32:
            return y.astype(np.float64)
        scale, zero = self.output["quantization"]
        return (y.astype(np.float64) - zero) * scale

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        if tuple(self.input["shape"]) != batch.shape:
            self.interpreter.resize_tensor_input(self.input["index"], batch.shape)
            self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
            self.output = self.interpreter.get_output_details()[0]
        # fused LSTM ops keep their state in variable tensors across invocations: each
        # window is an independent sequence, so start every call from zero state
        self.interpreter.reset_all_variables()
        self.interpreter.set_tensor(self.input["index"], self._quantize(batch))
        self.interpreter.invoke()
        return self._dequantize(self.interpreter.get_tensor(self.output["index"]))

    def predict(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        size = 1 if self.fixed_batch else batch_size
        with self._lock:
            outs = [self._invoke(x[i : i + size]) for i in range(0, len(x), size)]
        return np.concatenate(outs).reshape(len(x), -1)
