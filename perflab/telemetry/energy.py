"""Energy over a window from current and voltage samples: pure functions.

``integrate`` takes samples on one clock (``t_s``), possibly irregular, integrates P = I·V with
the trapezoid rule over ``[start_s, end_s]`` (values at the window edges linearly
interpolated; held at the nearest sample when the window reaches past the data) and flags
every stretch without samples — an interval longer than ``max_gap_s``, or an edge of the
window the data do not reach — so a number that rests on interpolation says so.
``integrate_period_averages`` does the same for meters that already integrate (N6705 ELOG,
one record per period).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from perflab.errors import MeasurementError

_GAP_FACTOR = 5.0


class EnergyError(MeasurementError):
    """Energy could not be computed over the window (too few samples, unsorted times…)."""


@dataclass(frozen=True)
class Gap:
    start_s: float
    end_s: float

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class EnergyWindow:
    """Energy and means over ``[start_s, end_s]``. ``covered_fraction`` < 1 when gaps were
    bridged by interpolation (listed in ``gaps``)."""

    start_s: float
    end_s: float
    n_samples: int
    mean_ma: float
    mean_mw: float
    mah: float
    mwh: float
    mj: float
    gaps: tuple[Gap, ...]

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def covered_fraction(self) -> float:
        gap_s = sum(g.duration_s for g in self.gaps)
        return max(0.0, 1.0 - gap_s / self.duration_s) if self.duration_s > 0 else 0.0

    def mj_per_frame(self, frames: int) -> float | None:
        """Energy per frame; None when no frame was produced in the window."""
        return self.mj / frames if frames > 0 else None

    def mah_per_hour_of_video(self, frames: int, fps: float) -> float | None:
        """Charge an hour of video paced at ``fps`` costs, from the charge per frame."""
        if frames <= 0 or fps <= 0:
            return None
        return self.mah / frames * fps * 3600.0

    def as_dict(self) -> dict[str, object]:
        return {
            "start_s": self.start_s, "end_s": self.end_s, "duration_s": self.duration_s,
            "n_samples": self.n_samples, "mean_ma": self.mean_ma, "mean_mw": self.mean_mw,
            "mah": self.mah, "mwh": self.mwh, "mj": self.mj, "covered_fraction": self.covered_fraction,
            "gaps": [[g.start_s, g.end_s] for g in self.gaps],
        }


def _as_array(x: npt.ArrayLike, n: int, name: str) -> npt.NDArray[np.float64]:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0:
        a = np.full(n, float(a))
    if a.shape != (n,):
        raise EnergyError(f"{name} has {a.shape} values for {n} timestamps")
    return a


def integrate(
    t_s: npt.ArrayLike,
    amps: npt.ArrayLike,
    volts: npt.ArrayLike,
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    max_gap_s: float | None = None,
) -> EnergyWindow:
    """Trapezoid integral of I·V (and of I) over the window. ``volts`` may be one number (a
    bypass supply's set voltage). ``max_gap_s`` defaults to 5x the median sample interval."""
    t = np.asarray(t_s, dtype=np.float64)
    if t.ndim != 1 or t.shape[0] < 2:
        raise EnergyError(f"need at least 2 samples, got {t.size}")
    i = _as_array(amps, t.shape[0], "amps")
    v = _as_array(volts, t.shape[0], "volts")
    finite = np.isfinite(t) & np.isfinite(i) & np.isfinite(v)
    t, i, v = t[finite], i[finite], v[finite]
    if t.shape[0] < 2:
        raise EnergyError("fewer than 2 finite samples")
    dt = np.diff(t)
    if np.any(dt < 0):
        raise EnergyError("timestamps go backwards")
    start = float(t[0]) if start_s is None else float(start_s)
    end = float(t[-1]) if end_s is None else float(end_s)
    if not end > start:
        raise EnergyError(f"empty window [{start}, {end}]")
    positive = dt[dt > 0]
    if max_gap_s is None:
        max_gap_s = float(np.median(positive)) * _GAP_FACTOR if positive.size else 0.0
    p = i * v
    inside = (t > start) & (t < end)
    tw = np.concatenate(([start], t[inside], [end]))
    iw = np.concatenate(([np.interp(start, t, i)], i[inside], [np.interp(end, t, i)]))
    pw = np.concatenate(([np.interp(start, t, p)], p[inside], [np.interp(end, t, p)]))
    charge_c = float(np.trapezoid(iw, tw))
    energy_j = float(np.trapezoid(pw, tw))
    gaps: list[Gap] = []
    if start < t[0]:
        gaps.append(Gap(start, min(end, float(t[0]))))
    big = np.flatnonzero(dt > max_gap_s)
    for k in big:
        g0, g1 = max(start, float(t[k])), min(end, float(t[k + 1]))
        if g1 > g0:
            gaps.append(Gap(g0, g1))
    if end > t[-1]:
        gaps.append(Gap(max(start, float(t[-1])), end))
    duration = end - start
    return EnergyWindow(
        start_s=start, end_s=end, n_samples=int(np.count_nonzero((t >= start) & (t <= end))),
        mean_ma=charge_c / duration * 1e3, mean_mw=energy_j / duration * 1e3,
        mah=charge_c / 3.6, mwh=energy_j / 3.6, mj=energy_j * 1e3, gaps=tuple(gaps),
    )


def integrate_period_averages(
    first_start_s: float, period_s: float, amps: npt.ArrayLike, volts: npt.ArrayLike,
) -> EnergyWindow:
    """Records that are already averages over consecutive periods (ELOG): Σ Ī·V̄·period.
    (Exact when V is constant over each period, as on a bypass supply.)"""
    i = np.asarray(amps, dtype=np.float64)
    if i.ndim != 1 or i.shape[0] == 0 or period_s <= 0:
        raise EnergyError("need at least one record and a positive period")
    v = _as_array(volts, i.shape[0], "volts")
    charge_c = float(np.sum(i)) * period_s
    energy_j = float(np.sum(i * v)) * period_s
    duration = period_s * i.shape[0]
    return EnergyWindow(
        start_s=first_start_s, end_s=first_start_s + duration, n_samples=int(i.shape[0]),
        mean_ma=charge_c / duration * 1e3, mean_mw=energy_j / duration * 1e3,
        mah=charge_c / 3.6, mwh=energy_j / 3.6, mj=energy_j * 1e3, gaps=(),
    )
