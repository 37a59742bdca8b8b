"""Visual comparison crops: the same region of HR, LR, bicubic and each SR output, zoomed.

Pure array functions plus two small helpers that read/encode PNG. The region is the window of
the HR frame with the most fine detail (sum of gradient magnitude of luma), so the crop shows
where upscalers differ, chosen without looking at any model's output.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from perflab.errors import StoreError


@dataclass(frozen=True)
class Region:
    """A rectangle in HR pixel coordinates."""

    top: int
    left: int
    height: int
    width: int

    def scaled_down(self, scale: int) -> Region:
        """The same region in an image ``scale`` times smaller (LR coordinates)."""
        return Region(self.top // scale, self.left // scale, max(1, self.height // scale), max(1, self.width // scale))


def luma(img: np.ndarray) -> np.ndarray:
    """BT.601 luma (0–255 scale) of an H×W×3 (or H×W) uint8/float image."""
    a = np.asarray(img, dtype=np.float64)
    if a.ndim == 2:
        return a
    return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]


def detail_region(hr: np.ndarray, size: int, margin: int = 0) -> Region:
    """The ``size``×``size`` window (clipped to the frame) with the largest gradient energy.

    ``margin`` pixels at each border are avoided (the quality metrics crop them too). Ties go to the
    top-most, then left-most window, so the choice is deterministic.
    """
    y = luma(hr)
    h, w = y.shape
    if h == 0 or w == 0:
        raise ValueError("empty image")
    m = margin if h > 2 * margin + 1 and w > 2 * margin + 1 else 0
    y = y[m : h - m, m : w - m]
    hh, ww = y.shape
    win_h, win_w = min(size, hh), min(size, ww)
    gy = np.zeros_like(y)
    gx = np.zeros_like(y)
    gy[1:, :] = np.abs(np.diff(y, axis=0))
    gx[:, 1:] = np.abs(np.diff(y, axis=1))
    energy = gx + gy
    integral = np.zeros((hh + 1, ww + 1))
    integral[1:, 1:] = energy.cumsum(axis=0).cumsum(axis=1)
    sums = (
        integral[win_h:, win_w:]
        - integral[:-win_h, win_w:]
        - integral[win_h:, :-win_w]
        + integral[:-win_h, :-win_w]
    )
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return Region(int(top) + m, int(left) + m, win_h, win_w)


def crop(img: np.ndarray, region: Region) -> np.ndarray:
    out = img[region.top : region.top + region.height, region.left : region.left + region.width]
    if out.shape[0] != region.height or out.shape[1] != region.width:
        raise ValueError(f"region {region} does not fit an image of shape {img.shape}")
    return out


def zoom_nearest(img: np.ndarray, factor: int) -> np.ndarray:
    """Pixel replication, so the reader sees the actual pixels, not a smoothed view of them."""
    if factor < 1:
        raise ValueError("zoom factor must be ≥ 1")
    return np.repeat(np.repeat(img, factor, axis=0), factor, axis=1)


def read_png_rgb(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError) as e:
        raise StoreError(f"{path}: cannot read image: {e}") from e


def png_data_uri(img: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
