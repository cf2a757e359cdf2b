"""How long `nnpipe serve` takes from its process start to ready and to its first correct
prediction, against `mlflow models serve` on the same registered X-ray version (both
started as bench/serving/run.py starts them), alternated, on loopback.

    python bench/serve_start.py PROJECT            # a project where `nnpipe run` has run
    python bench/serve_start.py PROJECT --repeats 5 --alias champion

"Ready": `nnpipe serve`'s /ready, `mlflow models serve`'s /ping, answers 200. "First
correct prediction": the first POST of the project's first ingested image whose answer
matches the probability the version's deploy folder gives in this process (loaded with
nnpipe's own loader) to 1e-6. Each start is timed from just before the process is
spawned; the server is stopped (its whole process group) before the next one starts.
Prints each start, the medians and the ratio; writes bench/results/serve_start.json.

Target (issue 16): `nnpipe serve` ready in at most 5 s with a TFLite champion.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType

from nnpipe.ports import free_port

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
TARGET_S = 5.0


def serving_bench() -> ModuleType:
    """bench/serving/run.py, for its server commands and environment."""
    spec = importlib.util.spec_from_file_location("serving_bench", HERE / "serving" / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def predicted(url: str, body: bytes, content_type: str) -> float | None:
    """The probability a prediction answers, or None where it fails."""
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            answer = json.load(resp)
    except (OSError, urllib.error.HTTPError, ValueError):
        return None
    if "predictions" in answer:  # MLflow's scoring server
        return float(answer["predictions"][0]["probability"])
    return float(answer["probability"])


def time_start(
    cmd: list[str],
    ready_url: str,
    predict_url: str,
    body: bytes,
    content_type: str,
    expected: float,
    env: dict[str, str],
    log: Path,
    limit: float = 300,
) -> dict[str, float]:
    """Seconds from spawn to ready, and to the first correct prediction."""
    with log.open("w") as out:
        started = time.monotonic()
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            while not answers(ready_url):
                if proc.poll() is not None or time.monotonic() - started > limit:
                    raise SystemExit(
                        f"{' '.join(cmd[:4])} was not ready (exit {proc.poll()}); its log:\n"
                        + log.read_text()[-3000:]
                    )
                time.sleep(0.05)
            ready = time.monotonic() - started
            while True:
                got = predicted(predict_url, body, content_type)
                if got is not None and abs(got - expected) <= 1e-6:
                    break
                if got is not None or time.monotonic() - ready > 30:
                    raise SystemExit(
                        f"{' '.join(cmd[:4])} answered {got}, expected {expected}; its log:\n"
                        + log.read_text()[-3000:]
                    )
                time.sleep(0.05)
            return {"ready_s": ready, "first_prediction_s": time.monotonic() - started}
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            time.sleep(1)  # let the group's processes exit before the next start


def reference_probability(tracking: str, model: str, alias: str, image: Path) -> tuple[str, float]:
    """The registered version, and the probability its deploy folder gives the image here."""
    from nnpipe.serving.predictor import load_predictor
    from nnpipe.serving.registry import resolve

    found = resolve(tracking, model, alias)
    result = load_predictor(found.deploy_dir).predict_input([image.read_bytes()])
    return found.version, float(result["probability"][0])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("project", type=Path, nargs="?", default=Path.cwd())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--image", type=Path, help="default: the project's first ingested image")
    parser.add_argument("--out", type=Path, default=RESULTS / "serve_start.json")
    args = parser.parse_args()

    bench = serving_bench()
    project = args.project.resolve()
    out_file = args.out.resolve()
    image = (args.image.resolve() if args.image else None) or bench.default_image(project)
    from nnpipe import store
    from nnpipe.config import load_params

    os.chdir(project)
    params = load_params("params.yaml")
    tracking = store.tracking_uri(params, project)
    version, expected = reference_probability(tracking, bench.MODEL, args.alias, image)
    env = bench.server_env(tracking)
    bin_dir = Path(sys.executable).parent
    work = Path(tempfile.mkdtemp(prefix="nnpipe-bench-serve-start-"))
    candidates = {
        "nnpipe serve": lambda port: (
            bench.nnpipe_serve_cmd(port, args.alias),
            f"http://127.0.0.1:{port}/ready",
            f"http://127.0.0.1:{port}/predict/xray",
            image.read_bytes(),
            "image/png",
        ),
        "mlflow models serve": lambda port: (
            bench.mlflow_serve_cmd(bin_dir, port, args.alias),
            f"http://127.0.0.1:{port}/ping",
            f"http://127.0.0.1:{port}/invocations",
            bench.mlflow_body(image),
            "application/json",
        ),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in candidates}
    for i in range(args.repeats):
        for name, make in candidates.items():  # alternated: load changes hit both alike
            cmd, ready_url, predict_url, body, content_type = make(free_port())
            log = work / f"{name.split()[0]}-{i}.log"
            run = time_start(cmd, ready_url, predict_url, body, content_type, expected, env, log)
            runs[name].append(run)
            print(
                f"{i + 1}/{args.repeats} {name}: ready {run['ready_s']:.2f} s, "
                f"first prediction {run['first_prediction_s']:.2f} s",
                flush=True,
            )
    medians = {
        name: {
            key: statistics.median(r[key] for r in rs) for key in ("ready_s", "first_prediction_s")
        }
        for name, rs in runs.items()
    }
    ours, theirs = medians["nnpipe serve"], medians["mlflow models serve"]
    ratio = ours["ready_s"] / theirs["ready_s"]
    for name, m in medians.items():
        print(
            f"{name}: median ready {m['ready_s']:.2f} s, first prediction "
            f"{m['first_prediction_s']:.2f} s over {args.repeats}"
        )
    print(f"ratio nnpipe serve / mlflow models serve (ready): {ratio:.2f}")
    met = max(r["ready_s"] for r in runs["nnpipe serve"]) <= TARGET_S
    print(
        f"target: nnpipe serve ready in <= {TARGET_S:g} s in every start: "
        + ("met" if met else "MISSED")
    )
    results = {
        "model": f"{bench.MODEL}@{args.alias}",
        "version": version,
        "image": str(image),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "runs": runs,
        "medians": medians,
        "ratio_ready": ratio,
        "ratio_first_prediction": ours["first_prediction_s"] / theirs["first_prediction_s"],
        "target_ready_s": TARGET_S,
        "target_met": met,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_text(json.dumps(results, indent=2))
    print(f"written: {out_file}")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
