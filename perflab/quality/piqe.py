"""PIQE: no-reference Perception-based Image Quality Evaluator (Venkatanath et al., NCC 2015).

Lower is better: 0–20 excellent, 20–40 good, 40–60 fair, 60–80 poor, 80–100 bad (the scale
MATLAB's ``piqe`` documents). The steps, as in the paper and MATLAB's ``piqe``:

1. 8-bit grayscale (MATLAB ``rgb2gray`` weights on the 8-bit RGB image, rounded), padded by
   mirroring (``symmetric``) at the bottom/right to a multiple of 16, then stretched so its
   maximum is 255 (``round(255·(I/max I))``, evaluated in that order in float64 and rounded
   as MATLAB's ``round`` does: half-way values away from zero, not numpy's half-to-even).
2. MSCN coefficients ``(I − μ) / (σ + 1)`` with μ, σ from a 7×7 Gaussian window (σ = 7/6)
   with replicated borders.
3. Non-overlapping 16×16 blocks; a block is *active* when the sample variance ``v`` of its
   MSCN coefficients exceeds 0.1.
4. An active block shows a *noticeable artifact* when any 6-pixel segment along any of its
   four edges has a sample standard deviation below 0.1 (a flat run across a busy block:
   blocking or a sudden distortion). It is *noisy* when ``√v > 2β`` with
   ``β = |√v − r| / max(√v, r)``, ``r`` the ratio of the standard deviation of the two centre
   columns (8 and 9 of 16) to that of the "surround". MATLAB removes the surround's columns
   one after the other (``B(:,8) = []; B(:,9) = []``), so the second removal takes what was
   column 10; perflab keeps that quirk so that its scores match MATLAB's and ``pypiqe``'s.
5. Pooling: an artifact block adds ``1 − v``, a noisy block adds ``v`` (a block can add
   both); score = 100 · (Σ + 1) / (N_active + 1).

Implemented from the paper and the published behaviour of MATLAB's ``piqe``; cross-checked in
tests against the independent ``pypiqe`` package (docs/quality.md gives the result).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from perflab.errors import MeasurementError

BLOCK_PX = 16
ACTIVITY_THRESHOLD = 0.1
IMPAIRED_THRESHOLD = 0.1
SEGMENT_PX = 6
MSCN_C = 1.0
_GAUSS_SIGMA = 7.0 / 6.0
_GAUSS_RADIUS = 3  # 7×7 window

# MATLAB rgb2gray: first row of the inverse of the NTSC YIQ matrix.
GRAY_WEIGHTS = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def _taps() -> npt.NDArray[np.float64]:
    x = np.arange(-_GAUSS_RADIUS, _GAUSS_RADIUS + 1, dtype=np.float64)
    w: npt.NDArray[np.float64] = np.exp(-(x * x) / (2.0 * _GAUSS_SIGMA * _GAUSS_SIGMA))
    return np.asarray(w / float(w.sum()), dtype=np.float64)


_TAPS = _taps()


@dataclass(frozen=True)
class PiqeResult:
    """PIQE score and its per-block classification (masks are per 16×16 block, row-major)."""

    score: float
    active_blocks: npt.NDArray[np.bool_]
    artifact_blocks: npt.NDArray[np.bool_]
    noise_blocks: npt.NDArray[np.bool_]
    height_px: int
    width_px: int

    @property
    def n_active(self) -> int:
        return int(self.active_blocks.sum())

    def pixel_mask(self, blocks: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
        """A block mask expanded to the image's pixels (H×W, padding cut off)."""
        full = np.repeat(np.repeat(blocks, BLOCK_PX, axis=0), BLOCK_PX, axis=1)
        out: npt.NDArray[np.bool_] = full[: self.height_px, : self.width_px]
        return out


def round_half_away(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Round as MATLAB's ``round``: half-way values away from zero (numpy's ``rint`` rounds
    them to even, so 42.5 → 42 where MATLAB gives 43)."""
    a = np.asarray(x, dtype=np.float64)
    out: npt.NDArray[np.float64] = np.where(
        np.abs(a - np.trunc(a)) == 0.5, np.trunc(a) + np.sign(a), np.rint(a)
    )
    return out


def stretch_to_255(gray: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """MATLAB ``piqe``'s ``round(255 * (I / max(I(:))))``: same order of operations, same rounding.

    The order matters in float64: ``I * (255 / max)`` lands on the other side of .5 for some
    grey values when the brightest grey is below 255 (e.g. max 200).
    """
    peak = float(gray.max())
    if peak <= 0.0:
        return gray
    return round_half_away(255.0 * (gray / peak))


def to_gray8(img: npt.NDArray[np.generic]) -> npt.NDArray[np.uint8]:
    """Float RGB in [0, 1] (or uint8 RGB, or a 2-D gray image) → 8-bit gray as MATLAB rgb2gray."""
    a = np.asarray(img)
    if a.ndim == 2:
        if a.dtype == np.uint8:
            return a
        return np.asarray(np.clip(round_half_away(a.astype(np.float64) * 255.0), 0, 255), dtype=np.uint8)
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise MeasurementError(f"PIQE needs a gray or RGB image, got shape {a.shape}")
    rgb = a[..., :3]
    if rgb.dtype != np.uint8:
        if not np.issubdtype(rgb.dtype, np.floating):
            raise MeasurementError(f"PIQE needs float RGB in [0, 1] or uint8, got {rgb.dtype}")
        rgb = np.clip(round_half_away(rgb.astype(np.float64) * 255.0), 0, 255)
    g = rgb.astype(np.float64) @ np.asarray(GRAY_WEIGHTS)
    return np.asarray(np.clip(round_half_away(g), 0, 255), dtype=np.uint8)


def _mscn(gray: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    def blur(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        t = ndimage.correlate1d(x, _TAPS, axis=0, mode="nearest")
        out: npt.NDArray[np.float64] = ndimage.correlate1d(t, _TAPS, axis=1, mode="nearest")
        return out

    mu = blur(gray)
    sigma = np.sqrt(np.abs(blur(gray * gray) - mu * mu))
    res: npt.NDArray[np.float64] = (gray - mu) / (sigma + MSCN_C)
    return res


def piqe(img: npt.NDArray[np.generic]) -> PiqeResult:
    """PIQE of one image (float RGB in [0, 1], uint8 RGB, or 2-D gray)."""
    gray8 = to_gray8(img)
    h, w = gray8.shape
    if h < BLOCK_PX or w < BLOCK_PX:
        raise MeasurementError(f"PIQE needs at least {BLOCK_PX}×{BLOCK_PX} pixels, got {w}×{h}")
    pad_r = (-h) % BLOCK_PX
    pad_c = (-w) % BLOCK_PX
    gray = stretch_to_255(np.pad(gray8, ((0, pad_r), (0, pad_c)), mode="symmetric").astype(np.float64))
    mscn = _mscn(gray)

    nbr, nbc = gray.shape[0] // BLOCK_PX, gray.shape[1] // BLOCK_PX
    blocks = mscn.reshape(nbr, BLOCK_PX, nbc, BLOCK_PX).swapaxes(1, 2)  # (nbr, nbc, 16, 16)
    var = blocks.reshape(nbr, nbc, -1).var(axis=-1, ddof=1)
    active = var > ACTIVITY_THRESHOLD

    # noticeable artifacts: a flat 6-pixel run on any edge of the block
    edges = np.stack(
        (blocks[:, :, 0, :], blocks[:, :, :, -1], blocks[:, :, -1, :], blocks[:, :, :, 0]), axis=2
    )  # (nbr, nbc, 4, 16)
    seg_std = sliding_window_view(edges, SEGMENT_PX, axis=-1).std(axis=-1, ddof=1)
    artifact = active & (seg_std < IMPAIRED_THRESHOLD).any(axis=(2, 3))

    # noise: centre-versus-surround deviation against the block's own deviation
    c0 = BLOCK_PX // 2 - 1  # 0-based columns 7 and 8 are the centre
    centre = blocks[:, :, :, c0 : c0 + 2].reshape(nbr, nbc, -1)
    keep = np.ones(BLOCK_PX, dtype=bool)
    keep[[c0, c0 + 2]] = False  # MATLAB's sequential deletion (see module docstring)
    surround = blocks[:, :, :, keep].reshape(nbr, nbc, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = centre.std(axis=-1, ddof=1) / surround.std(axis=-1, ddof=1)
        ratio = np.where(np.isnan(ratio), 0.0, ratio)
        sigma_b = np.sqrt(var)
        beta = np.abs(sigma_b - ratio) / np.maximum(sigma_b, ratio)
        noise = active & (sigma_b > 2.0 * beta)

    dist = float((1.0 - var[artifact]).sum()) + float(var[noise].sum())
    score = 100.0 * (dist + MSCN_C) / (float(active.sum()) + MSCN_C)
    return PiqeResult(
        score=score,
        active_blocks=active,
        artifact_blocks=artifact,
        noise_blocks=noise,
        height_px=h,
        width_px=w,
    )


def piqe_score(img: npt.NDArray[np.generic]) -> float:
    """Just the PIQE score (lower is better)."""
    return piqe(img).score
