"""Frames in: packaged photographs and image files, HR→LR, colour conversion.

HR→LR (documented in docs/methodology.md): the HR image is first cropped so both sides are
multiples of ``scale``, then downscaled by ``scale`` with an antialiased bicubic kernel
(Pillow's BICUBIC resample, Keys a = −0.5, support widened by ``scale`` when reducing —
the same kernel family as MATLAB's ``imresize``), computed in float32 and rounded to
8 bits like a decoded video frame would be. Values are float32 RGB in [0, 1].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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


@dataclass(frozen=True)
class Frame:
    """One HR ground-truth frame, float32 RGB in [0, 1], H×W×3. ``sequence`` names the clip the
    frame belongs to (consecutive frames of one clip share it); None for a still image."""

    name: str
    hr: np.ndarray
    sequence: str | None = None


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
    chans = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(img[..., c], dtype=np.float32), mode="F").resize(
                (width, height), Image.Resampling.BICUBIC
            )
        )
        for c in range(img.shape[-1])
    ]
    return np.stack(chans, axis=-1).astype(np.float32)


def hr_to_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The documented degradation: crop to a multiple of scale, antialiased bicubic ↓scale, 8-bit."""
    hr = crop_to_multiple(hr, scale)
    h, w = hr.shape[:2]
    return quantize_8bit(resize_bicubic(hr, w // scale, h // scale))


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """BT.601 luma for studio-swing video, Y in [16, 235] (as MATLAB rgb2ycbcr), float64.

    Input float RGB in [0, 1]. This is the Y used by the SR literature for PSNR-Y/SSIM-Y.
    """
    rgb = np.asarray(img, dtype=np.float64)
    return 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2])
