"""The OHLCV pipeline's files between stages (see :mod:`nnpipe.artifacts`)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ConfigDict, Field

from nnpipe.artifacts import Artifact, DeploySpec, PromotedSpec, Record, TrainRun


class SeriesIngest(Record):
    """One series as ingest validated it: rows kept (and read), dates, findings."""

    rows: int
    first: str
    last: str
    rows_read: int
    findings: int
    first_findings: list[str]


class OhlcvManifest(Artifact):
    """``data/ohlcv/raw/manifest.json``: the source, every series and the validation
    settings they passed."""

    STAGE: ClassVar[str] = "ingest"
    WHAT: ClassVar[str] = "OHLCV ingest manifest (manifest.json)"

    source: str
    series: dict[str, SeriesIngest]
    validation: dict[str, Any]  # ohlcv.validation as it was
    source_fingerprint: str | None  # None: a source of no local files


class SplitRows(Record):
    """One chronological split: its rows ``[first, end)``, dates and window count."""

    rows: tuple[int, int]
    first: str
    last: str
    windows: int


class SeriesFeatures(Record):
    """One series' features, splits and train-only scaler statistics."""

    features: list[str]
    rows: int
    splits: dict[str, SplitRows]
    input_scaler: dict[str, Any]
    target_scaler: dict[str, Any]


class OhlcvFeatures(Artifact):
    """``data/ohlcv/features/meta.json``: the window settings and every series'."""

    STAGE: ClassVar[str] = "featurize"
    WHAT: ClassVar[str] = "OHLCV features record (meta.json)"

    look_back: int
    horizon: int
    target: str
    derived: list[str]
    val_fraction: float
    test_fraction: float
    series: dict[str, SeriesFeatures]


class OhlcvTrainRun(TrainRun):
    """``models/ohlcv/<series>/run.json``: also the windows the model takes."""

    series: str
    best_val_loss: float | None
    look_back: int
    horizon: int
    target: str
    features: list[str]


class FoldScores(Record):
    """A forecaster's errors in price units (walk-forward: the mean over the folds)."""

    rmse: float
    mae: float
    mase: float
    directional_accuracy: float


class ForecastScores(FoldScores):
    """A forecaster's test-period errors, also in percent."""

    mape: float


class WalkForward(Record):
    """The walk-forward re-training's mean errors, and how often the model won."""

    folds: int
    model: FoldScores
    persistence: FoldScores
    moving_average: FoldScores
    relative_mae: float
    folds_model_beats_persistence: int


class SeriesEvaluation(Record):
    """One series' test metrics: the model beside both baselines, the Diebold-Mariano
    test against persistence, the walk-forward summary, and the run it scored."""

    model: ForecastScores
    persistence: ForecastScores
    moving_average: ForecastScores
    relative_mae: float
    relative_rmse: float
    dm_statistic: float | None  # None: a constant loss difference (infinite statistic)
    dm_p_value: float
    n_forecasts: int
    walk_forward: WalkForward | None = None  # absent with ohlcv.evaluate.walk_forward_folds 0
    run_id: str
    model_id: str
    data_hash: str
    test_first: str
    test_last: str


class OhlcvEvaluation(Artifact):
    """``reports/ohlcv/evaluation.json``: every number evaluate measured, per series."""

    STAGE: ClassVar[str] = "evaluate"
    WHAT: ClassVar[str] = "OHLCV evaluation (evaluation.json)"

    series: dict[str, SeriesEvaluation]


class OhlcvServedSpec(DeploySpec):
    """What serving reads of an OHLCV ``deploy.json``: the variant and the windows it
    takes (promote's other fields are extras)."""

    series: str | None = None
    look_back: int
    horizon: int
    target: str
    features: list[str]
    derived: list[str] = Field(default_factory=list)


class OhlcvDeploySpec(PromotedSpec, OhlcvServedSpec):
    """``models/ohlcv-deploy/<series>/deploy.json``: the variant and its windows."""

    model_config = ConfigDict(extra="forbid")
    SERVED: ClassVar[type[DeploySpec] | None] = OhlcvServedSpec

    series: str
    derived: list[str]
