"""Predicting with a deploy folder (written by the promote stage): the chosen variant,
run by LiteRT (TFLite) or Keras, behind the preprocessing that training used.

A deploy folder holds ``deploy.json`` (the domain, the variant, its file and format, and
what preprocessing needs: image size and resize mode, or look-back and feature names)
and the model file. Each domain's predictor (``nnpipe.domains.<domain>.predictor``)
applies the preprocessing training used; TensorFlow is imported only to run a Keras variant.

A deploy folder may come from a registry anyone with write access could have changed, so
it is loaded as data only (:func:`check_deploy_spec`, :func:`read_model_file`): the model
file must be a plain name inside the folder, of a format nnpipe writes (a TFLite
flatbuffer, or a Keras zip loaded in safe mode with nnpipe's own layers only, see
:func:`nnpipe.saved_models.load_served_keras`), with the sha256 promote recorded. Anything
else raises :class:`~nnpipe.errors.RefusedModelError` before a byte of it is parsed.
"""

from __future__ import annotations

import abc
import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from nnpipe.artifacts import DEPLOY_FILE, DeploySpec
from nnpipe.domains.registry import DOMAINS, get_domain
from nnpipe.errors import NnpipeError, RefusedModelError

log = logging.getLogger(__name__)

FORMATS = {"tflite": ".tflite", "keras": ".keras"}  # what promote writes, by suffix
TFLITE_IDENTIFIER = b"TFL3"  # a TFLite flatbuffer's file identifier, at bytes 4..8
_SHA256 = re.compile(r"[0-9a-f]{64}")
REPROMOTE = (
    "re-run promote and register on a project you trust (`nnpipe run`, or `dvc "
    "repro -f <domain>-promote` then `nnpipe run`)"
)


class PredictionInputError(NnpipeError, ValueError):
    """The input cannot be predicted on: the message says what is wrong with it."""


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def file_sha256(path: Path) -> str:
    """The sha256 of a file, as promote records it in ``deploy.json``."""
    return sha256_of(path.read_bytes())


def confined_path(directory: Path, name: Any, what: str) -> Path:
    """``directory / name`` where ``name`` is a relative path that stays inside
    ``directory`` (no absolute path, no ``..``, no symlink out); else RefusedModelError."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        raise RefusedModelError(
            f"{what} must be a file name inside {directory}, got {name!r}; {REPROMOTE}"
        )
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts or re.match(r"[A-Za-z]:", name):
        raise RefusedModelError(
            f"{what} is {name!r}: it must be a path inside "
            f"{directory}, never absolute or with '..'; {REPROMOTE}"
        )
    root = directory.resolve()
    target = (directory / name).resolve()
    if not target.is_relative_to(root):
        raise RefusedModelError(
            f"{what} {name!r} leads outside {directory} (to {target}, "
            f"through a symlink); {REPROMOTE}"
        )
    return target


def check_deploy_spec(directory: Path, spec: Any) -> Path:
    """Check a ``deploy.json`` record is one promote writes; the model file's path."""
    return checked_spec(directory, spec)[0]


def checked_spec(directory: Path, spec: Any) -> tuple[Path, DeploySpec]:
    """Check a ``deploy.json`` record is one promote writes: the model file's path, and
    the record parsed once, as its domain's served deploy spec (``XrayServedSpec``...)."""
    where = directory / DEPLOY_FILE
    if not isinstance(spec, dict):
        raise RefusedModelError(f"{where} is not a JSON object; {REPROMOTE}")
    if spec.get("domain") not in DOMAINS:
        raise RefusedModelError(
            f"{where}: domain {spec.get('domain')!r} is not one of "
            f"{', '.join(DOMAINS)}; {REPROMOTE}"
        )
    fmt = spec.get("format")
    if fmt not in FORMATS:
        raise RefusedModelError(
            f"{where}: format {fmt!r} is not one nnpipe serves ({', '.join(FORMATS)}); {REPROMOTE}"
        )
    path = confined_path(directory, spec.get("file"), f"{where}: file")
    if path.suffix != FORMATS[fmt]:
        raise RefusedModelError(
            f"{where}: a {fmt} model is a {FORMATS[fmt]} file, not {spec['file']!r}; {REPROMOTE}"
        )
    if not path.is_file():
        raise RefusedModelError(
            f"{where} names {spec['file']!r}, which is not a file in {directory}; {REPROMOTE}"
        )
    if not isinstance(spec.get("sha256"), str) or not _SHA256.fullmatch(spec["sha256"]):
        raise RefusedModelError(
            f"{where} records no sha256 of {spec['file']} (a deploy "
            f"folder from before nnpipe recorded one, or edited); "
            f"{REPROMOTE}"
        )
    # last, so a planted file meets the specific refusals above first. A deploy.json from
    # before deploy records were versioned (the same keys, with its sha256) is read as
    # version 1: a registered version cannot be re-promoted, and refusing it would leave
    # the register gate no champion to compare a candidate with
    record = spec if "schema_version" in spec else {**spec, "schema_version": 1}
    model = get_domain(spec["domain"]).deploy_spec_model().served_model()
    return path, model.parse(record, str(where), REPROMOTE, RefusedModelError)


def read_model_file(path: Path, fmt: str, sha256: str) -> bytes:
    """The model file's bytes, once: they must hash to ``sha256`` and be of ``fmt``."""
    content = path.read_bytes()
    if (found := sha256_of(content)) != sha256:
        raise RefusedModelError(
            f"{path} has changed since promote wrote it (sha256 {found}, "
            f"recorded {sha256}); {REPROMOTE}"
        )
    if fmt == "tflite" and content[4:8] != TFLITE_IDENTIFIER:
        raise RefusedModelError(
            f"{path} is not a TFLite flatbuffer (no {TFLITE_IDENTIFIER!r} identifier); {REPROMOTE}"
        )
    return content


Run = Callable[[np.ndarray], np.ndarray]
# the outputs and the model's penultimate layer per row (None: the model has none to find)
RunWithEmbedding = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]]


def load_runner(
    path: Path,
    fmt: str,
    threads: int = 1,
    content: bytes | None = None,
) -> Run:
    """A function from a float32 batch to the model's outputs, for either format
    (``content``: the file's bytes, already checked by :func:`read_model_file`)."""
    return load_runners(path, fmt, threads, content)[0]


def load_runners(
    path: Path,
    fmt: str,
    threads: int = 1,
    content: bytes | None = None,
    embedding: bool = False,
) -> tuple[Run, RunWithEmbedding | None]:
    """:func:`load_runner`'s function and, with ``embedding``, one that also returns the
    model's penultimate layer (the input of its last dense layer) from the same run."""
    content = path.read_bytes() if content is None else content
    if fmt == "tflite":
        from nnpipe.compression.litert import TfliteRunner

        if content[4:8] != TFLITE_IDENTIFIER:
            raise RefusedModelError(f"{path} is not a TFLite flatbuffer; {REPROMOTE}")
        runner = TfliteRunner(content, threads=threads, embedding=embedding)
        return runner.predict, (runner.predict_with_embedding if embedding else None)
    if fmt != "keras":
        raise RefusedModelError(
            f"{path}: format {fmt!r} is not one nnpipe serves ({', '.join(FORMATS)}); {REPROMOTE}"
        )
    return _keras_runners(path, content, embedding)


def _keras_runners(
    path: Path, content: bytes, embedding: bool
) -> tuple[Run, RunWithEmbedding | None]:
    """A Keras variant's runners (TensorFlow imported only here); the embedding is the
    input of the model's last Dense layer."""
    try:
        from nnpipe.keras_env import keras, tf
        from nnpipe.saved_models import load_served_keras
    except ImportError as exc:
        raise NnpipeError(
            f"{path.name} is a Keras model and TensorFlow is not installed here ({exc}): "
            "serve it from an install with nnpipe[pipeline] (the pipeline image), or "
            "promote a TFLite variant"
        ) from None

    try:
        model = load_served_keras(content, str(path))  # never tf-keras' format dispatcher
    except RefusedModelError as exc:
        raise RefusedModelError(f"{exc}; {REPROMOTE}") from None
    call = tf.function(lambda x: model(x, training=False))  # compiled once per input shape

    def predict(x: np.ndarray) -> np.ndarray:
        outs = [call(tf.constant(x[i : i + 256])).numpy() for i in range(0, len(x), 256)]
        return np.concatenate(outs).reshape(len(x), -1).astype(np.float64)

    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not embedding or not dense:
        return predict, None
    both = keras.Model(model.inputs, [model.outputs[0], dense[-1].input])
    call_both = tf.function(lambda x: both(x, training=False))

    def predict_with_embedding(x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        outs, embeddings = [], []
        for i in range(0, len(x), 256):
            out, emb = call_both(tf.constant(x[i : i + 256]))
            outs.append(out.numpy())
            embeddings.append(emb.numpy().reshape(len(out), -1))
        out_all = np.concatenate(outs).reshape(len(x), -1).astype(np.float64)
        return out_all, np.concatenate(embeddings).astype(np.float32)

    return predict, predict_with_embedding


@dataclass
class Predictor(abc.ABC):
    """A deploy folder's model behind its domain's preprocessing; one subclass per
    domain, which its ``Domain.predictor`` hook makes."""

    directory: Path
    spec: DeploySpec  # the domain's served deploy spec (XrayServedSpec, OhlcvServedSpec)
    run: Callable[[np.ndarray], np.ndarray]
    # the same run, also returning the model's embedding of each input (the monitor's):
    # set by load_predictor(..., embedding=True) where the model has one
    run_with_embedding: RunWithEmbedding | None = None

    @property
    def variant(self) -> str:
        return self.spec.variant or ""  # a loaded predictor always has one

    @abc.abstractmethod
    def predict_input(self, model_input: Any) -> dict[str, list]:
        """Predictions for what an MLflow pyfunc receives (an array or a table)."""


def finite(x: np.ndarray, what: str) -> np.ndarray:
    if not np.isfinite(x).all():
        raise PredictionInputError(f"{what} holds NaN or infinite values")
    return x


def read_deploy_spec(directory: Path) -> dict[str, Any]:
    """A deploy folder's ``deploy.json``, as written (not yet checked)."""
    spec_path = directory / DEPLOY_FILE
    if not spec_path.is_file():
        raise NnpipeError(
            f"{directory} is not a deploy folder (no {DEPLOY_FILE}); the promote stage writes one"
        )
    try:
        return json.loads(spec_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise RefusedModelError(f"{spec_path} is not valid JSON ({exc}); {REPROMOTE}") from None


def load_predictor(directory: str | Path, threads: int = 1, embedding: bool = False) -> Predictor:
    """The predictor of a deploy folder, for its domain: only after its ``deploy.json``
    and model file pass :func:`check_deploy_spec` and :func:`read_model_file`
    (``embedding``: it can also return the model's penultimate layer, for monitoring)."""
    directory = Path(directory)
    record = read_deploy_spec(directory)
    if isinstance(record, dict) and not record.get("file"):
        raise NnpipeError(f"{directory} deploys nothing: {record.get('reason')}")
    path, spec = checked_spec(directory, record)
    fmt, sha256 = cast(str, spec.format), cast(str, spec.sha256)  # both checked
    content = read_model_file(path, fmt, sha256)
    runner, with_embedding = load_runners(path, fmt, threads, content, embedding)
    predictor = get_domain(spec.domain).predictor(directory, spec, runner)
    predictor.run_with_embedding = with_embedding
    return predictor


def as_array(value: Any) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PredictionInputError(f"the input is not a numeric array: {exc}") from None
