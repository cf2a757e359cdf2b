"""Input-pipeline throughput: nnpipe's tf.data pipeline against the guide's ImageDataGenerator.

Both read the same folder of PNG radiographs (class sub-folders), resize to the same size,
apply the same augmentations (rotation, shifts, zoom) and deliver the same batches for
several epochs; they run side by side in one process, so the ratio is what matters, not
the absolute numbers of this machine.

    python bench/input_pipeline.py [--images 2000] [--source-size 256] [--size 64] [--epochs 5]

nnpipe pays decoding and resizing once (its featurize stage, timed and reported
separately and included in the "end to end" ratio); the generator decodes every image in
every epoch. Results go to stdout and bench/results/input_pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from nnpipe.domains.xray.features import make_dataset, write_tfrecord
from nnpipe.domains.xray.images import read_image, resize_square
from nnpipe.domains.xray.params import XrayAugment
from nnpipe.domains.xray.synthetic import generate_xrays
from nnpipe.io import atomic_write_json
from nnpipe.keras_env import keras

AUGMENT = XrayAugment(rotation=0.03, shift=0.08, zoom=0.1, brightness=0.0, contrast=0.0)


def write_folder(root: Path, n: int, size: int, seed: int) -> list[tuple[Path, int]]:
    data = generate_xrays(n, size, 0.5, seed)
    files = []
    for i, (image, label) in enumerate(zip(data.images, data.labels, strict=True)):
        path = root / ("PNEUMONIA" if label else "NORMAL") / f"{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
        files.append((path, int(label)))
    return files


def time_generator(root: Path, size: int, batch: int, epochs: int) -> float:
    """The guide's way: ImageDataGenerator.flow_from_directory with its augmentations."""
    gen = keras.preprocessing.image.ImageDataGenerator(
        rotation_range=AUGMENT.rotation * 360,
        width_shift_range=AUGMENT.shift,
        height_shift_range=AUGMENT.shift,
        zoom_range=AUGMENT.zoom,
        fill_mode="constant",
    )
    flow = gen.flow_from_directory(
        str(root),
        target_size=(size, size),
        color_mode="grayscale",
        class_mode="binary",
        batch_size=batch,
        shuffle=True,
        seed=0,
    )
    steps = len(flow)
    start = time.perf_counter()
    for _ in range(epochs):
        for _ in range(steps):
            next(flow)
    return time.perf_counter() - start


def featurize_folder(files: list[tuple[Path, int]], size: int, out: Path) -> float:
    start = time.perf_counter()
    images = np.stack([resize_square(read_image(p), size, "stretch") for p, _ in files])
    write_tfrecord(out, images, [label for _, label in files], [p.stem for p, _ in files])
    return time.perf_counter() - start


def time_tf_data(record: Path, size: int, batch: int, epochs: int) -> float:
    ds = make_dataset([record], size, batch, training=True, augment=AUGMENT, seed=0)
    start = time.perf_counter()
    for _ in range(epochs):
        for _ in ds:
            pass
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--source-size", type=int, default=256)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        files = write_folder(root, args.images, args.source_size, seed=0)
        gen_s = time_generator(root, args.size, args.batch, args.epochs)
        feat_s = featurize_folder(files, args.size, Path(tmp) / "train.tfrecord")
        tfd_s = time_tf_data(Path(tmp) / "train.tfrecord", args.size, args.batch, args.epochs)
    seen = args.images * args.epochs
    result = {
        "images": args.images,
        "source_size": args.source_size,
        "size": args.size,
        "batch": args.batch,
        "epochs": args.epochs,
        "image_data_generator_s": round(gen_s, 3),
        "nnpipe_featurize_once_s": round(feat_s, 3),
        "nnpipe_tf_data_s": round(tfd_s, 3),
        "image_data_generator_img_per_s": round(seen / gen_s, 1),
        "nnpipe_tf_data_img_per_s": round(seen / tfd_s, 1),
        "ratio_streaming": round(gen_s / tfd_s, 2),
        "ratio_end_to_end": round(gen_s / (feat_s + tfd_s), 2),
    }
    atomic_write_json(Path(__file__).parent / "results" / "input_pipeline.json", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
