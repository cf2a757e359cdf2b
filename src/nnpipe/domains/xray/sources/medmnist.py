"""The MedMNIST source: a ``.npz`` of ``{train,val,test}_{images,labels}``, downloaded to a
cache and verified by its MD5, read with its official splits."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np

from nnpipe.domains.xray.sources.raw import SPLITS, ChecksumError, DataSourceError, RawDataset
from nnpipe.download import fetch
from nnpipe.io import file_digest

log = logging.getLogger(__name__)


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
