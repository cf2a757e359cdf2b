"""evaluate: test-period metrics in price units, side by side with the baselines, and a
walk-forward re-training so one lucky split cannot carry the result.

Per series: RMSE, MAE, MAPE, MASE and directional accuracy of the model, of persistence
(tomorrow = today) and of a moving average; the model's MAE and RMSE relative to
persistence; a Diebold-Mariano test of model against persistence; per-fold and mean
walk-forward metrics. Output in ``reports/ohlcv``: ``metrics.json`` (the headline numbers
per series, for ``dvc metrics diff`` and ``dvc exp show``), ``evaluation.json`` (every
number measured), ``plots/`` (forecast and fold tables, as DVC plots) and
``figures/`` (forecast, residuals, fold errors, training curves). All of it is logged to
each series' training run in MLflow before any output is replaced.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from nnpipe import tracking
from nnpipe.artifacts import TrainHistory
from nnpipe.config import Params
from nnpipe.domains.ohlcv.artifacts import OhlcvEvaluation, OhlcvFeatures, OhlcvTrainRun
from nnpipe.domains.ohlcv.backtest import run_walk_forward, summarize_folds
from nnpipe.domains.ohlcv.domain import OHLCV
from nnpipe.domains.ohlcv.evaluation_tables import fold_table, forecast_table
from nnpipe.domains.ohlcv.figures import (
    plot_fold_errors,
    plot_forecast,
    plot_history,
    plot_residuals,
)
from nnpipe.domains.ohlcv.forecasting import (
    FORECASTERS,
    Prepared,
    read_prepared,
)
from nnpipe.domains.ohlcv.metrics import headline_metrics
from nnpipe.domains.ohlcv.models import predict
from nnpipe.domains.ohlcv.scoring import score_model
from nnpipe.io import atomic_directory, atomic_write_json, atomic_write_text
from nnpipe.keras_env import make_deterministic
from nnpipe.layout import domain_layout
from nnpipe.saved_models import load_model
from nnpipe.stages import cli_main, require
from nnpipe.stages.tuning import effective_train

log = logging.getLogger(__name__)

HEADLINE = ("rmse", "mae", "mape", "mase", "directional_accuracy")
# the training run's columns in the MLflow UI's run list
HEADLINE_VIEW = [
    f"test_{k}"
    for k in (
        "rmse",
        "persistence.rmse",
        "moving_average.rmse",
        "mae",
        "persistence.mae",
        "moving_average.mae",
        "relative_mae",
        "directional_accuracy",
    )
] + ["best_val_loss", "best_epoch", "deployed.size_bytes", "deployed.relative_mae"]


def evaluate_series(
    params: Params,
    domain: str,
    prep: Prepared,
    figures: Path,
) -> tuple[dict, pd.DataFrame, list[dict]]:
    cfg = OHLCV.section(params)
    ev = cfg.evaluate
    model_dir = domain_layout(params, domain).model / prep.name
    model = load_model(require(model_dir / "model.keras", "train", domain))
    scored = score_model(
        lambda x: predict(model, x), model.input_shape[1:], prep, ev.moving_average_window
    )
    metrics = {k: v for k, v in scored.items() if not k.startswith("_")}
    folds: list[dict] = []
    if ev.walk_forward_folds:
        train, _ = effective_train(params, domain)  # each fold refits what train fitted
        folds = run_walk_forward(
            prep,
            train,
            n_folds=ev.walk_forward_folds,
            min_train=ev.walk_forward_min_train,
            val_fraction=cfg.featurize.val_fraction,
            ma_window=ev.moving_average_window,
            epochs=ev.walk_forward_epochs or train.epochs,
            before_fit=lambda: make_deterministic(params.seed),
        )
        metrics["walk_forward"] = summarize_folds(folds)
    forecasts = forecast_table(prep, scored)
    plot_forecast(
        forecasts["date"].tolist(),
        scored["_actual"],
        scored["_forecasts"],
        figures / f"{prep.name}_forecast.png",
        f"{prep.name}: forecast vs actual Close, test period",
    )
    plot_residuals(
        forecasts["date"].tolist(),
        scored["_actual"] - scored["_forecasts"]["model"],
        figures / f"{prep.name}_residuals.png",
        f"{prep.name}: model residuals, test",
    )
    if folds:
        plot_fold_errors(folds, figures / f"{prep.name}_walk_forward.png", metric="rmse")
    history = TrainHistory.read(require(model_dir / "history.json", "train", domain), domain)
    plot_history(history.epochs, figures / f"{prep.name}_training.png")
    return metrics, forecasts, folds


def tracked_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """What the run and its logged model show of a series' test metrics."""
    wf = metrics.get("walk_forward") or {}
    return {
        **{k: metrics["model"][k] for k in HEADLINE},
        **{k: metrics[k] for k in ("relative_mae", "relative_rmse", "dm_p_value")},
        **{
            f"{b}.{k}": metrics[b][k]
            for b in ("persistence", "moving_average")
            for k in ("rmse", "mae")
        },
        **{f"walk_forward.{f}.rmse": wf[f]["rmse"] for f in ("model", "persistence") if f in wf},
        **({"walk_forward.relative_mae": wf["relative_mae"]} if wf else {}),
    }


def log_to_mlflow(
    params: Params,
    domain: str,
    run_info: OhlcvTrainRun,
    prep: Prepared,
    metrics: dict,
    folds: list[dict],
    series_figures: list[Path],
    staging: Path,
) -> None:
    """Everything evaluate found, on the series' training run: test metrics on the logged
    model with the test dataset, baselines, per-fold errors (one step per fold), figures."""
    with tracking.start_run(params, domain, "evaluate", run_id=run_info.run_id):
        tracking.set_tags(
            {f"evaluate.{k}": v for k, v in OHLCV.section(params).evaluate.model_dump().items()}
        )
        test = prep.windows["test"]
        test_set = tracking.log_dataset(
            test.x,
            test.y,
            name=f"{domain}-{prep.name}-test",
            digest=run_info.data_hash,
            source=str((domain_layout(params, domain).features / f"{prep.name}.csv").resolve()),
            context="testing",
            model_id=run_info.model_id,
        )
        tracking.log_model_metrics(
            tracked_metrics(metrics), run_info.model_id, test_set, prefix="test_"
        )
        tracking.set_headline_view(HEADLINE_VIEW)
        for k, fold in enumerate(folds, start=1):
            tracking.log_metrics(
                {f"walk_forward_{fc}_rmse": fold[fc]["rmse"] for fc in FORECASTERS}, step=k
            )
        for path in series_figures:
            tracking.log_artifacts(path, "figures")
        tracking.log_artifacts(staging, "evaluation")


@dataclass
class SeriesResult:
    """One series evaluated: its record in evaluation.json, and what is logged of it."""

    prep: Prepared
    run_info: OhlcvTrainRun
    metrics: dict[str, Any]
    forecasts: pd.DataFrame
    folds: list[dict]


def evaluate_one(
    params: Params, domain: str, meta: OhlcvFeatures, name: str, figures: Path
) -> SeriesResult:
    layout = domain_layout(params, domain)
    run_info = OhlcvTrainRun.read(
        require(layout.model / name / "run.json", "train", domain), domain
    )
    prep = read_prepared(layout.features, name, meta)
    metrics, forecasts, folds = evaluate_series(params, domain, prep, figures)
    test_rows = prep.windows["test"].rows
    metrics |= {
        "run_id": run_info.run_id,
        "model_id": run_info.model_id,
        "data_hash": run_info.data_hash,
        "test_first": prep.series.dates[test_rows[0]].isoformat(),
        "test_last": prep.series.dates[test_rows[-1]].isoformat(),
    }
    return SeriesResult(prep, run_info, metrics, forecasts, folds)


def write_plots(plots: Path, results: dict[str, SeriesResult]) -> None:
    """The forecasts and the walk-forward folds of every series, as DVC plot tables."""
    forecasts = pd.concat([r.forecasts for r in results.values()])
    folds = pd.concat([fold_table(name, r.folds) for name, r in results.items()])
    atomic_write_text(plots / "forecast.csv", forecasts.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(plots / "folds.csv", folds.to_csv(index=False, lineterminator="\n"))


def log_summary(evaluation: OhlcvEvaluation) -> None:
    for name, m in evaluation.series.items():
        wf = m.walk_forward
        log.info(
            "evaluate: %s test RMSE model %.4g, persistence %.4g, moving average %.4g; "
            "MAE vs persistence %.3f; DM p-value %.3g%s",
            name,
            m.model.rmse,
            m.persistence.rmse,
            m.moving_average.rmse,
            m.relative_mae,
            m.dm_p_value,
            f"; walk-forward mean MAE vs persistence {wf.relative_mae:.3f} "
            f"({wf.folds_model_beats_persistence}/{wf.folds} folds beat it)"
            if wf
            else "",
        )


def run(params: Params, domain: str) -> dict:
    layout = domain_layout(params, domain)
    meta = OhlcvFeatures.read(require(layout.features / "meta.json", "featurize", domain), domain)
    layout.reports.mkdir(parents=True, exist_ok=True)
    with (
        atomic_directory(layout.plots) as plots,
        atomic_directory(layout.figures) as figures,
        tempfile.TemporaryDirectory(dir=layout.reports, prefix=".evaluate.") as staging,
    ):
        results = {name: evaluate_one(params, domain, meta, name, figures) for name in meta.series}
        write_plots(plots, results)
        evaluation = OhlcvEvaluation.model_validate(
            {"series": {name: r.metrics for name, r in results.items()}}
        )
        metrics_tmp = evaluation.write(Path(staging) / layout.evaluation.name)
        headline_tmp = atomic_write_json(
            Path(staging) / layout.metrics.name,
            {name: headline_metrics(r.metrics) for name, r in results.items()},
        )
        for name, r in results.items():
            figs = sorted(figures.glob(f"{name}_*.png"))
            log_to_mlflow(
                params, domain, r.run_info, r.prep, r.metrics, r.folds, figs, Path(staging)
            )
        metrics_tmp.replace(layout.evaluation)
        headline_tmp.replace(layout.metrics)
    log_summary(evaluation)
    return {
        "stage": "evaluate",
        "series": {
            n: {"rmse": m.model.rmse, "relative_mae": m.relative_mae}
            for n, m in evaluation.series.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    return cli_main(__spec__.name, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
