"""The recurrent forecaster: scaling built in, target units out, it saves, and it says so
when training diverges. Tiny models on tiny windows, a few steps each (that it learns a toy
problem: tests/integration/test_learning.py)."""

import numpy as np
import pytest
from toy_series import LOOK_BACK, N_FEATURES, scalers, split, toy_windows

from nnpipe.domains.ohlcv.models import (
    build_forecaster,
    export_forecaster,
    fit_forecaster,
    predict,
)
from nnpipe.domains.ohlcv.params import OhlcvTrain
from nnpipe.fitting import TrainingDivergedError
from nnpipe.keras_env import keras, make_deterministic

MODELS = ["lstm", "gru", "simple_rnn"]


def inner_model(exported: keras.Model, layer: str) -> keras.Model:
    return keras.Model(exported.input, exported.get_layer(layer).output)


@pytest.mark.parametrize("kind", MODELS)
def test_each_architecture_builds_and_scales_its_input_with_the_training_statistics(kind):
    make_deterministic(0)
    x, y = toy_windows()
    inputs, _ = scalers(x, y)
    cfg = OhlcvTrain(model=kind, units=[4, 4], epochs=2)
    model = build_forecaster(cfg, LOOK_BACK, inputs)
    assert model.input_shape == (None, LOOK_BACK, N_FEATURES)
    assert model.output_shape == (None, 1)
    assert [layer.name for layer in model.layers if layer.name.startswith(kind)] == [
        f"{kind}_1",
        f"{kind}_2",
    ]
    scaled = inner_model(model, "train_minmax").predict(x.astype("float32"), verbose=0)
    expected = inputs.transform(x.reshape(-1, N_FEATURES)).reshape(x.shape)
    np.testing.assert_allclose(scaled, expected, atol=1e-5)
    assert np.isfinite(model.predict(x.astype("float32"), verbose=0)).all()


@pytest.mark.parametrize("kind", MODELS)
def test_exported_model_predicts_the_trained_output_in_target_units(kind):
    make_deterministic(0)
    x, y = toy_windows()
    inputs, target = scalers(x, y)
    fitted = fit_forecaster(
        OhlcvTrain(model=kind, units=[4], epochs=2), *split(x, y), inputs, target
    )
    assert len(fitted.history) == 2
    scaled = inner_model(fitted.model, "scaled_target").predict(x.astype("float32"), verbose=0)
    forecast = predict(fitted.model, x)
    assert forecast.shape == (len(y),)
    np.testing.assert_allclose(
        forecast, target.inverse_transform_column(scaled[:, 0], 0), rtol=1e-5
    )
    # and export_forecaster applied to a freshly built model does the same
    model = build_forecaster(OhlcvTrain(model=kind, units=[4]), LOOK_BACK, inputs)
    exported = export_forecaster(model, target)
    raw = model.predict(x.astype("float32"), verbose=0)[:, 0]
    np.testing.assert_allclose(
        predict(exported, x), target.inverse_transform_column(raw, 0), rtol=1e-5
    )


def test_saved_model_reloads_with_identical_predictions(tmp_path):
    make_deterministic(0)
    x, y = toy_windows()
    inputs, target = scalers(x, y)
    fitted = fit_forecaster(
        OhlcvTrain(model="gru", units=[4, 4], epochs=2), *split(x, y), inputs, target
    )
    path = tmp_path / "forecaster.keras"
    fitted.model.save(path)
    reloaded = keras.models.load_model(path)  # no custom objects: the scalers are built in
    np.testing.assert_allclose(predict(reloaded, x), predict(fitted.model, x), atol=1e-6)


@pytest.mark.parametrize("poison", ["x_train", "y_train"])
def test_nan_in_the_training_data_raises_training_diverged(poison):
    make_deterministic(0)
    x, y = toy_windows()
    inputs, target = scalers(x, y)  # fitted on clean data, as featurize would
    x_train, y_train, x_val, y_val = split(x, y)
    if poison == "x_train":
        x_train = x_train.copy()
        x_train[0, 0, 0] = np.nan
    else:
        y_train = y_train.copy()
        y_train[0] = np.nan
    with pytest.raises(TrainingDivergedError, match="NaN loss at epoch 1") as info:
        fit_forecaster(
            OhlcvTrain(units=[4], epochs=3, batch_size=len(y_train)),
            x_train,
            y_train,
            x_val,
            y_val,
            inputs,
            target,
            label="toy",
        )
    assert "learning_rate" in str(info.value) and "toy" in str(info.value)
    assert isinstance(info.value, FloatingPointError)
