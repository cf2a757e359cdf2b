"""The one gateway to TensorFlow and Keras (Keras 2, through ``tf-keras``).

``TF_USE_LEGACY_KERAS`` (and TensorFlow's C++ log level) is set by the package root
(``nnpipe/__init__.py``), which runs before any nnpipe module can import TensorFlow. Every
module gets ``tf`` and ``keras`` from here and never imports ``tensorflow`` itself (a test
keeps it so). If TensorFlow was imported before nnpipe, with Keras 3, this module says so
instead of failing later.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
import tf_keras as keras
from tf_keras.src.saving import saving_lib
from tf_keras.src.saving.serialization_lib import SafeModeScope

__all__ = [
    "describe_devices",
    "keras",
    "load_keras_zip",
    "make_deterministic",
    "tf",
]

if tf.keras.Model is not keras.Model:
    raise ImportError(
        "TensorFlow was imported before nnpipe, with Keras 3 as tf.keras. nnpipe needs "
        "Keras 2 (tf-keras): import nnpipe before tensorflow, or set TF_USE_LEGACY_KERAS=1 in "
        "the environment before starting Python."
    )

log = logging.getLogger(__name__)


def make_deterministic(seed: int) -> None:
    """Seed every RNG and ask TensorFlow for deterministic kernels, so reruns agree.

    Op determinism is global and cannot be undone in the process; it is what makes two
    runs of the same params produce the same weights on CPU. On a GPU a few ops have no
    deterministic kernel and raise instead of silently differing, which is what we want.
    """
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except RuntimeError as exc:  # already initialised in a way that forbids it
        log.warning("could not enable deterministic ops: %s", exc)


def describe_devices() -> str:
    """Say which device training will use (a GPU is used automatically where present)."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return f"GPU x{len(gpus)} ({', '.join(g.name for g in gpus)})"
    return f"CPU ({os.cpu_count()} cores)"


def load_keras_zip(path: Path, custom_objects: dict[str, type]) -> Any:
    """A ``.keras`` zip loaded by tf-keras' zip loader itself, in safe mode, uncompiled:
    never tf-keras' ``load_model`` dispatcher, which sends other formats to loaders that
    run stored bytecode (:mod:`nnpipe.saved_models` checks the file before this)."""
    with SafeModeScope(True):  # even if something enabled unsafe deserialization
        return saving_lib.load_model(
            path, custom_objects=custom_objects, compile=False, safe_mode=True
        )
