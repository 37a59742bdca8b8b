"""Temporal stability of upscaled video: how much an output's frame-to-frame change departs from
the reference's own motion (docs/quality.md, "Temporal stability").

The measure, per frame t ≥ 1 of a sequence (``temporal_err_y``, in 8-bit Y levels)::

    mean | (Y(out_t) − C(Y(out_{t−1}))) − (Y(ref_t) − C(Y(ref_{t−1}))) |

over the frame less ``border_px`` on each side, where Y is BT.601 studio-swing luma (0–255
scale, as PSNR-Y) and C is motion compensation with block motion estimated on the *reference*
frames only (:func:`block_motion`). Since C is linear this is the mean absolute change of the
error image ``out − ref`` after following the reference's motion:

* a perfect output (out = ref) scores 0 whatever moves;
* a static clip with a deterministic upscaler scores 0 (same input, same output);
* an output whose errors move with the content (a stable upscaler on panning content) scores
  near 0 — true motion is not flicker;
* brightness flicker, shimmer or noise that changes from frame to frame is counted in full.

Pure numpy, no I/O. :class:`TemporalTracker` holds the previous frame of a stream of frames so a
caller scoring outputs one at a time (the cell's quality pass) gets one value per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from perflab.errors import MeasurementError

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

BLOCK_PX = 16  # motion block side at full resolution
LEVELS = 3  # pyramid levels (full, ½, ¼)
COARSE_RANGE = 6  # full search ± this many pixels at the coarsest level (±24 px at full size)
# The refinement adds ±1 pixel per finer level, so motion of up to ±(6·4 + 2 + 1) = ±27 px per
# frame is followed; faster motion is partly counted as change (docs/quality.md).

NO_SEQUENCE = "single frames, no sequence"
FIRST_FRAME = "first frame of its sequence: no previous frame to compare with"

_Y_W = np.asarray((65.481, 128.553, 24.966), dtype=np.float32)


def luma_y(rgb: npt.ArrayLike) -> F32:
    """BT.601 studio-swing luma of float RGB in [0, 1], Y in [16, 235] (the Y of PSNR-Y), float32."""
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise MeasurementError(f"expected an H×W×3 RGB frame, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise MeasurementError(f"expected float RGB in [0, 1], got {a.dtype}")
    if not np.isfinite(a).all():
        raise MeasurementError("frame holds NaN or infinite values")
    y: F32 = (a.astype(np.float32, copy=False) @ _Y_W + np.float32(16.0)).astype(np.float32, copy=False)
    return y


@dataclass(frozen=True)
class Motion:
    """Integer block motion from the previous frame to the current one: the block of the current
    frame at (row, col) came from (row + dy, col + dx) of the previous frame."""

    block_px: int
    dy: I64  # (blocks down, blocks across), pixels
    dx: I64
    height: int
    width: int


def _pad_to(a: F32, mult: int) -> F32:
    h, w = a.shape
    ph, pw = -h % mult, -w % mult
    return np.pad(a, ((0, ph), (0, pw)), mode="edge") if ph or pw else a


def _half(a: F32) -> F32:
    h, w = a.shape
    out: F32 = a.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3), dtype=np.float32)
    return out


def _blocks(a: F32, b: int) -> F32:
    """(H, W) → (H/b, W/b, b, b) view-copy of the b×b blocks."""
    h, w = a.shape
    out: F32 = a.reshape(h // b, b, w // b, b).transpose(0, 2, 1, 3)
    return out


def _gather(prev: F32, dy: I64, dx: I64, b: int, step: int | None = None) -> F32:
    """The b×b windows of ``prev`` each block's vector points at, edges replicated: (nby, nbx, b, b).
    Blocks lie ``step`` (default b) pixels apart."""
    h, w = prev.shape
    nby, nbx = dy.shape
    st = b if step is None else step
    rows = (np.arange(nby)[:, None] * st + np.arange(b)[None, :])[:, None, :] + dy[:, :, None]
    cols = (np.arange(nbx)[:, None] * st + np.arange(b)[None, :])[None, :, :] + dx[:, :, None]
    np.clip(rows, 0, h - 1, out=rows)
    np.clip(cols, 0, w - 1, out=cols)
    out: F32 = prev[rows[:, :, :, None], cols[:, :, None, :]]
    return out


def _block_sums(d: F32, b: int) -> F32:
    """Sums of the b×b blocks of an (H, W) map: (H/b, W/b). Strided slices added in turn: numpy's
    reductions over a short inner axis were ~7× slower."""
    rows: F32 = d[0::b].copy()
    for i in range(1, b):
        rows += d[i::b]
    out: F32 = rows[:, 0::b].copy()
    for j in range(1, b):
        out += rows[:, j::b]
    return out


def _box3(s: F32) -> F32:
    """Each block's SAD plus its eight neighbours' (edges replicated): the coarse search matches
    3×3 blocks around each block, so a block with little detail follows its neighbourhood."""
    p = np.pad(s, 1, mode="edge")
    rows: F32 = p[:-2] + p[1:-1] + p[2:]
    out: F32 = rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]
    return out


def _full_search(prev: F32, cur: F32, b: int, r: int) -> tuple[I64, I64]:
    """Every shift within ±r: per block the one with the least sum of absolute differences over
    the block and its neighbours; ties keep the shortest shift (a flat area does not move)."""
    h, w = cur.shape
    padded = np.pad(prev, r, mode="edge")
    shifts = sorted(((sy, sx) for sy in range(-r, r + 1) for sx in range(-r, r + 1)),
                    key=lambda s: (abs(s[0]) + abs(s[1]), s))
    best = np.full((h // b, w // b), np.inf, dtype=np.float32)
    dy = np.zeros(best.shape, dtype=np.int64)
    dx = np.zeros(best.shape, dtype=np.int64)
    buf = np.empty_like(cur)
    for sy, sx in shifts:
        np.subtract(cur, padded[r + sy : r + sy + h, r + sx : r + sx + w], out=buf)
        np.abs(buf, out=buf)
        sad = _box3(_block_sums(buf, b))
        better = sad < best
        best[better] = sad[better]
        dy[better] = sy
        dx[better] = sx
    return dy, dx


_STEPS = sorted(((sy, sx) for sy in (-1, 0, 1) for sx in (-1, 0, 1)), key=lambda s: (abs(s[0]) + abs(s[1]), s))


def _refine(prev: F32, cur: F32, b: int, dy: I64, dx: I64) -> tuple[I64, I64]:
    """Each block's vector ± 1 pixel, the least SAD kept (ties keep the predicted vector). One
    gather of (b+2)² pixels per block around its predicted position; the nine candidates are
    slices of it."""
    cur_b = np.ascontiguousarray(_blocks(cur, b))
    around = _gather(prev, dy - 1, dx - 1, b + 2, step=b)
    best = np.full(dy.shape, np.inf, dtype=np.float32)
    out_y, out_x = dy.copy(), dx.copy()
    buf = np.empty_like(cur_b)
    for sy, sx in _STEPS:
        np.subtract(cur_b, around[:, :, 1 + sy : 1 + sy + b, 1 + sx : 1 + sx + b], out=buf)
        np.abs(buf, out=buf)
        sad = buf.reshape(*dy.shape, b * b).sum(axis=2, dtype=np.float32)
        better = sad < best
        best[better] = sad[better]
        out_y[better] = dy[better] + sy
        out_x[better] = dx[better] + sx
    return out_y, out_x


def block_motion(prev_y: F32, cur_y: F32, *, block_px: int = BLOCK_PX, levels: int = LEVELS,
                 coarse_range: int = COARSE_RANGE) -> Motion:
    """Block motion from ``prev_y`` to ``cur_y`` (two luma frames of one size): a full search of
    ±``coarse_range`` pixels on the frames reduced 2^(levels−1) times, then ±1 pixel at each finer
    level, blocks of ``block_px`` at full size (of ``block_px``/2^k at level k). Frames whose
    sides are not multiples of ``block_px`` are edge-padded."""
    if prev_y.shape != cur_y.shape or prev_y.ndim != 2:
        raise MeasurementError(f"consecutive frames differ in size: {prev_y.shape} vs {cur_y.shape}")
    factor = 2 ** (levels - 1)
    if levels < 1 or block_px % factor or block_px // factor < 1:
        raise MeasurementError(f"block of {block_px} px cannot be split over {levels} levels")
    h, w = cur_y.shape
    pyr_prev = [_pad_to(np.asarray(prev_y, dtype=np.float32), block_px)]
    pyr_cur = [_pad_to(np.asarray(cur_y, dtype=np.float32), block_px)]
    for _ in range(levels - 1):
        pyr_prev.append(_half(pyr_prev[-1]))
        pyr_cur.append(_half(pyr_cur[-1]))
    top = levels - 1
    dy, dx = _full_search(pyr_prev[top], pyr_cur[top], block_px // factor, coarse_range)
    for k in range(top - 1, -1, -1):
        dy, dx = _refine(pyr_prev[k], pyr_cur[k], block_px >> k, dy * 2, dx * 2)
    return Motion(block_px=block_px, dy=dy, dx=dx, height=h, width=w)


def compensate(prev_y: F32, motion: Motion) -> F32:
    """``prev_y`` moved along ``motion``: each pixel of the current frame's grid takes the previous
    frame's pixel its block's vector points at (edges replicated)."""
    h, w = motion.height, motion.width
    if prev_y.shape != (h, w):
        raise MeasurementError(f"frame {prev_y.shape} does not match the motion field's {(h, w)}")
    b = motion.block_px
    padded = _pad_to(np.asarray(prev_y, dtype=np.float32), b)
    ph, pw = padded.shape
    out: F32 = _gather(padded, motion.dy, motion.dx, b).transpose(0, 2, 1, 3).reshape(ph, pw)[:h, :w]
    return out


def _crop(a: F32, border_px: int) -> F32:
    h, w = a.shape
    if border_px < 0:
        raise MeasurementError(f"border_px must be >= 0, got {border_px}")
    if h <= 2 * border_px or w <= 2 * border_px:
        raise MeasurementError(f"a {w}×{h} frame has nothing left after cropping {border_px} px per side")
    return a[border_px : h - border_px, border_px : w - border_px]


def error_change_y(prev_err_y: F32, err_y: F32, motion: Motion, border_px: int) -> float:
    """Mean |err_t − C(err_{t−1})| over the cropped frame, with ``err = Y(out) − Y(ref)``."""
    return float(np.mean(np.abs(_crop(err_y - compensate(prev_err_y, motion), border_px)), dtype=np.float64))


def temporal_err_y(out_prev: npt.ArrayLike, out_cur: npt.ArrayLike, ref_prev: npt.ArrayLike,
                   ref_cur: npt.ArrayLike, border_px: int, *, motion: Motion | None = None) -> float:
    """The measure for one pair of consecutive frames (module docstring): outputs and reference
    as float RGB in [0, 1], all four the same size; motion from the reference unless given."""
    oy0, oy1, ry0, ry1 = (luma_y(a) for a in (out_prev, out_cur, ref_prev, ref_cur))
    if not oy0.shape == oy1.shape == ry0.shape == ry1.shape:
        raise MeasurementError(f"frames differ in size: {oy0.shape}, {oy1.shape}, {ry0.shape}, {ry1.shape}")
    m = motion if motion is not None else block_motion(ry0, ry1)
    return error_change_y(oy0 - ry0, oy1 - ry1, m, border_px)


@dataclass(frozen=True)
class TemporalValue:
    """One frame's value, or why it has none."""

    value: float | None
    missing: str | None = None


class TemporalTracker:
    """Scores a stream of (sequence, reference, output) frames in order: each frame of a sequence
    after its first gets :func:`temporal_err_y` against the frame before it. ``sequence`` None is a
    still image (no value: :data:`NO_SEQUENCE`). Holds two luma frames, no I/O."""

    def __init__(self, border_px: int) -> None:
        self.border_px = border_px
        self._seq: str | None = None
        self._ref_y: F32 | None = None
        self._err_y: F32 | None = None

    def step(self, sequence: str | None, ref: npt.ArrayLike, out: npt.ArrayLike) -> TemporalValue:
        if sequence is None:
            self._seq = self._ref_y = self._err_y = None
            return TemporalValue(None, NO_SEQUENCE)
        ref_y, out_y = luma_y(ref), luma_y(out)
        if ref_y.shape != out_y.shape:
            raise MeasurementError(f"output {out_y.shape} does not match the reference {ref_y.shape}")
        err_y = out_y - ref_y
        prev_ref, prev_err, same = self._ref_y, self._err_y, sequence == self._seq
        self._seq, self._ref_y, self._err_y = sequence, ref_y, err_y
        if not same or prev_ref is None or prev_err is None:
            return TemporalValue(None, FIRST_FRAME)
        if prev_ref.shape != ref_y.shape:
            raise MeasurementError(f"sequence {sequence} changes frame size: {prev_ref.shape} → {ref_y.shape}")
        return TemporalValue(error_change_y(prev_err, err_y, block_motion(prev_ref, ref_y), self.border_px))
