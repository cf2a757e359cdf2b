"""The ``xray`` section of params.yaml: the chest X-ray domain's own parameters.

Every class is named ``Xray<Key>`` for the key it validates (``XrayTrain`` for
``xray.train``); :class:`XrayParams` is the whole section, which the domain declares as its
``params_model`` and :mod:`nnpipe.config.model` places under the ``xray`` key.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from nnpipe.config.base import Fraction, OpenFraction, PositiveInt, Strict
from nnpipe.config.common import AttentionWidth, Compress, Monitor, Promote, Techniques, Tune
from nnpipe.config.search_space import SearchDim, check_search_space


class XraySyntheticSource(Strict):
    n_images: Annotated[int, Field(ge=20, le=200_000)] = 1600
    image_size: Annotated[int, Field(ge=16, le=1024)] = 96
    positive_fraction: OpenFraction = 0.5
    images_per_patient: Annotated[int, Field(ge=1, le=20)] = 2


class XrayFolderSource(Strict):
    path: Path | None = None
    labels_csv: Path | None = None
    max_side: Annotated[int, Field(ge=16, le=8192)] = 512
    class_dirs: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "normal": ["normal"],
            "pneumonia": ["pneumonia", "covid", "covid-19", "opacity", "abnormal"],
        }
    )


class XrayMedmnistSource(Strict):
    path: Path | None = None
    url: str = "https://zenodo.org/records/10519652/files/pneumoniamnist.npz?download=1"
    md5: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] = "28209eda62fecd6e6a2d98b1501bb15f"


class XrayIngest(Strict):
    source: Literal["synthetic", "folder", "medmnist"] = "synthetic"
    max_bad_fraction: Fraction = 0.05
    synthetic: XraySyntheticSource = XraySyntheticSource()
    folder: XrayFolderSource = XrayFolderSource()
    medmnist: XrayMedmnistSource = XrayMedmnistSource()


class XrayFeaturize(Strict):
    image_size: Annotated[int, Field(ge=16, le=1024)] = 64
    resize: Literal["pad", "stretch"] = "pad"
    normalization: Literal["standardize", "unit"] = "standardize"
    val_fraction: OpenFraction = 0.15
    test_fraction: OpenFraction = 0.15

    @model_validator(mode="after")
    def _leave_room_to_train(self) -> XrayFeaturize:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction:.2f} "
                "leaves almost nothing to train on; keep their sum below 0.9"
            )
        return self


class XrayAugment(Strict):
    rotation: Annotated[float, Field(ge=0.0, le=0.5)] = 0.03
    shift: Annotated[float, Field(ge=0.0, le=0.5)] = 0.08
    zoom: Annotated[float, Field(ge=0.0, le=0.9)] = 0.1
    brightness: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1
    contrast: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1
    horizontal_flip: bool = False


class XrayFeedForwardArch(Strict):
    """The guide's basic network: flattened pixels, Dense 128 (Dropout), Dense 64."""

    units: Annotated[list[PositiveInt], Field(min_length=1, max_length=6)] = [128, 64]


class XrayVitArch(AttentionWidth):
    """A small Vision Transformer: patches by strided convolution, learned positions,
    pre-norm blocks (multi-head attention, MLP), pooled head."""

    patch_size: Annotated[int, Field(ge=1, le=64)] = 4
    depth: Annotated[int, Field(ge=1, le=24)] = 2
    mlp_ratio: Annotated[int, Field(ge=1, le=8)] = 2


class XrayMixerArch(Strict):
    """MLP-Mixer: token-mixing and channel-mixing MLPs with layer norm and skips."""

    patch_size: Annotated[int, Field(ge=1, le=64)] = 4
    depth: Annotated[int, Field(ge=1, le=24)] = 2
    width: Annotated[int, Field(ge=4, le=1024)] = 32
    token_mlp: Annotated[int, Field(ge=1, le=4096)] = 32
    channel_mlp: Annotated[int, Field(ge=1, le=4096)] = 64


class XrayTrain(Techniques):
    # auto: the guide's choose_model for the domain's task (images: medical_cnn)
    model: Literal["auto", "feedforward", "small_cnn", "medical_cnn", "vit", "mlp_mixer"] = (
        "medical_cnn"
    )
    filters: Annotated[list[PositiveInt], Field(min_length=1, max_length=6)] = [32, 64, 128]
    dense_units: PositiveInt = 64
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.3
    l2: Annotated[float, Field(ge=0.0)] = 1e-4
    # None: as the architecture calls for it (medical_cnn's conv blocks); true/false: on
    # or off there, and after each feed-forward Dense
    batch_norm: bool | None = None
    feedforward: XrayFeedForwardArch = XrayFeedForwardArch()
    vit: XrayVitArch = XrayVitArch()
    mlp_mixer: XrayMixerArch = XrayMixerArch()
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 32
    epochs: Annotated[int, Field(ge=1, le=1000)] = 12
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 1e-3
    early_stopping_patience: Annotated[int, Field(ge=0)] = 4
    reduce_lr_patience: Annotated[int, Field(ge=0)] = 2
    reduce_lr_factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    class_weight: Literal["balanced", "none"] = "balanced"
    # false: the decoded training split is cached in memory after the first epoch (fast);
    # true: every epoch streams it from the TFRecords on disk, so memory does not grow with
    # the dataset (the shuffle buffer bounds it)
    stream_from_disk: bool = False
    shuffle_buffer: Annotated[int, Field(ge=1, le=1_000_000)] = 4096  # images

    @model_validator(mode="after")
    def _enough_filters(self) -> XrayTrain:
        if self.model == "small_cnn" and len(self.filters) < 2:
            raise ValueError("small_cnn needs two filter counts in `filters`, e.g. [32, 64]")
        return self


class XrayEvaluate(Strict):
    threshold: Literal["youden", "specificity"] = "youden"
    target_specificity: OpenFraction = 0.9


# the test metrics the champion gate may judge on (each variant's row reports them all)
XrayGateMetric = Literal["roc_auc", "accuracy", "sensitivity_at_specificity", "f1_positive"]


class XrayRegister(Strict):
    model_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")] = "xray-classifier"
    gate_metric: XrayGateMetric = "roc_auc"
    min_value: Fraction = 0.8
    max_drop: Fraction = 0.0
    allow_incomparable: bool = False


class XrayPromote(Promote):
    metric_tolerance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.005  # test ROC-AUC drop
    # share of test images given the reference's class (each variant at its own threshold,
    # chosen on validation as evaluate chose the reference's)
    min_decision_agreement: Fraction = 0.97


class XrayMonitor(Monitor):
    """The X-ray checks: besides KS on intensity, size and prediction, the MMD test of the
    model's embeddings and the PSI of the pooled intensity histogram."""

    embedding_alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.01
    permutations: Annotated[int, Field(ge=99, le=10_000)] = 500
    histogram_psi: Annotated[float, Field(gt=0.0)] = 0.1
    # live performance from a labels CSV: an alarm below this ROC-AUC
    min_roc_auc: Fraction = 0.8
    min_labels: Annotated[int, Field(ge=2)] = 20


# ``register`` is the stage's name, and so its params key; pydantic warns that it shadows
# ABCMeta.register, which no code here calls on these models.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

    class XrayParams(Strict):
        classes: Annotated[list[str], Field(min_length=2, max_length=2)] = ["normal", "pneumonia"]
        ingest: XrayIngest = XrayIngest()
        featurize: XrayFeaturize = XrayFeaturize()
        augment: XrayAugment = XrayAugment()
        train: XrayTrain = XrayTrain()
        evaluate: XrayEvaluate = XrayEvaluate()
        tune: Tune = Tune(
            search_space={
                "filters": SearchDim(choice=[[16, 32, 64], [32, 64, 128]]),
                "dense_units": SearchDim(range=(32, 128), step=32),
                "dropout": SearchDim(range=(0.1, 0.5)),
                "learning_rate": SearchDim(range=(1e-4, 3e-3), sampling="log"),
            }
        )
        compress: Compress = Compress()
        promote: XrayPromote = XrayPromote()
        register: XrayRegister = XrayRegister()
        monitor: XrayMonitor = XrayMonitor()

        @field_validator("classes")
        @classmethod
        def _distinct(cls, value: list[str]) -> list[str]:
            if len({c.lower() for c in value}) != len(value):
                raise ValueError(f"class names must be distinct, got {value}")
            return value

        @model_validator(mode="after")
        def _search_space_fits_train(self) -> XrayParams:
            check_search_space(self.train, self.tune.search_space)
            return self

        @model_validator(mode="after")
        def _class_dirs_match_classes(self) -> XrayParams:
            dirs = self.ingest.folder.class_dirs
            if set(dirs) != set(self.classes):
                raise ValueError(
                    f"ingest.folder.class_dirs has keys {sorted(dirs)} but classes are "
                    f"{self.classes}; give one entry per class"
                )
            return self
