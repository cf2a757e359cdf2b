"""Indexing, de-duplication and splitting of a raw X-ray dataset.

Two rules users rely on are enforced here: a patient's images never straddle splits, and
neither do exact duplicates (the same pixels under two names, common in public sets).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from nnpipe.domains.xray.images import pixel_digest
from nnpipe.domains.xray.sources import SPLITS, RawDataset
from nnpipe.errors import NnpipeError

log = logging.getLogger(__name__)

SPLIT_ORDER = {name: i for i, name in enumerate(SPLITS)}


class SplitError(NnpipeError, ValueError):
    """The data cannot be split as configured; the message says why and what to change."""


@dataclass(frozen=True)
class DedupReport:
    duplicate_images: int  # copies removed (an image seen k times counts k - 1)
    label_conflicts: int  # images dropped because their copies disagree on the label
    moved_out_of_eval: int  # official val/test copies of a training image, kept in train only


def index_images(raw: RawDataset) -> pd.DataFrame:
    """One row per raw image: content id, label, patient, official split, source and size."""
    return pd.DataFrame(
        {
            "id": [pixel_digest(im) for im in raw.images],
            "label": np.asarray(raw.labels, dtype=np.int64),
            "patient_id": raw.patient_ids,
            "official_split": raw.splits,
            "source": raw.sources,
            "height": [im.shape[0] for im in raw.images],
            "width": [im.shape[1] for im in raw.images],
            "position": np.arange(len(raw.images)),
        }
    )


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def deduplicate(index: pd.DataFrame) -> tuple[pd.DataFrame, DedupReport]:
    """Keep one row per distinct image and give each row a split ``group``.

    Copies whose labels disagree are all dropped (no label can be trusted). A group joins
    every image of a patient and every patient who shares an identical image, so a split
    by group keeps both patients and duplicates on one side. Where copies sit in different
    official splits, the image stays in the earliest (train before val before test): an
    evaluation set must not contain what the model trained on.
    """
    labels_per_id = index.groupby("id")["label"].nunique()
    conflicted = set(labels_per_id[labels_per_id > 1].index)
    clean = index[~index["id"].isin(conflicted)]
    if conflicted:
        log.warning("dropped %d image(s) whose copies carry different labels", len(conflicted))

    uf = _UnionFind()
    for row in clean.itertuples():
        uf.find(f"img:{row.id}")
        if isinstance(row.patient_id, str) and row.patient_id:
            uf.union(f"img:{row.id}", f"pat:{row.patient_id}")

    order = clean["official_split"].map(lambda s: SPLIT_ORDER.get(s, -1) if s else -1)
    clean = clean.assign(_order=order).sort_values(["id", "_order", "position"], kind="stable")
    first = clean.drop_duplicates("id", keep="first")
    moved = 0
    if first["official_split"].notna().any():
        per_id = clean.groupby("id")["official_split"].nunique()
        moved = int((per_id > 1).sum())
    unique = first.drop(columns=["_order"]).sort_values("position", kind="stable")
    unique = unique.assign(group=[uf.find(f"img:{i}") for i in unique["id"]])
    report = DedupReport(
        duplicate_images=len(clean) - len(unique),
        label_conflicts=len(conflicted),
        moved_out_of_eval=moved,
    )
    if report.duplicate_images:
        log.info(
            "found %d exact duplicate image(s); kept one copy of each", report.duplicate_images
        )
    return unique.reset_index(drop=True), report


def _stratified_group_holdout(
    labels: np.ndarray, groups: np.ndarray, fraction: float, seed: int
) -> np.ndarray:
    """Boolean mask of a held-out part of about ``fraction``, stratified and group-disjoint."""
    n_splits = max(2, round(1.0 / fraction))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    try:
        _, held = next(splitter.split(np.zeros(len(labels)), labels, groups))
    except ValueError as exc:  # e.g. a class with fewer members than folds
        raise SplitError(
            f"cannot hold out {fraction:.0%} of {len(labels)} images stratified by class and "
            f"grouped by patient ({exc}). Add images, or raise the fraction so fewer folds are "
            "needed (xray.featurize.val_fraction / test_fraction)."
        ) from None
    mask = np.zeros(len(labels), dtype=bool)
    mask[held] = True
    return mask


def _require_groups_per_class(index: pd.DataFrame, needed: int, classes: list[str]) -> None:
    for label, name in enumerate(classes):
        n = index.loc[index["label"] == label, "group"].nunique()
        if n < needed:
            raise SplitError(
                f"class {name!r} has {n} patient/image group(s), but a stratified split into "
                f"{needed} parts needs at least {needed}. Add images of {name!r}, or use a "
                "source with official splits."
            )


def assign_splits(
    index: pd.DataFrame, classes: list[str], val_fraction: float, test_fraction: float, seed: int
) -> pd.Series:
    """Split names per row: the source's official splits where present, else stratified
    splits grouped by ``group`` (patient and duplicates).

    A source with train and test but no val gets its val carved from train the same way.
    """
    official = index["official_split"]
    split = pd.Series(official.to_numpy(dtype=object), index=index.index, dtype=object)
    missing_official = official.isna()
    if missing_official.all():
        _require_groups_per_class(index, 3, classes)
        is_test = _stratified_group_holdout(
            index["label"].to_numpy(), index["group"].to_numpy(), test_fraction, seed
        )
        split[:] = np.where(is_test, "test", "train")
    elif missing_official.any():
        raise SplitError(
            f"{int(missing_official.sum())} image(s) lie outside the train/val/test folders "
            "while others are inside; put every class folder under a split folder, or none"
        )
    if not (split == "val").any():
        # val_fraction is a share of the whole dataset; carve it from what train holds now
        share = val_fraction / (1.0 - test_fraction) if missing_official.all() else val_fraction
        sub = index[split == "train"]
        _require_groups_per_class(sub, 2, classes)
        is_val = _stratified_group_holdout(
            sub["label"].to_numpy(), sub["group"].to_numpy(), min(0.5, share), seed + 1
        )
        split[sub.index[is_val]] = "val"
    check_splits(index["label"], split, classes)
    return split


def check_splits(labels: pd.Series, split: pd.Series, classes: list[str]) -> None:
    """Every split must hold every class; else the metrics of that split mean nothing."""
    problems = []
    for name in SPLITS:
        in_split = labels[split == name]
        for label, cls in enumerate(classes):
            if not (in_split == label).any():
                problems.append(f"{name} has no {cls!r} image")
    if problems:
        raise SplitError(
            "impossible split: " + "; ".join(problems) + ". Add images to the small class, "
            "or change xray.featurize.val_fraction / test_fraction."
        )


def count_by(index: pd.DataFrame, classes: list[str], column: str) -> dict[str, dict[str, int]]:
    """Counts per value of ``column`` (e.g. split) and class name, for manifests."""
    out: dict[str, dict[str, int]] = {}
    for key, part in index.groupby(index[column].fillna("all"), sort=True):
        out[str(key)] = {cls: int((part["label"] == i).sum()) for i, cls in enumerate(classes)}
    return out
