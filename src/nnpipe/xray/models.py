"""The guide's two CNNs, one builder each, used by training and (later) tuning alike.

Both take pixels in 0..255 and normalise them in their first layer with the statistics
featurize measured on the training split, so a saved model carries its own preprocessing.
"""

from __future__ import annotations

from nnpipe.config import XrayTrain
from nnpipe.keras_env import keras


def _normalize(image_size: int, mean: float, std: float) -> list[keras.layers.Layer]:
    return [
        keras.layers.InputLayer(input_shape=(image_size, image_size, 1), name="pixels"),
        keras.layers.Rescaling(scale=1.0 / std, offset=-mean / std, name="normalize"),
    ]


def build_small_cnn(cfg: XrayTrain, image_size: int, mean: float, std: float) -> keras.Model:
    """The guide's ``create_cnn``: Conv32-Pool-Conv64-Pool-Dense64, here with a sigmoid head."""
    reg = keras.regularizers.l2(cfg.l2) if cfg.l2 else None
    f1, f2 = cfg.filters[:2]
    return keras.Sequential([
        *_normalize(image_size, mean, std),
        keras.layers.Conv2D(f1, 3, activation="relu", kernel_regularizer=reg),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(f2, 3, activation="relu", kernel_regularizer=reg),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(cfg.dense_units, activation="relu", kernel_regularizer=reg),
        keras.layers.Dropout(cfg.dropout),
        keras.layers.Dense(1, activation="sigmoid", name="probability"),
    ], name="small_cnn")


def build_medical_cnn(cfg: XrayTrain, image_size: int, mean: float, std: float) -> keras.Model:
    """The guide's medical CNN: Conv blocks with BatchNorm, GlobalAveragePooling, sigmoid."""
    reg = keras.regularizers.l2(cfg.l2) if cfg.l2 else None
    blocks: list[keras.layers.Layer] = []
    for filters in cfg.filters:
        blocks += [
            keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                kernel_regularizer=reg),
            # momentum 0.9, not Keras' 0.99: with a few hundred steps per run the moving
            # statistics would otherwise still be near their initial values at inference
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.MaxPooling2D(2),
        ]
    return keras.Sequential([
        *_normalize(image_size, mean, std),
        *blocks,
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(cfg.dense_units, activation="relu", kernel_regularizer=reg),
        keras.layers.Dropout(cfg.dropout),
        keras.layers.Dense(1, activation="sigmoid", name="probability"),
    ], name="medical_cnn")


BUILDERS = {"small_cnn": build_small_cnn, "medical_cnn": build_medical_cnn}


def build_model(cfg: XrayTrain, image_size: int, mean: float, std: float) -> keras.Model:
    """Build and compile the architecture named in ``cfg.model``."""
    model = BUILDERS[cfg.model](cfg, image_size, mean, std)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
    )
    return model
