"""Running a ``.tflite`` model with LiteRT (``ai_edge_litert``, the successor of the
deprecated ``tf.lite.Interpreter``). Light on purpose: numpy and LiteRT only, so a
serving process that runs a TFLite variant never imports TensorFlow.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np


@dataclass
class TfliteRunner:
    """A ``.tflite`` model run by LiteRT with a fixed thread count.

    A LiteRT interpreter is not thread-safe (its tensors are shared state), and callers
    such as MLflow's scoring server predict from several threads at once: calls take turns.
    """

    content: bytes
    threads: int = 1
    # also return the model's penultimate layer (the embedding the monitor's drift check
    # compares): the model is run with that tensor as a second output
    embedding: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        content = with_embedding_output(self.content) if self.embedding else None
        self.interpreter = Interpreter(
            model_content=content or self.content, num_threads=self.threads
        )
        self.has_embedding = content is not None
        self.interpreter.allocate_tensors()
        self._details()
        self.fixed_batch = int(self.input["shape_signature"][0]) > 0

    def _details(self) -> None:
        self.input = self.interpreter.get_input_details()[0]
        outputs = self.interpreter.get_output_details()
        self.output = outputs[0]  # the model's own; an embedding output comes after it
        self.embedding_output = outputs[1] if self.has_embedding else None

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

    def _embedding(self) -> np.ndarray:
        details = cast(dict[str, Any], self.embedding_output)
        value = self.interpreter.get_tensor(details["index"])
        scale, zero = details["quantization"]
        if value.dtype != np.float32 and scale:
            return (value.astype(np.float32) - zero) * scale
        return value.astype(np.float32)

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        if tuple(self.input["shape"]) != batch.shape:
            self.interpreter.resize_tensor_input(self.input["index"], batch.shape)
            self.interpreter.allocate_tensors()
            self._details()
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

    def predict_with_embedding(
        self, x: np.ndarray, batch_size: int = 64
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The outputs and, per row, the penultimate layer's values (None: the model has
        no dense head to find it by, or the runner was made without ``embedding``)."""
        if not self.has_embedding:
            return self.predict(x, batch_size), None
        size = 1 if self.fixed_batch else batch_size
        outs, embeddings = [], []
        with self._lock:
            for i in range(0, len(x), size):
                outs.append(self._invoke(x[i : i + size]))
                embeddings.append(self._embedding().reshape(len(outs[-1]), -1))
        return np.concatenate(outs).reshape(len(x), -1), np.concatenate(embeddings)


def with_embedding_output(content: bytes) -> bytes | None:
    """The model with the input of its last dense layer as a second output (the same
    graph and weights; a model output is only a tensor whose memory is not reused), or
    None when it has no dense head. The file's bytes, already checked against the
    sha256 promote recorded, are rewritten in memory only, as data."""
    from ai_edge_litert.tools import flatbuffer_utils

    tensor = penultimate_tensor(content)
    if tensor is None:
        return None
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(content))
    graph = model.subgraphs[0]
    if len(graph.outputs) != 1:
        return None  # a model of several outputs is no classifier head nnpipe built
    graph.outputs = np.append(graph.outputs, tensor).astype(np.int32)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def penultimate_tensor(content: bytes) -> int | None:
    """The tensor that feeds the model's last dense layer (its ``FULLY_CONNECTED`` op),
    found by walking back from the output through the ops after it (the sigmoid, a
    dequantize); None when the walk meets no dense layer.

    The walk reads the ops of an interpreter without the default XNNPACK delegate, which
    would show them as ``DELEGATE`` nodes; tensor indices are the model file's, so the
    index found reads the same tensor in the delegated interpreter that serves."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    plain = Interpreter(
        model_content=content,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    ops = plain._get_ops_details()
    producer = {int(t): op for op in ops for t in op["outputs"]}
    tensor = int(plain.get_output_details()[0]["index"])
    for _ in range(len(ops)):
        op = producer.get(tensor)
        if op is None or len(op["inputs"]) == 0:
            return None
        if op["op_name"] == "FULLY_CONNECTED":
            return int(op["inputs"][0])
        tensor = int(op["inputs"][0])
    return None
