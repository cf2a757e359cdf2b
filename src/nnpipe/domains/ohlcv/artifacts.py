"""The OHLCV pipeline's files between stages (see :mod:`nnpipe.artifacts`)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ConfigDict

from nnpipe.artifacts import Artifact, PromotedSpec, Record, TrainRun


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


class OhlcvDeploySpec(PromotedSpec):
    """``models/ohlcv-deploy/<series>/deploy.json``: the variant and its windows."""

    model_config = ConfigDict(extra="forbid")

    series: str
    look_back: int
    horizon: int
    target: str
    features: list[str]
    derived: list[str]
