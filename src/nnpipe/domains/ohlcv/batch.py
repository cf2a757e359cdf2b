"""``nnpipe predict`` on OHLCV input: a CSV of daily bars (read and checked by ingest's own
reader); every complete look-back window gets the forecast for the bar after it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nnpipe.config import Params
from nnpipe.domains.ohlcv.monitoring import forecast_output, window_features
from nnpipe.domains.ohlcv.predictor import OhlcvPredictor
from nnpipe.monitoring.frame import MonitorFrame, MonitorInputError
from nnpipe.serving.batch import LOGGED, BatchInputError, LoggedBatch


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
    windows = windows[:, 0]
    out = predictor.predict_windows(windows)
    dates = [d.date().isoformat() for d in features.index[look_back - 1 :]]
    table = pd.DataFrame(
        {
            "last_bar": dates,
            "forecast": out["forecast"],
            "price": out["price"],
            "target": out["target"],
        }
    )
    names, close = list(spec.features), list(spec.features).index("Close")
    logged = LoggedBatch()
    logged.add(
        [
            forecast_output(f, p, w[-1, close])
            for f, p, w in zip(out["forecast"], out["price"], windows, strict=True)
        ],
        [window_features(w, names) | {"date": d} for w, d in zip(windows, dates, strict=True)],
    )
    table.attrs[LOGGED] = logged
    return table


def monitor_batch(params: Params, predictor: OhlcvPredictor, path: Path) -> MonitorFrame:
    """A CSV of bars described as serving describes a forecast's window, with the
    predictor's forecasts and ingest's validation findings: ``nnpipe monitor --batch``."""
    from nnpipe.domains.ohlcv.monitoring import read_bars
    from nnpipe.domains.ohlcv.windows import add_features

    if not path.is_file():
        raise MonitorInputError(f"{path} is not a CSV of bars (no such file)")
    bars, findings = read_bars(path, params)
    spec = predictor.spec
    features = add_features(bars, list(spec.derived)).dropna()
    names = list(spec.features)
    if len(features) < spec.look_back:
        raise MonitorInputError(
            f"{path} gives {len(features)} complete rows; one window needs {spec.look_back}"
        )
    values = features[names].to_numpy(np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(values, (spec.look_back, len(names)))
    windows = windows[:, 0]
    out = predictor.predict_windows(windows)
    close = names.index("Close")
    frame = MonitorFrame.from_records(
        [window_features(w, names) for w in windows],
        [
            forecast_output(f, p, w[-1, close])
            for f, p, w in zip(out["forecast"], out["price"], windows, strict=True)
        ],
    )
    frame.quality = findings
    return frame
