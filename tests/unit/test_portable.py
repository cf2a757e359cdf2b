"""Nothing committed depends on the machine it was made on: no symbolic link that leaves the
repository, no absolute path of a development machine in a tracked text file.

A tracked link into the system's temporary folder (``.tools -> /tmp/...``) once broke
``make run`` on every other machine: ``python3 -m venv .tools`` failed with "File exists".
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Paths that exist only on somebody's machine. Container paths in docker/ (/home/nnpipe,
# /app) are the image's own and are not matched.
MACHINE_PATH = re.compile(
    r"(?<![\w.$}/-])(/work/|/root/|/Users/|/private/var/|/var/folders/|/tmp/[\w.-]+"
    r"|/home/(?!nnpipe\b)[\w.-]+/|[A-Z]:\\\\Users\\\\)"
)
TEXT_SUFFIXES = {
    ".py",
    ".md",
    ".yaml",
    ".yml",
    ".toml",
    ".cfg",
    ".ini",
    ".txt",
    ".json",
    ".sh",
    ".lock",
    ".example",
    "",
}


def tracked_entries() -> list[tuple[str, str]]:
    """(mode, path) of every file git tracks here."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing is tracked")
    out = subprocess.run(
        ["git", "ls-files", "-s", "-z"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    entries = []
    for record in filter(None, out.split("\0")):
        meta, path = record.split("\t", 1)
        entries.append((meta.split()[0], path))
    return entries


def machine_paths(text: str) -> list[str]:
    return [m.group(0) for m in MACHINE_PATH.finditer(text)]


def test_no_tracked_symlink_points_outside_the_repository():
    escaping = []
    for mode, path in tracked_entries():
        if mode != "120000":
            continue
        target = subprocess.run(
            ["git", "cat-file", "-p", f":{path}"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        resolved = Path(os.path.normpath(ROOT / Path(path).parent / target))
        if os.path.isabs(target) or not resolved.is_relative_to(ROOT):
            escaping.append(f"{path} -> {target}")
    assert not escaping, (
        "tracked symbolic links leave the repository (they break every "
        f"other machine; `git rm --cached` them): {escaping}"
    )


def test_no_tracked_text_file_names_a_development_machines_path():
    found = {}
    for mode, path in tracked_entries():
        if mode == "120000" or Path(path).suffix not in TEXT_SUFFIXES:
            continue
        file = ROOT / path
        # the lock names only registry URLs; this file names the patterns it looks for
        if not file.is_file() or path in ("uv.lock", "tests/unit/test_portable.py"):
            continue
        hits = machine_paths(file.read_text(encoding="utf-8", errors="replace"))
        if hits:
            found[path] = sorted(set(hits))
    assert not found, f"absolute paths of a development machine in tracked files: {found}"


def test_no_run_outputs_are_committed():
    """A fresh clone must not mislead: ``dvc.lock`` and the reports record one machine's
    run, whose cached outputs no other machine has (``dvc checkout`` would fail and
    ``dvc status`` would call every stage changed). The user commits their own run."""
    committed = [
        path
        for _, path in tracked_entries()
        if path == "dvc.lock" or path.startswith(("reports/", "data/", "models/"))
    ]
    assert not committed, f"run outputs are tracked: {committed[:10]}"


@pytest.mark.parametrize(
    "text",
    [
        "cd /work/main",
        "PREFECT_HOME=/tmp/prefect-home",
        "see /home/alice/project",
        "/root/.cache/uv",
        "/Users/bob/nnpipe",
    ],
)
def test_the_path_check_catches_machine_paths(text):
    assert machine_paths(text)


@pytest.mark.parametrize(
    "text",
    [
        "WORKDIR /home/nnpipe",
        "${paths.data}/xray/raw",
        "http://127.0.0.1:5000/#/models",
        "src/nnpipe/work/",
        "mktemp -d",
        "sqlite:///mlflow.db",
    ],
)
def test_the_path_check_spares_project_and_container_paths(text):
    assert not machine_paths(text)
