"""`nnpipe serve` against `mlflow models serve`, side by side in one run, on the same
registered X-ray version and the same image.

    make run                                   # once: a registered X-ray champion
    python bench/serving/run.py                # in the project; results in bench/results/
    python bench/serving/run.py --image ../shared/data/xray/actualmed/normal/<file>.png

Both servers run as processes on loopback with one worker each, the TFLite (or Keras)
variant that promotion chose, and training's preprocessing (the same pyfunc code). The
load generator (bench/serving/loadgen.py) is a separate process: single-image requests
at 1 and at 8 concurrent clients, each on a keep-alive connection; p50/p99 latency,
throughput, errors, and the peak resident memory of each server's process tree. The two
servers are measured alternately at each level, so drift on the machine hits both.

`nnpipe serve` gets the image as the request body (image/png); MLflow's scoring server
gets it the way its protocol takes bytes: base64 in JSON (``{"inputs": {"image": ["..."]}}``).

Targets (issue 5): no errors at all; `nnpipe serve` p99 under 20 ms at 1 client on 2 cores;
throughput at least 2x `mlflow models serve`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from nnpipe.ports import free_port

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"
MODEL = "xray-classifier"


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants (Linux /proc)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += next(
                int(line.split()[1]) * 1024
                for line in status.splitlines()
                if line.startswith("VmRSS:")
            )
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total


class PeakMemory:
    """Samples a process tree's RSS every 50 ms while in use; ``peak`` is the largest."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, tree_rss_bytes(pid), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, tree_rss_bytes(self.pid))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@contextlib.contextmanager
def server(cmd: list[str], ready_url: str, log: Path, env: dict[str, str], timeout=300):
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    with urllib.request.urlopen(ready_url, timeout=5) as resp:
                        if resp.status == 200:
                            break
                except (OSError, urllib.error.HTTPError):
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"{cmd[:3]} did not start; its log:\n{log.read_text()[-3000:]}"
                    )
                time.sleep(1)
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)


def default_image(project: Path) -> Path:
    """The first image the project's ingest stored (what the pipeline trains on)."""
    images = sorted((project / "data" / "xray" / "raw" / "images").glob("*.png"))
    if not images:
        raise SystemExit(
            "no ingested X-ray images in data/xray/raw/images: run `make run` "
            "(or `nnpipe run --domain xray`) first, or pass --image"
        )
    return images[0]


def server_env(tracking: str) -> dict[str, str]:
    """Both servers' environment: the project's store, no API key, this venv first on PATH
    (`mlflow models serve` starts `uvicorn` from PATH)."""
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": tracking,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("NNPIPE_API_KEY", None)
    return env


def nnpipe_serve_cmd(port: int, alias: str) -> list[str]:
    """`nnpipe serve` on loopback, the X-ray model only."""
    return [
        sys.executable,
        "-m",
        "nnpipe",
        "serve",
        "--domain",
        "xray",
        "--alias",
        alias,
        "--port",
        str(port),
    ]


def mlflow_serve_cmd(bin_dir: Path, port: int, alias: str) -> list[str]:
    """`mlflow models serve` of the same registered version, one worker, this venv."""
    return [
        str(bin_dir / "mlflow"),
        "models",
        "serve",
        "-m",
        f"models:/{MODEL}@{alias}",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def mlflow_body(image: Path) -> bytes:
    """An image the way MLflow's scoring protocol takes bytes: base64 in JSON, as the
    ``inputs`` its scoring server wants (MLflow 3 answers ``dataframe_records`` for this
    models-from-code pyfunc with 400: it asks for an ``inputs`` key)."""
    return json.dumps(
        {"inputs": {"image": [base64.b64encode(image.read_bytes()).decode()]}}
    ).encode()


def post(url: str, body: bytes, content_type: str) -> dict:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.load(resp)


def load(
    url: str, body_file: Path, content_type: str, clients: int, requests: int, warmup: int, pid: int
) -> dict:
    cmd = [
        sys.executable,
        str(HERE / "loadgen.py"),
        "--url",
        url,
        "--content-type",
        content_type,
        "--body-file",
        str(body_file),
        "--clients",
        str(clients),
        "--requests",
        str(requests),
        "--warmup",
        str(warmup),
    ]
    with PeakMemory(pid) as memory:
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return {**json.loads(done.stdout), "server_peak_rss_mb": memory.peak / 2**20}


def table(results: dict) -> str:
    lines = [
        "| clients | server | p50 ms | p99 ms | throughput req/s | errors | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for level in results["levels"]:
        for name in ("nnpipe serve", "mlflow models serve"):
            r = level[name]
            lines.append(
                f"| {level['clients']} | {name} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {r['throughput_rps']:.1f} | {r['errors']} | "
                f"{r['server_peak_rss_mb']:.0f} |"
            )
        lines.append(
            f"| {level['clients']} | ratio | | | **{level['throughput_ratio']:.2f}x** | | |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--image", type=Path, help="default: the project's first ingested image")
    parser.add_argument("--requests", type=int, default=600, help="per server and level")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="alternations per level (requests are split between them)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "serving.json")
    args = parser.parse_args()

    project = args.project.resolve()
    args.out = args.out.resolve()  # before the chdir into the project
    args.image = args.image.resolve() if args.image else None
    sys.path.insert(0, str(project / "src"))
    from nnpipe import store
    from nnpipe.config import load_params

    os.chdir(project)
    params = load_params("params.yaml")
    tracking = store.tracking_uri(params, project)
    image = (args.image or default_image(project)).resolve()
    bin_dir = Path(sys.executable).parent
    env = server_env(tracking)
    work = Path(tempfile.mkdtemp(prefix="nnpipe-bench-serving-"))
    theirs_body = work / "mlflow.json"
    theirs_body.write_bytes(mlflow_body(image))

    ours_port, theirs_port = free_port(), free_port()
    ours_cmd = nnpipe_serve_cmd(ours_port, args.alias)
    theirs_cmd = mlflow_serve_cmd(bin_dir, theirs_port, args.alias)
    ours_url = f"http://127.0.0.1:{ours_port}/predict/xray"
    theirs_url = f"http://127.0.0.1:{theirs_port}/invocations"
    with (
        server(ours_cmd, f"http://127.0.0.1:{ours_port}/ready", work / "nnpipe.log", env) as ours,
        server(
            theirs_cmd, f"http://127.0.0.1:{theirs_port}/ping", work / "mlflow.log", env
        ) as theirs,
    ):
        a = post(ours_url, image.read_bytes(), "image/png")
        b = post(theirs_url, theirs_body.read_bytes(), "application/json")["predictions"][0]
        if abs(a["probability"] - b["probability"]) > 1e-6:
            raise SystemExit(f"the servers disagree on the image: {a} vs {b}")
        version = a["model"]["version"]
        levels = []
        for clients in args.clients:
            runs: dict[str, list[dict]] = {"nnpipe serve": [], "mlflow models serve": []}
            for _ in range(args.rounds):
                n = max(clients, args.requests // args.rounds)
                runs["nnpipe serve"].append(
                    load(ours_url, image, "image/png", clients, n, 20, ours.pid)
                )
                runs["mlflow models serve"].append(
                    load(theirs_url, theirs_body, "application/json", clients, n, 20, theirs.pid)
                )
            level: dict = {"clients": clients}
            for name, rs in runs.items():
                # the worse round of each statistic: a target is met in every round or not
                level[name] = {
                    "p50_ms": max(r["p50_ms"] for r in rs),
                    "p99_ms": max(r["p99_ms"] for r in rs),
                    "throughput_rps": min(r["throughput_rps"] for r in rs),
                    "errors": sum(r["errors"] for r in rs),
                    "error_examples": [e for r in rs for e in r["error_examples"]][:3],
                    "server_peak_rss_mb": max(r["server_peak_rss_mb"] for r in rs),
                    "rounds": rs,
                }
            level["throughput_ratio"] = (
                level["nnpipe serve"]["throughput_rps"]
                / level["mlflow models serve"]["throughput_rps"]
            )
            levels.append(level)
            print(
                f"{clients} client(s): nnpipe p99 {level['nnpipe serve']['p99_ms']:.2f} ms, "
                f"{level['throughput_ratio']:.2f}x mlflow's throughput",
                flush=True,
            )

    one = next((lv for lv in levels if lv["clients"] == 1), None)
    targets = {
        "no_errors": all(
            lv[n]["errors"] == 0 for lv in levels for n in ("nnpipe serve", "mlflow models serve")
        ),
        "p99_under_20ms_at_1_client": one is not None and one["nnpipe serve"]["p99_ms"] < 20,
        "throughput_at_least_2x": all(lv["throughput_ratio"] >= 2 for lv in levels),
    }
    results = {
        "model": f"{MODEL}@{args.alias}",
        "version": version,
        "variant": a["model"].get("variant"),
        "image": str(image),
        "image_bytes": image.stat().st_size,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "levels": levels,
        "targets": targets,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(table(results))
    print("targets:", ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in targets.items()))
    print(f"written: {args.out}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
