"""What the monitor's drift checks find, and what they do not, on real data
(../shared/data) and on shifts of known size.

    python bench/monitor_drift.py                     # about 5 minutes on 2 cores
    python bench/monitor_drift.py --repeats 200 --seeds 0 1 2

X-ray: a project is trained on PneumoniaMNIST's train split (`nnpipe run --domain xray`
in a temporary folder, tuning off, one compressed variant; each --seed its own run).
Its deployed model's reference (the training split, as promote wrote it) is compared with:

- random windows of the held-back split (``test`` of ../shared/data, never trained or
  tuned on): the false alarm rate of each check and of the whole monitor at its params'
  thresholds, over ``--repeats`` windows of ``--window`` images;
- the same windows shifted by brightness (+delta grey levels), contrast (x factor around
  the image mean), Gaussian noise (sigma grey levels) and blur (Gaussian radius, px):
  the share of windows each check flags, per size; the smallest size the monitor flags
  in at least 80% of windows;
- Actualmed's full-size radiographs (another hospital, another population, 320 px).

OHLCV (``--only ohlcv`` runs this part alone, in a minute or two): the checks at the
params' default thresholds on GARCH series (nnpipe's synthetic generator) with a
volatility jump of each factor, and without one (factor 1: the false alarm rate), over
``--repeats`` seeds, for windows of each of ``--days`` (21: a month, the default
window; 63: a quarter); and on GOOG's real prices across the 2008 crisis (reference
2004-2007) month by month, 2006 to mid-2009.

Writes bench/results/monitor_drift.json and prints the tables the README quotes.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
PROJECT_FILES = ("params.yaml", "dvc.yaml", "prefect.yaml", "flows", ".dvc/config", ".dvcignore")

SHIFTS = {
    "brightness": [2, 4, 8, 16, 32],  # + grey levels
    "contrast": [1.05, 1.1, 1.2, 1.4, 1.8],  # x around the mean
    "noise": [2, 4, 8, 16, 32],  # Gaussian sigma, grey levels
    "blur": [0.25, 0.5, 1.0, 2.0],  # Gaussian radius, px (at 28 px)
}


def shifted(image: np.ndarray, kind: str, size: float, rng: np.random.Generator) -> np.ndarray:
    x = image.astype(np.float64)
    if kind == "brightness":
        x = x + size
    elif kind == "contrast":
        x = (x - x.mean()) * size + x.mean()
    elif kind == "noise":
        x = x + rng.normal(0, size, x.shape)
    elif kind == "blur":
        pil = Image.fromarray(image.astype(np.uint8)).filter(ImageFilter.GaussianBlur(size))
        x = np.asarray(pil, dtype=np.float64)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


def trained_project(dest: Path, seed: int) -> Path:
    """A project trained on PneumoniaMNIST's train split by `nnpipe run --domain xray`."""
    dest.mkdir(parents=True)
    for name in PROJECT_FILES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name)
        else:
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"]):
        subprocess.run(cmd, cwd=dest, check=True)
    subprocess.run(
        ["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "bench"],
        cwd=dest,
        check=True,
    )
    npz = SHARED / "xray" / "pneumoniamnist_dev.npz"
    overrides = [
        f"seed={seed}",
        "xray.ingest.source=medmnist",
        f"xray.ingest.medmnist.path={npz}",
        "xray.featurize.image_size=28",
        "xray.tune.enabled=false",
        "xray.train.epochs=8",
        "xray.compress.variants=[keras_float32,tflite_dynamic]",
    ]
    args = [sys.executable, "-m", "nnpipe", "run", "--domain", "xray"]
    for o in overrides:
        args += ["-S", o]
    done = subprocess.run(args, cwd=dest, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"training failed:\n{done.stderr[-4000:]}")
    return dest


def xray_frames(project: Path, images: list[np.ndarray | bytes]):
    """The monitor's view of ``images`` through the project's deployed model."""
    from nnpipe.domains.xray.monitoring import image_features, image_source
    from nnpipe.monitoring.frame import MonitorFrame
    from nnpipe.serving.predictor import load_predictor

    predictor = load_predictor(project / "models" / "xray-deploy", embedding=True)
    pixels = np.stack([predictor.to_pixels(i) for i in images]).astype(np.float32)[..., None]
    probability, embedding = predictor.run_with_embedding(pixels)
    sources = [image_source(i) for i in images]
    return MonitorFrame.from_records(
        image_features(pixels, sources),
        [{"probability": float(p)} for p in probability.reshape(-1)],
        list(embedding),
    )


def subset(frame, rows: np.ndarray):
    from nnpipe.monitoring.frame import MonitorFrame

    return MonitorFrame(frame.table.iloc[rows].reset_index(drop=True), frame.embedding[rows])


def flags(reference, current, cfg, seed: int) -> dict[str, bool]:
    from nnpipe.domains.xray.monitoring import drift_checks

    checks = drift_checks(reference, current, cfg, seed)
    return {c.name: c.drifted for c in checks} | {"any": any(c.drifted for c in checks)}


def xray_bench(seed: int, repeats: int, window: int, work: Path) -> dict:
    from nnpipe.config import load_params
    from nnpipe.monitoring.frame import MonitorFrame

    project = trained_project(work / f"xray-{seed}", seed)
    cfg = load_params(project / "params.yaml").xray.monitor
    reference = MonitorFrame.read(project / "models/xray-deploy/monitor_reference.npz")
    with np.load(SHARED / "xray" / "pneumoniamnist_dev.npz") as npz:
        held_out = list(npz["test_images"])
    rng = np.random.default_rng(seed)
    base = xray_frames(project, [png(i) for i in held_out])
    windows = [rng.choice(len(held_out), window, replace=False) for _ in range(repeats)]
    alarms: dict[str, int] = {}
    for n, rows in enumerate(windows):
        for name, hit in flags(reference, subset(base, rows), cfg, n).items():
            alarms[name] = alarms.get(name, 0) + hit
    out: dict = {"false_alarm_rate": {k: v / repeats for k, v in alarms.items()}}
    shift_rows = windows[: max(20, repeats // 5)]
    out["shifts"] = {}
    for kind, sizes in SHIFTS.items():
        out["shifts"][kind] = {}
        for size in sizes:
            frame = xray_frames(project, [png(shifted(i, kind, size, rng)) for i in held_out])
            hits = [
                flags(reference, subset(frame, rows), cfg, n) for n, rows in enumerate(shift_rows)
            ]
            out["shifts"][kind][str(size)] = {
                name: float(np.mean([h[name] for h in hits])) for name in hits[0]
            }
    actualmed = sorted((SHARED / "xray" / "actualmed").rglob("*.png"))
    frame = xray_frames(project, [p.read_bytes() for p in actualmed])
    from nnpipe.domains.xray.monitoring import drift_checks

    out["actualmed"] = {
        "images": len(actualmed),
        "checks": {
            c.name: {"drifted": c.drifted, "p_value": c.p_value, "statistic": c.statistic}
            for c in drift_checks(reference, frame, cfg, seed)
        },
    }
    return out


def ohlcv_frame(bars: pd.DataFrame, start: int, end: int, look_back: int = 60):
    from nnpipe.domains.ohlcv.monitoring import forecast_output, window_features
    from nnpipe.monitoring.frame import MonitorFrame

    columns = ["Open", "High", "Low", "Close", "Volume"]
    values = bars[columns].to_numpy(np.float64)
    windows = [values[i - look_back : i] for i in range(max(start, look_back), end)]
    return MonitorFrame.from_records(
        [window_features(w, columns) for w in windows],
        [forecast_output(w[-1, 3], w[-1, 3], w[-1, 3]) for w in windows],
    )


def ohlcv_flags(reference, current) -> dict[str, bool]:
    from nnpipe.domains.ohlcv.monitoring import drift_checks
    from nnpipe.domains.ohlcv.params import OhlcvMonitor

    cfg = OhlcvMonitor()  # the defaults params.yaml repeats
    checks = [c for c in drift_checks(reference, current, cfg) if c.name != "prediction"]
    return {c.name: c.drifted for c in checks} | {"any": any(c.drifted for c in checks)}


def ohlcv_bench(repeats: int, lengths: list[int]) -> dict:
    from nnpipe.domains.ohlcv.sources import read_ohlcv_csv
    from nnpipe.domains.ohlcv.synthetic import generate_ohlcv

    out: dict = {"garch": {}}
    for days in lengths:
        out["garch"][str(days)] = rates = {}
        for factor in (1.0, 1.5, 2.0, 3.0):
            hits = []
            for seed in range(repeats):
                bars = generate_ohlcv(1060 + 2 * days, seed, volatility_jump=(1000, factor))
                hits.append(
                    ohlcv_flags(
                        ohlcv_frame(bars, 60, 1000),
                        ohlcv_frame(bars, 1000 + days // 2, 1000 + days // 2 + days),
                    )
                )
            rates[str(factor)] = {k: float(np.mean([h[k] for h in hits])) for k in hits[0]}
    goog = read_ohlcv_csv(SHARED / "ohlcv" / "GOOG.csv")
    dates = goog.index
    reference = ohlcv_frame(goog, 0, int(np.searchsorted(dates, pd.Timestamp("2008-01-01"))))
    months = {}
    for month in pd.period_range("2006-01", "2009-06", freq="M"):
        start = int(np.searchsorted(dates, month.start_time))
        end = int(np.searchsorted(dates, month.end_time))
        if end - start >= 15:
            months[str(month)] = ohlcv_flags(reference, ohlcv_frame(goog, start, end))
    out["goog_2008"] = months
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--window", type=int, default=100, help="images per X-ray window")
    parser.add_argument("--days", type=int, nargs="+", default=[21, 63], help="OHLCV windows")
    parser.add_argument("--only", choices=["xray", "ohlcv"], help="one domain's part alone")
    parser.add_argument("--out", type=Path, default=RESULTS / "monitor_drift.json")
    args = parser.parse_args()
    if not (SHARED / "xray" / "pneumoniamnist_dev.npz").is_file():
        raise SystemExit(f"{SHARED} has no PneumoniaMNIST: this bench needs ../shared/data")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    results: dict = {"window_images": args.window, "repeats": args.repeats, "xray": {}}
    if args.only != "ohlcv":
        with tempfile.TemporaryDirectory() as tmp:
            for seed in args.seeds:
                results["xray"][str(seed)] = xray_bench(seed, args.repeats, args.window, Path(tmp))
    if args.only != "xray":
        results["ohlcv"] = ohlcv_bench(args.repeats, args.days)
    if args.only:  # keep the other domain's last results
        old = json.loads(args.out.read_text()) if args.out.is_file() else {}
        other = "ohlcv" if args.only == "xray" else "xray"
        if other in old:
            results[other] = old[other]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    report(results)
    return 0


def report(results: dict) -> None:
    if results.get("xray"):
        report_xray(results)
    if results.get("ohlcv"):
        report_ohlcv(results["ohlcv"], results["repeats"])


def report_xray(results: dict) -> None:
    seeds = list(results["xray"])
    print(
        f"X-ray false alarm rate ({results['repeats']} windows of "
        f"{results['window_images']} held-out images), per training seed:"
    )
    names = list(results["xray"][seeds[0]]["false_alarm_rate"])
    print("| check | " + " | ".join(f"seed {s}" for s in seeds) + " |")
    print("|---|" + "---|" * len(seeds))
    for name in names:
        print(
            f"| {name} | "
            + " | ".join(f"{results['xray'][s]['false_alarm_rate'][name]:.1%}" for s in seeds)
            + " |"
        )
    print("\nX-ray: share of shifted windows flagged (any check), per seed:")
    for kind in SHIFTS:
        cells = []
        for size in SHIFTS[kind]:
            rates = [results["xray"][s]["shifts"][kind][str(size)]["any"] for s in seeds]
            cells.append(f"{size}: {min(rates):.0%}-{max(rates):.0%}")
        smallest = [
            next(
                (
                    sz
                    for sz in SHIFTS[kind]
                    if results["xray"][s]["shifts"][kind][str(sz)]["any"] >= 0.8
                ),
                None,
            )
            for s in seeds
        ]
        print(f"  {kind}: " + ", ".join(cells) + f"; smallest flagged in >=80%: {smallest}")
    for s in seeds:
        a = results["xray"][s]["actualmed"]
        drifted = [k for k, v in a["checks"].items() if v["drifted"]]
        print(f"\nActualmed ({a['images']} images), seed {s}: drifted {drifted}")


def report_ohlcv(ohlcv: dict, repeats: int) -> None:
    print(
        f"\nOHLCV GARCH ({repeats} seeds): share of windows flagged, by volatility jump "
        "(x1: no jump, the false alarm rate)"
    )
    for days, by_factor in ohlcv["garch"].items():
        checks = list(next(iter(by_factor.values())))
        print(f"\n{days}-day windows\n| jump | " + " | ".join(checks) + " |")
        print("|---|" + "---|" * len(checks))
        for factor, rates in by_factor.items():
            print(f"| x{factor} | " + " | ".join(f"{rates[c]:.1%}" for c in checks) + " |")
    goog = ohlcv["goog_2008"]
    flagged = [m for m, f in goog.items() if f["volatility"]]
    print(f"\nGOOG (reference 2004-2007): months whose volatility drifted: {flagged}")


if __name__ == "__main__":
    raise SystemExit(main())
