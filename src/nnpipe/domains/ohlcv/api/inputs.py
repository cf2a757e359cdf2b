"""What an OHLCV request carries, bounded by its schema (with the server's limits in it)
and checked by ingest's bar rules before any forecast is made: bars (``bars`` or
``data``) for one forecast, or raw windows (``windows``) for a batch."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from nnpipe.serving.predictor import PredictionInputError
from nnpipe.serving.settings import ServeSettings

MAX_PRICE = 1e9  # per share: 1e300 is no price, and a model fed it answers nonsense
MAX_VOLUME = 1e15
MAX_FEATURE = 1e15  # any raw window value (volumes included)
MAX_FEATURES = 64  # values per window row
BAR_RULES = (
    "a bar must have prices > 0, High >= Open, Close and Low, "
    "Low <= Open and Close, and Volume >= 0"
)
Refuse = Callable[[np.ndarray, str], None]


# strict: `false` or "1.5" is no number here (lax pydantic would take them)
Price = Annotated[float, Field(gt=0, le=MAX_PRICE, strict=True, allow_inf_nan=False)]
Volume = Annotated[float, Field(ge=0, le=MAX_VOLUME, strict=True, allow_inf_nan=False)]
Value = Annotated[float, Field(ge=-MAX_FEATURE, le=MAX_FEATURE, strict=True, allow_inf_nan=False)]


class Bar(BaseModel):
    """One daily bar (the column names as ingest reads them, any case)."""

    model_config = ConfigDict(extra="ignore")

    Open: Price
    High: Price
    Low: Price
    Close: Price
    Volume: Volume

    @model_validator(mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k).strip().capitalize(): v for k, v in value.items()}
        return value


def request_model(settings: ServeSettings) -> type[BaseModel]:
    """The JSON body of the OHLCV routes, with this server's limits in its schema."""
    batch, rows = settings.max_batch, settings.max_bars

    class OhlcvJson(BaseModel):
        """``bars``: rows with Open, High, Low, Close, Volume (oldest first), for one
        forecast; ``data``: the same as lists of five numbers; ``windows``: raw windows
        (look-back rows of the model's features), for a batch."""

        model_config = ConfigDict(extra="forbid")

        bars: Annotated[list[Bar], Field(min_length=1, max_length=rows)] | None = None
        data: (
            Annotated[
                list[tuple[Price, Price, Price, Price, Volume]],
                Field(min_length=1, max_length=rows),
            ]
            | None
        ) = None
        windows: (
            Annotated[
                list[
                    Annotated[
                        list[Annotated[list[Value], Field(min_length=1, max_length=MAX_FEATURES)]],
                        Field(min_length=1, max_length=rows),
                    ]
                ],
                Field(min_length=1, max_length=batch),
            ]
            | None
        ) = None

    return OhlcvJson


def check_bars(frame: Any) -> None:
    """Bars checked by ingest's own rules (prices > 0, High >= Low and the bar's Open and
    Close inside them, volume >= 0), or a 422 naming the rows that break them."""
    import pandas as pd

    from nnpipe.domains.ohlcv.sources import OhlcvDataError
    from nnpipe.domains.ohlcv.validation import validate_ohlcv

    dated = frame.set_axis(pd.date_range("2000-01-01", periods=len(frame), freq="D"))
    try:
        validate_ohlcv(dated, max_gap_days=10**6, policy="fail", min_rows=1)
    except OhlcvDataError as exc:
        message = str(exc).split("\nTo go on:")[0].replace(" as in the file", " as sent")
        message = re.sub(r" \(\d{4}-\d\d-\d\d\)", "", message).replace("\n  ", "; ")
        message = message.replace("price data", "the bars", 1)
        raise PredictionInputError(f"{message}; send real bars (oldest first)") from None


def check_windows(windows: np.ndarray, features: Sequence[str]) -> None:
    """Raw windows (n, look_back, features) checked as ``/predict/ohlcv`` checks bars, or a
    422 naming the window and its row.

    A window's rows are training's feature rows
    (:func:`nnpipe.domains.ohlcv.windows.add_features`): the five bar columns as they are
    (the model scales them itself), so ingest's bar rules and the bars' bounds apply to
    them, then derived features, which are no prices: each must agree with the bar it is
    derived from (``hl_range`` = (High - Low) / Close; ``log_return`` = log(Close / the
    row before's Close), from a window's second row on) or be within the range it can take
    (``volume_z``, a z-score over 20 volumes, is at most 19 / sqrt(20) in size). A window
    of another width is left to the predictor to refuse."""
    from nnpipe.domains.ohlcv.sources import COLUMNS

    names = list(features)
    if windows.ndim != 3 or windows.shape[2] != len(names) or windows.size == 0:
        return
    col = {name: windows[..., names.index(name)] for name in names}
    refuse = _refuser(windows, names)
    if all(c in col for c in COLUMNS):  # ingest's rules, said by ingest's own check
        _check_bar_rules(windows, names, col, refuse)
    _check_bounds(col, refuse)
    _check_derived(windows, col, refuse)


def _refuser(windows: np.ndarray, names: list[str]) -> Refuse:
    def refuse(bad: np.ndarray, what: str) -> None:
        if bad.any():
            i, r = (int(x) for x in np.argwhere(bad)[0])
            row = ", ".join(f"{n}={windows[i, r, k]:g}" for k, n in enumerate(names))
            raise PredictionInputError(
                f"`windows[{i}]` row {r}: {what} ({row}; {int(bad.sum())} row(s) in all "
                f"break this); send windows of real bars, rows of {', '.join(names)}"
            )

    return refuse


def _check_bar_rules(
    windows: np.ndarray, names: list[str], col: dict[str, np.ndarray], refuse: Refuse
) -> None:
    """Ingest's bar rules on every row, said by ingest's own check of the first window
    that breaks them."""
    import pandas as pd

    from nnpipe.domains.ohlcv.sources import COLUMNS, PRICE_COLUMNS

    o, h, lo, c = (col[n] for n in PRICE_COLUMNS)
    bad = (
        (o <= 0)
        | (h <= 0)
        | (lo <= 0)
        | (c <= 0)
        | (col["Volume"] < 0)
        | (h < np.maximum(o, c))
        | (lo > np.minimum(o, c))
        | (h < lo)
    )
    if not bad.any():
        return
    i, windows_bad = int(np.argwhere(bad)[0][0]), int(bad.any(axis=1).sum())
    others = f" ({windows_bad} windows break them)" if windows_bad > 1 else ""
    try:
        check_bars(
            pd.DataFrame(windows[i][:, [names.index(n) for n in COLUMNS]], columns=list(COLUMNS))
        )
    except PredictionInputError as exc:
        raise PredictionInputError(
            str(exc)
            .replace("the bars", f"`windows[{i}]`", 1)
            .replace(
                "; send real bars (oldest first)",
                f"{others}; send windows of real bars (oldest first)",
            )
        ) from None
    refuse(bad, BAR_RULES)


def _check_bounds(col: dict[str, np.ndarray], refuse: Refuse) -> None:
    from nnpipe.domains.ohlcv.sources import PRICE_COLUMNS

    for name in (c for c in PRICE_COLUMNS if c in col):
        refuse(
            (col[name] <= 0) | (col[name] > MAX_PRICE),
            f"{name} must be a price > 0 and at most {MAX_PRICE:g}",
        )
    if "Volume" in col:
        refuse(
            (col["Volume"] < 0) | (col["Volume"] > MAX_VOLUME),
            f"Volume must be >= 0 and at most {MAX_VOLUME:g}",
        )


def _check_derived(windows: np.ndarray, col: dict[str, np.ndarray], refuse: Refuse) -> None:
    """Derived features against the bars they come from, or the range they can take."""
    if "hl_range" in col and all(n in col for n in ("High", "Low", "Close")):
        expected = (col["High"] - col["Low"]) / col["Close"]
        refuse(
            ~np.isclose(col["hl_range"], expected, rtol=1e-3, atol=1e-6),
            "hl_range must be (High - Low) / Close of its row",
        )
    elif "hl_range" in col:
        refuse(col["hl_range"] < 0, "hl_range, (High - Low) / Close, must be >= 0")
    if "log_return" in col and "Close" in col and windows.shape[1] > 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = np.log(col["Close"][:, 1:] / col["Close"][:, :-1])
        bad = np.zeros(col["Close"].shape, dtype=bool)
        bad[:, 1:] = ~np.isclose(col["log_return"][:, 1:], expected, rtol=1e-3, atol=1e-6)
        refuse(bad, "log_return must be log(Close / the previous row's Close)")
    if "volume_z" in col:
        from nnpipe.domains.ohlcv.windows import VOLUME_Z_WINDOW

        most = (VOLUME_Z_WINDOW - 1) / VOLUME_Z_WINDOW**0.5  # one volume apart from 19
        refuse(
            np.abs(col["volume_z"]) > most + 1e-6,
            f"volume_z, a z-score over "
            f"{VOLUME_Z_WINDOW} volumes, cannot be over {most:.4f} in size",
        )
