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

import numpy as np
import tensorflow as tf
import tf_keras as keras

__all__ = ["describe_devices", "keras", "load_model", "make_deterministic", "tf"]

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


def load_model(path, **kwargs):
    """``keras.models.load_model`` with nnpipe's own layers registered (ViT and the
    sequence transformer use them): every nnpipe module loads models through this."""
    import nnpipe.layers  # noqa: F401  (registers the layers)

    return keras.models.load_model(path, **kwargs)
