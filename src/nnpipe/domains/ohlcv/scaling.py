"""Scaling price features with statistics of the training rows alone: a scaler fitted on
the whole series would tell training where prices will go (see
:mod:`nnpipe.domains.ohlcv.windows` for the other ways a forecaster can look ahead)."""

from __future__ import annotations

from typing import Any, cast

import numpy as np

__all__ = ["TrainOnlyScaler", "scale_splits"]


class TrainOnlyScaler:
    """Per-feature min-max scaling to [0, 1], fitted on the training rows alone.

    Values outside the training range map outside [0, 1] and are not clipped: clipping
    would hide from the model that prices left the range it has seen, which is exactly
    what happens to a trending stock in the test period.
    """

    def __init__(self, feature_names: list[str] | None = None) -> None:
        self.feature_names = list(feature_names) if feature_names is not None else None
        self.data_min: np.ndarray | None = None
        self.data_max: np.ndarray | None = None

    @property
    def fitted(self) -> bool:
        return self.data_min is not None

    def _stats(self) -> tuple[np.ndarray, np.ndarray]:
        """The fitted minimum and maximum (callers check :attr:`fitted` first)."""
        return cast(np.ndarray, self.data_min), cast(np.ndarray, self.data_max)

    def _range(self) -> np.ndarray:
        data_min, data_max = self._stats()
        span = data_max - data_min
        return np.where(span > 0, span, 1.0)  # a constant feature maps to 0, not to NaN

    def _check(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        if values.ndim != 2:
            raise ValueError(f"expected a 2-D array (rows, features), got shape {values.shape}")
        if self.data_min is not None and values.shape[1] != len(self.data_min):
            raise ValueError(
                f"the scaler was fitted on {len(self.data_min)} feature(s), got {values.shape[1]}"
            )
        return values

    def fit(self, values: np.ndarray) -> TrainOnlyScaler:
        """Learn each column's min and max from ``values``: pass the training rows only."""
        values = self._check(values)
        if len(values) == 0:
            raise ValueError("cannot fit a scaler on zero rows")
        if not np.isfinite(values).all():
            raise ValueError(
                "cannot fit a scaler on NaN or infinite values; drop the rows "
                "that lack history (see add_features) before fitting"
            )
        if self.feature_names is not None and len(self.feature_names) != values.shape[1]:
            raise ValueError(
                f"{len(self.feature_names)} feature name(s) for {values.shape[1]} column(s)"
            )
        self.data_min, self.data_max = values.min(axis=0), values.max(axis=0)
        return self

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Scale ``values`` (any rows) with the training statistics."""
        if not self.fitted:
            raise RuntimeError("fit the scaler on the training rows before transforming")
        values = self._check(values)
        return (values - self.data_min) / self._range()

    def inverse_transform_column(self, values: np.ndarray, column_index: int) -> np.ndarray:
        """Undo the scaling of one feature, e.g. turn scaled Close predictions into prices."""
        if not self.fitted:
            raise RuntimeError("fit the scaler before inverting it")
        data_min, _ = self._stats()
        if not -len(data_min) <= column_index < len(data_min):
            raise IndexError(
                f"column_index {column_index} is out of range for {len(data_min)} feature(s)"
            )
        values = np.asarray(values, dtype=float)
        return values * self._range()[column_index] + data_min[column_index]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready statistics, to be saved beside the model that needs them."""
        if not self.fitted:
            raise RuntimeError("fit the scaler before saving it")
        data_min, data_max = self._stats()
        return {
            "kind": "minmax",
            "feature_names": self.feature_names,
            "data_min": data_min.tolist(),
            "data_max": data_max.tolist(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainOnlyScaler:
        """Rebuild a scaler saved with :meth:`to_dict`."""
        if data.get("kind") != "minmax" or not {"data_min", "data_max"} <= set(data):
            raise ValueError(
                "not a saved min-max scaler: expected keys kind='minmax', "
                f"data_min, data_max; got {sorted(data)}"
            )
        data_min = np.asarray(data["data_min"], dtype=float)
        data_max = np.asarray(data["data_max"], dtype=float)
        if data_min.shape != data_max.shape or data_min.ndim != 1:
            raise ValueError("saved scaler has data_min and data_max of different shapes")
        scaler = cls(data.get("feature_names"))
        scaler.data_min, scaler.data_max = data_min, data_max
        return scaler


def scale_splits(
    values: np.ndarray, splits: dict[str, tuple[int, int]], feature_names: list[str] | None = None
) -> tuple[np.ndarray, TrainOnlyScaler]:
    """All rows scaled by a :class:`TrainOnlyScaler` fitted on the ``train`` range only."""
    start, end = splits["train"]
    scaler = TrainOnlyScaler(feature_names).fit(np.asarray(values, dtype=float)[start:end])
    return scaler.transform(values), scaler
