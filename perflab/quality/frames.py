"""Frames in: packaged photographs and image files, HR→LR, colour conversion.

HR→LR (documented in docs/methodology.md and docs/quality.md): the HR image is first cropped
so both sides are multiples of ``scale``, then downscaled by ``scale`` with the scenario's
kernel (``inputs.downscale``), computed in float32 and rounded to 8 bits like a decoded video
frame would be. Values are float32 RGB in [0, 1]. Kernels (:data:`DOWNSCALE_KERNELS`):

- ``bicubic_aa`` (the default): Pillow's BICUBIC resample, Keys a = −0.5, support widened by
  ``scale`` when reducing — the kernel family of MATLAB's ``imresize``;
- ``area``: the mean of each ``scale``×``scale`` block (OpenCV's INTER_AREA at an integer
  factor, a camera sensor's binning);
- ``lanczos``: Pillow's LANCZOS, Lanczos-3 with its support widened by ``scale`` (antialiased).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from PIL import Image

from perflab.errors import MeasurementError, UserInputError


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        img = getattr(skimage.data, name)()
        return np.asarray(img)

    return load


# Colour photographs that ship inside the scikit-image wheel (no download at run time).
SKIMAGE_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    n: _skimage(n)
    for n in (
        "astronaut",
        "chelsea",
        "coffee",
        "rocket",
        "hubble_deep_field",
        "immunohistochemistry",
        "retina",
    )
}

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


Downscale = Literal["bicubic_aa", "area", "lanczos"]
DOWNSCALE_KERNELS: tuple[str, ...] = get_args(Downscale)
DEFAULT_DOWNSCALE: Downscale = "bicubic_aa"


@dataclass(frozen=True)
class Frame:
    """One input frame, float32 RGB in [0, 1], H×W×3: an HR ground truth (perflab makes the LR),
    an LR frame with its HR (a pair: ``hr`` and ``lr``), or an LR frame alone (``hr`` None: no
    reference, only no-reference measures). ``sequence`` names the clip the frame belongs to
    (consecutive frames of one clip share it); None for a still image."""

    name: str
    hr: np.ndarray | None
    sequence: str | None = None
    lr: np.ndarray | None = None

    @property
    def reference(self) -> bool:
        """There is an HR frame to compare outputs with."""
        return self.hr is not None


def to_float_rgb(img: np.ndarray) -> np.ndarray:
    """uint8/uint16/float, gray/RGB/RGBA → float32 RGB in [0, 1]."""
    a = np.asarray(img)
    if a.ndim == 2:
        a = np.stack([a, a, a], axis=-1)
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise ValueError(f"not an image array: shape {a.shape}")
    a = a[..., :3]
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    return np.clip(a.astype(np.float32), 0.0, 1.0)


def load_image_file(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            return to_float_rgb(np.asarray(im.convert("RGB")))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MeasurementError(f"cannot decode image {path}: {exc}") from exc


def load_skimage_photo(name: str) -> np.ndarray:
    try:
        return to_float_rgb(SKIMAGE_PHOTOS[name]())
    except KeyError as exc:
        raise UserInputError(f"unknown scikit-image photo {name!r}") from exc


def image_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return [path]


def crop_to_multiple(hr: np.ndarray, scale: int) -> np.ndarray:
    h, w = hr.shape[:2]
    return hr[: h - h % scale, : w - w % scale]


def quantize_8bit(img: np.ndarray) -> np.ndarray:
    """Round float RGB to the nearest 8-bit level (what a decoded frame holds)."""
    return (np.clip(np.rint(img * 255.0), 0, 255) / 255.0).astype(np.float32)


def resize_bicubic(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Pillow bicubic (antialiased when reducing) per channel in float32 ('F' mode)."""
    return _resize_pil(img, width, height, Image.Resampling.BICUBIC)


def _resize_pil(img: np.ndarray, width: int, height: int, resample: Image.Resampling) -> np.ndarray:
    chans = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(img[..., c], dtype=np.float32), mode="F").resize(
                (width, height), resample
            )
        )
        for c in range(img.shape[-1])
    ]
    return np.stack(chans, axis=-1).astype(np.float32)


def downscale(hr: np.ndarray, scale: int, kernel: Downscale = DEFAULT_DOWNSCALE) -> np.ndarray:
    """``hr`` (sides multiples of ``scale``) reduced by ``scale`` with ``kernel``, float32, not rounded."""
    h, w = hr.shape[:2]
    if h % scale or w % scale:
        raise ValueError(f"{w}×{h} is not a multiple of the scale {scale}")
    if kernel == "area":
        blocks = np.asarray(hr, dtype=np.float32).reshape(h // scale, scale, w // scale, scale, -1)
        return np.asarray(blocks.mean(axis=(1, 3), dtype=np.float64), dtype=np.float32)
    if kernel == "lanczos":
        return _resize_pil(hr, w // scale, h // scale, Image.Resampling.LANCZOS)
    if kernel == "bicubic_aa":
        return resize_bicubic(hr, w // scale, h // scale)
    raise ValueError(f"unknown downscale kernel {kernel!r} (known: {', '.join(DOWNSCALE_KERNELS)})")


def hr_to_lr(hr: np.ndarray, scale: int, kernel: Downscale = DEFAULT_DOWNSCALE) -> np.ndarray:
    """The documented degradation: crop to a multiple of scale, ``kernel`` ↓scale, 8-bit."""
    return quantize_8bit(downscale(crop_to_multiple(hr, scale), scale, kernel))


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma for studio-swing video, Y in [16, 235] (as MATLAB rgb2ycbcr), float64.

    Input float RGB in [0, 1]. This is the Y used by the SR literature for PSNR-Y/SSIM-Y.
    """
    rgb = np.asarray(img, dtype=np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2])


def pair_size_problem(lr_shape: tuple[int, ...], hr_shape: tuple[int, ...], scale: int) -> str | None:
    """Why an LR/HR pair cannot be scored at ``scale`` (the HR is not exactly ``scale``× the LR
    in both sides), or None."""
    lh, lw = lr_shape[:2]
    hh, hw = hr_shape[:2]
    if (hh, hw) != (lh * scale, lw * scale):
        return (f"LR is {lw}×{lh} and HR {hw}×{hh}: at ×{scale} the HR must be {lw * scale}×{lh * scale} "
                "(pairs are used as given, never rescaled)")
    return None


class InputError(MeasurementError):
    """An input image or video cannot be used; the message names the file, and ``source``
    (once known) says which entry of the scenario's ``inputs`` gave it."""

    def __init__(self, detail: str, source: tuple[str | int, ...] | None = None) -> None:
        self.detail = detail
        self.source = source
        super().__init__(detail)

# ---------------------------------------------------------------------------------------------
# what iter_frames needs from a scenario's `inputs` (structural: pydantic models fit)
