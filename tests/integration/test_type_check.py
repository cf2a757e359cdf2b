"""The type check in the test command: ``mypy`` over src/, configured in pyproject.toml's
``[tool.mypy]``, from the project root with the interpreter running the tests (so uv.lock's
version). Not a unit test: it reads every module's imports, TensorFlow's among them, about
a minute on a fresh clone, where its cache (.mypy_cache) is empty."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


def test_mypy() -> None:
    # files, stubs and per-module settings come from [tool.mypy]; the cache is .mypy_cache
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, (
        f"mypy found type errors in src/ (fix them, or see CONTRIBUTING.md on "
        f"`# type: ignore[code]`):\n{result.stdout}{result.stderr}"
    )
