"""Files generated from the registries (``dvc.yaml``; ``prefect.yaml`` and the flows it
deploys): write them, or check that they are up to date."""

from __future__ import annotations

import logging
from pathlib import Path

from nnpipe.io import atomic_write_text

log = logging.getLogger("nnpipe")


def write_or_check(files: dict[Path, str], what: str, command: str, check: bool) -> int:
    """Write each file's text, or with ``check`` only compare: 1 when one differs."""
    if check:
        stale = [p for p, text in files.items() if not _agrees(p, text)]
        if stale:
            verb = "is" if len(stale) == 1 else "are"
            log.error("%s %s out of date with the %s; run `%s`", _names(stale), verb, what, command)
            return 1
        log.info("%s %s with the %s", _names(files), _verb(files, "agrees", "agree"), what)
        return 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    log.info("wrote %s from the %s", _names(files), what)
    return 0


def _agrees(path: Path, text: str) -> bool:
    return path.is_file() and path.read_text(encoding="utf-8") == text


def _names(files: dict[Path, str] | list[Path]) -> str:
    return ", ".join(p.as_posix() for p in files)


def _verb(files: dict[Path, str], one: str, many: str) -> str:
    return one if len(files) == 1 else many
