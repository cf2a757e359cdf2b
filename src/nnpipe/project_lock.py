"""One run at a time per project: the lock every command that writes the project takes
(``nnpipe run`` and its flows, each stage command ``dvc repro`` runs).

Two runs at once raced on DVC's own lock (tracebacks) or, overlapping, both replaced the
same output folders. The lock is ``fcntl.flock`` on ``.nnpipe/run.lock`` under the
project: the kernel releases it when its holder exits, ``kill -9`` included, so a dead
run never keeps it and there is nothing to take over by hand. The file says who holds it
(pid, host, start time, command) for the message the second run prints.

Taking it again in the process that holds it is a no-op (``nnpipe run`` takes it before
writing ``-S`` overrides to params.yaml, then its flow takes it again). A process that
runs part of the holder's work (each domain's flow when ``nnpipe run`` runs them side by
side) is handed the holder's open lock (:func:`handed_lock`): it holds the same lock, so
the project stays locked until the last of them exits, however the others end.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from nnpipe.errors import NnpipeError
from nnpipe.io import open_lock_file
from nnpipe.liveness import current_owner

log = logging.getLogger(__name__)

LOCK_DIR = ".nnpipe"
LOCK_NAME = "run.lock"
HANDED_FD = "NNPIPE_PROJECT_LOCK_FD"  # the lock's descriptor a holder's child inherited

_held: dict[Path, list[int]] = {}  # lock path -> [fd, depth] in this process


class ProjectBusy(NnpipeError):
    """Another run holds the project."""


def project_root(start: Path | None = None) -> Path:
    """The DVC project containing ``start`` (default: cwd), else ``start`` itself."""
    from nnpipe.dvc.repo import find_root

    here = (start or Path.cwd()).resolve()
    return find_root(here) or here


def lock_path(root: Path | None = None) -> Path:
    return (root or project_root()) / LOCK_DIR / LOCK_NAME


def holder(path: Path) -> dict:
    """What the lock file says about its holder ({} if it says nothing readable)."""
    try:
        found = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def busy_message(path: Path, what: str) -> str:
    info = holder(path)
    who = f"pid {info.get('pid', '?')}, started at {info.get('started', '?')}" + (
        f", `{info['command']}`" if info.get("command") else ""
    )
    return (
        f"another run ({who}) holds the project {path.parent.parent}: {what} would "
        f"change the files it is writing. Wait for it to finish (or stop it), then run "
        f"again; the lock is {path}"
    )


def command_line() -> str:
    """This process's command as its user typed it (``python -m nnpipe`` for
    ``__main__.py``, as dvc.yaml's stages run it)."""
    program = Path(sys.argv[0]).name
    if program == "__main__.py":
        program = f"python -m {Path(sys.argv[0]).parent.name}"
    return " ".join([program, *sys.argv[1:]])[:300]


@contextlib.contextmanager
def hold_project(
    what: str,
    root: Path | None = None,
    wait_seconds: float = 0.0,
) -> Iterator[Path]:
    """Hold the project's lock for the block, or raise :class:`ProjectBusy` (after
    ``wait_seconds`` of trying) naming the run that holds it; yield the project root."""
    path = lock_path(root)
    if path in _held or _adopt_handed_lock(path):
        _held[path][1] += 1
        try:
            yield path.parent.parent
        finally:
            _held[path][1] -= 1
        return
    fd = open_lock_file(path)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                raise ProjectBusy(busy_message(path, what)) from None
            time.sleep(0.5)
    owner = current_owner()
    info = {
        "pid": owner.pid,
        "host": owner.host,
        "owner": owner.token(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "command": command_line(),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    _held[path] = [fd, 1]
    try:
        yield path.parent.parent
    finally:
        del _held[path]
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the file releases the lock


def handed_lock(root: Path | None = None) -> tuple[int, dict[str, str]]:
    """For a child process doing part of this run's work: the held lock's descriptor (for
    ``subprocess.Popen(pass_fds=...)``) and the environment that tells the child it is
    the one it holds. Raises RuntimeError when this process does not hold the lock."""
    path = lock_path(root)
    if path not in _held:
        raise RuntimeError(f"the project lock {path} is not held by this process")
    fd = _held[path][0]
    return fd, {HANDED_FD: str(fd)}


def _adopt_handed_lock(path: Path) -> bool:
    """Whether this process was handed ``path``'s lock by its holder (the descriptor named
    in the environment is open on that very file); it then holds it until it exits."""
    try:
        fd = int(os.environ.get(HANDED_FD, ""))
        handed, ours = os.fstat(fd), os.stat(path)
    except (ValueError, OSError):
        return False
    if (handed.st_dev, handed.st_ino) != (ours.st_dev, ours.st_ino):
        return False
    os.set_inheritable(fd, False)  # the processes this one starts are not handed it
    _held[path] = [fd, 1]  # never released here: the holder and its children share it
    return True


def clean_after_killed_runs(roots: list[Path]) -> None:
    """What a killed run left (called with the lock held, so no run of this project is
    writing): its staging files and folders under the project's data, models and reports.
    MLflow runs it left RUNNING are ended by :func:`nnpipe.tracking.start_run`."""
    from nnpipe.io import remove_stale_staging

    for path in remove_stale_staging(roots):
        log.info("removed %s, left by a run that was killed", path)
