"""DVC adapter for the Prefect flows: ask DVC what is current, and record what ran.

The flow runs stages in-process, then commits each to ``dvc.lock`` exactly as
``dvc repro`` would have, so a scheduled run and ``dvc repro`` never disagree about what is
current: DVC's hashes of code, params and data are the cache key of both.

Two flows of one project run side by side (``nnpipe run``), so every use of the DVC
project here holds ``.nnpipe/dvc-repo.lock``: DVC rewrites ``dvc.lock`` in place, which a
status read meanwhile would find half-written, and its own lock makes the second caller
fail after 3 s rather than wait.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dvc.repo import Repo

log = logging.getLogger(__name__)

ACCESS_LOCK = Path(".nnpipe") / "dvc-repo.lock"
_depth: dict[Path, int] = {}  # lock path -> how deep this process holds it


@contextlib.contextmanager
def open_repo(root: Path) -> Iterator[Repo]:
    """The DVC project at ``root``, for this process alone among nnpipe's (waits for the
    other flow's DVC call to end; re-entrant)."""
    from dvc.repo import Repo

    from nnpipe.io import open_lock_file

    path = root / ACCESS_LOCK
    fd = None
    if not _depth.get(path):
        fd = open_lock_file(path)
        fcntl.flock(fd, fcntl.LOCK_EX)  # released by close, or by the kernel on exit
    _depth[path] = _depth.get(path, 0) + 1
    try:
        with Repo(str(root)) as repo:
            yield repo
    finally:
        _depth[path] -= 1
        if fd is not None:
            os.close(fd)


def find_root(start: Path | None = None) -> Path | None:
    """The DVC project folder containing ``start`` (default: cwd), or None."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".dvc").is_dir():
            return folder
    return None


def stage_is_current(target: str, root: Path) -> bool:
    """True when DVC considers the stage up to date (``dvc status target`` prints nothing)."""
    with open_repo(root) as repo:
        changes = repo.status(targets=[target])
    if changes:
        log.debug("dvc status %s: %s", target, changes)
    return not changes


def current_stages(targets: list[str], root: Path) -> set[str]:
    """Which of ``targets`` (stages of the project's ``dvc.yaml``) DVC considers up to
    date, each judged on its own, as ``dvc status`` judges every stage.

    One status of the whole project: asking it per target resolves each target anew
    (8.9 s against 1.5 s for the 16 stages of both domains on a finished project,
    bench/dvc_noop.py). Its answer is keyed by each stage's address relative to the
    working directory, so stages are matched by object, not by that key; a target not
    found is not current (it runs)."""
    pipeline = (root / "dvc.yaml").resolve()
    with open_repo(root) as repo:
        changed = repo.status()
        ours = {
            stage.addressing: stage.name
            for stage in repo.index.stages
            if getattr(stage, "name", None) and Path(stage.path).resolve() == pipeline
        }
    stale = {name for address, name in ours.items() if address in changed}
    return {t for t in targets if t in ours.values() and t not in stale}


def check_params_present(targets: list[str], root: Path) -> None:
    """Refuse a params.yaml lacking a key that a target stage of ``dvc.yaml`` depends on:
    the stage would run on the key's default, then DVC would refuse to record it
    (``dvc repro`` refuses before running it, naming the key)."""
    import yaml

    from nnpipe.config import ParamsError, read_params_file

    stages = (yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8")) or {}).get(
        "stages", {}
    )
    values = read_params_file(root / "params.yaml")
    for name in targets:
        for key in (stages.get(name) or {}).get("params", []):
            if isinstance(key, str) and not _has_key(values, key):
                raise ParamsError(
                    f"params.yaml has no {key}, which dvc.yaml's {name} stage depends on: "
                    f"add it (the project's params.yaml lists every key with its default; "
                    f"`nnpipe params show` prints every key with the value in force)"
                )


def _has_key(values: object, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(values, dict) or part not in values:
            return False
        values = values[part]
    return True


def commit_stage(target: str, root: Path) -> None:
    """Record the stage's current deps, params and outs in ``dvc.lock`` and the cache."""
    with open_repo(root) as repo:
        repo.commit(target, force=True)


def default_remote(root: Path) -> str | None:
    """The name of the project's default DVC remote (``dvc remote default``), or None."""
    with open_repo(root) as repo:
        return repo.config.get("core", {}).get("remote")


def push_outputs(targets: list[str], root: Path) -> int:
    """Upload the stages' cached outputs to the default remote (``dvc push targets``);
    returns how many files were sent (0 when the remote has them all)."""
    with open_repo(root) as repo:
        return int(repo.push(targets=targets) or 0)
