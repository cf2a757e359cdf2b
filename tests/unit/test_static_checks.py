"""Static checks in the test command: the code is formatted (``ruff format``) and
lint-clean (``ruff check``); the type check is in tests/integration/test_type_check.py (a
minute on a fresh clone). Each runs from the project root with the interpreter running the
tests, so the versions are uv.lock's; the failure message is the tool's own report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CODE = ["src", "tests", "flows", "bench"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize(
    ("tool", "args", "fix"),
    [
        ("ruff format", ("ruff", "format", "--check", *CODE), "run `ruff format` on them"),
        ("ruff check", ("ruff", "check", *CODE), "fix them (`ruff check --fix` for some)"),
    ],
    ids=["ruff-format", "ruff-check"],
)
def test_ruff(tool: str, args: tuple[str, ...], fix: str) -> None:
    result = _run(*args)
    assert result.returncode == 0, f"{tool} found problems; {fix}:\n{result.stdout}{result.stderr}"
