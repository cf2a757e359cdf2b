"""Every architecture on the shared real data: parameter count, test metric and training
time on this machine, for the architecture table in docs/benchmarks.md.

    python bench/architectures.py                          # both domains, every architecture
    python bench/architectures.py --domain xray --only vit mlp_mixer

One throw-away project in a temporary folder per run, with the project's real-data
profiles applied (``pneumoniamnist`` on ../shared/data/xray/pneumoniamnist_dev.npz,
``stock-returns`` on ../shared/data/ohlcv/GOOG.csv). Ingest, featurize and tune (off:
a pass-through) run once per domain; then, for each architecture, ``nnpipe stage train``
and ``nnpipe stage evaluate`` run as the pipeline runs them, with the params as written,
so the architectures are compared on the same footing. The reported training time is the
wall time of the train stage's process, TensorFlow's start-up included. Walk-forward
re-training is off for the sequences (the single test period is the comparison).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "data"

# (row label, overrides) per domain; the first overrides select the architecture
ARCHITECTURES = {
    "xray": [
        ("feedforward", ["xray.train.model=feedforward"]),
        ("small_cnn", ["xray.train.model=small_cnn"]),
        ("medical_cnn", ["xray.train.model=medical_cnn"]),
        ("vit", ["xray.train.model=vit"]),
        ("mlp_mixer", ["xray.train.model=mlp_mixer"]),
    ],
    "ohlcv": [
        ("lstm", ["ohlcv.train.model=lstm"]),
        (
            "lstm (create_rnn: 64, 32)",
            ["ohlcv.train.model=lstm", "ohlcv.train.units=[64, 32]", "ohlcv.train.dropout=0.0"],
        ),
        ("gru", ["ohlcv.train.model=gru"]),
        ("simple_rnn", ["ohlcv.train.model=simple_rnn"]),
        ("transformer", ["ohlcv.train.model=transformer"]),
    ],
}
PROFILES = {"xray": "pneumoniamnist", "ohlcv": "stock-returns"}


def domain_overrides(domain: str, xray_npz: Path, ohlcv_csv: Path) -> list[str]:
    from nnpipe.cli.run import read_profile

    profile = read_profile(PROFILES[domain], ROOT / "profiles")
    if domain == "xray":
        return [*profile, f"xray.ingest.medmnist.path={xray_npz}", "xray.tune.enabled=false"]
    return [
        *profile,
        f"ohlcv.ingest.csv.files={{GOOG: {ohlcv_csv}}}",
        "ohlcv.tune.enabled=false",
        "ohlcv.evaluate.walk_forward_folds=0",
    ]


def stage(project: Path, name: str, domain: str, overrides: list[str]) -> float:
    command = [sys.executable, "-m", "nnpipe", "stage", name, "--domain", domain]
    for item in overrides:
        command += ["-S", item]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PREFECT_LOGGING_LEVEL": "WARNING"}
    t0 = time.perf_counter()
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{name} ({domain}, {overrides}) failed:\n{done.stderr[-3000:]}")
    return seconds


def count_params(path: Path) -> int:
    from nnpipe.saved_models import load_model

    return int(load_model(path).count_params())


def headline(project: Path, domain: str) -> dict:
    """The headline test numbers, from ``metrics.json`` (evaluate's DVC metrics)."""
    metrics = json.loads((project / "reports" / domain / "metrics.json").read_text())
    if domain == "xray":
        test = metrics["test"]
        return {"metric": "test ROC-AUC", "value": test["roc_auc"], "accuracy": test["accuracy"]}
    test = next(iter(metrics.values()))["test"]  # the one series the benchmark trains
    return {
        "metric": "test MAE / persistence's",
        "value": test["relative_mae"],
        "rmse": test["rmse"],
        "mae": test["mae"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--domain", choices=sorted(ARCHITECTURES), action="append")
    parser.add_argument("--only", nargs="*", help="row labels to run (default: all)")
    parser.add_argument("--xray-npz", type=Path, default=SHARED / "xray" / "pneumoniamnist_dev.npz")
    parser.add_argument("--ohlcv-csv", type=Path, default=SHARED / "ohlcv" / "GOOG.csv")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "architectures.json")
    args = parser.parse_args()
    for path in (args.xray_npz, args.ohlcv_csv):
        if not path.is_file():
            raise SystemExit(f"{path} not found: pass --xray-npz / --ohlcv-csv")
    domains = args.domain or sorted(ARCHITECTURES)
    labels = [label for d in domains for label, _ in ARCHITECTURES[d]]
    unknown = sorted(set(args.only or ()) - set(labels))
    if unknown:
        raise SystemExit(f"--only {unknown}: no such row; rows: {labels}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="nnpipe-bench-arch-") as tmp:
        project = Path(tmp)
        shutil.copy(ROOT / "params.yaml", project / "params.yaml")
        for domain in domains:
            base = domain_overrides(domain, args.xray_npz.resolve(), args.ohlcv_csv.resolve())
            for name in ("ingest", "featurize", "tune"):  # tune off: a pass-through
                stage(project, name, domain, base)
            for label, overrides in ARCHITECTURES[domain]:
                if args.only and label not in args.only:
                    continue
                seconds = stage(project, "train", domain, [*base, *overrides])
                stage(project, "evaluate", domain, [*base, *overrides])
                model_dir = project / "models" / domain
                model = next(model_dir.rglob("model.keras"))
                history = json.loads(next(model_dir.rglob("history.json")).read_text())["epochs"]
                rows.append(
                    {
                        "domain": domain,
                        "architecture": label,
                        "overrides": overrides,
                        "parameters": count_params(model),
                        "epochs": len(history),
                        "train_seconds": seconds,
                        **headline(project, domain),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    results = {
        "rows": rows,
        "cpu_count": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print("| domain | architecture | parameters | test metric | epochs | training time |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['domain']} | {r['architecture']} | {r['parameters']:,} | "
            f"{r['metric']} {r['value']:.3f} | {r['epochs']} | {r['train_seconds']:.0f} s |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
