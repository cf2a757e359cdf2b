"""Where radiographs come from: a folder of class folders, or a MedMNIST ``.npz``.

Each loader returns a :class:`RawDataset`: decoded 2-D uint8 images with labels, optional
patient ids and official splits, plus an account of every file it could not use. The
synthetic source lives in :mod:`nnpipe.domains.xray.synthetic`.
"""

from __future__ import annotations

import csv
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnpipe.domains.xray.images import IMAGE_SUFFIXES, ImageDecodeError, limit_size, read_image
from nnpipe.download import fetch
from nnpipe.errors import NnpipeError
from nnpipe.io import file_digest

log = logging.getLogger(__name__)

SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
SPLITS = ("train", "val", "test")
IGNORED_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})


class DataSourceError(NnpipeError, ValueError):
    """The data source is unusable as given; the message says what was found and the fix."""


class ChecksumError(DataSourceError):
    """A downloaded or cached file does not have the expected checksum."""


@dataclass
class RawDataset:
    """Decoded images with labels; ``splits`` holds official splits where the source has them."""

    images: list[np.ndarray]
    labels: list[int]
    sources: list[str]
    patient_ids: list[str | None]
    splits: list[str | None]
    rejected: list[dict[str, str]] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


def check_bad_share(dataset: RawDataset, max_bad_fraction: float, origin: str) -> None:
    """Fail if more than the allowed share of candidate images could not be decoded."""
    bad, good = len(dataset.rejected), len(dataset)
    if bad:
        log.warning(
            "%s: %d unreadable image(s), e.g. %s",
            origin,
            bad,
            "; ".join(r["reason"] for r in dataset.rejected[:3]),
        )
    total = bad + good
    if total and bad / total > max_bad_fraction:
        raise DataSourceError(
            f"{origin}: {bad} of {total} images ({bad / total:.1%}) are unreadable, more than "
            f"max_bad_fraction={max_bad_fraction}. First: {dataset.rejected[0]['reason']}. "
            "Fix or remove those files, or raise xray.ingest.max_bad_fraction."
        )


# --------------------------------------------------------------------------- folder source


def _class_index(dir_name: str, class_dirs: dict[str, list[str]], classes: list[str]) -> int | None:
    wanted = dir_name.strip().lower()
    for index, name in enumerate(classes):
        if wanted == name.lower() or wanted in {a.lower() for a in class_dirs.get(name, [])}:
            return index
    return None


class LabelsTable:
    """A labels CSV (image, patient_id, optional label), looked up by image path.

    An image matches the row whose ``image`` is its path relative to the root folder; a
    bare file name is accepted only where it is unique in the table, so two ``1.png`` in
    different class folders can never take each other's patient id.
    """

    def __init__(self, rows: list[dict[str, str]]) -> None:
        self.by_path = {r["image"].replace("\\", "/").lstrip("./"): r for r in rows}
        names: dict[str, list[dict[str, str]]] = {}
        for r in rows:
            names.setdefault(Path(r["image"]).name, []).append(r)
        self.by_unique_name = {n: rs[0] for n, rs in names.items() if len(rs) == 1}
        self.used: set[str] = set()

    def lookup(self, rel: str) -> dict[str, str] | None:
        row = self.by_path.get(rel) or self.by_unique_name.get(Path(rel).name)
        if row is not None:
            self.used.add(row["image"])
        return row

    def unused(self) -> int:
        return len({r["image"] for r in self.by_path.values()} - self.used)


def _read_labels_csv(path: Path) -> LabelsTable:
    """Read a labels CSV with at least the columns ``image`` and ``patient_id``."""
    if not path.is_file():
        raise DataSourceError(
            f"labels CSV {path} does not exist; fix xray.ingest.folder.labels_csv"
        )
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = {f.strip().lower() for f in reader.fieldnames or []}
        if "image" not in fields or "patient_id" not in fields:
            raise DataSourceError(
                f"labels CSV {path} needs columns 'image' and 'patient_id' (found {sorted(fields)})"
            )
        rows = [
            {k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader
        ]
    return LabelsTable(rows)


def _class_folders(
    root: Path,
    class_dirs: dict[str, list[str]],
    classes: list[str],
) -> list[tuple[str | None, int, Path]]:
    """(official split or None, class index, folder) for each class folder under root."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    split_dirs = [p for p in subdirs if p.name.lower() in SPLIT_NAMES]
    found: list[tuple[str | None, int, Path]] = []
    unknown: list[str] = []
    if split_dirs and len(split_dirs) != len(subdirs):
        others = sorted(p.name for p in subdirs if p not in split_dirs)
        raise DataSourceError(
            f"folder {root} mixes split folders ({[p.name for p in split_dirs]}) with other "
            f"folders ({others}); put every class folder under a split folder, or use none"
        )
    parents = (
        [(SPLIT_NAMES[p.name.lower()], p) for p in split_dirs] if split_dirs else [(None, root)]
    )
    for split, parent in parents:
        for sub in sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")):
            index = _class_index(sub.name, class_dirs, classes)
            if index is None:
                unknown.append(str(sub.relative_to(root)))
            else:
                found.append((split, index, sub))
    if unknown:
        known = {c: [c, *class_dirs.get(c, [])] for c in classes}
        raise DataSourceError(
            f"folder {root}: sub-folder(s) {unknown} match no class. Known names per class: "
            f"{known}. Add the name to xray.ingest.folder.class_dirs or remove the folder."
        )
    if not found:
        raise DataSourceError(
            f"folder {root} has no class sub-folders; expected e.g. {root}/NORMAL and "
            f"{root}/PNEUMONIA, or {root}/train/NORMAL, ..."
        )
    return found


def load_folder(
    root: str | Path,
    classes: list[str],
    class_dirs: dict[str, list[str]],
    labels_csv: str | Path | None = None,
    max_side: int = 512,
) -> RawDataset:
    """Load a folder of class folders (``NORMAL/``, ``COVID/``), or of split folders of them.

    Files that are not PNG/JPEG by name are ignored and counted; files that are, but do not
    decode, are rejected with the reason. Patient ids come from the labels CSV, when given.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataSourceError(f"folder {root} does not exist; set xray.ingest.folder.path")
    table = _read_labels_csv(Path(labels_csv)) if labels_csv else None
    mismatched: list[str] = []
    data = RawDataset([], [], [], [], [])
    for split, label, folder in _class_folders(root, class_dirs, classes):
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.name.lower() in IGNORED_NAMES:
                continue
            rel = path.relative_to(root).as_posix()
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                data.ignored.append(rel)
                continue
            try:
                image = limit_size(read_image(path), max_side)
            except ImageDecodeError as exc:
                data.rejected.append({"source": rel, "reason": str(exc)})
                continue
            row = table.lookup(rel) if table else None
            if (
                row
                and row.get("label")
                and _class_index(row["label"], class_dirs, classes) not in (None, label)
            ):
                mismatched.append(rel)
            data.images.append(image)
            data.labels.append(label)
            data.sources.append(rel)
            data.patient_ids.append(row.get("patient_id") or None if row else None)
            data.splits.append(split)
    if data.ignored:
        log.warning(
            "folder %s: ignored %d file(s) that are not PNG/JPEG, e.g. %s",
            root,
            len(data.ignored),
            data.ignored[:3],
        )
    if not data.images:
        raise DataSourceError(
            f"folder {root} contains no readable PNG/JPEG images "
            f"({len(data.rejected)} unreadable, {len(data.ignored)} other files)"
        )
    if table is not None:
        missing = sum(p is None for p in data.patient_ids)
        if missing:
            log.warning(
                "labels CSV: %d image(s) have no patient id; each is its own patient", missing
            )
        if table.unused():
            log.warning("labels CSV: %d row(s) match no image in %s", table.unused(), root)
        if mismatched:
            raise DataSourceError(
                f"labels CSV disagrees with the folder on the class of {len(mismatched)} "
                f"image(s), e.g. {mismatched[:3]}; fix the CSV or move the files"
            )
    return data


# --------------------------------------------------------------------------- MedMNIST source


def download_file(url: str, dest: Path, md5: str, timeout: float = 60.0, attempts: int = 3) -> Path:
    """Download ``url`` to ``dest`` (a cache), verifying its MD5; reuse a verified cache.

    The file is written to a temporary sibling and renamed only once its checksum is
    right, so the cache never holds a partial or wrong file. Network errors are retried
    with backoff; a checksum mismatch is not (the same bytes would come back).
    """
    if dest.is_file():
        if file_digest(dest, "md5") == md5:  # MedMNIST publishes MD5s
            log.info("using cached %s (md5 verified)", dest)
            return dest
        log.warning("cached %s has the wrong md5; downloading it again", dest)
        dest.unlink()

    def verify_md5(tmp: Path) -> None:
        got = file_digest(tmp, "md5")
        if got != md5:
            raise ChecksumError(
                f"{url}: downloaded file has md5 {got}, expected {md5}. The file changed "
                "upstream or was corrupted in transit; check the URL and the md5 param "
                "(xray.ingest.medmnist.md5)."
            )

    return fetch(
        url,
        dest,
        error=DataSourceError,
        timeout=timeout,
        attempts=attempts,
        check=verify_md5,
        hint="download the file yourself and set xray.ingest.medmnist.path",
    )


def load_medmnist(path: str | Path, classes: list[str]) -> RawDataset:
    """Read a MedMNIST ``.npz`` (``{train,val,test}_{images,labels}``), keeping its splits."""
    path = Path(path)
    if not path.is_file():
        raise DataSourceError(f"MedMNIST file {path} does not exist; fix xray.ingest.medmnist.path")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataSourceError(f"{path} is not a readable .npz file ({exc})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise DataSourceError(
            f"{path} holds a single array, not the .npz archive of MedMNIST "
            "(train_images, train_labels, val_..., test_...)"
        )
    with npz:
        expected = {f"{s}_{k}" for s in SPLITS for k in ("images", "labels")}
        missing = sorted(expected - set(npz.files))
        if missing:
            raise DataSourceError(
                f"{path} lacks key(s) {missing} of the MedMNIST layout (found {sorted(npz.files)})"
            )
        data = RawDataset([], [], [], [], [])
        for split in SPLITS:
            try:
                images, labels = npz[f"{split}_images"], npz[f"{split}_labels"]
            except (OSError, ValueError, zipfile.BadZipFile) as exc:
                raise DataSourceError(
                    f"{path}: {split} arrays are unreadable ({exc}); the "
                    "file is corrupt, fetch it again"
                ) from None
            _check_medmnist_split(path, split, images, labels, len(classes))
            for i, (image, label) in enumerate(zip(images, labels.reshape(-1), strict=True)):
                if image.ndim == 3:  # RGB variants of MedMNIST: luminance, as PIL does
                    image = np.round(image @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
                data.images.append(np.ascontiguousarray(image, dtype=np.uint8))
                data.labels.append(int(label))
                data.sources.append(f"{path.name}:{split}:{i}")
                data.patient_ids.append(None)
                data.splits.append(split)
    return data


def _check_medmnist_split(
    path: Path, split: str, images: np.ndarray, labels: np.ndarray, n_classes: int
) -> None:
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise DataSourceError(
            f"{path}: {split}_images has shape {images.shape}; expected (N, H, W) or (N, H, W, 3)"
        )
    if images.dtype != np.uint8:
        raise DataSourceError(f"{path}: {split}_images has dtype {images.dtype}; expected uint8")
    labels = labels.reshape(len(labels), -1) if labels.ndim else labels
    if labels.ndim != 2 or labels.shape[1] != 1 or len(labels) != len(images):
        raise DataSourceError(
            f"{path}: {split}_labels has shape {labels.shape} for {len(images)} images; "
            "expected one label per image"
        )
    bad = set(np.unique(labels).tolist()) - set(range(n_classes))
    if bad:
        raise DataSourceError(
            f"{path}: {split}_labels has value(s) {sorted(bad)}; the X-ray task is binary "
            f"(0 = {n_classes and 'negative'}, 1 = positive)"
        )
