"""``nnpipe predict`` on OHLCV input: a CSV of daily bars (read and checked by ingest's own
reader); every complete look-back window gets the forecast for the bar after it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nnpipe.domains.ohlcv.predictor import OhlcvPredictor
from nnpipe.serving.batch import BatchInputError


def predict_files(predictor: OhlcvPredictor, path: Path) -> pd.DataFrame:
    from nnpipe.domains.ohlcv.sources import read_ohlcv_csv
    from nnpipe.domains.ohlcv.windows import add_features

    frame = read_ohlcv_csv(path)
    spec = predictor.spec
    features = add_features(frame, list(spec.derived)).dropna()
    look_back = spec.look_back
    if len(features) < look_back:
        raise BatchInputError(
            f"{path} gives {len(features)} complete rows; the model needs {look_back}"
        )
    values = features[spec.features].to_numpy(float)
    windows = np.lib.stride_tricks.sliding_window_view(values, (look_back, values.shape[1]))
    out = predictor.predict_windows(windows[:, 0])
    dates = [d.date().isoformat() for d in features.index[look_back - 1 :]]
    return pd.DataFrame(
        {
            "last_bar": dates,
            "forecast": out["forecast"],
            "price": out["price"],
            "target": out["target"],
        }
    )
