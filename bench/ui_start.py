"""How long the MLflow UI takes to answer after it is started: `nnpipe ui` (one process)
against `mlflow ui` (a launcher and four web workers), alternated, on the same store.

    python bench/ui_start.py                # in a project where `nnpipe run` has run
    python bench/ui_start.py --repeats 5

"Answers" means the page (`/`) and one API call (search experiments) both return 200.
Prints each start's seconds, the medians, and the ratio of the medians.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from nnpipe.ports import free_port


def answers(base: str) -> bool:
    for path in ("/", "/ajax-api/2.0/mlflow/experiments/search?max_results=10"):
        try:
            with urllib.request.urlopen(base + path, timeout=2) as resp:
                if resp.status != 200:
                    return False
        except OSError:
            return False
    return True


def time_start(cmd: list[str], port: int, limit: float = 300) -> float:
    started = time.monotonic()
    # its own process group: `mlflow ui`'s web workers outlive a terminated launcher, and
    # would load the machine during the next start
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        while not answers(f"http://127.0.0.1:{port}"):
            if proc.poll() is not None or time.monotonic() - started > limit:
                raise SystemExit(f"{cmd[:4]} did not answer (exit {proc.poll()})")
            time.sleep(0.2)
        return time.monotonic() - started
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(2)  # let the group's processes exit before the next start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not Path("mlflow.db").is_file():
        raise SystemExit("no mlflow.db here: run `nnpipe run` in this project first")
    bin_dir = Path(sys.executable).parent
    store = Path("mlflow.db").resolve()
    candidates = {
        "nnpipe ui": lambda port: [str(bin_dir / "nnpipe"), "ui", "--port", str(port)],
        "mlflow ui": lambda port: [
            sys.executable,
            "-m",
            "mlflow",
            "ui",
            "--backend-store-uri",
            f"sqlite:///{store}",
            "--default-artifact-root",
            Path("mlartifacts").resolve().as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
    }
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for i in range(args.repeats):
        for name, cmd in candidates.items():  # alternated, so load changes hit both alike
            port = free_port()
            seconds = time_start(cmd(port), port)
            times[name].append(seconds)
            print(f"{i + 1}/{args.repeats} {name}: {seconds:.1f} s", flush=True)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(f"{name}: median {median:.1f} s over {args.repeats}")
    print(f"ratio nnpipe ui / mlflow ui: {medians['nnpipe ui'] / medians['mlflow ui']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
