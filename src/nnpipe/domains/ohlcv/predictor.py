"""Serving the forecaster: raw windows of bars, or a table of bars from which the derived
features are computed by training's :func:`nnpipe.domains.ohlcv.windows.add_features`; the model
scales them itself and the forecast is converted to a Close by training's code."""

from __future__ import annotations

from typing import Any

import numpy as np

from nnpipe.domains.ohlcv.artifacts import OhlcvServedSpec
from nnpipe.serving.predictor import PredictionInputError, Predictor, as_array, finite


class OhlcvPredictor(Predictor):
    """Next-period forecasts from windows of daily bars."""

    spec: OhlcvServedSpec

    @property
    def window_shape(self) -> tuple[int, int]:
        return self.spec.look_back, len(self.spec.features)

    def windows_from_bars(self, bars: Any) -> np.ndarray:
        """The last window of a table of bars (Open, High, Low, Close, Volume, oldest first),
        with the derived features computed by training's code."""
        import pandas as pd

        from nnpipe.domains.ohlcv.windows import add_features

        frame = pd.DataFrame(bars)
        frame.columns = [str(c).strip().capitalize() for c in frame.columns]
        missing = [c for c in ("Open", "High", "Low", "Close", "Volume") if c not in frame]
        if missing:
            raise PredictionInputError(
                f"the bars lack column(s) {missing}; give Open, High, "
                "Low, Close and Volume, oldest row first"
            )
        try:
            features = add_features(frame, list(self.spec.derived)).dropna()
        except (TypeError, ValueError) as exc:
            raise PredictionInputError(f"the bars cannot be read as numbers: {exc}") from None
        look_back = self.window_shape[0]
        if len(features) < look_back:
            raise PredictionInputError(
                f"{len(frame)} bars give {len(features)} complete rows; the model needs "
                f"{look_back} (plus the history its derived features use)"
            )
        window = features[self.spec.features].to_numpy(float)[-look_back:]
        return finite(window, "the bars")[None]

    def predict_windows(self, windows: np.ndarray) -> dict[str, list]:
        """Forecasts (target units) and the Close they imply, one per window."""
        from nnpipe.domains.ohlcv.forecasting import to_price

        x = np.asarray(windows, dtype=np.float64)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[1:] != self.window_shape:
            raise PredictionInputError(
                f"windows must have shape (n, {self.window_shape[0]}, {self.window_shape[1]})"
                f" (look-back rows of {', '.join(self.spec.features)}), got {x.shape}"
            )
        finite(x, "the windows")
        forecast = self.run(x.astype(np.float32)).reshape(-1)
        last_close = x[:, -1, self.spec.features.index("Close")]
        price = to_price(forecast, last_close, self.spec.target, self.spec.horizon)
        return {
            "forecast": forecast.tolist(),
            "price": np.asarray(price).tolist(),
            "target": [self.spec.target] * len(forecast),
        }

    def predict_input(self, model_input: Any) -> dict[str, list]:
        import pandas as pd

        if isinstance(model_input, pd.DataFrame):
            return self.predict_windows(self.windows_from_bars(model_input))
        return self.predict_windows(as_array(model_input))
