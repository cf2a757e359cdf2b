"""Atomic file writes: an interrupted run never leaves a half-written file a later stage trusts.

Everything is written to a temporary sibling first and renamed into place; a rename within
one filesystem is atomic, so readers see either the old file (or none) or the whole new one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FILE_MODE = 0o644
DIR_MODE = 0o755


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, DIR_MODE)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if path.exists():
        old = path.with_name(f".{path.name}.old-{os.getpid()}")
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
