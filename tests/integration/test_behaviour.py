"""What users rely on in the trained model's behaviour."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from nnpipe.domains.xray.features import read_arrays
from nnpipe.keras_env import keras

pytestmark = pytest.mark.integration


def test_predictions_are_stable_under_a_tiny_brightness_change(flow_project):
    model = keras.models.load_model(flow_project / "models/xray/model.keras")
    x, y = read_arrays([flow_project / "data/xray/features/test.tfrecord"], 32)
    base = model.predict(x, verbose=0).reshape(-1)
    # the model has learned something, so stability is not that of a constant output
    assert roc_auc_score(y, base) > 0.7 and base.std() > 0.05
    brighter = model.predict(np.clip(x * 1.02, 0, 255), verbose=0).reshape(-1)
    assert np.abs(brighter - base).max() < 0.05


def test_saved_model_reloads_with_identical_predictions(flow_project, tmp_path):
    model = keras.models.load_model(flow_project / "models/xray/model.keras")
    x, _ = read_arrays([flow_project / "data/xray/features/val.tfrecord"], 32)
    model.save(tmp_path / "again.keras")
    again = keras.models.load_model(tmp_path / "again.keras")
    np.testing.assert_array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))
