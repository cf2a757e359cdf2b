"""The guide's ``choose_model(task_type, input_shape)``, made total: ``model: auto`` in a
domain's train params picks the architecture from the domain's task type.

Light on purpose (no TensorFlow): the config, the builders and the logs all ask it.
"""

from __future__ import annotations

from collections.abc import Sequence

TASK_TYPES = ("image", "sequence", "tabular")


def choose_model(task_type: str, input_shape: Sequence[int]) -> str:
    """The architecture for a task: images, the medical CNN (the feed-forward network when
    an image is too small for its three pooling steps); sequences, the LSTM; tabular rows,
    the feed-forward network."""
    if task_type == "image":
        return "medical_cnn" if min(input_shape[:2]) >= 8 else "feedforward"
    if task_type == "sequence":
        return "lstm"
    if task_type == "tabular":
        return "feedforward"
    raise ValueError(f"unknown task type {task_type!r}; known: {', '.join(TASK_TYPES)}")


def resolve_model(task_type: str, model: str, input_shape: Sequence[int]) -> str:
    """``model`` as written, or the choice for the domain's task (``Domain.task``) when
    it is ``auto``."""
    return choose_model(task_type, input_shape) if model == "auto" else model
