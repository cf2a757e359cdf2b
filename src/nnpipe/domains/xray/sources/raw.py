"""What every radiograph source returns (:class:`RawDataset`: decoded images with labels,
optional patient ids and official splits, plus an account of every file it could not
use), the errors a source raises, and the check on how many files were unreadable."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from nnpipe.errors import NnpipeError

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
