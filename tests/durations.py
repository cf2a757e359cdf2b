"""The seconds each test file took in a whole-suite run, read from its JUnit XML: the order
pytest-xdist hands out whole files in (longest first, see ``pytest_collection_modifyitems``
in tests/conftest.py). Refresh after a change that moves a file's time by much:

    .venv/bin/python -m pytest --junitxml=junit.xml
    .venv/bin/python tests/durations.py junit.xml

A file missing from the table (a new one) is scheduled by its tier's guess
(``GUESS``). The figures only order the work: no test reads them as a limit."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

TABLE = Path(__file__).resolve().parent / "durations.json"
GUESS = {"unit": 2.0, "integration": 30.0, "realdata": 30.0}


def file_seconds(junit: Path) -> dict[str, int]:
    """Seconds per test file (path under tests/, '/'-separated), summed over its tests'
    set-up, call and teardown as JUnit reports them."""
    seconds: dict[str, float] = defaultdict(float)
    for case in ET.parse(junit).iter("testcase"):
        module = case.get("classname", "")
        parts = module.split(".")
        if parts[:1] != ["tests"]:
            continue
        # classname is the module's dotted path, plus a class name for methods
        while len(parts) > 2 and parts[-1][:1].isupper():
            parts.pop()
        seconds["/".join(parts[1:]) + ".py"] += float(case.get("time", 0) or 0)
    return {name: round(value) for name, value in sorted(seconds.items())}


def load() -> dict[str, float]:
    try:
        return json.loads(TABLE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: tests/durations.py JUNIT_XML", file=sys.stderr)
        return 2
    TABLE.write_text(json.dumps(file_seconds(Path(argv[0])), indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
