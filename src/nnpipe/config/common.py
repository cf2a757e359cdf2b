"""The sections every project has (paths, MLflow, serving) and the ones every domain's
section holds (training techniques, tuning, compression, promotion), and the contract a
domain's section meets (:class:`DomainSection`). Each domain's own sections live in
``nnpipe.domains.<name>.params``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Protocol, get_args

from pydantic import Field, field_validator, model_validator

from nnpipe.config.base import Strict
from nnpipe.config.search_space import SearchDim


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


class AttentionWidth(Strict):
    """Multi-head attention splits ``width`` evenly between its ``heads``."""

    width: Annotated[int, Field(ge=4, le=1024)] = 32
    heads: Annotated[int, Field(ge=1, le=32)] = 2

    @model_validator(mode="after")
    def _heads_divide_width(self) -> AttentionWidth:
        if self.width % self.heads:
            raise ValueError(f"width {self.width} must be a multiple of heads {self.heads}")
        return self


Variant = Literal[
    "keras_float32",
    "tflite_float32",
    "tflite_float16",
    "tflite_dynamic",
    "tflite_int8",
    "pruned",
    "pruned_int8",
]
ALL_VARIANTS: list[str] = list(get_args(Variant))  # in Variant's order


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
        default_factory=lambda: list(get_args(Variant))
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


class Monitor(Strict):
    """What the monitor compares (``nnpipe monitor``): the logged predictions of the last
    ``window_hours`` (or a batch) against the deployed model's reference, the training
    split promote described beside it; each check drifts at its own threshold."""

    window_hours: Annotated[float, Field(gt=0)] = 24.0
    min_rows: Annotated[int, Field(ge=5)] = 30  # fewer predictions than this are refused
    ks_alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.01  # KS / chi-square p-values
    psi: Annotated[float, Field(gt=0.0)] = 0.2  # population stability index
    reference_rows: Annotated[int, Field(ge=50, le=100_000)] = 1000  # promote's sample
    # after an alarm, no new retraining event for this long (a storm of retrains)
    retrain_cooldown_hours: Annotated[float, Field(ge=0)] = 24.0


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


class Serve(Strict):
    """What ``nnpipe serve`` serves when no ``--domain`` or ``--alias`` is given. The server
    is ready only when every model of these domains has a version under the alias."""

    # the Params model (nnpipe.config.model) narrows it to the registered domains' names
    # and makes them all the default
    domains: Annotated[list[str], Field(min_length=1)]
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
    # every prediction's record (nnpipe.monitoring.prediction_log): a file path in the
    # project, or a postgresql:// URL (NNPIPE_PREDICTION_LOG wins); "" keeps no log
    prediction_log: str = "logs/predictions.sqlite"
    log_images: bool = False  # also keep each image (PNG), not only its statistics

    @field_validator("domains")
    @classmethod
    def _distinct_domains(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"domains must be distinct, got {value}")
        return value


class IngestSection(Protocol):
    """What generic code reads of a domain's ``ingest`` section."""

    @property
    def source(self) -> str: ...


class DomainSection(Protocol):
    """What generic code (tuning, tracking, compression) reads of any domain's section;
    each domain's model (``XrayParams``, ``OhlcvParams``) has these and its own."""

    @property
    def ingest(self) -> IngestSection: ...

    @property
    def train(self) -> Techniques: ...

    @property
    def tune(self) -> Tune: ...

    @property
    def compress(self) -> Compress: ...

    @property
    def promote(self) -> Promote: ...
