"""What the prediction log costs a request: `nnpipe serve` with the log on (a SQLite file,
the default) against the same server with it off (`NNPIPE_PREDICTION_LOG=""`), side by
side, alternated, on the same registered X-ray version and the same image.

    make run                                        # once: a registered X-ray champion
    python bench/serving/prediction_log.py          # in the project; results in bench/results/

Two measures:

- end to end: the load generator (bench/serving/loadgen.py, a separate process) sends
  single-image requests at 1 and 8 concurrent clients, each server measured in turn for
  ``--rounds`` alternations; p50/p99 latency per server and the p99 difference;
- in the request: the work a request does for the log (the image's statistics, the
  record, the queue; the embedding comes from the same model run), timed alone in this
  process over many calls while the writer thread commits behind it; its p99.

Target (issue 17): the log adds at most 1 ms to a request's p99.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nnpipe.ports import free_port

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as serving  # noqa: E402  (bench/serving/run.py: its server and load helpers)

RESULTS = HERE.parent / "results"
TARGET_MS = 1.0


def in_request_cost(project: Path, alias: str, image: Path, calls: int) -> dict:
    """The log's share of a request, in this process: features, record and queue."""
    from nnpipe import store
    from nnpipe.config import load_params
    from nnpipe.domains.xray.monitoring import image_source
    from nnpipe.monitoring.prediction_log import PredictionLog
    from nnpipe.serving.prediction_log import log_predictions
    from nnpipe.serving.predictor import load_predictor
    from nnpipe.serving.registry import resolve
    from nnpipe.serving.store import Slot

    params = load_params(project / "params.yaml")
    found = resolve(store.tracking_uri(params, project), serving.MODEL, alias)
    predictor = load_predictor(found.deploy_dir, embedding=True)
    batch = predictor.pixels([image.read_bytes()])  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory() as tmp:
        log = PredictionLog(str(Path(tmp) / "p.sqlite"))

        class Store:  # what log_predictions reads of the model store
            prediction_log = log

        slot = Slot("xray", found, predictor)
        from nnpipe.domains.xray.monitoring import image_features

        source = image_source(image.read_bytes())
        out, embedding = predictor.predict_with_embedding(batch)  # type: ignore[attr-defined]
        rows = [{"probability": out["probability"][0], "label": out["label"][0], "threshold": 0.5}]
        times = []
        for n in range(calls):
            start = time.perf_counter()
            log_predictions(
                Store(),  # type: ignore[arg-type]
                slot,
                f"bench-{n}",
                rows,
                image_features(batch, [source]),
                embedding,
            )
            times.append(time.perf_counter() - start)
            if n % 50 == 0:
                time.sleep(0.002)  # let the writer commit between bursts, as between requests
        assert log.flush(60)
        status = log.status()
        log.close()
    ms = np.array(times) * 1000
    return {
        "calls": calls,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "written": status["written"],
        "dropped": status["dropped"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--project", type=Path, default=Path.cwd())
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--image", type=Path, help="default: the project's first ingested image")
    parser.add_argument("--requests", type=int, default=1200, help="per server and level")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=3, help="alternations per level")
    parser.add_argument("--calls", type=int, default=5000, help="in-request timing calls")
    parser.add_argument("--out", type=Path, default=RESULTS / "prediction_log.json")
    args = parser.parse_args()

    project = args.project.resolve()
    args.out = args.out.resolve()
    image = (args.image or serving.default_image(project)).resolve()
    sys.path.insert(0, str(project / "src"))
    from nnpipe import store
    from nnpipe.config import load_params

    os.chdir(project)
    tracking = store.tracking_uri(load_params("params.yaml"), project)
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "image": str(image),
        "levels": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        body = Path(tmp) / "body.png"
        body.write_bytes(image.read_bytes())
        logs = {"log on": str(Path(tmp) / "predictions.sqlite"), "log off": ""}
        for clients in args.clients:
            latencies: dict[str, list[dict]] = {name: [] for name in logs}
            for _ in range(args.rounds):
                for name, location in logs.items():
                    port = free_port()
                    env = {**serving.server_env(tracking), "NNPIPE_PREDICTION_LOG": location}
                    log_file = Path(tmp) / f"{name.replace(' ', '_')}.log"
                    with serving.server(
                        serving.nnpipe_serve_cmd(port, args.alias),
                        f"http://127.0.0.1:{port}/ready",
                        log_file,
                        env,
                    ) as proc:
                        latencies[name].append(
                            serving.load(
                                f"http://127.0.0.1:{port}/predict/xray",
                                body,
                                "image/png",
                                clients,
                                args.requests // args.rounds,
                                20,
                                proc.pid,
                            )
                        )
            level = {"clients": clients}
            for name, runs in latencies.items():
                level[name] = {
                    "p50_ms": statistics.median(r["p50_ms"] for r in runs),
                    "p99_ms": statistics.median(r["p99_ms"] for r in runs),
                    "errors": sum(r["errors"] for r in runs),
                    "rounds_p99_ms": [r["p99_ms"] for r in runs],
                }
            level["p99_added_ms"] = level["log on"]["p99_ms"] - level["log off"]["p99_ms"]
            results["levels"].append(level)
    results["in_request"] = in_request_cost(project, args.alias, image, args.calls)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("| clients | log | p50 ms | p99 ms | errors |\n|---|---|---|---|---|")
    for level in results["levels"]:
        for name in logs:
            r = level[name]
            print(
                f"| {level['clients']} | {name} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                f"{r['errors']} |"
            )
        print(f"| {level['clients']} | p99 added | | **{level['p99_added_ms']:+.2f}** | |")
    cost = results["in_request"]
    print(
        f"\nin the request: p50 {cost['p50_ms']:.3f} ms, p99 {cost['p99_ms']:.3f} ms, "
        f"max {cost['max_ms']:.2f} ms over {cost['calls']} calls "
        f"({cost['written']} written, {cost['dropped']} dropped); target p99 <= {TARGET_MS} ms"
    )
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
