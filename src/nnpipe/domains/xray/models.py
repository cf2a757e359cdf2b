"""The guide's image architectures, one builder each, used by training and tuning alike:
the basic feed-forward network, the two CNNs, a small Vision Transformer and an MLP-Mixer.

Every one takes pixels in 0..255 and normalises them in its first layer with the
statistics featurize measured on the training split, so a saved model carries its own
preprocessing, and ends in one float32 sigmoid unit (the positive class's probability;
the guide's two-way softmax is the same function of the logit difference).
"""

from __future__ import annotations

from nnpipe.architectures import resolve_model
from nnpipe.domains.xray.domain import XRAY
from nnpipe.domains.xray.params import XrayTrain
from nnpipe.fitting import kernel_regularizer, make_optimizer, precision_policy
from nnpipe.keras_env import keras


def _normalize(image_size: int, mean: float, std: float) -> list[keras.layers.Layer]:
    return [
        keras.layers.InputLayer(input_shape=(image_size, image_size, 1), name="pixels"),
        keras.layers.Rescaling(scale=1.0 / std, offset=-mean / std, name="normalize"),
    ]


def _head(cfg: XrayTrain) -> keras.layers.Layer:
    return keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")


def build_feedforward(cfg: XrayTrain, image_size: int, mean: float, std: float) -> keras.Model:
    """The guide's basic network: flattened pixels, Dense 128 + Dropout, Dense 64 (sizes in
    ``feedforward.units``; dropout after each hidden layer, batch norm if asked)."""
    reg = kernel_regularizer(cfg)
    layers: list[keras.layers.Layer] = [*_normalize(image_size, mean, std), keras.layers.Flatten()]
    for units in cfg.feedforward.units:
        layers.append(
            keras.layers.Dense(
                units, activation=None if cfg.batch_norm else "relu", kernel_regularizer=reg
            )
        )
        if cfg.batch_norm:
            layers += [
                keras.layers.BatchNormalization(momentum=0.9),
                keras.layers.Activation("relu"),
            ]
        layers.append(keras.layers.Dropout(cfg.dropout))
    return keras.Sequential([*layers, _head(cfg)], name="feedforward")


def _patches(x, patch_size: int, width: int, image_size: int, reg):
    """Non-overlapping patches embedded by one strided convolution: (batch, n, width)."""
    if image_size % patch_size:
        raise ValueError(
            f"patch_size {patch_size} does not divide the image size "
            f"{image_size} (featurize.image_size)"
        )
    x = keras.layers.Conv2D(
        width, patch_size, strides=patch_size, kernel_regularizer=reg, name="patch_embedding"
    )(x)
    n = (image_size // patch_size) ** 2
    return keras.layers.Reshape((n, width), name="patches")(x), n


def _mlp_residual(x, hidden: int, width: int, reg, name: str, dropout: float = 0.0):
    """x + MLP(LayerNorm(x)): the pre-norm feed-forward sublayer of ViT and MLP-Mixer."""
    h = keras.layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm")(x)
    h = keras.layers.Dense(hidden, activation="gelu", kernel_regularizer=reg, name=f"{name}_mlp1")(
        h
    )
    if dropout:
        h = keras.layers.Dropout(dropout)(h)
    h = keras.layers.Dense(width, kernel_regularizer=reg, name=f"{name}_mlp2")(h)
    return keras.layers.Add(name=f"{name}_residual")([x, h])


def _pooled_head(cfg: XrayTrain, inputs, x, name: str) -> keras.Model:
    x = keras.layers.LayerNormalization(epsilon=1e-6, name="final_norm")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    x = keras.layers.Dropout(cfg.dropout)(x)
    return keras.Model(inputs, _head(cfg)(x), name=name)


def build_vit(cfg: XrayTrain, image_size: int, mean: float, std: float) -> keras.Model:
    """A small Vision Transformer: patch embedding by strided convolution, learned position
    embedding, pre-norm blocks (multi-head self-attention, GELU MLP, residuals), layer
    norm, average pooling over patches, dropout, sigmoid head."""
    from nnpipe.layers import PositionEmbedding

    v, reg = cfg.vit, kernel_regularizer(cfg)
    inputs = keras.Input((image_size, image_size, 1), name="pixels")
    x = keras.layers.Rescaling(1.0 / std, offset=-mean / std, name="normalize")(inputs)
    x, _ = _patches(x, v.patch_size, v.width, image_size, reg)
    x = PositionEmbedding(name="positions")(x)
    for i in range(v.depth):
        h = keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{i}_norm1")(x)
        h = keras.layers.MultiHeadAttention(
            v.heads,
            v.width // v.heads,
            dropout=cfg.dropout,
            kernel_regularizer=reg,
            name=f"block{i}_attention",
        )(h, h)
        x = keras.layers.Add(name=f"block{i}_residual1")([x, h])
        x = _mlp_residual(x, v.width * v.mlp_ratio, v.width, reg, f"block{i}_ff", cfg.dropout)
    return _pooled_head(cfg, inputs, x, "vit")


def build_mlp_mixer(cfg: XrayTrain, image_size: int, mean: float, std: float) -> keras.Model:
    """MLP-Mixer (the guide's ``mixer_block``, completed): per block, a token-mixing MLP
    across patches and a channel-mixing MLP across features, each after layer norm and
    with a skip connection; then layer norm, average pooling, sigmoid head."""
    m, reg = cfg.mlp_mixer, kernel_regularizer(cfg)
    inputs = keras.Input((image_size, image_size, 1), name="pixels")
    x = keras.layers.Rescaling(1.0 / std, offset=-mean / std, name="normalize")(inputs)
    x, n = _patches(x, m.patch_size, m.width, image_size, reg)
    for i in range(m.depth):
        h = keras.layers.LayerNormalization(epsilon=1e-6, name=f"mixer{i}_norm1")(x)
        h = keras.layers.Permute((2, 1), name=f"mixer{i}_to_tokens")(h)  # (batch, width, n)
        h = keras.layers.Dense(
            m.token_mlp, activation="gelu", kernel_regularizer=reg, name=f"mixer{i}_token_mlp1"
        )(h)
        h = keras.layers.Dense(n, kernel_regularizer=reg, name=f"mixer{i}_token_mlp2")(h)
        h = keras.layers.Permute((2, 1), name=f"mixer{i}_to_channels")(h)
        x = keras.layers.Add(name=f"mixer{i}_skip1")([x, h])
        x = _mlp_residual(x, m.channel_mlp, m.width, reg, f"mixer{i}_channel")
    return _pooled_head(cfg, inputs, x, "mlp_mixer")


def build_small_cnn(cfg: XrayTrain, image_size: int, mean: float, std: float) -> keras.Model:
    """The guide's ``create_cnn``: Conv32-Pool-Conv64-Pool-Dense64, here with a sigmoid head."""
    reg = kernel_regularizer(cfg)
    f1, f2 = cfg.filters[:2]
    return keras.Sequential(
        [
            *_normalize(image_size, mean, std),
            keras.layers.Conv2D(f1, 3, activation="relu", kernel_regularizer=reg),
            keras.layers.MaxPooling2D(2),
            keras.layers.Conv2D(f2, 3, activation="relu", kernel_regularizer=reg),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(cfg.dense_units, activation="relu", kernel_regularizer=reg),
            keras.layers.Dropout(cfg.dropout),
            _head(cfg),
        ],
        name="small_cnn",
    )


def build_medical_cnn(cfg: XrayTrain, image_size: int, mean: float, std: float) -> keras.Model:
    """The guide's medical CNN: Conv blocks with BatchNorm, GlobalAveragePooling, sigmoid."""
    reg = kernel_regularizer(cfg)
    blocks: list[keras.layers.Layer] = []
    for filters in cfg.filters:
        blocks.append(
            keras.layers.Conv2D(
                filters, 3, padding="same", activation="relu", kernel_regularizer=reg
            )
        )
        if cfg.batch_norm is not False:  # the architecture calls for it
            # momentum 0.9, not Keras' 0.99: with a few hundred steps per run the moving
            # statistics would otherwise still be near their initial values at inference
            blocks.append(keras.layers.BatchNormalization(momentum=0.9))
        blocks.append(keras.layers.MaxPooling2D(2))
    return keras.Sequential(
        [
            *_normalize(image_size, mean, std),
            *blocks,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(cfg.dense_units, activation="relu", kernel_regularizer=reg),
            keras.layers.Dropout(cfg.dropout),
            _head(cfg),
        ],
        name="medical_cnn",
    )


BUILDERS = {
    "feedforward": build_feedforward,
    "small_cnn": build_small_cnn,
    "medical_cnn": build_medical_cnn,
    "vit": build_vit,
    "mlp_mixer": build_mlp_mixer,
}


def architecture(cfg: XrayTrain, image_size: int) -> str:
    """The architecture ``cfg.model`` names (``auto``: the guide's choose_model)."""
    return resolve_model(XRAY.task, cfg.model, (image_size, image_size, 1))


def build_model(cfg: XrayTrain, image_size: int, mean: float, std: float) -> keras.Model:
    """Build and compile the architecture named in ``cfg.model``, in the precision the
    params and the hardware allow (the global policy is float32 again afterwards)."""
    precision_policy(cfg.mixed_precision)
    try:
        model = BUILDERS[architecture(cfg, image_size)](cfg, image_size, mean, std)
        model.compile(
            optimizer=make_optimizer(cfg),
            loss="binary_crossentropy",
            metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model
