"""Real radiographs from ../shared/data/xray through the ingest and featurize stages
(skipped, saying why, where absent)."""

import pandas as pd
from conftest import make_project, shared_data, working_directory

from nnpipe.config import load_params
from nnpipe.domains.xray.stages import featurize, ingest
from nnpipe.io import read_json


def test_pneumoniamnist_through_the_medmnist_source_keeps_official_splits(tmp_path):
    npz = shared_data("xray", "pneumoniamnist_dev.npz")
    project = make_project(tmp_path / "project")
    with working_directory(project):
        params = load_params(
            "params.yaml",
            [
                "xray.ingest.source=medmnist",
                f"xray.ingest.medmnist.path={npz}",
                "xray.featurize.image_size=28",
            ],
        )
        summary = ingest.run(params, "xray")
        featurize.run(params, "xray")
    manifest = read_json(project / "data/xray/raw/manifest.json")
    meta = read_json(project / "data/xray/features/meta.json")
    assert (
        summary["images"] + manifest["duplicates_removed"] + manifest["label_conflicts_dropped"] * 2
        >= 5200
    )
    assert meta["official_splits"] is True
    counts = meta["counts"]
    n = {split: sum(c.values()) for split, c in counts.items()}
    # the file's own split sizes, less exact duplicates kept in train only
    assert 4100 <= n["train"] <= 4221 and 440 <= n["val"] <= 469 and 500 <= n["test"] <= 524
    assert counts["train"]["pneumonia"] > 2 * counts["train"]["normal"]  # about 3:1
    splits = pd.read_csv(project / "data/xray/features/splits.csv")
    assert splits.groupby("id")["split"].nunique().max() == 1  # no image on two sides


def test_actualmed_folder_with_labels_csv_splits_by_patient(tmp_path):
    root = shared_data("xray", "actualmed")
    project = make_project(tmp_path / "project")
    with working_directory(project):
        params = load_params(
            "params.yaml",
            [
                "xray.ingest.source=folder",
                f"xray.ingest.folder.path={root}",
                f"xray.ingest.folder.labels_csv={root / 'labels.csv'}",
                "xray.featurize.image_size=64",
                "xray.featurize.val_fraction=0.2",
                "xray.featurize.test_fraction=0.25",
            ],
        )
        summary = ingest.run(params, "xray")
        featurize.run(params, "xray")
    assert summary["per_class"] == {"normal": 12, "pneumonia": 15}
    index = pd.read_csv(project / "data/xray/raw/index.csv")
    assert index["patient_id"].notna().all()
    assert index["height"].max() <= 320 and index["height"].nunique() > 1  # sizes vary
    splits = pd.read_csv(project / "data/xray/features/splits.csv")
    assert (splits.groupby("patient_id")["split"].nunique() == 1).all()
    assert splits.groupby("split")["label"].nunique().min() == 2  # both classes everywhere
