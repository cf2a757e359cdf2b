"""What "nothing to do" costs on a finished project: `dvc status`, a no-op `dvc repro`,
and the flow's own check of which stages are current (both domains), each timed as the
user meets it (the CLI commands in a fresh process; the flow's check in-process, after its
imports, which are timed apart).

    python bench/dvc_noop.py PROJECT              # a project where `nnpipe run` has run
    python bench/dvc_noop.py PROJECT --repeats 5
    python bench/dvc_noop.py PROJECT --baseline-no-pyc

Prints each measure's runs, its median, and the median as a share of the 3 s target of
issue 16. Refuses a project DVC does not call up to date (the figures would time work).
``--baseline-no-pyc`` also times each measure, alternated with the first, as a venv
without compiled bytecode runs it (an empty ``PYTHONPYCACHEPREFIX``, nothing written:
every start compiles the sources it imports, as before ``make setup`` compiled them) and
prints the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
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


def environment(project: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The project's virtual environment first on PATH, as `source .venv/bin/activate`."""
    venv = project / ".venv" / "bin"
    return {**os.environ, "PATH": f"{venv}{os.pathsep}{os.environ['PATH']}", **(extra or {})}


def timed(cmd: list[str], project: Path, extra: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(
        cmd,
        cwd=project,
        env=environment(project, extra),
        capture_output=True,
        text=True,
        check=False,
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
    parser.add_argument(
        "--baseline-no-pyc",
        action="store_true",
        help="also time each measure without compiled bytecode, alternated, with the ratio",
    )
    args = parser.parse_args()
    project = args.project.resolve()
    _, status = timed(["dvc", "status"], project)
    if "up to date" not in status:
        raise SystemExit(f"{project} is not up to date (`dvc status` says: {status[:500]})")
    with tempfile.TemporaryDirectory(prefix="no-pyc-") as empty:
        settings = {"": {}}
        if args.baseline_no_pyc:
            settings["no .pyc"] = {"PYTHONPYCACHEPREFIX": empty, "PYTHONDONTWRITEBYTECODE": "1"}
        runs: dict[str, dict[str, list[float]]] = {name: {} for name in settings}
        for _ in range(args.repeats):  # the settings alternated, round by round
            for name, extra in settings.items():
                for measure, seconds in one_round(project, extra).items():
                    runs[name].setdefault(measure, []).append(seconds)
    print(f"{project}: {args.repeats} runs each, seconds (target {TARGET_SECONDS:.0f} s)")
    print(f"  {'measure':40} {'median':>7} {'x target':>8}   runs")
    for setting, measures in runs.items():
        for name, values in measures.items():
            median = statistics.median(values)
            shown = " ".join(f"{v:.2f}" for v in values)
            label = f"{name} [{setting}]" if setting else name
            print(f"  {label:40} {median:7.2f} {median / TARGET_SECONDS:8.2f}   {shown}")
    if args.baseline_no_pyc:
        print("  ratio, as installed / without .pyc (medians):")
        for name, values in runs[""].items():
            base = statistics.median(runs["no .pyc"][name])
            print(f"    {name:38} {statistics.median(values) / base:.2f}")
    return 0


def one_round(project: Path, extra: dict[str, str]) -> dict[str, float]:
    """Each measure once, in the environment ``extra`` changes."""
    python = str(project / ".venv" / "bin" / "python")
    status = timed(["dvc", "status"], project, extra)[0]
    repro = timed(["dvc", "repro"], project, extra)[0]
    _, out = timed([python, "-c", CHECK], project, extra)
    imports, check = (float(x) for x in out.split())
    return {
        "dvc status": status,
        "dvc repro (no-op)": repro,
        "flow's check, both domains": check,
        "  its imports (apart)": imports,
    }


if __name__ == "__main__":
    sys.exit(main())
