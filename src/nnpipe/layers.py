"""nnpipe's own Keras layers, registered so that saved models load anywhere nnpipe's
:func:`nnpipe.saved_models.load_model` does (training, evaluation, compression, serving)."""

from __future__ import annotations

from nnpipe.keras_env import keras, tf


@keras.saving.register_keras_serializable(package="nnpipe")
class PositionEmbedding(keras.layers.Layer):
    """A learned embedding per position, added to a (batch, positions, width) input."""

    def build(self, input_shape) -> None:
        self.positions = self.add_weight(
            name="positions",
            shape=(int(input_shape[-2]), int(input_shape[-1])),
            initializer=keras.initializers.RandomNormal(stddev=0.02),
            trainable=True,
        )
        super().build(input_shape)

    def call(self, inputs):
        return inputs + tf.cast(self.positions, inputs.dtype)[None]


def custom_objects() -> dict[str, type]:
    """nnpipe's own layers by their registered names (``nnpipe>PositionEmbedding``): the
    only custom objects a served model may hold."""
    return {keras.saving.get_registered_name(cls): cls for cls in (PositionEmbedding,)}
