"""TFRecord shards and the ``tf.data`` input pipeline for radiographs.

Features are stored as raw ``uint8`` pixels in TFRecord files: compact, read with parallel
I/O and parsed in parallel, cached in memory after the first epoch and prefetched, so the
accelerator (or the CPU's training threads) never waits on image decoding. Pixels stay in
0..255 until the model's own first layer normalises them: serving then feeds the same
resized pixels as training, with no second copy of the normalisation to keep in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nnpipe.domains.xray.params import XrayAugment
from nnpipe.keras_env import keras, tf

AUTOTUNE = tf.data.AUTOTUNE


def _example(image: np.ndarray, label: int, image_id: str) -> bytes:
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_id.encode()])),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    # protobuf writes map entries in hash order unless asked not to; equal data must give
    # equal bytes, or DVC would see new data on every run
    return example.SerializeToString(deterministic=True)


def write_tfrecord(
    path: str | Path, images: np.ndarray, labels: Sequence[int], ids: Sequence[str]
) -> int:
    """Write square uint8 images with labels and ids to one TFRecord file; return the count."""
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"expected uint8 images of shape (n, size, size), got {images.dtype} {images.shape}"
        )
    with tf.io.TFRecordWriter(str(path)) as writer:
        for image, label, image_id in zip(images, labels, ids, strict=True):
            writer.write(_example(np.ascontiguousarray(image), label, image_id))
    return len(images)


def _parser(image_size: int):
    spec = {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "id": tf.io.FixedLenFeature([], tf.string),
    }

    def parse(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        ex = tf.io.parse_single_example(record, spec)
        pixels = tf.io.decode_raw(ex["image"], tf.uint8)
        image = tf.cast(tf.reshape(pixels, (image_size, image_size, 1)), tf.float32)
        return image, tf.cast(tf.reshape(ex["label"], (1,)), tf.float32)

    return parse


def build_augmenter(aug: XrayAugment, seed: int) -> keras.Sequential:
    """The guide's rotation, shift and zoom, plus brightness and contrast, on 0..255 pixels.

    Empty space is filled with black (a radiograph's background), not mirrored anatomy.
    No horizontal flip unless asked for: a flipped chest puts the heart on the wrong side,
    an image the model will never see in use.
    """
    layers: list[keras.layers.Layer] = []
    if aug.rotation:
        layers.append(keras.layers.RandomRotation(aug.rotation, fill_mode="constant", seed=seed))
    if aug.shift:
        layers.append(
            keras.layers.RandomTranslation(
                aug.shift, aug.shift, fill_mode="constant", seed=seed + 1
            )
        )
    if aug.zoom:
        layers.append(keras.layers.RandomZoom(aug.zoom, fill_mode="constant", seed=seed + 2))
    if aug.brightness:
        layers.append(
            keras.layers.RandomBrightness(aug.brightness, value_range=(0.0, 255.0), seed=seed + 3)
        )
    if aug.contrast:
        layers.append(keras.layers.RandomContrast(aug.contrast, seed=seed + 4))
    if aug.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 5))
    return keras.Sequential(layers, name="augment")


def make_dataset(
    files: Sequence[str | Path],
    image_size: int,
    batch_size: int,
    *,
    training: bool = False,
    augment: XrayAugment | None = None,
    seed: int = 0,
    cache: bool = True,
    shuffle_buffer: int = 4096,
) -> tf.data.Dataset:
    """Batches of (pixels 0..255 float32 (b, s, s, 1), label float32 (b, 1)).

    Training batches are shuffled (seeded, reshuffled each epoch) and augmented; evaluation
    batches keep file order, so predictions line up with the stored ids. ``cache``: keep
    the decoded split in memory after the first pass; without it every pass streams from
    disk and memory stays bounded by ``shuffle_buffer`` and the prefetch.
    """
    ds = tf.data.TFRecordDataset([str(f) for f in files], num_parallel_reads=AUTOTUNE)
    ds = ds.map(_parser(image_size), num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache()
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training and augment is not None:
        augmenter = build_augmenter(augment, seed)
        if augmenter.layers:
            ds = ds.map(
                lambda x, y: (tf.clip_by_value(augmenter(x, training=True), 0.0, 255.0), y),
                num_parallel_calls=AUTOTUNE,
                deterministic=True,
            )
    return ds.prefetch(AUTOTUNE)


def read_arrays(files: Sequence[str | Path], image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """A whole split in memory: (pixels (n, s, s, 1) float32, labels (n,) int64)."""
    xs, ys = [], []
    for x, y in make_dataset(files, image_size, batch_size=1024, cache=False):
        xs.append(x.numpy())
        ys.append(y.numpy())
    if not xs:
        return np.zeros((0, image_size, image_size, 1), np.float32), np.zeros((0,), np.int64)
    return np.concatenate(xs), np.concatenate(ys).reshape(-1).astype(np.int64)


def pixel_stats(images: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of training pixels, for the model's normalisation layer."""
    values = images.astype(np.float64)
    return float(values.mean()), float(max(values.std(), 1e-6))
