"""The child process that builds and measures variants: ``python -m nnpipe.compression.worker
JOB_DIR``.

``JOB_DIR/job.json`` names the Keras model, the variants and the settings;
``JOB_DIR/data.npz`` holds the representative, test and fine-tuning arrays (and
optionally validation inputs, whose predictions go to ``<variant>.val.npy``). For each
variant the worker writes ``<variant>.started``, then either ``<variant>.json`` (sizes,
latency, throughput, sparsity; predictions in ``<variant>.npy``, the model in
``<variant>.tflite``) or, when the variant cannot be built, a ``.json`` saying why. A
variant that kills the process leaves only ``.started``: the parent
(:mod:`~nnpipe.compression.runner`) records it as a crash and starts a new worker for the
rest. Variants with a result are skipped, so a restart never repeats work.
"""

from __future__ import annotations

import gzip
import json
import logging
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nnpipe.io import atomic_write_bytes, atomic_write_json

log = logging.getLogger(__name__)


LOG_MARK = "nnpipe-worker|"  # marks the worker's own log lines on its stderr


def gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def _pruned_model(job: dict, job_dir: Path, model, data):
    """The pruned, stripped Keras model, built once per job (kept for restarts)."""
    from nnpipe.compression.variants import prune
    from nnpipe.saved_models import load_model

    path = job_dir / "pruned.keras"
    if path.is_file():
        return load_model(path)
    p = job["prune"]
    pruned = prune(
        model,
        x=data["x_tune"],
        y=data["y_tune"],
        loss=job["loss"],
        initial_sparsity=p["initial_sparsity"],
        final_sparsity=p["final_sparsity"],
        epochs=p["epochs"],
        batch_size=p["batch_size"],
        learning_rate=p["learning_rate"],
    )
    pruned.save(path)
    return pruned


Predict = Callable[[np.ndarray], np.ndarray]


def measure_reference(
    job: dict, job_dir: Path, model, x_test: np.ndarray
) -> tuple[dict, bytes, Predict]:
    """The Keras model itself: its size, latency and throughput, and how to run it."""
    from nnpipe.compression.variants import latency, sparsity, throughput
    from nnpipe.keras_env import keras, tf

    # the reference's size is the model alone: the trained file also holds the optimizer
    # state (twice the weights again for Adam), which would flatter every ratio
    path = job_dir / "keras_float32.keras"
    bare = keras.models.clone_model(model)  # not compiled: saved without optimizer
    bare.set_weights(model.get_weights())
    bare.save(path)

    def predict(x: np.ndarray) -> np.ndarray:
        return model.predict(x, batch_size=64, verbose=0)

    # a compiled call, as a serving system runs the model (eager calls are ~100x slower)
    call = tf.function(lambda s: model(s, training=False))
    row = latency(lambda s: call(s).numpy(), x_test[:1], job["latency_runs"])
    row["throughput_per_s"] = throughput(predict, x_test)
    row["sparsity"] = sparsity(model)
    return row, path.read_bytes(), predict


def measure_tflite(name: str, job: dict, job_dir: Path, model, data) -> tuple[dict, bytes, Predict]:
    """A TFLite variant (of the pruned model for ``pruned_*``): converted, saved, timed."""
    from nnpipe.compression.litert import TfliteRunner
    from nnpipe.compression.variants import latency, sparsity, throughput, to_tflite

    x_test = data["x_test"].astype(np.float32)
    row: dict = {}
    source, tflite_kind = model, name
    if name.startswith("pruned"):
        source = _pruned_model(job, job_dir, model, data)
        tflite_kind = "tflite_int8" if name == "pruned_int8" else "tflite_float32"
        row["sparsity"] = sparsity(source)
    content = to_tflite(source, tflite_kind, data["x_repr"])
    atomic_write_bytes(job_dir / f"{name}.tflite", content)
    runner = TfliteRunner(content, threads=job["threads"])
    one = TfliteRunner(content, threads=job["threads"])
    row |= latency(lambda s: one.predict(s), x_test[:1], job["latency_runs"])
    row["throughput_per_s"] = throughput(runner.predict, x_test)
    row.setdefault("sparsity", sparsity(model))
    return row, content, runner.predict


def build_variant(name: str, job: dict, job_dir: Path, model, data) -> dict:
    """Build and measure one variant; returns its row (predictions saved beside it)."""
    x_test = data["x_test"].astype(np.float32)
    row: dict = {"variant": name, "status": "ok", "reason": None}
    if name == "keras_float32":
        measured, content, predict = measure_reference(job, job_dir, model, x_test)
    else:
        measured, content, predict = measure_tflite(name, job, job_dir, model, data)
    row |= measured
    row["size_bytes"] = len(content)
    row["gzip_bytes"] = gzip_size(content)
    np.save(
        job_dir / f"{name}.npy",
        np.asarray(predict(x_test), dtype=np.float64).reshape(len(x_test), -1),
    )
    if "x_val" in data:  # a domain that chooses its decision threshold per variant
        x_val = data["x_val"].astype(np.float32)
        np.save(
            job_dir / f"{name}.val.npy",
            np.asarray(predict(x_val), dtype=np.float64).reshape(len(x_val), -1),
        )
    return row


def describe_row(row: dict) -> str:
    """One line of a built variant's numbers, for the progress log (its metric is scored
    by the parent, from the predictions saved beside the row)."""
    return (
        f"built and measured in {row['build_seconds']:.1f} s, "
        f"{row.get('size_bytes', 0) / 1024:.0f} KiB"
    )


def run_job(job_dir: Path) -> None:
    from nnpipe.keras_env import make_deterministic
    from nnpipe.saved_models import load_model

    job = json.loads((job_dir / "job.json").read_text())
    data = dict(np.load(job_dir / "data.npz"))
    make_deterministic(job.get("seed", 0))
    model = load_model(job["model"])
    total = len(job["variants"])
    for number, name in enumerate(job["variants"], start=1):
        if (job_dir / f"{name}.json").exists():
            continue
        (job_dir / f"{name}.started").touch()
        log.info("variant %d/%d %s: building", number, total, name)
        start = time.perf_counter()
        try:
            row = build_variant(name, job, job_dir, model, data)
            row["build_seconds"] = time.perf_counter() - start  # conversion and measuring
            log.info("variant %d/%d %s: %s", number, total, name, describe_row(row))
        except Exception as exc:  # any failure of one variant is that variant's row
            log.warning("variant %d/%d %s is unsupported: %s", number, total, name, exc)
            row = {
                "variant": name,
                "status": "unsupported",
                "reason": f"{type(exc).__name__}: {exc}".strip()[:600],
                "traceback": traceback.format_exc()[-2000:],
            }
        atomic_write_json(job_dir / f"{name}.json", row)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m nnpipe.compression.worker JOB_DIR", file=sys.stderr)
        return 2
    # the parent (nnpipe.compression.runner) re-logs these lines at their level
    logging.basicConfig(level=logging.INFO, format=f"{LOG_MARK}%(levelname)s|%(message)s")
    run_job(Path(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
