"""Where radiographs come from: a folder of class folders (:mod:`.folder`), or a MedMNIST
``.npz`` (:mod:`.medmnist`).

Each loader returns a :class:`RawDataset` (:mod:`.raw`): decoded 2-D uint8 images with
labels, optional patient ids and official splits, plus an account of every file it could
not use. The synthetic source lives in :mod:`nnpipe.domains.xray.synthetic`.
"""

from nnpipe.domains.xray.sources.folder import LabelsTable, load_folder
from nnpipe.domains.xray.sources.medmnist import download_file, load_medmnist
from nnpipe.domains.xray.sources.raw import (
    IGNORED_NAMES,
    SPLIT_NAMES,
    SPLITS,
    ChecksumError,
    DataSourceError,
    RawDataset,
    check_bad_share,
)

__all__ = [
    "IGNORED_NAMES",
    "SPLITS",
    "SPLIT_NAMES",
    "ChecksumError",
    "DataSourceError",
    "LabelsTable",
    "RawDataset",
    "check_bad_share",
    "download_file",
    "load_folder",
    "load_medmnist",
]
