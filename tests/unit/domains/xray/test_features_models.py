import numpy as np
import pytest

from nnpipe.domains.xray.features import (
    build_augmenter,
    make_dataset,
    pixel_stats,
    read_arrays,
    write_tfrecord,
)
from nnpipe.domains.xray.models import build_model
from nnpipe.domains.xray.params import XrayAugment, XrayTrain
from nnpipe.keras_env import keras


@pytest.fixture
def records(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (10, 16, 16), dtype=np.uint8)
    labels = [i % 2 for i in range(10)]
    path = tmp_path / "train.tfrecord"
    assert write_tfrecord(path, images, labels, [f"id{i}" for i in range(10)]) == 10
    return path, images, labels


def test_tfrecords_round_trip_in_order(records):
    path, images, labels = records
    x, y = read_arrays([path], 16)
    assert x.shape == (10, 16, 16, 1) and x.dtype == np.float32
    assert np.array_equal(x[..., 0].astype(np.uint8), images)
    assert y.tolist() == labels


def test_training_batches_are_augmented_and_evaluation_batches_are_not(records):
    path, images, _ = records
    aug = XrayAugment(rotation=0.1, shift=0.1, zoom=0.1, brightness=0.2, contrast=0.2)
    plain = np.concatenate([x.numpy() for x, _ in make_dataset([path], 16, 4, augment=aug)])
    assert np.array_equal(plain[..., 0].astype(np.uint8), images)  # augment ignored off-train
    train = np.concatenate(
        [x.numpy() for x, _ in make_dataset([path], 16, 4, training=True, augment=aug, seed=1)]
    )
    assert train.shape == plain.shape
    assert train.min() >= 0.0 and train.max() <= 255.0
    assert not np.allclose(
        np.sort(train.reshape(10, -1), axis=0), np.sort(plain.reshape(10, -1), axis=0)
    )


def test_no_horizontal_flip_by_default():
    names = [type(layer).__name__ for layer in build_augmenter(XrayAugment(), seed=0).layers]
    assert "RandomFlip" not in names
    assert "RandomRotation" in names and "RandomBrightness" in names
    flipped = build_augmenter(XrayAugment(horizontal_flip=True), seed=0).layers
    assert "RandomFlip" in [type(layer).__name__ for layer in flipped]


def test_write_rejects_wrong_arrays(tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        write_tfrecord(tmp_path / "x", np.zeros((2, 4, 4), np.float32), [0, 1], ["a", "b"])


@pytest.mark.parametrize("name", ["small_cnn", "medical_cnn"])
def test_models_build_normalise_and_output_probabilities(name):
    cfg = XrayTrain(model=name, filters=[4, 8], dense_units=8)
    model = build_model(cfg, 32, mean=100.0, std=50.0)
    assert model.input_shape == (None, 32, 32, 1)
    assert model.layers[0].name == "normalize"
    out = model.predict(np.full((3, 32, 32, 1), 100.0, np.float32), verbose=0)
    assert out.shape == (3, 1) and ((out >= 0) & (out <= 1)).all()
    if name == "medical_cnn":
        assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
        assert any(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in model.layers)


def test_pixel_stats():
    mean, std = pixel_stats(np.array([[0, 255]], dtype=np.uint8))
    assert mean == pytest.approx(127.5) and std == pytest.approx(127.5)
