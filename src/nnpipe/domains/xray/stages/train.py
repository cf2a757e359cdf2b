"""train: fit the configured CNN on the training split, validate on val, log to MLflow.

Output in ``models/<domain>``: ``model.keras`` (the best epoch by validation AUC),
``run.json`` (the MLflow run and logged model) and ``history.json``; plus the training
curves as a DVC plot, ``reports/<domain>/history.csv``.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any, cast

from nnpipe import tracking
from nnpipe.architectures import resolve_model
from nnpipe.artifacts import Hyperparameters, TrainHistory
from nnpipe.config import Params
from nnpipe.domains.xray.artifacts import XrayFeatures, XrayTrainRun
from nnpipe.domains.xray.domain import XRAY
from nnpipe.domains.xray.features import read_arrays
from nnpipe.domains.xray.params import XrayTrain
from nnpipe.domains.xray.training import fit_classifier
from nnpipe.dvc.folder_hash import directory_md5
from nnpipe.io import atomic_directory, atomic_write_text
from nnpipe.keras_env import describe_devices, keras, make_deterministic
from nnpipe.layout import domain_layout
from nnpipe.stages import cli_main, require
from nnpipe.stages.tuning import effective_train, tuning_tags

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


def run_name(train: XrayTrain, arch: str) -> str:
    """The training run's name in MLflow: the architecture and its main settings."""
    return tracking.run_name(
        arch,
        *(
            [f"f{'.'.join(map(str, train.filters))}", f"d{train.dense_units}"]
            if "cnn" in arch
            else []
        ),
        f"lr{train.learning_rate:.2g}",
        f"do{train.dropout:.2g}",
    )


def log_train_params(params: Params, train: XrayTrain, arch: str) -> dict[str, Any]:
    """Log what the fit depends on; the train params of this architecture."""
    cfg = XRAY.section(params)
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
    return train_params


def fit(
    params: Params, train: XrayTrain, meta: XrayFeatures, features: Path, tmp: Path
) -> tuple[keras.Model, list[dict[str, Any]]]:
    """The fitted model (its best epoch, saved as ``tmp/model.keras``) and its history."""
    model, history = fit_classifier(
        train,
        XRAY.section(params).augment,
        train_files=[features / "train.tfrecord"],
        val_files=[features / "val.tfrecord"],
        image_size=meta.image_size,
        pixel_mean=meta.pixel_mean,
        pixel_std=meta.pixel_std,
        class_counts=meta.class_counts("train", XRAY.section(params).classes),
        seed=params.seed,
        checkpoint=tmp / "checkpoint.keras",
        extra_callbacks=[tracking.EpochMetricsLogger()],
    )
    (tmp / "checkpoint.keras").unlink(missing_ok=True)
    model.save(tmp / "model.keras")
    return model, history


def log_datasets(
    domain: str, features: Path, arrays: dict[str, tuple[Any, Any]], data_hash: str, model_id: str
) -> dict[str, Any]:
    """The training and validation splits as MLflow datasets of the logged model."""
    return {
        split: tracking.log_dataset(
            x,
            y,
            name=f"{domain}-{split}",
            digest=data_hash,
            model_id=model_id,
            source=str((features / f"{split}.tfrecord").resolve()),
            context="training" if split == "train" else "validation",
        )
        for split, (x, y) in arrays.items()
    }


def train_run(
    params: Params,
    mlrun: Any,
    logged: Any,
    data_hash: str,
    best: dict[str, Any],
    tuning: Hyperparameters,
) -> XrayTrainRun:
    """``run.json``: the MLflow run and logged model, the best epoch and tuned values."""
    return XrayTrainRun(
        **tracking.model_location(params, mlrun, logged),
        data_hash=data_hash,
        best_epoch=best["epoch"],
        best_val_auc=best.get("val_auc"),
        hyperparameters=tuning.values,
    )


def run(params: Params, domain: str) -> dict:
    layout = domain_layout(params, domain)
    meta = XrayFeatures.read(require(layout.features / "meta.json", "featurize", domain), domain)
    data_hash = directory_md5(layout.features)
    train, tuning = effective_train(params, domain)
    make_deterministic(params.seed)
    log.info(
        "train: %s on %s, %d epochs max%s",
        train.model,
        describe_devices(),
        train.epochs,
        f"; tuned values {tuning.values}" if tuning.tuned else "",
    )
    size = meta.image_size
    arch = resolve_model(XRAY.task, train.model, (size, size, 1))
    name = run_name(train, arch)
    with (
        atomic_directory(layout.model) as tmp,
        tracking.start_run(params, domain, "train", run_name=name, data_hash=data_hash) as mlrun,
    ):
        tracking.set_tags(tuning_tags(tuning))
        train_params = log_train_params(params, train, arch)
        arrays = {
            s: read_arrays([layout.features / f"{s}.tfrecord"], size) for s in ("train", "val")
        }
        model, history = fit(params, train, meta, layout.features, tmp)
        best = max(history, key=lambda row: row.get("val_auc") or 0.0)  # the weights kept
        epoch = cast(int, best["epoch"])  # history_rows numbers epochs from 1
        logged = tracking.log_keras_model(
            model, arrays["train"][0][:2], epoch, {"train": train_params}
        )
        datasets = log_datasets(domain, layout.features, arrays, data_hash, logged.model_id)
        tracking.log_best_epoch(history, best, logged.model_id, datasets["val"])
        TrainHistory(epochs=history).write(tmp / "history.json")
        train_run(params, mlrun, logged, data_hash, best, tuning).write(tmp / "run.json")
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
