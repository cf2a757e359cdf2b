"""Atomic file writes: an interrupted run never leaves a half-written file a later stage trusts.

Everything is written to a temporary sibling first and renamed into place; a rename within
one filesystem is atomic, so readers see either the old file (or none) or the whole new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FILE_MODE = 0o644
DIR_MODE = 0o755
# a staging name carries its writer's pid and start time, ``.<name>.<pid>-<start>.<random>.tmp``
# (``.<name>.old-<pid>-<start>`` for the output being swapped out), so the next run can
# remove what a killed writer left and leave a live one's alone
STAGING = re.compile(
    r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)-(?P<start>\d*)\.\w+\.tmp"
    r"|old-(?P<old_pid>\d+)(?:-(?P<old_start>\d*))?|\w{8}\.tmp)$"
)
UNOWNED_STALE_SECONDS = 3600  # staging left by nnpipe before names carried their owner


def _owner_part() -> str:
    from nnpipe.liveness import current_owner

    owner = current_owner()
    return f"{owner.pid}-{owner.start if owner.start is not None else ''}"


def staging_prefix(path: Path) -> str:
    return f".{path.name}.{_owner_part()}."


def stale_staging(folder: Path) -> bool:
    """Whether ``folder`` (a file or folder) is a staging name whose writer is gone."""
    from nnpipe.liveness import pid_is_alive

    found = STAGING.match(folder.name)
    if found is None:
        return False
    pid, start = found["pid"] or found["old_pid"], found["start"] or found["old_start"]
    if pid is None:  # no owner in the name: stale once old
        try:
            return time.time() - folder.lstat().st_mtime > UNOWNED_STALE_SECONDS
        except FileNotFoundError:
            return False
    return not pid_is_alive(int(pid), int(start) if start else None)


def remove_stale_staging(roots: list[Path], depth: int = 2) -> list[Path]:
    """Remove the staging files and folders that killed writers left in ``roots`` and
    their sub-folders (to ``depth`` levels: ``models/.<out>...tmp``,
    ``data/xray/.raw...tmp``, ``reports/xray/.metrics.json...tmp``); return them."""
    removed: list[Path] = []
    level = [Path(r) for r in roots if Path(r).is_dir()]
    for _ in range(depth):
        below: list[Path] = []
        for folder in level:
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                path = Path(entry.path)
                if entry.name.startswith(".") and stale_staging(path):
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            path.unlink()
                    removed.append(path)
                elif entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                    below.append(path)
        level = below
    return removed


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=staging_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600; outputs are ordinary readable files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as plain Python values; anything else is a bug to surface."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write strict JSON (no NaN, which DVC cannot read) with sorted keys, so equal content
    gives equal bytes and equal DVC hashes."""
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False, default=_plain)
    return atomic_write_text(path, text + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary folder that replaces ``path`` only if the block succeeds.

    On an exception the temporary folder is removed and ``path`` is left as it was, so a
    failed stage never leaves a partial output behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=staging_prefix(path), suffix=".tmp", dir=path.parent))
    os.chmod(tmp, DIR_MODE)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{_owner_part()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_fingerprint(paths: list[Path | None]) -> str | None:
    """A cheap fingerprint (names, sizes, modification times) of local source files.

    DVC sees a source named by a param only through the param; this catches files added
    to, changed in or removed from the same folder, so a scheduled run picks up new data.
    """
    stats = []
    for base in (p for p in paths if p is not None):
        base = Path(base)
        files = sorted(base.rglob("*")) if base.is_dir() else [base]
        for f in files:
            if f.is_file():
                st = f.stat()
                stats.append(f"{f.as_posix()}\t{st.st_size}\t{st.st_mtime_ns}")
    if not stats:
        return None
    return hashlib.sha256("\n".join(stats).encode()).hexdigest()


def open_lock_file(path: Path) -> int:
    """Open (creating) a lock file under the project's ``.nnpipe/``, which git ignores."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent / ".gitignore"
    if not ignore.exists():  # the lock is no part of the project's history
        with contextlib.suppress(OSError):
            ignore.write_text("*\n", encoding="utf-8")
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
