"""The chest X-ray domain: a CNN (or the guide's other image architectures) that tells
pneumonia from normal radiographs; one model, one registered name.

A declaration only: each hook imports the module that does the work when it is called.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from nnpipe.domains.contract import Domain, Output, Plot, Schedule, Stage, Unit
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
from nnpipe.domains.xray.params import XrayParams

if TYPE_CHECKING:
    import pandas as pd

    from nnpipe.artifacts import DeploySpec, PromotedSpec, TrainRun
    from nnpipe.config import Params
    from nnpipe.domains.parts import CompressionPart, MonitoringPart, PromotionPart, TuningPart
    from nnpipe.domains.xray.predictor import XrayPredictor
    from nnpipe.monitoring.frame import MonitorFrame
    from nnpipe.serving.endpoints import DomainRouter
    from nnpipe.serving.predictor import Predictor
    from nnpipe.serving.settings import ServeSettings
    from nnpipe.serving.store import ModelStore


class XrayDomain(Domain[XrayParams]):
    name = "xray"
    title = "Chest X-ray classifier"
    task = "image"
    params_model = XrayParams
    predict_input = "a folder of PNG/JPEG, an .npz of images, or an image"
    labels_input = "a CSV of request_id,[item,]label giving the truth of logged predictions"
    logs_embedding = True
    schedule = Schedule("xray-training-nightly", "0 2 * * *", "UTC", "retrained nightly")
    monitor_schedule = Schedule("xray-monitor-daily", "0 6 * * *", "UTC", "the day's images")

    def stages(self) -> tuple[Stage, ...]:
        d = self.name
        raw, feats, model, reports = raw_dir(d), features_dir(d), model_dir(d), reports_dir(d)
        return (
            Stage(
                d,
                "ingest",
                "read the configured source into a de-duplicated raw dataset",
                params=("classes", "ingest", "seed"),
                deps=(),
                outs=(Output(raw),),
                touches_network=True,
                watches_source=True,
            ),
            Stage(
                d,
                "featurize",
                "split, resize and write TFRecords",
                params=("classes", "featurize", "seed"),
                deps=(raw,),
                outs=(Output(feats),),
            ),
            tune_stage(d, ("augment",)),
            Stage(
                d,
                "train",
                "fit the CNN, log it to MLflow",
                params=("train", "augment", "seed"),
                deps=(feats, hyperparameters_file(d)),
                outs=(Output(model), Output(f"{reports}/history.csv", cache=False)),
            ),
            Stage(
                d,
                "evaluate",
                "test metrics with a threshold chosen on validation; plots",
                params=("evaluate",),
                deps=(feats, model),
                outs=evaluate_outputs(d),
            ),
            compress_stage(d, (feats, model, f"{reports}/evaluation.json")),
            promote_stage(
                d,
                ("classes", "ingest", "featurize", "evaluate"),
                deps=(f"{raw_dir(d)}/index.csv",),
            ),
            register_stage(d, "register the deployable model, set challenger, gate champion"),
        )

    def plots(self) -> Sequence[Plot]:
        return (
            Plot(
                "plots/roc.json",
                {"x": "fpr", "y": "tpr", "template": "simple", "title": "xray: ROC, test split"},
            ),
            Plot(
                "plots/confusion.json",
                {
                    "x": "predicted",
                    "y": "actual",
                    "template": "confusion",
                    "title": "xray: confusion matrix, test",
                },
            ),
            Plot(
                "history.csv",
                {"x": "epoch", "y": ["loss", "val_loss"], "title": "xray: training loss per epoch"},
            ),
            Plot(
                "tuning.csv",
                {
                    "x": "run",
                    "y": "objective",
                    "template": "scatter",
                    "title": "xray: tuning trials in the order they ran, validation ROC-AUC",
                },
            ),
            Plot("figures", {}),
        )

    def units(self, params: Params) -> list[Unit]:
        return [Unit("", self.name, self.section(params).register.model_name)]

    def train_run_model(self) -> type[TrainRun]:
        from nnpipe.domains.xray.artifacts import XrayTrainRun

        return XrayTrainRun

    def deploy_spec_model(self) -> type[PromotedSpec]:
        from nnpipe.domains.xray.artifacts import XrayDeploySpec

        return XrayDeploySpec

    def tuning(self) -> TuningPart:
        from nnpipe.domains.xray.stages.tune import XrayTuning

        return XrayTuning()

    def compression(self) -> CompressionPart:
        from nnpipe.domains.xray.stages.compress import XrayCompression

        return XrayCompression()

    def promotion(self) -> PromotionPart:
        from nnpipe.domains.xray.stages.promote import XrayPromotion

        return XrayPromotion()

    def monitoring(self) -> MonitoringPart:
        from nnpipe.domains.xray.monitoring import XrayMonitoring

        return XrayMonitoring()

    def source_changed(self, params: Params) -> bool:
        from nnpipe.domains.xray.stages import ingest

        return ingest.source_changed(params, self.name)

    def summary_lines(self, params: Params) -> list[str]:
        from nnpipe.domains.xray.summary import summary_lines

        return summary_lines(params, self.name)

    def predictor(self, directory: Path, spec: DeploySpec, runner: Any) -> Predictor:
        from nnpipe.domains.xray.predictor import XrayPredictor

        return XrayPredictor(directory, spec, runner)

    def predict_files(self, predictor: Predictor, path: Path) -> pd.DataFrame:
        from nnpipe.domains.xray.batch import predict_files

        return predict_files(cast("XrayPredictor", predictor), path)

    def monitor_batch(self, params: Params, predictor: Predictor, path: Path) -> MonitorFrame:
        from nnpipe.domains.xray.batch import monitor_batch

        return monitor_batch(cast("XrayPredictor", predictor), path)

    def api_router(self, store: ModelStore, settings: ServeSettings) -> DomainRouter:
        from nnpipe.domains.xray.api import api_router

        return api_router(store, settings)


XRAY = XrayDomain()
