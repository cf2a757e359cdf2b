"""The ``ohlcv`` section of params.yaml: the stock-price domain's own parameters.

Every class is named ``Ohlcv<Key>`` for the key it validates (``OhlcvTrain`` for
``ohlcv.train``); :class:`OhlcvParams` is the whole section, which the domain declares as
its ``params_model`` and :mod:`nnpipe.config.model` places under the ``ohlcv`` key.
"""

from __future__ import annotations

import re
import warnings
from typing import Annotated, Literal

from pydantic import Field, model_validator

from nnpipe.config.base import OpenFraction, PositiveInt, Strict
from nnpipe.config.common import AttentionWidth, Compress, Monitor, Promote, Techniques, Tune
from nnpipe.config.search_space import SearchDim, check_search_space

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


class OhlcvYfinanceSource(Strict):
    tickers: Annotated[list[str], Field(max_length=50)] = Field(default_factory=list)
    start: DateText | None = "2015-01-01"
    end: DateText | None = None
    interval: Literal["1d", "1wk", "1h", "30m", "15m", "5m"] = "1d"


class OhlcvIngest(Strict):
    source: Literal["synthetic", "csv", "yfinance"] = "synthetic"
    synthetic: OhlcvSyntheticSource = OhlcvSyntheticSource()
    csv: OhlcvCsvSource = OhlcvCsvSource()
    yfinance: OhlcvYfinanceSource = OhlcvYfinanceSource()

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


class OhlcvValidation(Strict):
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


class OhlcvTransformerArch(AttentionWidth):
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
    transformer: OhlcvTransformerArch = OhlcvTransformerArch()
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


class OhlcvPromote(Promote):
    metric_tolerance: Annotated[float, Field(ge=0.0)] = 0.02  # rise of test MAE/persistence
    # largest |variant forecast - Keras forecast| as a share of the last close
    max_relative_diff: Annotated[float, Field(gt=0.0)] = 0.01


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


# ``register``: see nnpipe.domains.xray.params
class OhlcvMonitor(Monitor):
    """The OHLCV checks (the daily return and the relative volume, each by KS among the
    reference's windows; the volatility regime; the PSI of the forecast's implied
    return) and the live score: logged forecasts against the bars that followed, an
    alarm when their MAE over persistence's passes the ceiling. The defaults hold the
    false alarm rate of a calm GARCH series near 5% (docs/monitoring.md)."""

    window_hours: Annotated[float, Field(gt=0)] = 24.0 * 30  # a month of daily forecasts
    min_rows: Annotated[int, Field(ge=5)] = 20
    ks_alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.005
    # the window's log volatility against the training split's windows of its length
    # (a t prediction interval): drifted below this two-sided p-value
    volatility_alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.01
    max_relative_mae: Annotated[float, Field(gt=0)] = 1.2
    min_scored: Annotated[int, Field(ge=2)] = 10  # forecasts with their actual, to score


with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

    class OhlcvParams(Strict):
        ingest: OhlcvIngest = OhlcvIngest()
        validation: OhlcvValidation = OhlcvValidation()
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
        monitor: OhlcvMonitor = OhlcvMonitor()

        @model_validator(mode="after")
        def _search_space_fits_train(self) -> OhlcvParams:
            check_search_space(self.train, self.tune.search_space)
            return self

        @model_validator(mode="after")
        def _one_model_name_per_series(self) -> OhlcvParams:
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
