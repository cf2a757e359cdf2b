"""Loading saved Keras models: the files nnpipe wrote itself (training, evaluation,
compression) and, for serving, model bytes from the registry, which are data and never code.

Apart from :mod:`nnpipe.keras_env` (the gateway to TensorFlow, which knows nothing of
nnpipe's models) so that nnpipe's own layers (:mod:`nnpipe.layers`) can be built on the
gateway and known to the loaders without an import cycle.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from nnpipe.errors import RefusedModelError
from nnpipe.keras_env import keras, load_keras_zip
from nnpipe.layers import custom_objects

__all__ = ["check_keras_config", "load_model", "load_served_keras"]


def load_model(path, **kwargs):
    """``keras.models.load_model`` with nnpipe's own layers registered (ViT and the
    sequence transformer use them): every nnpipe module loads models through this."""
    return keras.models.load_model(path, **kwargs)  # importing nnpipe.layers registered them


# Serving: a model file from the registry is data, never code ---------------------------

# tf-keras' load_model sends a `.keras` path that is a zip to the safe loader and anything
# else (an HDF5 or SavedModel file, whatever its name) to the legacy loaders, which rebuild
# a Lambda layer from stored bytecode and run it. Serving never calls that dispatcher: it
# checks the bytes are a Keras zip and calls the zip loader itself, in safe mode, after
# checking every object the archive's config names is a Keras layer (or nnpipe's own),
# initializer, regularizer, constraint, optimizer, metric or loss, and none runs code.
KERAS_ZIP_FILES = {"config.json", "metadata.json", "model.weights.h5"}
_KERAS_MODULE = re.compile(r"(tf_)?keras(\.[A-Za-z_][A-Za-z0-9_]*)*")
_DATA_OBJECTS = {"__tensor__", "__numpy__", "__bytes__"}
# layers whose config names a function or holds bytecode: Lambda and the op layers that
# the functional API makes of raw TensorFlow calls (nnpipe's builders make none)
_CODE_LAYERS = {
    "Lambda",
    "TFOpLambda",
    "SlicingOpLambda",
    "ClassMethod",
    "InstanceMethod",
    "InstanceProperty",
}


def _allowed_bases() -> tuple[type, ...]:
    return (
        keras.layers.Layer,
        keras.initializers.Initializer,
        keras.regularizers.Regularizer,
        keras.constraints.Constraint,
        keras.optimizers.Optimizer,
        keras.optimizers.legacy.Optimizer,
        keras.metrics.Metric,
        keras.losses.Loss,
    )


def _keras_class(module: str, name: str) -> Any:
    """The class a Keras module and name stand for (never importing outside Keras)."""
    try:
        found = importlib.import_module("tf_" + module if module.startswith("keras") else module)
    except ImportError:
        return None
    return getattr(found, name, None)


def check_keras_config(node: Any, where: str = "config") -> None:
    """Refuse a Keras config that names anything but Keras' own building blocks and
    nnpipe's registered layers (:func:`nnpipe.layers.custom_objects`)."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            check_keras_config(item, f"{where}[{i}]")
        return
    if not isinstance(node, dict):
        return
    if "class_name" in node:
        name = node["class_name"]
        if not isinstance(name, str):
            raise RefusedModelError(f"{where}: class_name is not a string")
        registered = node.get("registered_name") or name
        label = f"{where} ({name})"
        if name in _DATA_OBJECTS:
            return
        if name in _CODE_LAYERS or name.startswith("__") or name == "function":
            raise RefusedModelError(
                f"{label} would run code stored in the model "
                "(a Lambda layer, a function or a Python object)"
            )
        if ">" in str(registered):
            if registered not in custom_objects():
                raise RefusedModelError(
                    f"{label} is the custom object {registered!r}; the only custom objects "
                    f"a served model may hold are nnpipe's own ({', '.join(custom_objects())})"
                )
        else:
            module = node.get("module")
            if not isinstance(module, str) or not _KERAS_MODULE.fullmatch(module):
                raise RefusedModelError(f"{label} comes from the module {module!r}, not from Keras")
            cls = _keras_class(module, name)
            # tf-keras looks the name up among registered custom objects first
            shadow = keras.saving.get_registered_object(registered)
            if (
                not (isinstance(cls, type) and issubclass(cls, _allowed_bases()))
                or cls.__name__ in _CODE_LAYERS
                or shadow not in (None, cls)
            ):
                raise RefusedModelError(
                    f"{label} is not a Keras layer, initializer, "
                    "regularizer, constraint, optimizer, metric or loss"
                )
    for key, value in node.items():
        check_keras_config(value, f"{where}.{key}")


def load_served_keras(content: bytes, what: str) -> Any:
    """A Keras model from the bytes of a ``.keras`` zip (``what`` names it in errors):
    checked to be a zip holding only a config, metadata and weights, its config checked
    (:func:`check_keras_config`), loaded by tf-keras' zip loader in safe mode with nnpipe's
    own layers as the only custom objects. Anything else raises RefusedModelError."""
    buffer = io.BytesIO(content)
    if not zipfile.is_zipfile(buffer):
        kind = "an HDF5 file" if content[:8] == b"\x89HDF\r\n\x1a\n" else "not a zip file"
        raise RefusedModelError(
            f"{what} is {kind}, not a Keras zip (.keras) model; nnpipe "
            "writes and serves only Keras zip and TFLite files"
        )
    try:
        with zipfile.ZipFile(buffer) as archive:
            names = set(archive.namelist())
            if names != KERAS_ZIP_FILES:
                raise RefusedModelError(
                    f"{what} holds {sorted(names)}; a Keras model nnpipe wrote holds exactly "
                    f"{sorted(KERAS_ZIP_FILES)}"
                )
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, ValueError, KeyError) as exc:
        raise RefusedModelError(f"{what} is a broken Keras zip: {exc}") from None
    check_keras_config(config)
    with tempfile.TemporaryDirectory(prefix="nnpipe-keras-") as tmp:
        # the bytes checked (and hashed by the caller) are the bytes loaded
        copy = Path(tmp) / "model.keras"
        copy.write_bytes(content)
        return load_keras_zip(copy, custom_objects())
