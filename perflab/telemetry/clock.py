"""Clock alignment: pure functions.

- Device ↔ host offset from round trips (e.g. ``adb shell`` reading the device's monotonic
  clock between two host timestamps). The round trip with the smallest RTT bounds the offset
  best: offset = device - midpoint(host send, host receive), uncertainty = RTT/2 (the device
  read happened somewhere inside the round trip).
- Meter ↔ device by a marker (rising edges of a PPK2 logic input against the device's own
  inference start times) or by cross-correlating a known load step/pulse pattern with the
  measured current. The residual of the aligned fit is reported, so a poor alignment shows.

Convention: ``lag_s`` maps the measured clock onto the reference clock,
``t_reference = t_measured + lag_s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from perflab.errors import MeasurementError

FloatArray = npt.NDArray[np.float64]


class ClockError(MeasurementError):
    """Clocks could not be aligned (no usable round trip, no overlap, a flat signal…)."""


@dataclass(frozen=True)
class RoundTrip:
    host_send_s: float
    device_s: float
    host_recv_s: float

    @property
    def rtt_s(self) -> float:
        return self.host_recv_s - self.host_send_s


@dataclass(frozen=True)
class ClockOffset:
    """``offset_s`` = device clock - host clock, known to ± ``uncertainty_s``."""

    offset_s: float
    uncertainty_s: float
    rtt_s: float
    n_round_trips: int

    def device_to_host_s(self, device_s: float) -> float:
        return device_s - self.offset_s

    def host_to_device_s(self, host_s: float) -> float:
        return host_s + self.offset_s


def offset_from_round_trips(trips: Sequence[RoundTrip]) -> ClockOffset:
    """Min-RTT estimate of the device-host offset (Cristian's method)."""
    valid = [r for r in trips if np.isfinite(r.rtt_s) and r.rtt_s >= 0 and np.isfinite(r.device_s)]
    if not valid:
        raise ClockError(f"no usable round trip among {len(trips)}")
    best = min(valid, key=lambda r: r.rtt_s)
    mid = (best.host_send_s + best.host_recv_s) / 2
    return ClockOffset(offset_s=best.device_s - mid, uncertainty_s=best.rtt_s / 2, rtt_s=best.rtt_s,
                       n_round_trips=len(valid))


@dataclass(frozen=True)
class Alignment:
    """``t_reference = t_measured + lag_s``. ``correlation`` is the peak Pearson r;
    ``residual_rms`` is the RMS of measured - (a·reference + b) after alignment, in the measured
    signal's units, and ``residual_fraction`` the same relative to its standard deviation."""

    lag_s: float
    correlation: float
    residual_rms: float
    residual_fraction: float
    resolution_s: float
    n_points: int


def _pearson(a: FloatArray, b: FloatArray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b)) / den if den > 0 else 0.0


def align_by_correlation(
    ref_t_s: npt.ArrayLike, ref_values: npt.ArrayLike, meas_t_s: npt.ArrayLike, meas_values: npt.ArrayLike,
    *, max_lag_s: float, resolution_s: float,
) -> Alignment:
    """Find the lag (within ±``max_lag_s``) that best lines the measured signal up with the
    reference pattern (e.g. the known load steps), on a grid of ``resolution_s``, refined by
    a parabola through the peak."""
    rt, rv = np.asarray(ref_t_s, dtype=np.float64), np.asarray(ref_values, dtype=np.float64)
    mt, mv = np.asarray(meas_t_s, dtype=np.float64), np.asarray(meas_values, dtype=np.float64)
    if rt.size < 3 or mt.size < 3 or resolution_s <= 0 or max_lag_s < 0:
        raise ClockError("need at least 3 samples on each side and a positive resolution")
    grid = np.arange(rt[0], rt[-1], resolution_s)
    ref = np.interp(grid, rt, rv)
    if float(np.std(ref)) == 0.0:
        raise ClockError("the reference pattern is flat: nothing to align on")
    lags = np.arange(-max_lag_s, max_lag_s + resolution_s / 2, resolution_s)
    scores = np.full(lags.shape, -np.inf)
    for k, lag in enumerate(lags):
        at = grid - lag
        ok = (at >= mt[0]) & (at <= mt[-1])
        if np.count_nonzero(ok) >= max(3, grid.size // 4):
            scores[k] = _pearson(ref[ok], np.interp(at[ok], mt, mv))
    if not np.isfinite(scores).any():
        raise ClockError("the measured and reference signals do not overlap within the lag range")
    best = int(np.argmax(scores))
    lag = float(lags[best])
    if 0 < best < lags.size - 1 and np.isfinite(scores[best - 1]) and np.isfinite(scores[best + 1]):
        y0, y1, y2 = scores[best - 1], scores[best], scores[best + 1]
        den = y0 - 2 * y1 + y2
        if den < 0:
            lag += float(0.5 * (y0 - y2) / den) * resolution_s
    at = grid - lag
    ok = (at >= mt[0]) & (at <= mt[-1])
    meas = np.interp(at[ok], mt, mv)
    design = np.vstack([ref[ok], np.ones(int(np.count_nonzero(ok)))]).T
    coef, *_ = np.linalg.lstsq(design, meas, rcond=None)
    resid = meas - design @ coef
    rms = float(np.sqrt(np.mean(resid**2)))
    spread = float(np.std(meas))
    return Alignment(lag_s=lag, correlation=float(scores[best]), residual_rms=rms,
                     residual_fraction=rms / spread if spread > 0 else float("inf"),
                     resolution_s=resolution_s, n_points=int(np.count_nonzero(ok)))


def rising_edges(t_s: npt.ArrayLike, values: npt.ArrayLike, threshold: float) -> FloatArray:
    """Times where ``values`` crosses ``threshold`` upwards (at the first sample above it)."""
    t = np.asarray(t_s, dtype=np.float64)
    above = np.asarray(values, dtype=np.float64) > threshold
    idx = np.flatnonzero(~above[:-1] & above[1:]) + 1
    return np.asarray(t[idx], dtype=np.float64)


@dataclass(frozen=True)
class MarkerAlignment:
    lag_s: float
    residual_rms_s: float
    n_pairs: int


def align_by_markers(ref_edges_s: npt.ArrayLike, meas_edges_s: npt.ArrayLike, *, max_lag_s: float) -> MarkerAlignment:
    """Lag from marker edges (e.g. a PPK2 logic input raised by the DUT at each inference
    start) paired with the reference's event times; the residual is the RMS of the pairs'
    deviation from the median lag."""
    ref = np.sort(np.asarray(ref_edges_s, dtype=np.float64))
    meas = np.sort(np.asarray(meas_edges_s, dtype=np.float64))
    if ref.size == 0 or meas.size == 0:
        raise ClockError("no marker edges to align on")
    # the lag that pairs the most edges: candidates pair the first measured edge with each reference
    tol = float(np.min(np.diff(ref))) / 4 if ref.size > 1 else max_lag_s
    cands = ref - meas[0]
    cands = cands[np.abs(cands) <= max_lag_s]
    if cands.size == 0:
        raise ClockError(f"no marker pair within ±{max_lag_s} s")

    def paired(c: float) -> int:
        j = np.clip(np.searchsorted(ref, meas + c), 1, ref.size - 1) if ref.size > 1 else np.zeros(meas.size, int)
        near = np.minimum(np.abs(ref[j] - (meas + c)), np.abs(ref[np.maximum(j - 1, 0)] - (meas + c)))
        return int(np.count_nonzero(near < tol))

    coarse = float(max(cands, key=lambda c: (paired(float(c)), -abs(float(c)))))
    pairs: list[float] = []
    for m in meas:
        j = int(np.argmin(np.abs(ref - (m + coarse))))
        d = float(ref[j] - m)
        if abs(d - coarse) < tol:
            pairs.append(d)
    lag = float(np.median(pairs))
    resid = float(np.sqrt(np.mean((np.asarray(pairs) - lag) ** 2)))
    return MarkerAlignment(lag_s=lag, residual_rms_s=resid, n_pairs=len(pairs))
