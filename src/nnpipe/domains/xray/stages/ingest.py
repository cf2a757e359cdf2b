"""ingest: read radiographs from the configured source into ``data/<domain>/raw``.

Output: ``images/<content-id>.png`` (8-bit grayscale, one file per distinct image),
``index.csv`` (id, label, class, patient, group, official split, source, size) and
``manifest.json`` (counts per class and split, duplicates, rejected and ignored files).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import cast

import pandas as pd
from tqdm import tqdm

from nnpipe.config import Params
from nnpipe.domains.xray.artifacts import XrayManifest
from nnpipe.domains.xray.dataset import DedupReport, count_by, deduplicate, index_images
from nnpipe.domains.xray.domain import XRAY
from nnpipe.domains.xray.images import encode_png
from nnpipe.domains.xray.params import XrayIngest
from nnpipe.domains.xray.sources import (
    DataSourceError,
    RawDataset,
    check_bad_share,
    download_file,
    load_folder,
    load_medmnist,
)
from nnpipe.domains.xray.synthetic import generate_xrays
from nnpipe.io import atomic_directory, sha256_bytes, source_fingerprint
from nnpipe.layout import domain_layout
from nnpipe.stages import cli_main

log = logging.getLogger(__name__)


def load_source(cfg: XrayIngest, classes: list[str], seed: int, cache_dir: Path) -> RawDataset:
    """Dispatch to the configured source."""
    if cfg.source == "synthetic":
        s = cfg.synthetic
        log.info(
            "generating %d synthetic radiographs (%dpx); NOT medical data", s.n_images, s.image_size
        )
        gen = generate_xrays(
            s.n_images,
            s.image_size,
            s.positive_fraction,
            seed,
            images_per_patient=s.images_per_patient,
        )
        n = len(gen.labels)
        return RawDataset(
            list(gen.images),
            [int(v) for v in gen.labels],
            [f"synthetic:{i}" for i in range(n)],
            list(gen.patient_ids),
            [None] * n,
        )
    if cfg.source == "folder":
        if cfg.folder.path is None:
            raise DataSourceError("source is 'folder' but xray.ingest.folder.path is not set")
        return load_folder(
            cfg.folder.path,
            classes,
            cfg.folder.class_dirs,
            cfg.folder.labels_csv,
            cfg.folder.max_side,
        )
    m = cfg.medmnist
    path = m.path
    if path is None:
        name = m.url.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "medmnist.npz"
        path = download_file(m.url, cache_dir / "medmnist" / name, m.md5)
    return load_medmnist(path, classes)


def source_paths(cfg: XrayIngest) -> list[Path | None]:
    """The local files the configured source reads (none for synthetic or a download)."""
    if cfg.source == "folder":
        return [cfg.folder.path, cfg.folder.labels_csv]
    if cfg.source == "medmnist":
        return [cfg.medmnist.path]
    return []


def source_changed(params: Params, domain: str) -> bool:
    """True if the source's files differ from those the current raw data was made from
    (or the raw data has no manifest this nnpipe reads: ingest re-runs and writes one)."""
    cfg = XRAY.section(params).ingest
    manifest = domain_layout(params, domain).raw / "manifest.json"
    if not manifest.is_file():
        return True
    recorded = XrayManifest.read_if_usable(manifest, domain)
    return recorded is None or recorded.source_fingerprint != source_fingerprint(source_paths(cfg))


def check_classes(index: pd.DataFrame, classes: list[str]) -> None:
    present = set(index["label"].tolist())
    missing = [c for i, c in enumerate(classes) if i not in present]
    if missing:
        raise DataSourceError(
            f"the data holds no image of class(es) {missing}; only "
            f"{[c for i, c in enumerate(classes) if i in present]} found. A classifier needs "
            "examples of every class: add them, or check xray.ingest.folder.class_dirs."
        )


def write_images(raw: RawDataset, unique: pd.DataFrame, images_dir: Path) -> list[str]:
    """Each kept image as ``<id>.png``; the sha256 of each PNG written."""
    images_dir.mkdir()
    hashes = []
    for row in tqdm(
        unique.itertuples(),
        total=len(unique),
        desc="ingest: write images",
        unit="img",
        mininterval=2.0,
    ):
        data = encode_png(raw.images[cast(int, row.position)])  # an integer column
        (images_dir / f"{row.id}.png").write_bytes(data)
        hashes.append(sha256_bytes(data))
    return hashes


def make_manifest(
    cfg: XrayIngest,
    classes: list[str],
    raw: RawDataset,
    unique: pd.DataFrame,
    dedup: DedupReport,
    hashes: list[str],
    fingerprint: str | None,
) -> XrayManifest:
    return XrayManifest(
        source=cfg.source,
        classes=classes,
        images=len(unique),
        per_class={c: int((unique["label"] == i).sum()) for i, c in enumerate(classes)},
        per_official_split=count_by(unique, classes, "official_split"),
        patients=int(unique["patient_id"].nunique()),
        duplicates_removed=dedup.duplicate_images,
        label_conflicts_dropped=dedup.label_conflicts,
        duplicates_kept_in_train_only=dedup.moved_out_of_eval,
        rejected=raw.rejected,
        ignored_files=len(raw.ignored),
        content_sha256=sha256_bytes("".join(sorted(hashes)).encode()),
        source_fingerprint=fingerprint,
    )


def run(params: Params, domain: str) -> dict:
    cfg = XRAY.section(params)
    layout = domain_layout(params, domain)
    fingerprint = source_fingerprint(source_paths(cfg.ingest))
    raw = load_source(cfg.ingest, cfg.classes, params.seed, params.paths.cache)
    check_bad_share(raw, cfg.ingest.max_bad_fraction, origin=cfg.ingest.source)
    index = index_images(raw)
    unique, dedup = deduplicate(index)
    check_classes(unique, cfg.classes)
    unique = unique.assign(**{"class": [cfg.classes[i] for i in unique["label"]]})

    with atomic_directory(layout.raw) as tmp:
        hashes = write_images(raw, unique, tmp / "images")
        unique.drop(columns=["position"]).to_csv(tmp / "index.csv", index=False)
        manifest = make_manifest(cfg.ingest, cfg.classes, raw, unique, dedup, hashes, fingerprint)
        manifest.write(tmp / "manifest.json")
    log.info("ingest: %d images (%s) -> %s", len(unique), manifest.per_class, layout.raw)
    return {
        "stage": "ingest",
        "images": len(unique),
        "per_class": manifest.per_class,
        "duplicates_removed": dedup.duplicate_images,
        "rejected": len(raw.rejected),
    }


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
