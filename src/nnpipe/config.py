"""Typed, validated parameters: ``params.yaml`` is the one source of truth.

Everything is checked once, on load: unknown keys and wrong types fail at once with the
dotted key's name, not an hour into training. Command-line overrides use the dotted keys of
``dvc exp run -S`` (``xray.train.epochs=20``) and go through the same validation.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from nnpipe.errors import NnpipeError
from nnpipe.io import atomic_write_text

PARAMS_FILE = "params.yaml"

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
OpenFraction = Annotated[float, Field(gt=0.0, lt=1.0)]
PositiveInt = Annotated[int, Field(gt=0)]


class ParamsError(NnpipeError, ValueError):
    """params.yaml or an override is wrong; the message names the key and the fix."""


def _takes_bool(annotation: Any) -> bool:
    """Whether a field's type admits a boolean (``bool``, ``bool | None``, ``Any``)."""
    if annotation is bool or annotation is Any:
        return True
    return any(_takes_bool(arg) for arg in get_args(annotation))


def _has_bool(value: Any) -> bool:
    """Whether ``value`` is a boolean or a list holding one (a nested section is a mapping,
    checked by its own model)."""
    if isinstance(value, bool):
        return True
    return isinstance(value, (list, tuple)) and any(_has_bool(v) for v in value)


class Strict(BaseModel):
    """Base for every section: unknown keys are errors; loaded params are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_as_number(cls, value: Any, info: ValidationInfo) -> Any:
        """pydantic reads ``true`` as 1 for an int or float field: ``epochs: true`` would
        train one epoch. A boolean is accepted only where the field is a switch."""
        if info.field_name is not None and _has_bool(value):  # also inside lists: [true, 8]
            if not _takes_bool(cls.model_fields[info.field_name].annotation):
                raise ValueError(
                    f"a boolean ({str(value).lower()}) is not accepted here: "
                    "give a number or a value of the field's type"
                )
        return value


class Paths(Strict):
    data: Path = Path("data")
    models: Path = Path("models")
    reports: Path = Path("reports")
    cache: Path = Path(".cache")


class MlflowParams(Strict):
    tracking_uri: str | None = None
    experiment_prefix: str = "nnpipe"
    # with a tracking server: how long a stage waits on one that is down or stalled
    # (MLflow's own defaults retry for minutes per request). Each request waits up to
    # http_timeout_seconds and is retried http_max_retries times, backing off
    # http_backoff_factor x 2^n seconds; MLFLOW_HTTP_REQUEST_* in the environment win.
    http_timeout_seconds: Annotated[int, Field(ge=1, le=3600)] = 30
    http_max_retries: Annotated[int, Field(ge=0, le=10)] = 2
    http_backoff_factor: Annotated[int, Field(ge=0, le=60)] = 1


class SyntheticSource(Strict):
    n_images: Annotated[int, Field(ge=20, le=200_000)] = 1600
    image_size: Annotated[int, Field(ge=16, le=1024)] = 96
    positive_fraction: OpenFraction = 0.5
    images_per_patient: Annotated[int, Field(ge=1, le=20)] = 2


class FolderSource(Strict):
    path: Path | None = None
    labels_csv: Path | None = None
    max_side: Annotated[int, Field(ge=16, le=8192)] = 512
    class_dirs: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "normal": ["normal"],
            "pneumonia": ["pneumonia", "covid", "covid-19", "opacity", "abnormal"],
        }
    )


class MedmnistSource(Strict):
    path: Path | None = None
    url: str = "https://zenodo.org/records/10519652/files/pneumoniamnist.npz?download=1"
    md5: Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")] = "28209eda62fecd6e6a2d98b1501bb15f"


class XrayIngest(Strict):
    source: Literal["synthetic", "folder", "medmnist"] = "synthetic"
    max_bad_fraction: Fraction = 0.05
    synthetic: SyntheticSource = SyntheticSource()
    folder: FolderSource = FolderSource()
    medmnist: MedmnistSource = MedmnistSource()


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


class Augment(Strict):
    rotation: Annotated[float, Field(ge=0.0, le=0.5)] = 0.03
    shift: Annotated[float, Field(ge=0.0, le=0.5)] = 0.08
    zoom: Annotated[float, Field(ge=0.0, le=0.9)] = 0.1
    brightness: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1
    contrast: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1
    horizontal_flip: bool = False


class Techniques(Strict):
    """Training switches every architecture takes (logged to MLflow like any param)."""

    l1: Annotated[float, Field(ge=0.0)] = 0.0  # kernel regularisation, every weight layer
    l2: Annotated[float, Field(ge=0.0)] = 0.0
    clip_norm: Annotated[float, Field(gt=0.0)] | None = None  # gradient clipping, by norm
    clip_value: Annotated[float, Field(gt=0.0)] | None = None  # or by value
    # mixed_float16 where the hardware has fast float16 (a GPU of compute capability 7.0+);
    # elsewhere a warning and float32. The output layer always computes in float32.
    mixed_precision: bool = False
    # apply the mean gradient of N consecutive batches in one update: an effective batch of
    # N x batch_size in the memory of one batch
    gradient_accumulation_steps: Annotated[int, Field(ge=1, le=1024)] = 1


class FeedForwardArch(Strict):
    """The guide's basic network: flattened pixels, Dense 128 (Dropout), Dense 64."""

    units: Annotated[list[PositiveInt], Field(min_length=1, max_length=6)] = [128, 64]


class AttentionWidth(Strict):
    """Multi-head attention splits ``width`` evenly between its ``heads``."""

    width: Annotated[int, Field(ge=4, le=1024)] = 32
    heads: Annotated[int, Field(ge=1, le=32)] = 2

    @model_validator(mode="after")
    def _heads_divide_width(self) -> AttentionWidth:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be a multiple of heads {self.heads}")
        return self


class VitArch(AttentionWidth):
    """A small Vision Transformer: patches by strided convolution, learned positions,
    pre-norm blocks (multi-head attention, MLP), pooled head."""

    patch_size: Annotated[int, Field(ge=1, le=64)] = 4
    depth: Annotated[int, Field(ge=1, le=24)] = 2
    mlp_ratio: Annotated[int, Field(ge=1, le=8)] = 2


class MixerArch(Strict):
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
    feedforward: FeedForwardArch = FeedForwardArch()
    vit: VitArch = VitArch()
    mlp_mixer: MixerArch = MixerArch()
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


class Register(Strict):
    model_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")] = "xray-classifier"
    gate_metric: Literal["roc_auc", "accuracy", "sensitivity_at_specificity", "f1_positive"] = (
        "roc_auc"
    )
    min_value: Fraction = 0.8
    max_drop: Fraction = 0.0
    allow_incomparable: bool = False


SeriesName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
DateText = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class OhlcvSyntheticSource(Strict):
    names: Annotated[list[SeriesName], Field(min_length=1, max_length=50)] = ["SYNTH"]
    n_days: Annotated[int, Field(ge=100, le=50_000)] = 1500
    start: DateText = "2016-01-04"
    start_price: Annotated[float, Field(gt=0.0)] = 100.0


class OhlcvCsvSource(Strict):
    # series name -> a local path or an http(s) URL of a price CSV
    files: dict[SeriesName, str] = Field(default_factory=dict)


class YfinanceSource(Strict):
    tickers: Annotated[list[str], Field(max_length=50)] = Field(default_factory=list)
    start: DateText | None = "2015-01-01"
    end: DateText | None = None
    interval: Literal["1d", "1wk", "1h", "30m", "15m", "5m"] = "1d"


class OhlcvIngest(Strict):
    source: Literal["synthetic", "csv", "yfinance"] = "synthetic"
    synthetic: OhlcvSyntheticSource = OhlcvSyntheticSource()
    csv: OhlcvCsvSource = OhlcvCsvSource()
    yfinance: YfinanceSource = YfinanceSource()

    @model_validator(mode="after")
    def _source_is_configured(self) -> OhlcvIngest:
        if self.source == "csv" and not self.csv.files:
            raise ValueError(
                "source is 'csv' but csv.files is empty; give one entry per "
                "series, e.g. ohlcv.ingest.csv.files.GOOG=path/or/url.csv"
            )
        if self.source == "yfinance" and not self.yfinance.tickers:
            raise ValueError(
                "source is 'yfinance' but yfinance.tickers is empty; e.g. "
                "ohlcv.ingest.yfinance.tickers=[MSFT]"
            )
        return self


class OhlcvValidate(Strict):
    policy: Literal["fail", "drop", "ffill"] = "fail"
    max_gap_days: Annotated[int, Field(ge=1, le=366)] = 5
    min_rows: Annotated[int, Field(ge=2)] = 100


class OhlcvFeaturize(Strict):
    derived: list[Literal["log_return", "hl_range", "volume_z"]] = Field(default_factory=list)
    look_back: Annotated[int, Field(ge=1, le=1000)] = 60
    horizon: Annotated[int, Field(ge=1, le=250)] = 1
    target: Literal["close", "log_return"] = "close"
    val_fraction: OpenFraction = 0.15
    test_fraction: OpenFraction = 0.15

    @model_validator(mode="after")
    def _distinct_and_room_to_train(self) -> OhlcvFeaturize:
        if len(set(self.derived)) != len(self.derived):
            raise ValueError(f"derived lists a feature twice: {self.derived}")
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                "val_fraction + test_fraction leaves almost nothing to train on; "
                "keep their sum below 0.9"
            )
        return self


class SequenceTransformerArch(AttentionWidth):
    """A transformer encoder over the window: input projection, learned positions,
    attention and feed-forward sublayers with residuals and layer norm, pooled head."""

    blocks: Annotated[int, Field(ge=1, le=12)] = 2
    ff_dim: Annotated[int, Field(ge=1, le=4096)] = 64


class OhlcvTrain(Techniques):
    # auto: the guide's choose_model for the domain's task (sequences: lstm); the guide's
    # stacked create_rnn is lstm with units [64, 32] and dropout 0
    model: Literal["auto", "lstm", "gru", "simple_rnn", "transformer"] = "lstm"
    units: Annotated[list[PositiveInt], Field(min_length=1, max_length=6)] = [50, 50]
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2
    transformer: SequenceTransformerArch = SequenceTransformerArch()
    loss: Literal["mse", "huber"] = "mse"
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 32
    epochs: Annotated[int, Field(ge=1, le=1000)] = 30
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 1e-3
    early_stopping_patience: Annotated[int, Field(ge=0)] = 5
    reduce_lr_patience: Annotated[int, Field(ge=0)] = 3
    reduce_lr_factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5


class OhlcvEvaluate(Strict):
    moving_average_window: Annotated[int, Field(ge=1, le=500)] = 20
    walk_forward_folds: Annotated[int, Field(ge=0, le=20)] = 3
    walk_forward_min_train: Annotated[int, Field(ge=10)] = 500  # rows in the first fold
    walk_forward_epochs: Annotated[int, Field(ge=1, le=1000)] | None = None  # None: train.epochs


OhlcvGateMetric = Literal["relative_mae", "relative_rmse", "mase", "rmse", "mae", "mape"]


class OhlcvRegister(Strict):
    model_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._{}-]*$")] = (
        "ohlcv-forecaster"
    )
    gate_metric: OhlcvGateMetric = "relative_mae"
    max_value: Annotated[float, Field(gt=0.0)] = 1.0
    max_increase: Annotated[float, Field(ge=0.0)] = 0.0
    allow_incomparable: bool = False


Variant = Literal[
    "keras_float32",
    "tflite_float32",
    "tflite_float16",
    "tflite_dynamic",
    "tflite_int8",
    "pruned",
    "pruned_int8",
]
ALL_VARIANTS: list[str] = [
    "keras_float32",
    "tflite_float32",
    "tflite_float16",
    "tflite_dynamic",
    "tflite_int8",
    "pruned",
    "pruned_int8",
]


class Pruning(Strict):
    initial_sparsity: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.30
    final_sparsity: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.80
    epochs: Annotated[int, Field(ge=1, le=100)] = 4
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 32
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = 1e-3

    @model_validator(mode="after")
    def _sparsity_grows(self) -> Pruning:
        if self.final_sparsity < self.initial_sparsity:
            raise ValueError(
                f"final_sparsity {self.final_sparsity} is below initial_sparsity "
                f"{self.initial_sparsity}; pruning only removes weights"
            )
        return self


class Compress(Strict):
    variants: Annotated[list[Variant], Field(min_length=1)] = Field(
        default_factory=lambda: list(ALL_VARIANTS)
    )
    representative_samples: Annotated[int, Field(ge=1, le=100_000)] = 200
    threads: Annotated[int, Field(ge=1, le=256)] = 1
    latency_runs: Annotated[int, Field(ge=5, le=100_000)] = 100
    timeout_seconds: Annotated[int, Field(ge=30)] = 1800
    prune: Pruning = Pruning()

    @field_validator("variants")
    @classmethod
    def _reference_first(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"variants lists a name twice: {value}")
        if "keras_float32" not in value:
            raise ValueError(
                "variants must include keras_float32, the reference every "
                "other variant is compared with"
            )
        return ["keras_float32", *[v for v in value if v != "keras_float32"]]


class Promote(Strict):
    """Which variant is deployed: the smallest (by ``rank_by``) among ``candidates`` whose
    test metric is within ``metric_tolerance`` of the Keras reference's and whose parity
    passes; sizes within ``size_tie`` of each other are a tie, broken by median latency.
    When none qualifies, ``fallback`` deploys the reference or nothing."""

    candidates: list[Variant] | None = None  # None: every variant compress built but the reference
    rank_by: Literal["size_bytes", "gzip_bytes"] = "size_bytes"
    size_tie: Annotated[float, Field(ge=0.0, le=1.0)] = 0.05
    fallback: Literal["reference", "none"] = "reference"


class XrayPromote(Promote):
    metric_tolerance: Annotated[float, Field(ge=0.0, le=1.0)] = 0.005  # test ROC-AUC drop
    # share of test images given the reference's class (each variant at its own threshold,
    # chosen on validation as evaluate chose the reference's)
    min_decision_agreement: Fraction = 0.97


class OhlcvPromote(Promote):
    metric_tolerance: Annotated[float, Field(ge=0.0)] = 0.02  # rise of test MAE/persistence
    # largest |variant forecast - Keras forecast| as a share of the last close
    max_relative_diff: Annotated[float, Field(gt=0.0)] = 0.01


class SearchDim(Strict):
    """One searched hyper-parameter: ``choice`` (a list of values, lists allowed, e.g. the
    filters per block) or ``range`` (low, high; integer or float as the train parameter
    is, with an optional ``step`` and ``sampling: log`` for rates)."""

    choice: Annotated[list[Any], Field(min_length=1)] | None = None
    range: tuple[float | int, float | int] | None = None
    step: Annotated[float, Field(gt=0)] | None = None
    sampling: Literal["linear", "log"] = "linear"

    @model_validator(mode="after")
    def _one_kind(self) -> SearchDim:
        if (self.choice is None) == (self.range is None):
            raise ValueError("give exactly one of `choice: [...]` or `range: [low, high]`")
        if self.range is not None:
            low, high = self.range
            if not low < high:
                raise ValueError(f"range [{low}, {high}] must have low < high")
            if self.sampling == "log" and low <= 0:
                raise ValueError(f"sampling: log needs a positive low end, got {low}")
        elif self.step is not None or self.sampling != "linear":
            raise ValueError("step and sampling apply to a range, not to a choice")
        return self

    def candidates(self) -> list[Any]:
        """The values that must each be a valid train parameter: every choice, or both ends."""
        return list(self.choice) if self.choice is not None else list(self.range or ())


class DaskCluster(Strict):
    address: str | None = None  # a running scheduler, tcp://host:8786; None: a local cluster
    workers: Annotated[int, Field(ge=1, le=1024)] = 2  # local cluster: worker processes
    threads_per_worker: Annotated[int, Field(ge=1, le=256)] = 1


class Tune(Strict):
    enabled: bool = True
    algorithm: Literal["random", "hyperband", "bayesian"] = "random"
    max_trials: Annotated[int, Field(ge=1, le=10_000)] = 4  # random, bayesian
    epochs: Annotated[int, Field(ge=1, le=1000)] = 3  # per trial; hyperband: the most any gets
    time_budget_seconds: Annotated[int, Field(ge=1)] = 600  # no trial starts after this
    # run the train params as written as a trial too, so tuning replaces them only with a
    # configuration that scores better on the same budget
    baseline: bool = True
    hyperband_factor: Annotated[int, Field(ge=2, le=10)] = 3
    executor: Literal["local", "dask"] = "local"
    dask: DaskCluster = DaskCluster()
    search_space: dict[str, SearchDim] = {}


# what a trial's budget sets: searching it would fight the tuner
UNSEARCHABLE = ("epochs",)


def searchable_keys(train: BaseModel) -> list[str]:
    """Train parameters a search may set: top-level ones, and an architecture's sizes as
    dotted keys (``vit.depth``)."""
    keys = []
    for name in type(train).model_fields:
        if name in UNSEARCHABLE:
            continue
        sub = getattr(train, name)
        if isinstance(sub, BaseModel):
            keys += [f"{name}.{inner}" for inner in type(sub).model_fields]
        else:
            keys.append(name)
    return keys


def get_value(model: BaseModel, key: str) -> Any:
    """A parameter by its (dotted) key."""
    for part in key.split("."):
        model = getattr(model, part)
    return model


def with_values(model: BaseModel, values: dict[str, Any]) -> Any:
    """A copy of ``model`` with (dotted) keys set, validated as on load."""
    data = model.model_dump()
    for key, value in values.items():
        *parents, last = key.split(".")
        target = data
        for part in parents:
            target = target[part]
        target[last] = value
    return type(model).model_validate(data)


def check_search_space(train: BaseModel, space: dict[str, SearchDim]) -> None:
    """Every searched key is a train parameter and every candidate value a valid one, so
    a typo in the search space fails on load, not after an hour of trials."""
    fields = searchable_keys(train)
    for key, dim in space.items():
        if key not in fields:
            raise ValueError(
                f"tune.search_space.{key} is not a train parameter that can be "
                f"searched; searchable: {', '.join(fields)}"
            )
        for value in dim.candidates():
            try:
                with_values(train, {key: value})
            except ValidationError as exc:
                problem = "; ".join(e["msg"] for e in exc.errors())
                raise ValueError(
                    f"tune.search_space.{key}: {value!r} is not a valid train.{key} ({problem})"
                ) from None


# ``register`` is the stage's name, and so its params key; pydantic warns that it shadows
# ABCMeta.register, which no code here calls on these models.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

    class Xray(Strict):
        classes: Annotated[list[str], Field(min_length=2, max_length=2)] = ["normal", "pneumonia"]
        ingest: XrayIngest = XrayIngest()
        featurize: XrayFeaturize = XrayFeaturize()
        augment: Augment = Augment()
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
        register: Register = Register()

        @field_validator("classes")
        @classmethod
        def _distinct(cls, value: list[str]) -> list[str]:
            if len({c.lower() for c in value}) != len(value):
                raise ValueError(f"class names must be distinct, got {value}")
            return value

        @model_validator(mode="after")
        def _search_space_fits_train(self) -> Xray:
            check_search_space(self.train, self.tune.search_space)
            return self

        @model_validator(mode="after")
        def _class_dirs_match_classes(self) -> Xray:
            dirs = self.ingest.folder.class_dirs
            if set(dirs) != set(self.classes):
                raise ValueError(
                    f"ingest.folder.class_dirs has keys {sorted(dirs)} but classes are "
                    f"{self.classes}; give one entry per class"
                )
            return self

    class Ohlcv(Strict):
        ingest: OhlcvIngest = OhlcvIngest()
        validation: OhlcvValidate = OhlcvValidate()
        featurize: OhlcvFeaturize = OhlcvFeaturize()
        train: OhlcvTrain = OhlcvTrain()
        evaluate: OhlcvEvaluate = OhlcvEvaluate()
        tune: Tune = Tune(
            search_space={
                "units": SearchDim(choice=[[32], [50, 50], [64, 32]]),
                "dropout": SearchDim(range=(0.0, 0.4)),
                "learning_rate": SearchDim(range=(1e-4, 1e-2), sampling="log"),
            }
        )
        compress: Compress = Compress()
        promote: OhlcvPromote = OhlcvPromote()
        register: OhlcvRegister = OhlcvRegister()

        @model_validator(mode="after")
        def _search_space_fits_train(self) -> Ohlcv:
            check_search_space(self.train, self.tune.search_space)
            return self

        @model_validator(mode="after")
        def _one_model_name_per_series(self) -> Ohlcv:
            if len(series_names(self.ingest)) > 1 and "{series}" not in self.register.model_name:
                raise ValueError(
                    f"{len(series_names(self.ingest))} series each get their own registered "
                    f"model, but register.model_name {self.register.model_name!r} has no "
                    "{series} placeholder; use e.g. 'ohlcv-forecaster-{series}'"
                )
            return self

        def model_name(self, series: str) -> str:
            """The registered model of one series."""
            return self.register.model_name.replace("{series}", series)


def series_names(ingest: OhlcvIngest) -> list[str]:
    """The names of the price series the configured source yields, in order.

    A yfinance ticker may hold characters a path or model name cannot (``^GSPC``,
    ``BRK/B``): those become ``_``.
    """
    if ingest.source == "synthetic":
        names = list(ingest.synthetic.names)
    elif ingest.source == "csv":
        names = list(ingest.csv.files)
    else:
        names = [
            re.sub(r"[^A-Za-z0-9._-]", "_", t).lstrip("._-") or "ticker"
            for t in ingest.yfinance.tickers
        ]
    if len(set(names)) != len(names):
        raise ValueError(f"series names must be distinct, got {names}")
    return names


class Serve(Strict):
    """What ``nnpipe serve`` serves when no ``--domain`` or ``--alias`` is given. The server
    is ready only when every model of these domains has a version under the alias."""

    domains: Annotated[list[Literal["xray", "ohlcv"]], Field(min_length=1)] = ["xray", "ohlcv"]
    alias: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")] = "champion"
    # with NNPIPE_API_KEY set, every route but /health and /ready needs the key, unless
    # named here: models (/models), metrics (/metrics), docs (/docs, /openapi.json)
    public_routes: list[Literal["models", "metrics", "docs"]] = []
    # request limits: each is checked before the work it bounds is done
    max_request_mb: Annotated[float, Field(gt=0, le=1024)] = 10.0
    max_batch: Annotated[int, Field(ge=1, le=10_000)] = 256
    max_pixels: Annotated[int, Field(ge=1)] = 4096 * 4096  # per image, from its header
    max_side: Annotated[int, Field(ge=1)] = 4096
    max_batch_pixels: Annotated[int, Field(ge=1)] = 4 * 4096 * 4096  # allocated, padded too
    max_bars: Annotated[int, Field(ge=1, le=1_000_000)] = 10_000  # rows of `bars`/`data`
    decode_threads: Annotated[int, Field(ge=1, le=64)] = 2  # image decoding off the loop

    @field_validator("domains")
    @classmethod
    def _distinct_domains(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"domains must be distinct, got {value}")
        return value


class Params(Strict):
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 42
    paths: Paths = Paths()
    mlflow: MlflowParams = MlflowParams()
    xray: Xray = Xray()
    ohlcv: Ohlcv = Ohlcv()
    serve: Serve = Serve()

    def domain(self, name: str) -> Any:
        """The section of one domain, by the name used in ``dvc.yaml`` (``xray``, ``ohlcv``)."""
        if name not in DOMAINS:
            raise ParamsError(f"unknown domain {name!r}; known: {', '.join(DOMAINS)}")
        return getattr(self, name)


DOMAINS = ("xray", "ohlcv")


def _format_errors(exc: ValidationError, origin: str) -> str:
    lines = [f"{origin} is not valid:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (a typo? see params.yaml for the known keys)")
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            lines.append(f"  {key}: {err['msg']}{shown}")
    return "\n".join(lines)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and a YAML-parsed value (as ``dvc exp run -S``)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ParamsError(f"override {text!r} is not of the form key.path=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ParamsError(f"override {text!r}: value is not valid YAML ({exc})") from None
    return key.strip().split("."), value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with dotted overrides set; unknown keys fail in validation."""
    result = yaml.safe_load(yaml.safe_dump(raw)) or {}
    for text in overrides:
        path, value = parse_override(text)
        node = result
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ParamsError(f"override {text!r}: {part!r} is a value, not a section")
            node = child
        node[path[-1]] = value
    return result


def validate_params(raw: Any, origin: str = PARAMS_FILE) -> Params:
    """Validate a mapping into :class:`Params`, or raise :class:`ParamsError` naming each key."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{origin} must be a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise ParamsError(_format_errors(exc, origin)) from None


def read_params_file(path: str | os.PathLike[str] = PARAMS_FILE) -> dict[str, Any]:
    """Read the raw YAML mapping of a params file."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found; run from the project root or pass --params PATH")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path} is not valid YAML: {exc}") from None
    if raw is None:  # DVC reads the same file and would fail on every stage's params
        raise ParamsError(
            f"{path} is empty: restore it (`git checkout {path.name}`); every "
            "stage in dvc.yaml reads its sections"
        )
    return raw


def load_params(
    path: str | os.PathLike[str] = PARAMS_FILE, overrides: list[str] | None = None
) -> Params:
    """Load, override and validate the params file."""
    raw = apply_overrides(read_params_file(path), overrides or [])
    suffix = f" with overrides {overrides}" if overrides else ""
    return validate_params(raw, origin=f"{path}{suffix}")


def write_overrides(path: str | os.PathLike[str], overrides: list[str]) -> Params:
    """Write validated overrides into the params file, keeping its comments and order.

    This is what ``dvc exp run -S`` does to the workspace: the file on disk stays the
    record of what ran, so ``dvc.lock`` and ``dvc status`` agree with every run.
    """
    from ruamel.yaml import YAML  # DVC's own YAML library: round-trips comments

    params = load_params(path, overrides)  # validates before anything is written
    ryaml = YAML()
    ryaml.preserve_quotes = True
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        doc = ryaml.load(fh)
    for text in overrides:
        keys, value = parse_override(text)
        node = doc
        for part in keys[:-1]:
            if part not in node or node[part] is None:
                node[part] = {}
            node = node[part]
        node[keys[-1]] = value
    buf = io.StringIO()
    ryaml.dump(doc, buf)
    atomic_write_text(path, buf.getvalue())
    return params


def dump_params(params: Params) -> str:
    """The resolved params as YAML (every default made explicit)."""
    return yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False)
