"""Behaviour of the synthetic chest-radiograph generator that the pipeline relies on."""

from __future__ import annotations

import numpy as np
import pytest

from nnpipe.domains.xray.synthetic import SyntheticXrays, generate_xrays

SIZE = 64


@pytest.fixture(scope="module")
def data() -> SyntheticXrays:
    """Enough images for stable class statistics, small enough to make in well under a second."""
    return generate_xrays(400, SIZE, 0.5, seed=7)


def lung_mask(size: int) -> np.ndarray:
    """Central-lateral boxes where both lung fields are, whatever the patient's anatomy."""
    mask = np.zeros((size, size), dtype=bool)
    rows = slice(int(0.3 * size), int(0.65 * size))
    mask[rows, int(0.15 * size) : int(0.4 * size)] = True
    mask[rows, int(0.6 * size) : int(0.85 * size)] = True
    return mask


def abdomen_mask(size: int) -> np.ndarray:
    """A band below the diaphragm: soft tissue only, no lung."""
    mask = np.zeros((size, size), dtype=bool)
    mask[int(0.8 * size) : int(0.95 * size), int(0.25 * size) : int(0.75 * size)] = True
    return mask


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve as the probability a positive outscores a negative."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def test_shapes_and_dtypes(data):
    assert data.images.shape == (400, SIZE, SIZE) and data.images.dtype == np.uint8
    assert data.labels.shape == (400,) and data.labels.dtype == np.int64
    assert set(np.unique(data.labels)) == {0, 1}
    assert len(data.patient_ids) == 400
    assert all(isinstance(p, str) and p.startswith("synthetic-p") for p in data.patient_ids)


@pytest.mark.parametrize("size", [16, 37, 128])
def test_any_allowed_size_gives_square_images_of_that_size(size):
    out = generate_xrays(4, size, 0.5, seed=0)
    assert out.images.shape == (4, size, size)


def test_same_arguments_give_byte_identical_output():
    a = generate_xrays(30, 48, 0.4, seed=3, images_per_patient=3)
    b = generate_xrays(30, 48, 0.4, seed=3, images_per_patient=3)
    assert a.images.tobytes() == b.images.tobytes()
    assert a.labels.tolist() == b.labels.tolist()
    assert a.patient_ids == b.patient_ids


def test_different_seeds_give_different_images():
    a = generate_xrays(30, 48, 0.4, seed=3)
    b = generate_xrays(30, 48, 0.4, seed=4)
    assert not np.array_equal(a.images, b.images)
    # Not just a little noise: the images themselves differ substantially.
    assert np.abs(a.images.astype(int) - b.images.astype(int)).mean() > 5


@pytest.mark.parametrize(
    ("n_images", "fraction", "per_patient"),
    [(400, 0.5, 2), (101, 0.3, 2), (7, 0.5, 3), (50, 0.13, 1), (2, 0.5, 5), (99, 0.71, 4)],
)
def test_positive_count_is_exactly_the_rounded_fraction(n_images, fraction, per_patient):
    out = generate_xrays(n_images, 16, fraction, seed=1, images_per_patient=per_patient)
    assert int(out.labels.sum()) == round(n_images * fraction)
    assert len(out.labels) == n_images


def test_class_order_is_shuffled_not_sorted(data):
    first_half_positives = data.labels[:200].mean()
    assert 0.3 < first_half_positives < 0.7


@pytest.mark.parametrize("per_patient", [1, 2, 3])
def test_patients_are_consecutive_groups_with_one_label(per_patient):
    out = generate_xrays(61, 16, 0.4, seed=5, images_per_patient=per_patient)
    ids = np.asarray(out.patient_ids)
    for pid in np.unique(ids):
        where = np.flatnonzero(ids == pid)
        assert len(where) <= per_patient
        assert np.array_equal(where, np.arange(where[0], where[0] + len(where))), "not contiguous"
        assert len(set(out.labels[where].tolist())) == 1, f"{pid} has mixed labels"
    # Only the one leftover group per class may be short of a full group.
    assert len(np.unique(ids)) <= -(-61 // per_patient) + 2


def test_images_of_one_patient_resemble_each_other_more_than_other_patients(data):
    """Shared anatomy is what makes a patient-grouped split necessary."""
    images = data.images.astype(np.float32)
    ids = data.patient_ids
    same = [np.abs(images[i] - images[i + 1]).mean() for i in range(399) if ids[i] == ids[i + 1]]
    other = [np.abs(images[i] - images[i + 1]).mean() for i in range(399) if ids[i] != ids[i + 1]]
    assert same and other
    assert np.mean(same) < 0.7 * np.mean(other)


@pytest.mark.parametrize(
    ("override", "name"),
    [
        ({"n_images": 1}, "n_images"),
        ({"n_images": 2.5}, "n_images"),
        ({"image_size": 15}, "image_size"),
        ({"image_size": 1025}, "image_size"),
        ({"positive_fraction": 0.0}, "positive_fraction"),
        ({"positive_fraction": 1.0}, "positive_fraction"),
        ({"positive_fraction": float("nan")}, "positive_fraction"),
        ({"images_per_patient": 0}, "images_per_patient"),
    ],
)
def test_invalid_arguments_raise_naming_the_argument(override, name):
    args = {"n_images": 10, "image_size": 32, "positive_fraction": 0.5, "seed": 0} | override
    with pytest.raises(ValueError, match=name) as raised:
        generate_xrays(**args)
    assert repr(override[name]) in str(raised.value)  # the bad value is shown too


def test_pixel_values_span_a_realistic_range_without_saturating(data):
    assert data.images.min() < 30  # dark background
    assert data.images.max() > 170  # dense tissue
    assert (data.images == 255).mean() < 0.01
    assert (data.images == 0).mean() < 0.2


def test_positives_have_brighter_lungs_on_average(data):
    lungs = data.images[:, lung_mask(SIZE)].mean(axis=1)
    assert lungs[data.labels == 1].mean() > lungs[data.labels == 0].mean() + 3


def test_a_simple_lung_feature_separates_classes_but_global_brightness_does_not(data):
    """Opacities live in the lungs: normalising lung brightness by the abdomen's removes
    exposure differences and separates the classes; whole-image brightness barely does."""
    images = data.images.astype(np.float32)
    lungs = images[:, lung_mask(SIZE)].mean(axis=1)
    abdomen = images[:, abdomen_mask(SIZE)].mean(axis=1)
    lung_auc = auc(lungs / abdomen, data.labels)
    global_auc = auc(images.mean(axis=(1, 2)), data.labels)
    assert lung_auc > 0.75
    assert global_auc < lung_auc - 0.1


def test_opacities_stay_out_of_the_abdomen(data):
    """Below the diaphragm there is no lung, so the class should be all but invisible there."""
    abdomen = data.images[:, abdomen_mask(SIZE)].astype(np.float32).mean(axis=1)
    assert abs(auc(abdomen, data.labels) - 0.5) < 0.15
