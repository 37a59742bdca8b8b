"""Keras layers shared by the zoo's builders (imports TensorFlow: import this module lazily).

Keras 3 refuses ``tf.nn.*`` calls on symbolic Keras tensors, so every raw TensorFlow op the
models need is wrapped in a small Layer here. Each layer converts to plain TFLite builtins
that the GPU delegate accepts (CONCATENATION, STRIDED_SLICE, DEPTH_TO_SPACE, MINIMUM,
MAXIMUM); see ``perflab.zoo.analyze`` for the per-model check.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="perflab")
class EdgePad(keras.layers.Layer):  # type: ignore[misc]
    """Replicate the outer rows/columns ``pad`` times (index clamping), built from slices + concat.

    TFLite has no edge-replicate PAD mode; MIRROR_PAD's SYMMETRIC mode is not accepted by the
    GPU delegate, so this uses STRIDED_SLICE + CONCATENATION, which every delegate runs.
    """

    def __init__(self, pad: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pad = int(pad)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        p = self.pad
        top, bottom = x[:, :1], x[:, -1:]
        x = tf.concat([top] * p + [x] + [bottom] * p, axis=1)
        left, right = x[:, :, :1], x[:, :, -1:]
        return tf.concat([left] * p + [x] + [right] * p, axis=2)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "pad": self.pad}


@keras.saving.register_keras_serializable(package="perflab")
class DepthToSpace(keras.layers.Layer):  # type: ignore[misc]
    """Pixel shuffle (TFLite DEPTH_TO_SPACE, DCR order: channel (dy*s + dx)*C + c)."""

    def __init__(self, scale: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = int(scale)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.nn.depth_to_space(x, self.scale)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="perflab")
class ClipUnit(keras.layers.Layer):  # type: ignore[misc]
    """Clip to [0, 1] with MAXIMUM + MINIMUM (a clipped ReLU every delegate runs)."""

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.minimum(tf.maximum(x, 0.0), 1.0)


@keras.saving.register_keras_serializable(package="perflab")
class RepeatChannels(keras.layers.Layer):  # type: ignore[misc]
    """Anchor of the MAI 2021 winners: the input repeated once per sub-pixel (CONCATENATION).

    After DEPTH_TO_SPACE this is a nearest-neighbour upscale, so the net only learns the residual.
    """

    def __init__(self, times: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.times = int(times)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        return tf.concat([x] * self.times, axis=-1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "times": self.times}
