"""A toy forecasting problem for the OHLCV model tests (unit and integration alike)."""

import numpy as np

from nnpipe.domains.ohlcv.scaling import TrainOnlyScaler

LOOK_BACK = 8
N_FEATURES = 4


def toy_windows(n: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Raw-unit windows (a price-like, a volume-like and two small columns) whose target
    is the window's last "Close" (column 0): persistence, which a small RNN can learn."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.0, 1.0, size=(n, LOOK_BACK, N_FEATURES))
    x *= np.array([50.0, 2e6, 1.0, 0.1])
    x += np.array([100.0, 1e6, -0.5, 0.0])
    return x, x[:, -1, 0].copy()


def scalers(x: np.ndarray, y: np.ndarray) -> tuple[TrainOnlyScaler, TrainOnlyScaler]:
    """Input and target scalers fitted on ``x`` and ``y``."""
    inputs = TrainOnlyScaler([f"f{i}" for i in range(x.shape[2])]).fit(x.reshape(-1, x.shape[2]))
    return inputs, TrainOnlyScaler(["target"]).fit(y.reshape(-1, 1))


def split(x: np.ndarray, y: np.ndarray):
    """Every fifth window for validation: the same distribution, for a toy problem."""
    val = np.arange(len(y)) % 5 == 0
    return x[~val], y[~val], x[val], y[val]
