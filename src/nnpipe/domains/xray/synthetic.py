"""Synthetic chest-radiograph-like images for a binary "normal" vs "pneumonia-like" task.

This is NOT medical data and must never be used to draw clinical conclusions. It exists so
the x-ray pipeline (splitting, training, evaluation, export, serving) runs offline, quickly
and reproducibly, without downloading or licensing a real data set.

Each image is drawn from a small anatomical cartoon: a dark background, a rounded thorax
silhouette, two darker lung fields, a brighter mediastinum and spine, curved ribs and the
clavicles, a smooth exposure gradient, Gaussian detector noise and a slight blur. Anatomy
is drawn once per synthetic patient; a patient's images differ only by a small shift,
exposure and noise, so a patient-grouped split is meaningful (a random image split leaks).

Class 1 adds what radiologists look for in pneumonia: focal consolidations (1-3 blurred,
patchy bright blobs) or diffuse patchy opacification of one or both lungs, always confined
to the lung fields, with a severity drawn per patient so that some cases are subtle.

All coordinates below are normalised: x and y run from -1 to 1 across the image (x to the
image's right, y downwards), so anatomy looks the same at every ``image_size``. As on a
real PA film, the patient's left (heart side) is on the image's right.

This module draws each patient's and image's parameters; drawing them into pixels is
:mod:`nnpipe.domains.xray.synthetic_rendering`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from nnpipe.domains.xray.synthetic_rendering import MAX_BLOBS, Params, render_all

__all__ = ["SyntheticXrays", "generate_xrays"]

log = logging.getLogger(__name__)

_MIN_SIZE, _MAX_SIZE = 16, 1024
_COARSE_GRID = 9  # control points per side of the low-frequency texture fields
_FINE_GRID = 17


@dataclass(frozen=True)
class SyntheticXrays:
    """A generated data set: images, their labels and the patient each image belongs to."""

    images: np.ndarray  # uint8, shape (n, size, size)
    labels: np.ndarray  # int64, shape (n,), 0 = normal, 1 = pneumonia-like
    patient_ids: list[str]  # one per image, e.g. "synthetic-p00042"


def generate_xrays(
    n_images: int,
    image_size: int,
    positive_fraction: float,
    seed: int,
    images_per_patient: int = 2,
) -> SyntheticXrays:
    """Generate ``n_images`` square chest-radiograph-like images, deterministically from ``seed``.

    Exactly ``round(n_images * positive_fraction)`` images are positive. Images come in
    consecutive groups of up to ``images_per_patient`` that share a patient id, anatomy and
    label; the order of patients is shuffled with the seed.
    """
    _validate_arguments(n_images, image_size, positive_fraction, images_per_patient)
    n_positive = round(n_images * positive_fraction)
    if n_positive in (0, n_images):
        log.warning(
            "positive_fraction=%s with n_images=%d gives a single class (%d positives)",
            positive_fraction,
            n_images,
            n_positive,
        )
    # Independent streams: changing how one aspect is drawn does not reshuffle the others.
    streams = np.random.default_rng(seed).spawn(5)
    layout_rng, anatomy_rng, lesion_rng, jitter_rng, noise_rng = streams
    patient_of_image, patient_labels = _assign_patients(
        n_images, n_positive, images_per_patient, layout_rng
    )
    anatomy = _draw_anatomy(len(patient_labels), anatomy_rng)
    lesions = _draw_lesions(patient_labels, anatomy, lesion_rng)
    jitter = _draw_jitter(n_images, jitter_rng)
    images = render_all(image_size, patient_of_image, anatomy | lesions, jitter, noise_rng)

    width = max(5, len(str(len(patient_labels) - 1)))
    patient_ids = [f"synthetic-p{p:0{width}d}" for p in patient_of_image.tolist()]
    labels = patient_labels[patient_of_image].astype(np.int64)
    log.debug(
        "generated %d synthetic x-rays (%d px, %d positive, %d patients, seed %d)",
        n_images,
        image_size,
        int(labels.sum()),
        len(patient_labels),
        seed,
    )
    return SyntheticXrays(images=images, labels=labels, patient_ids=patient_ids)


def _validate_arguments(
    n_images: int, image_size: int, positive_fraction: float, images_per_patient: int
) -> None:
    """Reject bad arguments up front, naming the argument, its value and what is allowed."""
    if not _is_integer(n_images) or n_images < 2:
        raise ValueError(f"n_images must be an integer >= 2, got {n_images!r}")
    if not _is_integer(image_size) or not _MIN_SIZE <= image_size <= _MAX_SIZE:
        raise ValueError(
            f"image_size must be an integer between {_MIN_SIZE} and {_MAX_SIZE}, got {image_size!r}"
        )
    is_number = isinstance(positive_fraction, (int, float, np.number))
    if isinstance(positive_fraction, bool) or not is_number or not 0.0 < positive_fraction < 1.0:
        raise ValueError(
            f"positive_fraction must be a number strictly between 0 and 1, "
            f"got {positive_fraction!r}"
        )
    if not _is_integer(images_per_patient) or images_per_patient < 1:
        raise ValueError(f"images_per_patient must be an integer >= 1, got {images_per_patient!r}")


def _is_integer(value: object) -> bool:
    """True for Python and numpy integers; False for bools, which are never a count."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _assign_patients(
    n_images: int, n_positive: int, images_per_patient: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Group images into patients of one label each and shuffle the patients' order.

    Each class is cut into full groups plus at most one smaller remainder group, which
    keeps the positive count exact while every patient has a single label.
    """
    group_sizes: list[int] = []
    group_labels: list[int] = []
    for label, count in ((1, n_positive), (0, n_images - n_positive)):
        full, rest = divmod(count, images_per_patient)
        group_sizes += [images_per_patient] * full + ([rest] if rest else [])
        group_labels += [label] * (full + (1 if rest else 0))
    order = rng.permutation(len(group_sizes))
    sizes = np.asarray(group_sizes, dtype=np.int64)[order]
    patient_labels = np.asarray(group_labels, dtype=np.int64)[order]
    patient_of_image = np.repeat(np.arange(len(sizes)), sizes)
    return patient_of_image, patient_labels


def _draw_anatomy(n_patients: int, rng: np.random.Generator) -> Params:
    """Draw each patient's body habitus, lung geometry, ribs and exposure."""
    u = rng.uniform
    n = n_patients
    return {
        "body_cx": rng.normal(0.0, 0.02, n),
        "body_half_width": u(0.8, 0.95, n),
        "body_taper": u(0.0, 0.12, n),  # narrower at the shoulders than the waist
        # Each lung is the top of a tall ellipse cut off below by the diaphragm dome.
        "lung_cx": u(0.38, 0.45, n),
        "lung_cy": u(0.2, 0.32, n),
        "lung_half_width": u(0.25, 0.31, n),
        "lung_half_height": u(0.85, 1.0, n),
        "diaphragm_y": u(0.36, 0.5, n),
        "diaphragm_dome": u(0.06, 0.14, n),
        "lung_darkness": u(0.3, 0.4, n),
        "heart_cx": u(0.1, 0.18, n),
        "heart_width": u(0.3, 0.38, n),
        "mediastinum_width": u(0.1, 0.14, n),
        "spine_brightness": u(0.04, 0.1, n),
        "rib_spacing": u(0.11, 0.14, n),
        "rib_peak": u(0.2, 0.35, n),
        "rib_curvature": u(1.2, 1.9, n),
        "rib_phase": u(0.0, 2 * np.pi, n),
        "rib_brightness": u(0.035, 0.07, n),
        "gradient_x": u(-0.08, 0.08, n),
        "gradient_y": u(0.0, 0.12, n),
        "exposure": u(-0.07, 0.07, n),
        "contrast": u(0.8, 1.15, n),
        "noise_std": u(0.02, 0.04, n),
        "lung_texture": rng.standard_normal((n, _FINE_GRID, _FINE_GRID), dtype=np.float32),
    }


def _draw_lesions(labels: np.ndarray, anatomy: Params, rng: np.random.Generator) -> Params:
    """Draw opacities for positive patients: focal blobs, diffuse patches, or both.

    Amplitudes are zero for negative patients, so rendering needs no branching per class.
    Severity, the fraction of air replaced by fluid at a lesion's core, is spread widely so
    that some positives are subtle and some are obvious.
    """
    n = len(labels)
    sick = labels == 1
    kind = rng.uniform(size=n)
    focal = sick & (kind < 0.6)
    diffuse = sick & (kind >= 0.45)  # 15 % of positives show both
    severity = 0.5 + 0.45 * rng.uniform(0.0, 1.0, n)
    lung_choice = rng.integers(0, 3, n)  # 0: right lung, 1: left lung, 2: both
    return _draw_blobs(focal, severity, anatomy, rng) | {
        "diffuse_amplitude": np.where(diffuse, severity * rng.uniform(0.7, 1.0, n), 0.0),
        "diffuse_right": (lung_choice != 1).astype(float),
        "diffuse_left": (lung_choice != 0).astype(float),
        "diffuse_threshold": rng.uniform(-0.6, 0.5, n),
        "diffuse_lower_bias": rng.uniform(0.0, 1.0, n),
        "opacity_texture": rng.standard_normal((n, _COARSE_GRID, _COARSE_GRID), dtype=np.float32),
        "opacity_detail": rng.standard_normal((n, _FINE_GRID, _FINE_GRID), dtype=np.float32),
    }


def _draw_blobs(
    focal: np.ndarray, severity: np.ndarray, anatomy: Params, rng: np.random.Generator
) -> Params:
    """Draw 1-3 consolidations per focal patient, placed inside the visible lung fields.

    A lone consolidation is drawn larger (lobar pneumonia); several are smaller (patchy
    bronchopneumonia). Placement favours the lateral lung, away from hila and heart.
    """
    n = len(focal)
    shape = (n, MAX_BLOBS)
    n_blobs = rng.integers(1, MAX_BLOBS + 1, n)
    blob_on = focal[:, None] & (np.arange(MAX_BLOBS)[None, :] < n_blobs[:, None])
    side = rng.choice([-1.0, 1.0], shape)
    # A height between the apex and the diaphragm, then a point across the lung's width there.
    cy, half_height = anatomy["lung_cy"][:, None], anatomy["lung_half_height"][:, None]
    lowest = (anatomy["diaphragm_y"][:, None] - 0.1 - cy) / half_height
    t = -0.75 + rng.uniform(0.0, 1.0, shape) * (lowest + 0.75)
    lateral = rng.uniform(-0.5, 0.7, shape) * np.sqrt(1.0 - t**2)
    lung_cx, lung_hw = anatomy["lung_cx"][:, None], anatomy["lung_half_width"][:, None]
    scale = np.where(n_blobs == 1, 1.4, 1.0)[:, None]
    return {
        "blob_amplitude": np.where(blob_on, severity[:, None] * rng.uniform(0.9, 1.3, shape), 0),
        "blob_cx": side * (lung_cx + lateral * lung_hw),
        "blob_cy": cy + t * half_height,
        "blob_sx": rng.uniform(0.08, 0.2, shape) * scale,
        "blob_sy": rng.uniform(0.08, 0.2, shape) * scale,
    }


def _draw_jitter(n_images: int, rng: np.random.Generator) -> Params:
    """Draw the small per-image differences between a patient's images."""
    return {
        "shift_x": rng.normal(0.0, 0.025, n_images),
        "shift_y": rng.normal(0.0, 0.025, n_images),
        "exposure_jitter": rng.normal(0.0, 0.015, n_images),
        "contrast_jitter": rng.normal(1.0, 0.03, n_images),
    }
