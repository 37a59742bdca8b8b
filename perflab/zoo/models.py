"""Keras builders for the zoo's SR families (this module imports TensorFlow: import it lazily).

Every model: one input [1, H, W, 3] float32 RGB in [0, 1] (H, W dynamic), one output
[1, H·s, W·s, 3], fully convolutional, built only from ops the TFLite GPU delegate accepts.

Families
--------
espcn    ESPCN (Shi et al. 2016): conv5×5(64) tanh → conv3×3(32) tanh → conv3×3(3s²) → pixel shuffle.
fsrcnn   FSRCNN (Dong et al. 2016) d=32, s=12, m=4 with PReLU; the 9×9 deconvolution is replaced by a
         3×3 conv + pixel shuffle (as mobile ports do: TRANSPOSE_CONV with a dynamic output shape
         needs shape ops), plus the anchor residual (the plain version trained here for 2500 steps
         stayed 0.3 dB below bicubic at ×2; with the anchor it learns only the residual).
abpn     Anchor-based plain net (Du et al., MAI 2021 winner): 3×3 convs (28 ch) with ReLU, the input
         repeated s² times (the "anchor") added to the last conv, pixel shuffle, clipped ReLU.
repvgg   Re-parameterisable net (RepVGG/ECBSR style): each 3×3 conv trains with parallel 1×1 and
         identity branches, merged into one 3×3 for inference; anchor residual like abpn.
teacher  Larger anchor-residual net with residual blocks (64 ch), ~1.2 MB in fp32, for distillation.
student  ESPCN-class student distilled from the teacher (same architecture as ``espcn``).

Every family ends with a clip to [0, 1] (MAXIMUM/MINIMUM), so int8 output ranges are tight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from perflab.errors import UserInputError
from perflab.zoo.tflayers import ClipUnit, DepthToSpace, RepeatChannels

FAMILIES = ("espcn", "fsrcnn", "abpn", "repvgg", "teacher", "student")


def _input(batch_size: int | None) -> Any:
    return keras.Input(shape=(None, None, 3), batch_size=batch_size, name="lr")


def _tail(x: Any, inp: Any, scale: int, anchor: bool) -> Any:
    if anchor:
        x = keras.layers.Add(name="add_anchor")([x, RepeatChannels(scale * scale, name="anchor")(inp)])
    x = DepthToSpace(scale, name="pixel_shuffle")(x)
    return ClipUnit(name="clip")(x)


def build_espcn(scale: int, seed: int = 0, batch_size: int | None = 1) -> keras.Model:
    init = keras.initializers.GlorotUniform
    inp = _input(batch_size)
    x = keras.layers.Conv2D(64, 5, padding="same", activation="tanh", kernel_initializer=init(seed), name="c1")(inp)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="tanh", kernel_initializer=init(seed + 1), name="c2")(x)
    x = keras.layers.Conv2D(3 * scale * scale, 3, padding="same", kernel_initializer=init(seed + 2), name="c3")(x)
    return keras.Model(inp, _tail(x, inp, scale, anchor=False), name=f"espcn_x{scale}")


def build_fsrcnn(scale: int, seed: int = 0, batch_size: int | None = 1, d: int = 32, s: int = 12, m: int = 4) -> keras.Model:
    init = keras.initializers.HeNormal
    inp = _input(batch_size)

    def prelu(name: str) -> keras.layers.Layer:
        return keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.25), shared_axes=[1, 2], name=name)

    x = keras.layers.Conv2D(d, 5, padding="same", kernel_initializer=init(seed), name="feature")(inp)
    x = prelu("feature_prelu")(x)
    x = keras.layers.Conv2D(s, 1, kernel_initializer=init(seed + 1), name="shrink")(x)
    x = prelu("shrink_prelu")(x)
    for i in range(m):
        x = keras.layers.Conv2D(s, 3, padding="same", kernel_initializer=init(seed + 2 + i), name=f"map{i}")(x)
        x = prelu(f"map{i}_prelu")(x)
    x = keras.layers.Conv2D(d, 1, kernel_initializer=init(seed + 10), name="expand")(x)
    x = prelu("expand_prelu")(x)
    x = keras.layers.Conv2D(3 * scale * scale, 3, padding="same", kernel_initializer=keras.initializers.Zeros(),
                            name="upsample")(x)
    return keras.Model(inp, _tail(x, inp, scale, anchor=True), name=f"fsrcnn_x{scale}")


def build_abpn(scale: int, seed: int = 0, batch_size: int | None = 1, channels: int = 28, body: int = 5) -> keras.Model:
    init = keras.initializers.HeNormal
    inp = _input(batch_size)
    x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", kernel_initializer=init(seed), name="head")(inp)
    for i in range(body):
        x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", kernel_initializer=init(seed + 1 + i),
                                name=f"body{i}")(x)
    x = keras.layers.Conv2D(3 * scale * scale, 3, padding="same", kernel_initializer=keras.initializers.Zeros(),
                            name="out")(x)
    return keras.Model(inp, _tail(x, inp, scale, anchor=True), name=f"abpn_x{scale}")


# --------------------------------------------------------------------------- re-parameterisation

def _rep_branches(x: Any, cout: int, name: str, seed: int, identity: bool, zero: bool = False) -> Any:
    """3×3 + 1×1 (+ identity) branches summed.

    Without batch norm the summed branches grow the activations layer by layer; with He init a
    whole ReLU layer died in training (and its int8 scale of ~1e-8 made XNNPACK refuse the model).
    So the 3×3 starts at variance 1/fan_in, the 1×1 small, and the output layer at zero (the net
    starts as the anchor, i.e. nearest-neighbour upscaling).
    """
    def init(scale: float, s: int) -> keras.initializers.Initializer:
        if zero:
            return keras.initializers.Zeros()
        return keras.initializers.VarianceScaling(scale, "fan_in", "truncated_normal", seed=s)

    b3 = keras.layers.Conv2D(cout, 3, padding="same", kernel_initializer=init(1.0, seed), name=f"{name}_3x3")(x)
    b1 = keras.layers.Conv2D(cout, 1, kernel_initializer=init(0.1, seed + 100), name=f"{name}_1x1")(x)
    parts = [b3, b1] + ([x] if identity else [])
    return keras.layers.Add(name=f"{name}_sum")(parts)


def build_repvgg(scale: int, seed: int = 0, batch_size: int | None = 1, channels: int = 16, blocks: int = 4, deploy: bool = False) -> keras.Model:
    """``deploy=False``: training graph with 3×3 + 1×1 (+ identity) branches; ``True``: merged 3×3 convs."""
    inp = _input(batch_size)
    names = ["head"] + [f"rep{i}" for i in range(blocks)] + ["out"]
    x = inp
    for k, name in enumerate(names):
        cout = 3 * scale * scale if name == "out" else channels
        identity = int(x.shape[-1]) == cout
        if deploy:
            x = keras.layers.Conv2D(cout, 3, padding="same", name=name)(x)
        else:
            x = _rep_branches(x, cout, name, seed + k, identity, zero=name == "out")
        if name != "out":
            x = keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.Model(inp, _tail(x, inp, scale, anchor=True), name=f"repvgg_x{scale}")


def merge_rep_kernels(k3: np.ndarray, b3: np.ndarray, k1: np.ndarray, b1: np.ndarray,
                      identity: bool) -> tuple[np.ndarray, np.ndarray]:
    """One 3×3 kernel (HWIO) and bias equal to 3×3 + 1×1 (+ identity) branches summed."""
    k = k3.astype(np.float64).copy()
    k[1, 1] += k1[0, 0]
    if identity:
        cin, cout = k.shape[2], k.shape[3]
        if cin != cout:
            raise ValueError("identity branch needs C_in == C_out")
        k[1, 1] += np.eye(cin)
    return k.astype(np.float32), (b3.astype(np.float64) + b1).astype(np.float32)


def reparameterize(train_model: keras.Model, scale: int, batch_size: int | None = 1) -> keras.Model:
    """Build the deploy-mode repvgg and load it with the merged weights of ``train_model``."""
    blocks = sum(1 for layer in train_model.layers if layer.name.startswith("rep") and layer.name.endswith("_3x3"))
    channels = int(train_model.get_layer("head_3x3").filters)
    deploy = build_repvgg(scale, channels=channels, blocks=blocks, deploy=True, batch_size=batch_size)
    for layer in deploy.layers:
        if not isinstance(layer, keras.layers.Conv2D):
            continue
        k3, b3 = train_model.get_layer(f"{layer.name}_3x3").get_weights()
        k1, b1 = train_model.get_layer(f"{layer.name}_1x1").get_weights()
        identity = k3.shape[2] == k3.shape[3]  # the same rule build_repvgg uses
        layer.set_weights(list(merge_rep_kernels(k3, b3, k1, b1, identity)))
    return deploy


# --------------------------------------------------------------------------- teacher


def build_teacher(scale: int, seed: int = 0, batch_size: int | None = 1, channels: int = 64, blocks: int = 4) -> keras.Model:
    init = keras.initializers.HeNormal
    inp = _input(batch_size)
    x = keras.layers.Conv2D(channels, 3, padding="same", kernel_initializer=init(seed), name="head")(inp)
    skip = x
    for i in range(blocks):
        y = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", kernel_initializer=init(seed + 2 * i + 1),
                                name=f"res{i}_a")(x)
        y = keras.layers.Conv2D(channels, 3, padding="same", kernel_initializer=init(seed + 2 * i + 2), name=f"res{i}_b")(y)
        y = keras.layers.Rescaling(0.2, name=f"res{i}_scale")(y)
        x = keras.layers.Add(name=f"res{i}_add")([x, y])
    x = keras.layers.Add(name="global_skip")([x, skip])
    x = keras.layers.Conv2D(3 * scale * scale, 3, padding="same", kernel_initializer=keras.initializers.Zeros(),
                            name="out")(x)
    return keras.Model(inp, _tail(x, inp, scale, anchor=True), name=f"teacher_x{scale}")


BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "espcn": build_espcn,
    "fsrcnn": build_fsrcnn,
    "abpn": build_abpn,
    "repvgg": build_repvgg,
    "teacher": build_teacher,
    "student": build_espcn,
}


def build(family: str, scale: int, seed: int = 0, batch_size: int | None = 1) -> keras.Model:
    if family not in BUILDERS:
        raise UserInputError(f"unknown model family {family!r}; buildable: {', '.join(FAMILIES)}")
    if scale not in (2, 3, 4):
        raise UserInputError(f"scale must be 2, 3 or 4, got {scale}")
    return BUILDERS[family](scale, seed=seed, batch_size=batch_size)


def inference_model(family: str, model: keras.Model, scale: int) -> keras.Model:
    """The batch-1 model to convert: repvgg is merged, every other family copies the trained weights."""
    if family == "repvgg":
        return reparameterize(model, scale, batch_size=1)
    out = build(family, scale, batch_size=1)
    out.set_weights(model.get_weights())
    return out
