"""Bicubic upscaling as a TFLite graph of fixed weights, and its numpy reference.

The baseline must run through exactly the same path as the SR models (same interpreter,
same delegates, same I/O), so bicubic ×s is a tiny "model":

    EdgePad(2)  →  CONV_2D 5×5, 3 → 3·s² channels, fixed weights, no bias  →  DEPTH_TO_SPACE(s)
    →  clip to [0, 1]

Kernel: Keys cubic convolution with a = −0.5 (Pillow's and MATLAB's BICUBIC), half-pixel
centres: output pixel j samples input coordinate x = (j + 0.5)/s − 0.5. Output phase
p = j mod s of LR pixel i = j // s uses the 4 taps floor(x)−1 … floor(x)+2, which for
s ∈ {2, 3, 4} all lie within i−2 … i+2; the 5×5 kernel holds, for each of the s² phases
(dy, dx) and each colour c, the outer product of the row and column tap weights, placed in
output channel (dy·s + dx)·3 + c (the DCR order of DEPTH_TO_SPACE).

Borders: taps that fall outside the image are clamped to the nearest edge pixel (index
clamping = edge replication, as OpenCV's INTER_CUBIC and the "replicate" convention). The
graph does this with EdgePad (slices + concatenation), which is exactly index clamping, so
the TFLite output equals :func:`reference_bicubic_upscale` to float32 rounding everywhere.

Pillow (and ``tf.image.resize``) instead drop the out-of-range taps and renormalise the
remaining weights. The two conventions agree except in a band of output pixels at each edge
whose taps reach outside the image: ⌈1.5·s − 0.5⌉ pixels (3 for ×2, 4 for ×3, 6 for ×4),
always less than ``border_px(scale) = 2·s``. Inside that border the two agree to float32
rounding; tests/test_zoo_bicubic.py checks both statements.

The output is clipped to [0, 1] (bicubic overshoots at edges); pass ``clip=False`` to the
reference to compare with implementations that do not clip.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from perflab.errors import UserInputError

if TYPE_CHECKING:
    import keras

KEYS_A = -0.5
TAP_RADIUS = 2  # taps i−2 … i+2 cover every phase for scales 2–4
SUPPORTED_SCALES = (2, 3, 4)


def keys_cubic(x: np.ndarray, a: float = KEYS_A) -> np.ndarray:
    """Keys (1981) cubic convolution kernel, float64."""
    ax = np.abs(np.asarray(x, dtype=np.float64))
    near = (a + 2.0) * ax**3 - (a + 3.0) * ax**2 + 1.0
    far = a * ax**3 - 5.0 * a * ax**2 + 8.0 * a * ax - 4.0 * a
    return np.where(ax <= 1.0, near, np.where(ax < 2.0, far, 0.0))


def _check_scale(scale: int) -> None:
    if scale not in SUPPORTED_SCALES:
        raise UserInputError(f"bicubic scale must be one of {SUPPORTED_SCALES}, got {scale}")


def phase_taps(scale: int) -> np.ndarray:
    """Weights [scale, 5] of LR offsets −2…+2 for each output phase p (row sums are 1)."""
    _check_scale(scale)
    taps = np.zeros((scale, 2 * TAP_RADIUS + 1), dtype=np.float64)
    for p in range(scale):
        x = (p + 0.5) / scale - 0.5  # position relative to LR pixel i
        f = int(np.floor(x))
        for k in range(f - 1, f + 3):
            taps[p, k + TAP_RADIUS] += float(keys_cubic(np.array(x - k)))
    return taps


def conv_kernel(scale: int, channels: int = 3) -> np.ndarray:
    """CONV_2D weights [5, 5, C, C·s²] (HWIO) for the phases in DEPTH_TO_SPACE (DCR) order."""
    taps = phase_taps(scale)
    k = 2 * TAP_RADIUS + 1
    w = np.zeros((k, k, channels, channels * scale * scale), dtype=np.float64)
    for dy in range(scale):
        for dx in range(scale):
            outer = np.outer(taps[dy], taps[dx])
            for c in range(channels):
                w[:, :, c, (dy * scale + dx) * channels + c] = outer
    return w.astype(np.float32)


def _axis_matrix(n: int, scale: int) -> np.ndarray:
    """[n·s, n] interpolation matrix along one axis with index clamping at the borders."""
    m = np.zeros((n * scale, n), dtype=np.float64)
    for j in range(n * scale):
        x = (j + 0.5) / scale - 0.5
        f = int(np.floor(x))
        for k in range(f - 1, f + 3):
            m[j, min(max(k, 0), n - 1)] += float(keys_cubic(np.array(x - k)))
    return m


def reference_bicubic_upscale(lr: np.ndarray, scale: int, *, clip: bool = True) -> np.ndarray:
    """Numpy bicubic ×scale of an H×W×C float image (float64 maths, float32 result)."""
    _check_scale(scale)
    a = np.asarray(lr, dtype=np.float64)
    if a.ndim != 3:
        raise UserInputError(f"expected an H×W×C image, got shape {a.shape}")
    rows = _axis_matrix(a.shape[0], scale)
    cols = _axis_matrix(a.shape[1], scale)
    h, w, c = a.shape
    out = (rows @ a.reshape(h, w * c)).reshape(h * scale, w, c)  # along rows (BLAS)
    out = np.tensordot(out, cols, axes=([1], [1])).transpose(0, 2, 1)  # along columns
    if clip:
        out = np.clip(out, 0.0, 1.0)
    return out.astype(np.float32)


def border_px(scale: int) -> int:
    """Width of the output band where border conventions (clamp vs renormalise) may differ."""
    return 2 * scale


def build_keras(scale: int) -> keras.Model:
    """The fixed-weight Keras model (imports TensorFlow)."""
    _check_scale(scale)
    import keras

    from perflab.zoo.tflayers import ClipUnit, DepthToSpace, EdgePad

    inp = keras.Input(shape=(None, None, 3), batch_size=1, name="lr")
    x = EdgePad(TAP_RADIUS, name="edge_pad")(inp)
    conv = keras.layers.Conv2D(3 * scale * scale, 2 * TAP_RADIUS + 1, padding="valid", use_bias=False,
                               name="bicubic_phases", trainable=False)
    x = conv(x)
    conv.set_weights([conv_kernel(scale)])
    x = DepthToSpace(scale, name="pixel_shuffle")(x)
    out = ClipUnit(name="clip")(x)
    return keras.Model(inp, out, name=f"bicubic_x{scale}")


def build_tflite(scale: int, variant: str = "fp32", representative: Any = None) -> bytes:
    """Convert the bicubic model to one TFLite variant (imports TensorFlow)."""
    from perflab.zoo.convert import convert_keras

    return convert_keras(build_keras(scale), variant, representative)


def write_tflite(scale: int, path: Path, variant: str = "fp32", representative: Any = None) -> Path:
    path.write_bytes(build_tflite(scale, variant, representative))
    return path
