"""Running the variant worker in child processes, so a crash loses one variant only (the
Keras reference alone is measured in the calling process)."""

from __future__ import annotations

import collections
import json
import logging
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, cast

import numpy as np

from nnpipe.compression import worker
from nnpipe.errors import NnpipeError
from nnpipe.io import atomic_write_json

log = logging.getLogger(__name__)


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def relog(line: str) -> bool:
    """Log a line of the worker's own logging here, at its level (so the variants' progress
    reaches the stage's log and Prefect's); False for any other output."""
    if not line.startswith(worker.LOG_MARK):
        return False
    level, _, message = line[len(worker.LOG_MARK) :].partition("|")
    log.log(
        logging.getLevelName(level) if level.isupper() else logging.INFO, "%s", message.rstrip()
    )
    return True


def run_worker(cmd: list[str], timeout: float) -> tuple[int | None, str]:
    """Run one worker process, re-logging its progress lines as they come; return its exit
    code (None when it ran out of time and was killed) and the tail of its other output."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace"
    )
    other: collections.deque[str] = collections.deque(maxlen=200)

    def read() -> None:
        for line in cast(IO[str], proc.stderr):  # stderr=PIPE: never None
            if not relog(line):
                other.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        code: int | None = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = None
    reader.join(timeout=10)
    return code, "".join(other)[-1500:]


# what is measured in the stage's own process when it is all a job asks for: the Keras
# model itself has no converter to crash, and without it the stage fails anyway; a
# worker process would cost a TensorFlow import (seconds) to measure it
IN_PROCESS = frozenset({"keras_float32"})


def _run_here(job_dir: Path) -> tuple[str | None, str]:
    """Run the worker's job in this process: why it failed (None: it did not), and the
    traceback, as a worker's exit status and stderr would say."""
    from nnpipe.keras_env import keras

    try:
        worker.run_job(job_dir)
        return None, ""
    except Exception as exc:  # the model did not load: what a worker's failed exit records
        reason = f"measuring it here raised {type(exc).__name__}: {exc}"
        return reason[:600], traceback.format_exc()[-1500:]
    finally:
        keras.backend.clear_session()  # the measured copy's graph is not the stage's


def _run_worker_process(
    job_dir: Path, worker_module: str, timeout: float
) -> tuple[str | None, str]:
    """Run the worker in a child process: why it failed (None: it did not), its output."""
    code, tail = run_worker([sys.executable, "-m", worker_module, str(job_dir)], timeout)
    if code == 0:
        return None, tail
    if code is None:
        return f"the worker timed out after {timeout:.0f} s", tail
    return f"the worker {_describe_exit(code)}", tail


def run_variants(
    job_dir: Path,
    job: dict,
    data: dict[str, np.ndarray],
    timeout: float,
    worker_module: str = worker.__name__,
) -> dict[str, dict]:
    """Build every variant of ``job`` in worker processes; one row per variant.

    A worker that dies (a native crash, a time-out) marks the variant it was building
    as unsupported with the reason and a new worker continues with the others. A job of
    the Keras reference alone (:data:`IN_PROCESS`) runs here, with no worker.
    ``worker_module`` is the module run with ``python -m`` (another one only in tests).
    """
    job_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(job_dir / "job.json", job)
    # numpy's stub types **kwds as if a key could be its allow_pickle flag
    np.savez(job_dir / "data.npz", **data)  # type: ignore[arg-type]
    here = set(job["variants"]) <= IN_PROCESS and worker_module == worker.__name__
    for _ in range(len(job["variants"]) + 1):
        pending = [v for v in job["variants"] if not (job_dir / f"{v}.json").exists()]
        if not pending:
            break
        reason, tail = (
            _run_here(job_dir) if here else _run_worker_process(job_dir, worker_module, timeout)
        )
        if reason is None:
            continue
        unfinished = [v for v in pending if not (job_dir / f"{v}.json").exists()]
        if not unfinished:
            continue
        crashed = next(
            (v for v in unfinished if (job_dir / f"{v}.started").exists()), unfinished[0]
        )
        log.warning("variant %s: %s", crashed, reason)
        atomic_write_json(
            job_dir / f"{crashed}.json",
            {
                "variant": crashed,
                "status": "unsupported",
                "reason": f"{reason} while building it",
                "stderr_tail": tail,
            },
        )
    return {v: json.loads((job_dir / f"{v}.json").read_text()) for v in job["variants"]}


def clean_job_dir(job_dir: Path, rows: dict[str, dict]) -> None:
    """Drop the worker's scratch files (predictions, markers, input arrays, tracebacks):
    what stays is the variants, the job and the pruned model."""
    for leftover in (*job_dir.glob("*.npy"), *job_dir.glob("*.started"), job_dir / "data.npz"):
        leftover.unlink(missing_ok=True)
    for row in rows.values():
        row.pop("traceback", None)


def predictions(job_dir: Path, variant: str, split: str = "test") -> np.ndarray | None:
    path = job_dir / (f"{variant}.npy" if split == "test" else f"{variant}.{split}.npy")
    return np.load(path) if path.is_file() else None


class ReferenceFailedError(NnpipeError):
    """The Keras float32 reference could not be measured, so nothing can be compared."""


def reference_predictions(job_dir: Path, rows: dict[str, dict]) -> np.ndarray:
    """The Keras model's own test predictions, or a clear error saying why there are none."""
    found = predictions(job_dir, "keras_float32")
    if found is None:
        reason = rows.get("keras_float32", {}).get("reason", "no result")
        raise ReferenceFailedError(
            f"the Keras float32 reference could not be run on the test split ({reason}); "
            "no variant can be compared with it. Check that the train stage's model loads "
            "(`dvc repro` the train stage)"
        )
    return found
