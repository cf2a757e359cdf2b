"""train: fit the configured CNN on the training split, validate on val, log to MLflow.

Output in ``models/<domain>``: ``model.keras`` (the best epoch by validation AUC),
``run.json`` (the MLflow run and logged model) and ``history.json``; plus the training
curves as a DVC plot, ``reports/<domain>/history.csv``.
"""

from __future__ import annotations

import csv
import io
import logging
from typing import cast

from nnpipe import tracking
from nnpipe.architectures import resolve_model
from nnpipe.config import Params
from nnpipe.domains.xray.artifacts import XrayFeatures, XrayTrainRun
from nnpipe.domains.xray.domain import XRAY
from nnpipe.domains.xray.features import read_arrays
from nnpipe.domains.xray.training import fit_classifier
from nnpipe.dvc.folder_hash import directory_md5
from nnpipe.io import atomic_directory, atomic_write_json, atomic_write_text
from nnpipe.keras_env import describe_devices, make_deterministic
from nnpipe.layout import domain_layout
from nnpipe.stages import cli_main, require
from nnpipe.stages.tuning import effective_train, tuning_tags
from nnpipe.store import tracking_uri

log = logging.getLogger(__name__)

# the train fields only some architectures read: a run logs those of its own only
ARCHITECTURE_FIELDS = {
    "medical_cnn": ("filters", "dense_units", "batch_norm"),
    "small_cnn": ("filters", "dense_units"),
    "feedforward": ("feedforward", "batch_norm"),
    "vit": ("vit",),
    "mlp_mixer": ("mlp_mixer",),
}


def history_csv(history: list[dict[str, float | None]]) -> str:
    keys = sorted({k for row in history for k in row} - {"epoch"})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["epoch", *keys], lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def run(params: Params, domain: str) -> dict:
    cfg = XRAY.section(params)
    layout = domain_layout(params, domain)
    meta = XrayFeatures.read(require(layout.features / "meta.json", "featurize", domain), domain)
    files = {s: layout.features / f"{s}.tfrecord" for s in ("train", "val")}
    counts = meta.class_counts("train", cfg.classes)
    data_hash = directory_md5(layout.features)
    train, tuning = effective_train(params, domain)
    make_deterministic(params.seed)
    log.info(
        "train: %s on %s, %d epochs max%s",
        train.model,
        describe_devices(),
        train.epochs,
        f"; tuned values {tuning['values']}" if tuning["tuned"] else "",
    )

    size = meta.image_size
    arch = resolve_model(XRAY.task, train.model, (size, size, 1))
    name = tracking.run_name(
        arch,
        *(
            [f"f{'.'.join(map(str, train.filters))}", f"d{train.dense_units}"]
            if "cnn" in arch
            else []
        ),
        f"lr{train.learning_rate:.2g}",
        f"do{train.dropout:.2g}",
    )
    with (
        atomic_directory(layout.model) as tmp,
        tracking.start_run(params, domain, "train", run_name=name, data_hash=data_hash) as mlrun,
    ):
        tracking.set_tags(tuning_tags(tuning))
        train_params = tracking.architecture_params(train, arch, ARCHITECTURE_FIELDS)
        tracking.log_params(
            {
                "seed": params.seed,
                "train": train_params,
                "augment": cfg.augment.model_dump(),
                "featurize": cfg.featurize.model_dump(),
                "classes": cfg.classes,
                "ingest.source": cfg.ingest.source,
            }
        )
        arrays = {s: read_arrays([files[s]], meta.image_size) for s in files}
        model, history = fit_classifier(
            train,
            cfg.augment,
            train_files=[files["train"]],
            val_files=[files["val"]],
            image_size=meta.image_size,
            pixel_mean=meta.pixel_mean,
            pixel_std=meta.pixel_std,
            class_counts=counts,
            seed=params.seed,
            checkpoint=tmp / "checkpoint.keras",
            extra_callbacks=[tracking.EpochMetricsLogger()],
        )
        (tmp / "checkpoint.keras").unlink(missing_ok=True)
        model.save(tmp / "model.keras")
        best = max(history, key=lambda row: row.get("val_auc") or 0.0)  # the weights kept
        epoch = cast(int, best["epoch"])  # history_rows numbers epochs from 1
        logged = tracking.log_keras_model(
            model, arrays["train"][0][:2], epoch, {"train": train_params}
        )
        datasets = {
            split: tracking.log_dataset(
                x,
                y,
                name=f"{domain}-{split}",
                digest=data_hash,
                model_id=logged.model_id,
                source=str((layout.features / f"{split}.tfrecord").resolve()),
                context="training" if split == "train" else "validation",
            )
            for split, (x, y) in arrays.items()
        }
        tracking.log_best_epoch(history, best, logged.model_id, datasets["val"])
        atomic_write_json(tmp / "history.json", history)
        XrayTrainRun(
            run_id=mlrun.info.run_id,
            experiment_id=mlrun.info.experiment_id,
            model_uri=logged.uri,
            model_id=logged.model_id,
            tracking_uri=tracking_uri(params),
            data_hash=data_hash,
            best_epoch=epoch,
            best_val_auc=best.get("val_auc"),
            hyperparameters=tuning["values"],
        ).write(tmp / "run.json")
    atomic_write_text(layout.history_plot, history_csv(history))
    log.info(
        "train: best epoch %d, val AUC %.4f; MLflow run %s",
        best["epoch"],
        best.get("val_auc", float("nan")),
        mlrun.info.run_id,
    )
    return {
        "stage": "train",
        "run_id": mlrun.info.run_id,
        "epochs": len(history),
        "best_val_auc": best.get("val_auc"),
    }


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
