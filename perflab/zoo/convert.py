"""Keras model → TFLite flatbuffer, one function per precision variant (imports TensorFlow lazily).

Variants (file suffix ``_{variant}.tflite``):

- ``fp32``: float32 weights and activations.
- ``fp16``: float16 weights (dequantised to float32 on CPU; GPU delegates run them in fp16).
- ``dynamic_int8``: int8 weights, float activations (dynamic-range quantisation). The converter
  leaves tensors under 1024 elements in float, so tiny models may stay mostly float.
- ``int8``: full-integer, int8 input and output tensors.
- ``uint8``: full-integer, uint8 input and output tensors.

Full-integer variants are calibrated on a representative dataset of LR patches of real
training photographs (``perflab.zoo.data.representative_lr``). Conversion uses
``TFLiteConverter.from_keras_model`` (``from_concrete_functions`` on a Keras model keeps the
weights as resource variables — a ~60× slower model).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeAlias

from perflab.core.native_output import NativeOutput, native_stderr_captured
from perflab.errors import ModelError, UserInputError

if TYPE_CHECKING:  # numpy only for the type: `perflab models list` needs VARIANTS, not numpy
    import numpy as np

VARIANTS: tuple[str, ...] = ("fp32", "fp16", "dynamic_int8", "int8", "uint8")
FULL_INTEGER = ("int8", "uint8")

Representative: TypeAlias = "Callable[[], Iterator[list[np.ndarray]]]"


def check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise UserInputError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")


def convert_keras(model: Any, variant: str, representative: Representative | None = None) -> bytes:
    """Convert a Keras model with input [1, None, None, 3] to the TFLite ``variant``."""
    check_variant(variant)
    with native_stderr_captured():  # TensorFlow's start-up lines are not perflab's output
        import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant == "fp16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic_int8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant in FULL_INTEGER:
        if representative is None:
            raise UserInputError(f"variant {variant} needs a representative dataset")
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = tf.int8 if variant == "int8" else tf.uint8
        conv.inference_input_type = io_type
        conv.inference_output_type = io_type
    native = NativeOutput()
    try:
        with native_stderr_captured() as native:  # the quantizer's own lines
            out = conv.convert()
    except Exception as exc:  # the converter raises many unrelated types
        raise ModelError(f"TFLite conversion to {variant} failed: {exc}{native.said_by('the converter')}") from exc
    return bytes(out)
