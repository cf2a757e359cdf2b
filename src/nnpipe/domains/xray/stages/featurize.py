"""featurize: split, resize and store the radiographs as TFRecord files for ``tf.data``.

Splits keep a source's official ones; otherwise they are stratified by class and grouped
by patient (and by duplicate image), so no patient is on two sides. Output in
``data/<domain>/features``: ``{train,val,test}.tfrecord``, ``splits.csv`` (which image went
where) and ``meta.json`` (image size, counts, the training split's pixel statistics).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from nnpipe.config import Params, ParamsError
from nnpipe.domains.xray.artifacts import XrayFeatures, XrayManifest
from nnpipe.domains.xray.dataset import assign_splits, count_by
from nnpipe.domains.xray.domain import XRAY
from nnpipe.domains.xray.features import pixel_stats, write_tfrecord
from nnpipe.domains.xray.images import read_image, resize_square
from nnpipe.domains.xray.params import XrayFeaturize
from nnpipe.domains.xray.sources import SPLITS
from nnpipe.io import atomic_directory
from nnpipe.layout import domain_layout
from nnpipe.stages import cli_main, require

log = logging.getLogger(__name__)


def read_index(path: Path) -> pd.DataFrame:
    """ingest's ``index.csv``, missing patients and official splits as None."""
    dtypes: dict[str, Any] = {
        "patient_id": "string",
        "official_split": "string",
        "id": str,
        "group": str,
    }
    index = pd.read_csv(path, dtype=dtypes)
    for column in ("patient_id", "official_split"):
        index[column] = index[column].astype(object).where(index[column].notna(), None)
    return index


def resized_images(raw: Path, ids: pd.Series, fz: XrayFeaturize) -> np.ndarray:
    return np.stack(
        [
            resize_square(read_image(raw / "images" / f"{image_id}.png"), fz.image_size, fz.resize)
            for image_id in tqdm(ids, desc="featurize: resize", unit="img", mininterval=2.0)
        ]
    )


def write_splits(tmp: Path, index: pd.DataFrame, images: np.ndarray) -> None:
    """Each split's TFRecord file, and ``splits.csv`` (which image went where)."""
    for name in SPLITS:
        mask = (index["split"] == name).to_numpy()
        write_tfrecord(
            tmp / f"{name}.tfrecord",
            images[mask],
            index.loc[mask, "label"].tolist(),
            index.loc[mask, "id"].tolist(),
        )
    index[["id", "label", "patient_id", "group", "split"]].to_csv(tmp / "splits.csv", index=False)


def run(params: Params, domain: str) -> dict:
    cfg = XRAY.section(params)
    fz = cfg.featurize
    layout = domain_layout(params, domain)
    index_path = require(layout.raw / "index.csv", "ingest", domain)
    manifest = XrayManifest.read(require(layout.raw / "manifest.json", "ingest", domain), domain)
    if manifest.classes != cfg.classes:
        raise ParamsError(
            f"raw data was ingested with classes {manifest.classes} but params "
            f"say {cfg.classes}; re-run ingest"
        )
    index = read_index(index_path)
    split = assign_splits(index, cfg.classes, fz.val_fraction, fz.test_fraction, params.seed)
    index = index.assign(split=split)

    images = resized_images(layout.raw, index["id"], fz)
    train_mask = (index["split"] == "train").to_numpy()
    if fz.normalization == "standardize":
        mean, std = pixel_stats(images[train_mask])
    else:
        mean, std = 0.0, 255.0

    counts = count_by(index, cfg.classes, "split")
    with atomic_directory(layout.features) as tmp:
        write_splits(tmp, index, images)
        XrayFeatures(
            domain=domain,
            classes=cfg.classes,
            image_size=fz.image_size,
            resize=fz.resize,
            normalization=fz.normalization,
            pixel_mean=mean,
            pixel_std=std,
            counts=counts,
            official_splits=bool(index["official_split"].notna().all()),
            raw_content_sha256=manifest.content_sha256,
        ).write(tmp / "meta.json")
    log.info("featurize: %s at %dpx -> %s", counts, fz.image_size, layout.features)
    return {"stage": "featurize", "counts": counts, "image_size": fz.image_size}


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
