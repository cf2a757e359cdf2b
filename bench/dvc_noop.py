"""What "nothing to do" costs on a finished project: `dvc status`, a no-op `dvc repro`,
and the flow's own check of which stages are current (both domains), each timed as the
user meets it (the CLI commands in a fresh process; the flow's check in-process, after its
imports, which are timed apart).

    python bench/dvc_noop.py PROJECT              # a project where `nnpipe run` has run
    python bench/dvc_noop.py PROJECT --repeats 5

Prints each measure's runs, its median, and the median as a share of the 3 s target of
issue 16. Refuses a project DVC does not call up to date (the figures would time work).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_SECONDS = 3.0

CHECK = """
import sys, time
started = time.monotonic()
from nnpipe.dvc.repo import current_stages
from nnpipe.stages import PIPELINES
imported = time.monotonic()
names = [s.name for stages in PIPELINES.values() for s in stages]
current = current_stages(names, __import__("pathlib").Path.cwd())
done = time.monotonic()
assert current == set(names), sorted(set(names) - current)
print(f"{imported - started:.3f} {done - imported:.3f}")
"""


def environment(project: Path) -> dict[str, str]:
    """The project's virtual environment first on PATH, as `source .venv/bin/activate`."""
    venv = project / ".venv" / "bin"
    return {**os.environ, "PATH": f"{venv}{os.pathsep}{os.environ['PATH']}"}


def timed(cmd: list[str], project: Path) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(
        cmd, cwd=project, env=environment(project), capture_output=True, text=True, check=False
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path, help="a finished nnpipe project")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    project = args.project.resolve()
    python = str(project / ".venv" / "bin" / "python")
    _, status = timed(["dvc", "status"], project)
    if "up to date" not in status:
        raise SystemExit(f"{project} is not up to date (`dvc status` says: {status[:500]})")
    runs: dict[str, list[float]] = {
        "dvc status": [],
        "dvc repro (no-op)": [],
        "flow's check, both domains": [],
        "  its imports (apart)": [],
    }
    for _ in range(args.repeats):
        runs["dvc status"].append(timed(["dvc", "status"], project)[0])
        runs["dvc repro (no-op)"].append(timed(["dvc", "repro"], project)[0])
        _, out = timed([python, "-c", CHECK], project)
        imports, check = (float(x) for x in out.split())
        runs["flow's check, both domains"].append(check)
        runs["  its imports (apart)"].append(imports)
    print(f"{project}: {args.repeats} runs each, seconds (target {TARGET_SECONDS:.0f} s)")
    print(f"  {'measure':30} {'median':>7} {'x target':>8}   runs")
    for name, values in runs.items():
        median = statistics.median(values)
        shown = " ".join(f"{v:.2f}" for v in values)
        print(f"  {name:30} {median:7.2f} {median / TARGET_SECONDS:8.2f}   {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
