"""Full-reference image quality: PSNR-Y, SSIM-Y, PSNR-RGB, sets of frames (the MAI 2021
score, which combines quality with latency, is in perflab.analysis.derive).

Conventions (the SR literature's, see docs/quality.md):

* Inputs are float RGB images in [0, 1], H×W×3, SR output (or bicubic output) and the HR
  ground truth of the same size.
* Y is BT.601 studio-swing luma, ``16 + 65.481 R + 128.553 G + 24.966 B`` (as MATLAB's
  ``rgb2ycbcr``), so Y lies in [16, 235] and the data range used by PSNR and SSIM is 255.
* ``border_px`` pixels (by convention the upscale factor) are cropped from each side before
  anything is computed.
* SSIM follows Wang et al. 2004: 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03,
  population (not sample) covariances, mean over the positions where the window lies wholly
  inside the cropped image. This is what ``skimage.metrics.structural_similarity(...,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)`` returns;
  the tests check equality with it.

Speed: one pass over the frame pair in horizontal strips of 16–32 rows that stay in the CPU
cache, spread over a few threads (numpy releases the GIL; no BLAS calls, which would
serialise). Per strip: Y in float32, shifted by −128 so ``E[x²] − μ²`` loses little to
cancellation; only four filtered maps (μx, μy, E[x²]+E[y²], E[xy]); the 11-tap Gaussian is
applied separably and symmetrically (5 pair sums) in 'valid' mode only; the squared Y error
for PSNR in float64 from the exact RGB difference. Sums are accumulated in float64.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from perflab.errors import MeasurementError

FloatArray = npt.NDArray[np.floating]

# BT.601 studio-swing luma weights for RGB in [0, 1] (Y = 16 + w·rgb).
Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0
DATA_RANGE = 255.0

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # int(3.5 * 1.5 + 0.5): an 11×11 window, as skimage/Wang et al.
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# Y is shifted by this before filtering (see module docstring).
_SHIFT = 128.0
# Output rows per SSIM strip. Small strips keep the working set in L2; with many threads
# slightly larger ones cut the per-call overhead (measured, docs/quality.md).
_STRIP_ROWS_ENV = os.environ.get("PERFLAB_SSIM_STRIP_ROWS")


def _strip_rows(threads: int) -> int:
    if _STRIP_ROWS_ENV:
        return max(1, int(_STRIP_ROWS_ENV))
    return 16 if threads <= 2 else 32


def _gaussian_taps() -> npt.NDArray[np.float64]:
    x = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
    w: npt.NDArray[np.float64] = np.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    return np.asarray(w / float(w.sum()), dtype=np.float64)


_TAPS64 = _gaussian_taps()
_TAPS32 = _TAPS64.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# input checks


def _check_pair(sr: FloatArray, hr: FloatArray, border_px: int) -> tuple[FloatArray, FloatArray]:
    a = np.asarray(sr)
    b = np.asarray(hr)
    if a.shape != b.shape:
        raise MeasurementError(f"SR and HR sizes differ: {a.shape} vs {b.shape}")
    if a.ndim != 3 or a.shape[-1] != 3:
        raise MeasurementError(f"expected H×W×3 RGB images, got shape {a.shape}")
    if not (np.issubdtype(a.dtype, np.floating) and np.issubdtype(b.dtype, np.floating)):
        raise MeasurementError(f"expected float RGB in [0, 1], got {a.dtype} and {b.dtype}")
    if border_px < 0:
        raise MeasurementError(f"border_px must be >= 0, got {border_px}")
    h, w = a.shape[:2]
    if h <= 2 * border_px or w <= 2 * border_px:
        raise MeasurementError(f"a {w}×{h} image has nothing left after cropping {border_px} px per side")
    if border_px:
        a = a[border_px : h - border_px, border_px : w - border_px]
        b = b[border_px : h - border_px, border_px : w - border_px]
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise MeasurementError("image holds NaN or infinite values")
    return a, b


def _psnr_from_mse(mse: float, data_range: float) -> float:
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range * data_range / mse)


# ---------------------------------------------------------------------------------------------
# Y conversion, PSNR


_W64 = np.asarray(Y_WEIGHTS, dtype=np.float64)
_W32 = _W64.astype(np.float32)
_SQERR_CHUNK_PX = 8192  # pixels per float64 block: stays in L1/L2


def _y_sq_err_sum(a: FloatArray, b: FloatArray) -> float:
    """Σ (Y_a − Y_b)² in float64 (the offset 16 cancels), over row blocks that stay in cache."""
    rows = max(1, (3 * _SQERR_CHUNK_PX) // max(1, a.shape[1]))
    return math.fsum(_sq_err_tile(a[i : i + rows], b[i : i + rows]) for i in range(0, a.shape[0], rows))


def psnr_y_db(sr: FloatArray, hr: FloatArray, border_px: int) -> float:
    """PSNR of BT.601 studio-swing Y, data range 255, ``border_px`` cropped per side (dB).

    ``inf`` when the images are identical.
    """
    a, b = _check_pair(sr, hr, border_px)
    n = a.shape[0] * a.shape[1]
    return _psnr_from_mse(_y_sq_err_sum(a, b) / n, DATA_RANGE)


def psnr_rgb_db(sr: FloatArray, hr: FloatArray, border_px: int) -> float:
    """PSNR over all three RGB channels (data range 1 for [0, 1] values), border cropped (dB)."""
    a, b = _check_pair(sr, hr, border_px)
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    mse = float(np.dot(d.ravel(), d.ravel())) / d.size
    return _psnr_from_mse(mse, 1.0)


# ---------------------------------------------------------------------------------------------
# SSIM


def _filter_valid(maps: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """11×11 Gaussian of each map in a (k, H, W) stack, 'valid' region only: (k, H−10, W−10).

    Columns first on contiguous blocks, then rows on the flattened result (contiguous 1-D
    operations are numpy's fastest path; the last 10 columns of each row are garbage and cut).
    """
    r = SSIM_RADIUS
    k, h, w = maps.shape
    ho = h - 2 * r
    t = maps[:, r : r + ho] * _TAPS32[r]
    tmp = np.empty_like(t)
    for i in range(r):
        np.add(maps[:, i : i + ho], maps[:, 2 * r - i : 2 * r - i + ho], out=tmp)
        tmp *= _TAPS32[i]
        t += tmp
    flat = t.reshape(-1)
    n = flat.size
    out = np.empty_like(flat)
    body = out[: n - 2 * r]
    tmp1 = tmp.reshape(-1)[: n - 2 * r]
    np.multiply(flat[r : n - r], _TAPS32[r], out=body)
    for i in range(r):
        np.add(flat[i : n - 2 * r + i], flat[2 * r - i : n - i], out=tmp1)
        tmp1 *= _TAPS32[i]
        body += tmp1
    out[n - 2 * r :] = 0.0
    res: npt.NDArray[np.float32] = out.reshape(k, ho, w)[:, :, : w - 2 * r]
    return res


def _y_tile(rgb: FloatArray) -> npt.NDArray[np.float32]:
    """float32 Y − 128 of an RGB tile (small: stays in cache).

    Plain element-wise arithmetic, no matmul: a BLAS call per tile from several threads at
    once serialises inside (or oversubscribes) a multi-threaded BLAS.
    """
    c = np.asarray(rgb, dtype=np.float32)
    y: npt.NDArray[np.float32] = np.multiply(c[..., 0], _W32[0])
    y += c[..., 1] * _W32[1]
    y += c[..., 2] * _W32[2]
    y += np.float32(Y_OFFSET - _SHIFT)
    return y


def _sq_err_tile(a: FloatArray, b: FloatArray) -> float:
    """Σ (ΔY)² of an RGB tile in float64 (exact difference, float64 weights, no BLAS)."""
    d = np.subtract(a, b, dtype=np.float64)
    dy = d[..., 0] * _W64[0]
    dy += d[..., 1] * _W64[1]
    dy += d[..., 2] * _W64[2]
    dy *= dy
    return float(dy.sum())


def _strip_sums(
    a: FloatArray, b: FloatArray, r0: int, r1: int, psnr_rows: tuple[int, int] | None
) -> tuple[float, float]:
    """(Σ SSIM over output rows [r0, r1) of the valid region, Σ ΔY² over ``psnr_rows``).

    Reads RGB rows r0 … r1 + 10 only; Y, the moments and the filtering all happen on this
    strip, which stays in the CPU cache. The SSIM terms need only four filtered maps:
    μx, μy, E[x²] + E[y²] and E[xy] (σx² + σy² enters as a sum).
    """
    r = SSIM_RADIUS
    x = _y_tile(a[r0 : r1 + 2 * r])
    y = _y_tile(b[r0 : r1 + 2 * r])
    sq = (
        0.0
        if psnr_rows is None
        else _sq_err_tile(a[psnr_rows[0] : psnr_rows[1]], b[psnr_rows[0] : psnr_rows[1]])
    )
    maps = np.empty((4, *x.shape), dtype=np.float32)
    maps[0] = x
    maps[1] = y
    np.multiply(x, x, out=maps[2])
    maps[2] += y * y
    np.multiply(x, y, out=maps[3])
    mx, my, esq, exy = _filter_valid(maps)
    c1 = np.float32((SSIM_K1 * DATA_RANGE) ** 2)
    c2 = np.float32((SSIM_K2 * DATA_RANGE) ** 2)
    two = np.float32(2.0)
    mxy = mx * my
    msq = mx * mx
    msq += my * my
    # contrast-structure: (2σxy + C2) / (σx² + σy² + C2), shift-invariant
    num_cs = exy - mxy
    num_cs *= two
    num_cs += c2
    den_cs = esq - msq
    den_cs += c2
    # luminance on unshifted means μ = m + 128:
    # 2μxμy + C1 = 2mxmy + 256(mx+my) + 2·128² + C1;  μx²+μy²+C1 = mx²+my² + 256(mx+my) + 2·128² + C1
    s = mx + my
    s *= np.float32(2.0 * _SHIFT)
    s += np.float32(2.0 * _SHIFT * _SHIFT) + c1
    num_l = mxy * two
    num_l += s
    den_l = msq + s
    num_l *= num_cs
    den_l *= den_cs
    num_l /= den_l
    return float(np.sum(num_l, dtype=np.float64)), sq


def _psnr_ssim_crop(a: FloatArray, b: FloatArray, threads: int, want_psnr: bool) -> tuple[float, float]:
    """(mean ΔY², mean SSIM) of two cropped RGB images, strip by strip on ``threads`` threads."""
    h, w = a.shape[:2]
    r = SSIM_RADIUS
    if h <= 2 * r or w <= 2 * r:
        raise MeasurementError(f"SSIM needs at least 11×11 pixels after the border crop, got {w}×{h}")
    ho, wo = h - 2 * r, w - 2 * r
    jobs: list[tuple[int, int, tuple[int, int] | None]] = []
    step = _strip_rows(threads)
    for r0 in range(0, ho, step):
        r1 = min(r0 + step, ho)
        rows = (r0, r1 if r1 < ho else h) if want_psnr else None  # the last strip takes the bottom rows
        jobs.append((r0, r1, rows))

    def run(job: tuple[int, int, tuple[int, int] | None]) -> tuple[float, float]:
        return _strip_sums(a, b, job[0], job[1], job[2])

    n_bands = min(threads, len(jobs))
    if n_bands <= 1:
        parts = [run(j) for j in jobs]
    else:
        # one contiguous band of strips per thread: few hand-overs, each band's rows stay local
        edges = [round(i * len(jobs) / n_bands) for i in range(n_bands + 1)]
        bands = [jobs[edges[i] : edges[i + 1]] for i in range(n_bands)]
        with ThreadPoolExecutor(max_workers=n_bands) as pool:
            parts = [p for band in pool.map(lambda js: [run(j) for j in js], bands) for p in band]
    ssim = math.fsum(p[0] for p in parts) / float(ho * wo)
    mse = math.fsum(p[1] for p in parts) / float(h * w)
    return mse, ssim


def default_threads() -> int:
    """Worker threads for SSIM: the CPUs this process may use, at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(8, n))


def ssim_y(sr: FloatArray, hr: FloatArray, border_px: int, *, threads: int | None = None) -> float:
    """Mean SSIM of BT.601 studio-swing Y (Wang et al. 2004, Gaussian 11×11, σ 1.5), border cropped."""
    a, b = _check_pair(sr, hr, border_px)
    return _psnr_ssim_crop(a, b, threads or default_threads(), want_psnr=False)[1]


@dataclass(frozen=True)
class YQuality:
    psnr_y_db: float
    ssim_y: float


def psnr_ssim_y(sr: FloatArray, hr: FloatArray, border_px: int, *, threads: int | None = None) -> YQuality:
    """PSNR-Y and SSIM-Y together, in one pass over the frame pair (the fast path)."""
    a, b = _check_pair(sr, hr, border_px)
    mse, ssim = _psnr_ssim_crop(a, b, threads or default_threads(), want_psnr=True)
    return YQuality(psnr_y_db=_psnr_from_mse(mse, DATA_RANGE), ssim_y=ssim)


# ---------------------------------------------------------------------------------------------
# sets of frames


@dataclass(frozen=True)
class FrameScores:
    """One frame: SR and bicubic against the same HR, and SR minus bicubic."""

    name: str
    psnr_y_db: float
    ssim_y: float
    bicubic_psnr_y_db: float
    bicubic_ssim_y: float

    @property
    def delta_psnr_y_db(self) -> float:
        return self.psnr_y_db - self.bicubic_psnr_y_db

    @property
    def delta_ssim_y(self) -> float:
        return self.ssim_y - self.bicubic_ssim_y


@dataclass(frozen=True)
class SetQuality:
    """Per-frame values and their means (PSNR means are means of per-frame dB, as in the SR
    literature). ``inf`` PSNRs (identical frames) make the mean ``inf``."""

    frames: tuple[FrameScores, ...]

    @property
    def n(self) -> int:
        return len(self.frames)

    def _mean(self, attr: str) -> float:
        if not self.frames:
            return math.nan
        return float(np.mean([getattr(f, attr) for f in self.frames]))

    @property
    def mean_psnr_y_db(self) -> float:
        return self._mean("psnr_y_db")

    @property
    def mean_ssim_y(self) -> float:
        return self._mean("ssim_y")

    @property
    def mean_bicubic_psnr_y_db(self) -> float:
        return self._mean("bicubic_psnr_y_db")

    @property
    def mean_bicubic_ssim_y(self) -> float:
        return self._mean("bicubic_ssim_y")

    @property
    def mean_delta_psnr_y_db(self) -> float:
        return self._mean("delta_psnr_y_db")

    @property
    def mean_delta_ssim_y(self) -> float:
        return self._mean("delta_ssim_y")

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-friendly form (per-frame lists and means)."""
        return {
            "n": self.n,
            "mean": {
                "psnr_y_db": self.mean_psnr_y_db,
                "ssim_y": self.mean_ssim_y,
                "bicubic_psnr_y_db": self.mean_bicubic_psnr_y_db,
                "bicubic_ssim_y": self.mean_bicubic_ssim_y,
                "delta_psnr_y_db": self.mean_delta_psnr_y_db,
                "delta_ssim_y": self.mean_delta_ssim_y,
            },
            "frames": [
                {
                    "name": f.name,
                    "psnr_y_db": f.psnr_y_db,
                    "ssim_y": f.ssim_y,
                    "bicubic_psnr_y_db": f.bicubic_psnr_y_db,
                    "bicubic_ssim_y": f.bicubic_ssim_y,
                    "delta_psnr_y_db": f.delta_psnr_y_db,
                    "delta_ssim_y": f.delta_ssim_y,
                }
                for f in self.frames
            ],
        }


def score_frame(
    name: str,
    sr: FloatArray,
    bicubic: FloatArray,
    hr: FloatArray,
    border_px: int,
    *,
    threads: int | None = None,
) -> FrameScores:
    """SR and bicubic outputs of the same LR frame against its HR frame."""
    q_sr = psnr_ssim_y(sr, hr, border_px, threads=threads)
    q_bic = psnr_ssim_y(bicubic, hr, border_px, threads=threads)
    return FrameScores(
        name=name,
        psnr_y_db=q_sr.psnr_y_db,
        ssim_y=q_sr.ssim_y,
        bicubic_psnr_y_db=q_bic.psnr_y_db,
        bicubic_ssim_y=q_bic.ssim_y,
    )


def set_quality(
    names: Sequence[str],
    sr_frames: Sequence[FloatArray],
    bicubic_frames: Sequence[FloatArray],
    hr_frames: Sequence[FloatArray],
    border_px: int,
    *,
    threads: int | None = None,
) -> SetQuality:
    """Quality of a set of frames: per frame SR, bicubic and their difference, plus means."""
    n = len(names)
    if not (len(sr_frames) == len(bicubic_frames) == len(hr_frames) == n):
        raise MeasurementError(
            f"frame counts differ: {n} names, {len(sr_frames)} SR, "
            f"{len(bicubic_frames)} bicubic, {len(hr_frames)} HR"
        )
    return SetQuality(
        frames=tuple(
            score_frame(names[i], sr_frames[i], bicubic_frames[i], hr_frames[i], border_px, threads=threads)
            for i in range(n)
        )
    )
