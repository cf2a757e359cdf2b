"""How long the main job takes: the README's first command (`make run`) on a fresh clone
of this repository, the install (`make setup`) and the run (`nnpipe run`: both pipelines
end to end on the built-in data) timed apart, with each stage's wall time from the run's
own summary.

    python bench/run_time.py                    # warm package cache (uv's default)
    python bench/run_time.py --cold-cache       # an empty package cache, as a new machine
    python bench/run_time.py --keep             # keep the clone (to run bench/dvc_noop.py on it)
    python bench/run_time.py --baseline         # then the same work one domain after the other

Prints the install and run times, the stage table, and the run's time as a share of the
6-minute target of issue 16. The clone is made from HEAD (commit what you measure).
``--baseline`` then runs every stage again in the same clone with the domains one after
the other in one process (``nnpipe run --force --jobs 1``, the way ``nnpipe run`` ran before
the flows went side by side) and prints the ratio of the two runs.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 6 * 60


def timed(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    """Run ``cmd`` with its output in ``log``; its wall seconds (exits on a failure)."""
    started = time.monotonic()
    with log.open("w") as out:
        done = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}); see {log}:\n{tail}")
    return seconds


def stage_table(output: str) -> list[str]:
    """The "Stage times" table the run prints at its end."""
    match = re.search(r"Stage times \(wall clock\):\n((?:  .*\n)+)", output)
    return match.group(1).rstrip("\n").splitlines() if match else ["(no stage table found)"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cold-cache", action="store_true", help="an empty uv cache")
    parser.add_argument("--keep", action="store_true", help="keep the clone")
    parser.add_argument(
        "--baseline", action="store_true", help="then time `nnpipe run --force --jobs 1` too"
    )
    args = parser.parse_args()
    # beside this checkout, so the clone finds ../shared/data as a checkout would
    clone = Path(tempfile.mkdtemp(prefix="nnpipe-run-time-", dir=ROOT.parent))
    env = dict(os.environ)
    cache = None
    if args.cold_cache:
        cache = tempfile.mkdtemp(prefix="nnpipe-uv-cache-")
        env["UV_CACHE_DIR"] = cache
    try:
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True
        ).stdout.strip()
        install = timed(["make", "setup"], clone, env, clone / "setup.log")
        run = timed([str(clone / ".venv/bin/nnpipe"), "run"], clone, env, clone / "run.log")
        output = (clone / "run.log").read_text(errors="replace")
        if args.baseline:
            command = [str(clone / ".venv/bin/nnpipe"), "run", "--force", "--jobs", "1"]
            baseline = timed(command, clone, env, clone / "baseline.log")
            baseline_output = (clone / "baseline.log").read_text(errors="replace")
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(clone, ignore_errors=True)
    cores = len(os.sched_getaffinity(0))
    print(
        f"make run on a fresh clone of {head}, {cores} CPU cores, "
        f"{'empty' if args.cold_cache else 'warm'} package cache"
    )
    print(f"  install (make setup)  {install:7.1f} s")
    print(f"  run (nnpipe run)      {run:7.1f} s   x{run / TARGET_SECONDS:.2f} the 6 min target")
    print(f"  both                  {install + run:7.1f} s")
    print("stage times, from the run's summary:")
    print("\n".join(stage_table(output)))
    if args.baseline:
        print(f"baseline, one domain after the other (--force --jobs 1): {baseline:.1f} s")
        print(f"  ratio, side by side / one after the other: {run / baseline:.2f}")
        print("\n".join(stage_table(baseline_output)))
    if args.keep:
        print(f"the clone: {clone}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
