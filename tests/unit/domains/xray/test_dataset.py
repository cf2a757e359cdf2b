import numpy as np
import pandas as pd
import pytest

from nnpipe.domains.xray.dataset import (
    SplitError,
    assign_splits,
    count_by,
    deduplicate,
    index_images,
)
from nnpipe.domains.xray.sources import RawDataset

CLASSES = ["normal", "pneumonia"]


def image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (8, 8), dtype=np.uint8)


def raw(seeds, labels, patients=None, splits=None) -> RawDataset:
    n = len(seeds)
    return RawDataset(
        [image(s) for s in seeds],
        list(labels),
        [f"f{i}" for i in range(n)],
        list(patients or [None] * n),
        list(splits or [None] * n),
    )


def test_exact_duplicates_are_kept_once_and_conflicting_labels_dropped():
    data = raw([1, 1, 2, 3, 3], [0, 0, 1, 0, 1])
    unique, report = deduplicate(index_images(data))
    assert len(unique) == 2  # image 1 once, image 2; image 3 dropped (labels disagree)
    assert report.duplicate_images == 1 and report.label_conflicts == 1


def test_duplicate_across_official_splits_stays_in_train_only():
    data = raw([1, 1, 2], [0, 0, 1], splits=["test", "train", "val"])
    unique, report = deduplicate(index_images(data))
    assert unique.set_index("source").loc["f1", "official_split"] == "train"
    assert "test" not in set(unique["official_split"])
    assert report.moved_out_of_eval == 1


def test_groups_join_patients_who_share_an_image():
    data = raw([1, 2, 1, 3], [0, 0, 0, 1], patients=["A", "A", "B", "C"])
    unique, _ = deduplicate(index_images(data))
    groups = dict(zip(unique["source"], unique["group"], strict=True))
    assert groups["f0"] == groups["f1"]  # same patient
    # f2 (patient B) was a duplicate of f0 and removed; C stays apart
    assert groups["f3"] != groups["f0"]


def _many(n_patients=60, per_patient=3, seed=0):
    rng = np.random.default_rng(seed)
    seeds, labels, patients = [], [], []
    for p in range(n_patients):
        label = int(rng.random() < 0.4)
        for k in range(per_patient):
            seeds.append(1000 * p + k)
            labels.append(label)
            patients.append(f"P{p}")
    return raw(seeds, labels, patients)


def test_split_is_patient_disjoint_stratified_and_deterministic():
    unique, _ = deduplicate(index_images(_many()))
    split = assign_splits(unique, CLASSES, 0.15, 0.15, seed=7)
    table = unique.assign(split=split)
    per_patient = table.groupby("patient_id")["split"].nunique()
    assert (per_patient == 1).all()
    counts = count_by(table, CLASSES, "split")
    assert set(counts) == {"train", "val", "test"}
    assert all(v > 0 for c in counts.values() for v in c.values())
    share = (split == "test").mean()
    assert 0.08 < share < 0.25
    assert split.equals(assign_splits(unique, CLASSES, 0.15, 0.15, seed=7))


def test_official_splits_are_kept_and_val_is_carved_when_missing():
    n = 40
    splits = ["train"] * 30 + ["test"] * 10
    data = raw(list(range(n)), [i % 2 for i in range(n)], splits=splits)
    unique, _ = deduplicate(index_images(data))
    split = assign_splits(unique, CLASSES, 0.2, 0.15, seed=0)
    assert (split[unique["official_split"] == "test"] == "test").all()
    assert (split == "val").sum() > 0
    assert set(split[unique["official_split"] == "train"]) == {"train", "val"}


def test_impossible_splits_say_what_to_change():
    data = raw(list(range(12)), [0] * 10 + [1] * 2)
    unique, _ = deduplicate(index_images(data))
    with pytest.raises(SplitError, match="'pneumonia' has 2 patient/image group"):
        assign_splits(unique, CLASSES, 0.15, 0.15, seed=0)
    mixed = raw([1, 2, 3, 4], [0, 1, 0, 1], splits=["train", None, "test", "train"])
    unique, _ = deduplicate(index_images(mixed))
    with pytest.raises(SplitError, match="outside the train/val/test folders"):
        assign_splits(unique, CLASSES, 0.15, 0.15, seed=0)


def test_official_split_missing_a_class_is_an_impossible_split():
    data = raw(
        list(range(8)),
        [0, 1, 0, 1, 0, 0, 0, 1],
        splits=["train", "train", "train", "train", "val", "val", "test", "test"],
    )
    unique, _ = deduplicate(index_images(data))
    with pytest.raises(SplitError, match="val has no 'pneumonia' image"):
        assign_splits(unique, CLASSES, 0.15, 0.15, seed=0)


def test_count_by_fills_missing_values():
    table = pd.DataFrame({"label": [0, 1, 1], "split": [None, None, "x"]})
    assert count_by(table, CLASSES, "split") == {
        "all": {"normal": 1, "pneumonia": 1},
        "x": {"normal": 0, "pneumonia": 1},
    }
