"""The models learn: trainings long enough to reach a threshold on a toy problem, which is
more than the few steps a unit test may train (tests/unit checks that one step lowers the
loss, tests/unit/test_architectures.py)."""

import numpy as np
from toy_series import scalers, split, toy_windows

from nnpipe.domains.ohlcv.models import fit_forecaster, predict
from nnpipe.domains.ohlcv.params import OhlcvTrain
from nnpipe.keras_env import make_deterministic


def test_the_forecaster_learns_persistence_and_lowers_the_validation_loss():
    """15 epochs of 8 batches: the LSTM forecaster learns the last close, well below what
    predicting the training mean scores."""
    make_deterministic(0)
    x, y = toy_windows(150)
    inputs, target = scalers(x, y)
    x_train, y_train, x_val, y_val = split(x, y)
    fitted = fit_forecaster(
        OhlcvTrain(units=[8], epochs=15, batch_size=16, learning_rate=0.02),
        x_train,
        y_train,
        x_val,
        y_val,
        inputs,
        target,
    )
    losses = [row["val_loss"] for row in fitted.history]
    assert len(losses) >= 5 and all(v is not None for v in losses)
    assert losses[-1] < losses[0]
    # it learned persistence, not merely the mean: well below the training mean's MSE
    scaled_val = target.transform(y_val.reshape(-1, 1))
    mean_mse = float(np.mean((scaled_val - target.transform(y_train.reshape(-1, 1)).mean()) ** 2))
    assert losses[-1] < 0.25 * mean_mse
    forecast = predict(fitted.model, x_val)
    assert np.mean(np.abs(forecast - y_val)) < 0.4 * np.mean(np.abs(y_val - y_train.mean()))
