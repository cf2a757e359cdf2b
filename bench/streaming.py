"""Peak memory of X-ray training for two dataset sizes, one 4x the other, with the training
split streamed from disk (``train.stream_from_disk: true``) and cached in memory (the
default), side by side in one run.

    python bench/streaming.py                       # 3,000 and 12,000 images of 64 px
    python bench/streaming.py --images 5000 --size 96

Each measurement is a fresh process: TFRecords written once by this script (random
images, so nothing compresses), then two epochs of ``fit`` through nnpipe's own
``make_dataset`` with the small CNN; it reports the process's peak resident memory and its
growth over the memory it had before the first epoch. Streaming should stay flat (bounded
by the shuffle buffer and prefetch); the cache grows with the data.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD = r"""
import json, resource, sys
from pathlib import Path
files, size, stream, buffer = json.loads(sys.argv[1])
import nnpipe
from nnpipe.domains.xray.params import XrayTrain
from nnpipe.keras_env import keras
from nnpipe.domains.xray.features import make_dataset
from nnpipe.domains.xray.models import build_model
model = build_model(XrayTrain(model="small_cnn", filters=[8, 16], dense_units=16), size,
                    127.0, 60.0)
ds = make_dataset(files, size, 64, training=True, cache=not stream, shuffle_buffer=buffer)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
model.fit(ds, epochs=2, verbose=0)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_mb": before / 1024, "peak_mb": peak / 1024}))
"""


def write_records(folder: Path, n: int, size: int, chunk: int = 1000) -> list[str]:
    import numpy as np

    sys.path.insert(0, str(ROOT / "src"))
    from nnpipe.domains.xray.features import write_tfrecord

    rng = np.random.default_rng(0)
    files = []
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        images = rng.integers(0, 256, (count, size, size), dtype=np.uint8)
        labels = (np.arange(start, start + count) % 2).tolist()
        path = folder / f"part-{start // chunk:04d}.tfrecord"
        write_tfrecord(path, images, labels, [f"img-{start + i}" for i in range(count)])
        files.append(str(path))
    return files


def measure(files: list[str], size: int, stream: bool, buffer: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps([files, size, stream, buffer])],
        capture_output=True,
        text=True,
        check=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
    )
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["growth_mb"] = row["peak_mb"] - row["before_mb"]
    return row


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=3000, help="the smaller dataset")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--shuffle-buffer", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "streaming.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="nnpipe-bench-stream-") as tmp:
        for n in (args.images, 4 * args.images):
            folder = Path(tmp) / str(n)
            folder.mkdir()
            files = write_records(folder, n, args.size)
            on_disk = sum(Path(f).stat().st_size for f in files) / 2**20
            for stream in (True, False):
                t0 = time.perf_counter()
                row = measure(files, args.size, stream, args.shuffle_buffer)
                rows.append(
                    {
                        "images": n,
                        "on_disk_mb": on_disk,
                        "mode": "stream_from_disk" if stream else "cache_in_memory",
                        "seconds": time.perf_counter() - t0,
                        **row,
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    ratio = {}
    for mode in ("stream_from_disk", "cache_in_memory"):
        small, large = (r for r in rows if r["mode"] == mode)
        ratio[mode] = large["peak_mb"] / small["peak_mb"]
    results = {
        "size": args.size,
        "shuffle_buffer": args.shuffle_buffer,
        "rows": rows,
        "peak_ratio_4x_data": ratio,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print("| images | on disk MB | mode | peak RSS MB | growth during fit MB | seconds |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['images']} | {r['on_disk_mb']:.0f} | {r['mode']} | {r['peak_mb']:.0f} | "
            f"{r['growth_mb']:.0f} | {r['seconds']:.1f} |"
        )
    print(
        f"peak with 4x the data: streaming {ratio['stream_from_disk']:.2f}x, "
        f"cache {ratio['cache_in_memory']:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
