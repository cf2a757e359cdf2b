"""The folder source: a folder of class folders (``NORMAL/``, ``PNEUMONIA/``), or of split
folders of them, with an optional labels CSV of patient ids."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from nnpipe.domains.xray.images import IMAGE_SUFFIXES, ImageDecodeError, limit_size, read_image
from nnpipe.domains.xray.sources.raw import IGNORED_NAMES, SPLIT_NAMES, DataSourceError, RawDataset

log = logging.getLogger(__name__)


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
            image = _read_candidate(data, path, rel, max_side)
            if image is None:
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
    _check_folder_result(data, root, table, mismatched)
    return data


def _read_candidate(data: RawDataset, path: Path, rel: str, max_side: int) -> np.ndarray | None:
    """The decoded image, or None with the file counted in ``data`` as ignored (not
    PNG/JPEG by name) or rejected (does not decode, with the reason)."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        data.ignored.append(rel)
        return None
    try:
        return limit_size(read_image(path), max_side)
    except ImageDecodeError as exc:
        data.rejected.append({"source": rel, "reason": str(exc)})
        return None


def _check_folder_result(
    data: RawDataset, root: Path, table: LabelsTable | None, mismatched: list[str]
) -> None:
    """Log what was skipped and refuse a folder without images or a labels CSV that
    disagrees with the class folders."""
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
    if table is None:
        return
    missing = sum(p is None for p in data.patient_ids)
    if missing:
        log.warning("labels CSV: %d image(s) have no patient id; each is its own patient", missing)
    if table.unused():
        log.warning("labels CSV: %d row(s) match no image in %s", table.unused(), root)
    if mismatched:
        raise DataSourceError(
            f"labels CSV disagrees with the folder on the class of {len(mismatched)} "
            f"image(s), e.g. {mismatched[:3]}; fix the CSV or move the files"
        )
