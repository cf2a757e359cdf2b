"""The X-ray monitor's view of an image and its checks: synthetic radiographs split in
two pass every check; the same images brighter or with a new mode do not."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from nnpipe.domains.xray.images import encode_png
from nnpipe.domains.xray.monitoring import (
    ImageSource,
    drift_checks,
    image_features,
    image_source,
)
from nnpipe.domains.xray.synthetic import generate_xrays
from nnpipe.monitoring.frame import MonitorFrame

THRESHOLDS = SimpleNamespace(
    ks_alpha=0.01, embedding_alpha=0.01, permutations=199, histogram_psi=0.1
)


def frame(images: np.ndarray, mode: str = "L") -> MonitorFrame:
    pixels = images.astype(np.float32)[..., None]
    sources = [ImageSource(96, 96, mode)] * len(images)
    # a stand-in embedding: block means of the image (what a model's features respond to)
    blocks = pixels[..., 0].reshape(len(images), 4, 24, 4, 24).mean(axis=(2, 4)).reshape(-1, 16)
    return MonitorFrame.from_records(
        image_features(pixels, sources),
        [{"probability": float(b.mean() / 255)} for b in blocks],
        list(blocks / 255),
    )


def test_image_features_are_its_size_mode_and_intensity_histogram():
    image = np.zeros((1, 8, 8, 1), np.float32)
    image[0, :4] = 255
    (features,) = image_features(image, [ImageSource(640, 480, "RGB")])
    assert features["width"] == 640 and features["mode"] == "RGB"
    assert features["mean"] == 127.5
    assert sum(features["histogram"]) == 1.0
    assert features["histogram"][0] == features["histogram"][15] == 0.5


def test_an_images_source_is_read_from_its_header():
    png = encode_png(np.zeros((30, 50), np.uint8))
    assert image_source(png) == ImageSource(50, 30, "L")
    assert image_source(np.zeros((30, 50))) == ImageSource(50, 30, "array")
    assert image_source(b"not an image").mode == "unknown"


def test_two_halves_of_one_set_pass_and_a_brighter_or_rgb_set_fails():
    images = generate_xrays(400, 96, 0.5, seed=3).images.astype(np.float32)
    reference, current = frame(images[:300]), images[300:]
    same = {c.name: c for c in drift_checks(reference, frame(current), THRESHOLDS, seed=0)}
    assert not [c.name for c in same.values() if c.drifted], same
    bright = np.clip(current + 30, 0, 255)
    found = {c.name: c for c in drift_checks(reference, frame(bright), THRESHOLDS, seed=0)}
    assert {"embedding", "intensity_mean", "intensity_histogram"} <= {
        n for n, c in found.items() if c.drifted
    }
    rgb = {c.name: c for c in drift_checks(reference, frame(current, "RGB"), THRESHOLDS, 0)}
    assert rgb["image_mode"].drifted and not rgb["intensity_mean"].drifted
