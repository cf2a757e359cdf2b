"""train: fit the configured recurrent forecaster on each series, log it to MLflow.

Output in ``models/ohlcv/<series>/``: ``model.keras`` (raw windows in, target units out:
the train-only scaling is inside), ``run.json`` (the MLflow run and logged model) and
``history.json``; and the training curves of every series as one DVC plot,
``reports/ohlcv/history.csv``.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any, cast

from nnpipe import tracking
from nnpipe.artifacts import Hyperparameters, TrainHistory
from nnpipe.config import Params
from nnpipe.domains.ohlcv.artifacts import OhlcvFeatures, OhlcvTrainRun
from nnpipe.domains.ohlcv.domain import OHLCV
from nnpipe.domains.ohlcv.forecasting import Prepared, read_prepared
from nnpipe.domains.ohlcv.models import Fitted, architecture, fit_on_prepared
from nnpipe.domains.ohlcv.params import OhlcvTrain
from nnpipe.dvc.folder_hash import directory_md5
from nnpipe.io import atomic_directory, atomic_write_text
from nnpipe.keras_env import describe_devices, make_deterministic
from nnpipe.layout import domain_layout
from nnpipe.stages import cli_main, require
from nnpipe.stages.tuning import effective_train, tuning_tags

log = logging.getLogger(__name__)

# the train fields only some architectures read: a run logs those of its own only
ARCHITECTURE_FIELDS = {
    "lstm": ("units",),
    "gru": ("units",),
    "simple_rnn": ("units",),
    "transformer": ("transformer",),
}


def history_csv(histories: dict[str, list[dict]]) -> str:
    """Every series' per-epoch history in one table, a ``series`` column first."""
    keys = sorted({k for rows in histories.values() for row in rows for k in row} - {"epoch"})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["series", "epoch", *keys], lineterminator="\n")
    writer.writeheader()
    for name, rows in histories.items():
        writer.writerows({"series": name, **row} for row in rows)
    return buf.getvalue()


def run_name(train: OhlcvTrain, prep: Prepared, arch: str) -> str:
    """The series' training run's name in MLflow: the series, architecture and settings."""
    return tracking.run_name(
        prep.name,
        arch,
        *([f"u{'.'.join(map(str, train.units))}"] if arch != "transformer" else []),
        f"lr{train.learning_rate:.2g}",
        f"do{train.dropout:.2g}",
    )


def log_train_params(
    params: Params, train: OhlcvTrain, prep: Prepared, arch: str
) -> dict[str, Any]:
    """Log what the fit depends on; the train params of this architecture."""
    cfg = OHLCV.section(params)
    train_params = tracking.architecture_params(train, arch, ARCHITECTURE_FIELDS)
    tracking.log_params(
        {
            "seed": params.seed,
            "series": prep.name,
            "train": train_params,
            "featurize": cfg.featurize.model_dump(),
            "ingest.source": cfg.ingest.source,
            "features": ",".join(prep.series.feature_names),
        }
    )
    return train_params


def log_datasets(
    params: Params, domain: str, prep: Prepared, data_hash: str, model_id: str
) -> dict[str, Any]:
    """The series' training and validation windows as MLflow datasets of the logged model."""
    source = str((domain_layout(params, domain).features / f"{prep.name}.csv").resolve())
    return {
        split: tracking.log_dataset(
            prep.windows[split].x,
            prep.windows[split].y,
            name=f"{domain}-{prep.name}-{split}",
            digest=data_hash,
            model_id=model_id,
            context="training" if split == "train" else "validation",
            source=source,
        )
        for split in ("train", "val")
    }


def fit(train: OhlcvTrain, prep: Prepared) -> Fitted:
    return fit_on_prepared(
        train, prep, label=prep.name, extra_callbacks=(tracking.EpochMetricsLogger(),)
    )


def train_run(
    params: Params,
    prep: Prepared,
    mlrun: Any,
    logged: Any,
    data_hash: str,
    best: dict[str, Any],
    tuning: Hyperparameters,
) -> OhlcvTrainRun:
    """``run.json``: the MLflow run and logged model, the best epoch, the windows the
    model takes and the tuned values."""
    return OhlcvTrainRun(
        series=prep.name,
        **tracking.model_location(params, mlrun, logged),
        data_hash=data_hash,
        best_epoch=best["epoch"],
        best_val_loss=best.get("val_loss"),
        look_back=prep.look_back,
        horizon=prep.horizon,
        target=prep.target_kind,
        features=prep.series.feature_names,
        hyperparameters=tuning.values,
    )


def train_series(
    params: Params,
    domain: str,
    prep: Prepared,
    data_hash: str,
    tmp: Path,
) -> dict:
    """Fit one series' model into ``tmp`` (its folder in the stage's staging directory)."""
    train, tuning = effective_train(params, domain)
    tmp.mkdir()
    make_deterministic(params.seed)
    arch = architecture(train, prep.look_back, len(prep.series.feature_names))
    name = run_name(train, prep, arch)
    with tracking.start_run(params, domain, "train", run_name=name, data_hash=data_hash) as mlrun:
        tracking.set_tags({"nnpipe.series": prep.name, **tuning_tags(tuning)})
        train_params = log_train_params(params, train, prep, arch)
        fitted = fit(train, prep)
        fitted.model.save(tmp / "model.keras")
        best = min(fitted.history, key=lambda row: row.get("val_loss") or float("inf"))
        epoch = cast(int, best["epoch"])  # history_rows numbers epochs from 1
        logged = tracking.log_keras_model(
            fitted.model,
            prep.windows["train"].x[:2].astype("float32"),
            epoch,
            {"train": train_params},
        )
        datasets = log_datasets(params, domain, prep, data_hash, logged.model_id)
        tracking.log_best_epoch(fitted.history, best, logged.model_id, datasets["val"])
        TrainHistory(epochs=list(fitted.history)).write(tmp / "history.json")
        train_run(params, prep, mlrun, logged, data_hash, best, tuning).write(tmp / "run.json")
    log.info(
        "train: %s best epoch %d, val loss %.4g (scaled units); MLflow run %s",
        prep.name,
        best["epoch"],
        best.get("val_loss") or float("nan"),
        mlrun.info.run_id,
    )
    return {
        "run_id": mlrun.info.run_id,
        "epochs": len(fitted.history),
        "best_val_loss": best.get("val_loss"),
        "history": fitted.history,
    }


def run(params: Params, domain: str) -> dict:
    layout = domain_layout(params, domain)
    meta = OhlcvFeatures.read(require(layout.features / "meta.json", "featurize", domain), domain)
    data_hash = directory_md5(layout.features)
    train, tuning = effective_train(params, domain)
    log.info(
        "train: %s on %s, %d epochs max%s",
        train.model,
        describe_devices(),
        train.epochs,
        f"; tuned values {tuning.values}" if tuning.tuned else "",
    )
    results = {}
    # all series or none: a failure in one leaves every previous model in place
    with atomic_directory(layout.model) as tmp:
        for name in meta.series:
            prep = read_prepared(layout.features, name, meta)
            results[name] = train_series(params, domain, prep, data_hash, tmp / name)
    atomic_write_text(
        layout.history_plot, history_csv({name: r.pop("history") for name, r in results.items()})
    )
    return {"stage": "train", "series": results}


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
