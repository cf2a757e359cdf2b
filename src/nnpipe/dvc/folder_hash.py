"""DVC's content hash of a folder, computed without DVC, for tagging MLflow runs.

DVC 3 records a folder output as the MD5 of a JSON list of its files' MD5s and relative
paths, with ``.dir`` appended. Computing the same value here lets a stage tag its MLflow
run with the exact hash ``dvc.lock`` will hold for the data it saw, whether it was started
by ``dvc repro``, by the Prefect flow or by hand (a test checks the two agree).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from nnpipe.io import file_digest


def directory_md5(path: str | os.PathLike[str]) -> str:
    """The ``md5`` DVC writes into ``dvc.lock`` for the folder ``path``."""
    root = Path(path)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    entries = sorted(
        (
            {"md5": file_digest(p, "md5"), "relpath": p.relative_to(root).as_posix()}
            for p in root.rglob("*")
            if p.is_file()
        ),
        key=lambda e: e["relpath"],
    )
    payload = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(payload).hexdigest() + ".dir"
