"""The stock-price domain: a recurrent forecaster (or the guide's transformer) of the next
close from a window of daily bars; one model per price series.

A declaration only: each hook imports the module that does the work when it is called.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from nnpipe.domains.contract import Domain, Output, Plot, Schedule, Stage, Unit
from nnpipe.domains.ohlcv.params import OhlcvParams, series_names
from nnpipe.domains.shared_stages import (
    compress_stage,
    evaluate_outputs,
    features_dir,
    hyperparameters_file,
    model_dir,
    promote_stage,
    raw_dir,
    register_stage,
    reports_dir,
    tune_stage,
)

if TYPE_CHECKING:
    import pandas as pd

    from nnpipe.artifacts import DeploySpec, PromotedSpec, TrainRun
    from nnpipe.config import Params
    from nnpipe.domains.ohlcv.predictor import OhlcvPredictor
    from nnpipe.domains.parts import CompressionPart, MonitoringPart, PromotionPart, TuningPart
    from nnpipe.monitoring.frame import MonitorFrame
    from nnpipe.serving.endpoints import DomainRouter
    from nnpipe.serving.predictor import Predictor
    from nnpipe.serving.settings import ServeSettings
    from nnpipe.serving.store import ModelStore


class OhlcvDomain(Domain[OhlcvParams]):
    name = "ohlcv"
    title = "Stock OHLCV forecaster"
    task = "sequence"
    params_model = OhlcvParams
    predict_input = "a CSV of daily bars"
    labels_input = "a CSV of the series' bars up to now (default: the project's ingested series)"
    unit_key = "series"
    schedule = Schedule(
        "ohlcv-training-daily",
        "30 18 * * 1-5",
        "America/New_York",
        "each weekday after the US close",
    )
    monitor_schedule = Schedule(
        "ohlcv-monitor-hourly",
        "15 10-16 * * 1-5",
        "America/New_York",
        "hourly while the US market is open",
    )

    def stages(self) -> tuple[Stage, ...]:
        d = self.name
        raw, feats, model, reports = raw_dir(d), features_dir(d), model_dir(d), reports_dir(d)
        return (
            Stage(
                d,
                "ingest",
                "read each price series from its source and validate it",
                params=("ingest", "validation", "seed"),
                deps=(),
                outs=(Output(raw),),
                touches_network=True,
                watches_source=True,
            ),
            Stage(
                d,
                "featurize",
                "derived features, chronological splits with gaps, windows",
                params=("featurize",),
                deps=(raw,),
                outs=(Output(feats),),
            ),
            tune_stage(d),
            Stage(
                d,
                "train",
                "fit the recurrent forecaster per series, log it to MLflow",
                params=("train", "seed"),
                deps=(feats, hyperparameters_file(d)),
                outs=(Output(model), Output(f"{reports}/history.csv", cache=False)),
            ),
            Stage(
                d,
                "evaluate",
                "test metrics in price units against baselines; walk-forward",
                params=("evaluate", "train", "seed"),
                deps=(feats, model, hyperparameters_file(d)),
                outs=evaluate_outputs(d),
            ),
            compress_stage(d, (feats, model)),
            promote_stage(d, ("featurize",)),
            register_stage(
                d, "register each series' deployable model, set challenger, gate champion"
            ),
        )

    def plots(self) -> Sequence[Plot]:
        return (
            # dates: .dvc/plots/dates.json, DVC's "simple" line with a time axis
            Plot(
                "plots/forecast.csv",
                {
                    "x": "date",
                    "y": ["actual", "model", "persistence"],
                    "template": "dates",
                    "title": "ohlcv: forecast vs actual Close, test period",
                },
            ),
            Plot(
                "plots/folds.csv",
                {
                    "x": "fold",
                    "y": ["model_rmse", "persistence_rmse", "moving_average_rmse"],
                    "template": "simple",
                    "title": "ohlcv: walk-forward RMSE per fold",
                },
            ),
            Plot(
                "history.csv",
                {
                    "x": "epoch",
                    "y": ["loss", "val_loss"],
                    "title": "ohlcv: training loss per epoch",
                },
            ),
            Plot(
                "tuning.csv",
                {
                    "x": "run",
                    "y": "objective",
                    "template": "scatter",
                    "title": "ohlcv: tuning trials in the order they ran, validation loss",
                },
            ),
            Plot("figures", {}),
        )

    def units(self, params: Params) -> list[Unit]:
        section = self.section(params)
        return [
            Unit(series, f"{self.name}/{series}", section.model_name(series))
            for series in series_names(section.ingest)
        ]

    def train_run_model(self) -> type[TrainRun]:
        from nnpipe.domains.ohlcv.artifacts import OhlcvTrainRun

        return OhlcvTrainRun

    def deploy_spec_model(self) -> type[PromotedSpec]:
        from nnpipe.domains.ohlcv.artifacts import OhlcvDeploySpec

        return OhlcvDeploySpec

    def tuning(self) -> TuningPart:
        from nnpipe.domains.ohlcv.stages.tune import OhlcvTuning

        return OhlcvTuning()

    def compression(self) -> CompressionPart:
        from nnpipe.domains.ohlcv.stages.compress import OhlcvCompression

        return OhlcvCompression()

    def promotion(self) -> PromotionPart:
        from nnpipe.domains.ohlcv.stages.promote import OhlcvPromotion

        return OhlcvPromotion()

    def monitoring(self) -> MonitoringPart:
        from nnpipe.domains.ohlcv.monitoring import OhlcvMonitoring

        return OhlcvMonitoring()

    def source_changed(self, params: Params) -> bool:
        from nnpipe.domains.ohlcv.stages import ingest

        return ingest.source_changed(params, self.name)

    def summary_lines(self, params: Params) -> list[str]:
        from nnpipe.domains.ohlcv.summary import summary_lines

        return summary_lines(params, self.name)

    def predictor(self, directory: Path, spec: DeploySpec, runner: Any) -> Predictor:
        from nnpipe.domains.ohlcv.predictor import OhlcvPredictor

        return OhlcvPredictor(directory, spec, runner)

    def predict_files(self, predictor: Predictor, path: Path) -> pd.DataFrame:
        from nnpipe.domains.ohlcv.batch import predict_files

        return predict_files(cast("OhlcvPredictor", predictor), path)

    def monitor_batch(self, params: Params, predictor: Predictor, path: Path) -> MonitorFrame:
        from nnpipe.domains.ohlcv.batch import monitor_batch

        return monitor_batch(params, cast("OhlcvPredictor", predictor), path)

    def api_router(self, store: ModelStore, settings: ServeSettings) -> DomainRouter:
        from nnpipe.domains.ohlcv.api import api_router

        return api_router(store, settings)


OHLCV = OhlcvDomain()
