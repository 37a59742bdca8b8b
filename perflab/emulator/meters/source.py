"""Load sources for emulated meters: what the emulated DUT draws at emulator time ``t_s``.

A source answers vectorised (``amps(t_s)``, ``volts(t_s)``, ``logic(t_s)``) and knows its own
ground truth (``energy_j(t0_s, t1_s)``, ``charge_c``) exactly, so tests compare a measured
energy with the truth rather than with another measurement.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


class LoadSource(Protocol):
    def amps(self, t_s: FloatArray) -> FloatArray: ...

    def volts(self, t_s: FloatArray) -> FloatArray: ...

    def logic(self, t_s: FloatArray) -> npt.NDArray[np.uint8]: ...

    def energy_j(self, t0_s: float, t1_s: float) -> float: ...

    def charge_c(self, t0_s: float, t1_s: float) -> float: ...


@dataclass(frozen=True)
class Step:
    start_s: float
    end_s: float
    amps: float


@dataclass(frozen=True)
class StepLoad:
    """A constant supply voltage, a base current and rectangular steps on top (e.g. inference
    bursts). During a step, logic bit 0 is high — the marker a DUT GPIO would give a PPK2."""

    supply_volts: float
    base_amps: float
    steps: tuple[Step, ...] = field(default_factory=tuple)

    def amps(self, t_s: FloatArray) -> FloatArray:
        t = np.asarray(t_s, dtype=np.float64)
        out = np.full(t.shape, self.base_amps, dtype=np.float64)
        for s in self.steps:
            out[(t >= s.start_s) & (t < s.end_s)] += s.amps
        return out

    def volts(self, t_s: FloatArray) -> FloatArray:
        return np.full(np.shape(t_s), self.supply_volts, dtype=np.float64)

    def logic(self, t_s: FloatArray) -> npt.NDArray[np.uint8]:
        t = np.asarray(t_s, dtype=np.float64)
        out = np.zeros(t.shape, dtype=np.uint8)
        for s in self.steps:
            out[(t >= s.start_s) & (t < s.end_s)] = 1
        return out

    def charge_c(self, t0_s: float, t1_s: float) -> float:
        total = self.base_amps * (t1_s - t0_s)
        for s in self.steps:
            overlap = min(t1_s, s.end_s) - max(t0_s, s.start_s)
            if overlap > 0:
                total += s.amps * overlap
        return total

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        return self.supply_volts * self.charge_c(t0_s, t1_s)


def constant_load(volts: float, amps: float) -> StepLoad:
    return StepLoad(supply_volts=volts, base_amps=amps)


def periodic_steps(first_s: float, period_s: float, width_s: float, amps: float, count: int) -> tuple[Step, ...]:
    """``count`` bursts of ``width_s`` every ``period_s`` (paced inference at 1/period_s fps)."""
    return tuple(Step(first_s + k * period_s, first_s + k * period_s + width_s, amps) for k in range(count))


@dataclass(frozen=True)
class PeriodicLoad:
    """Base current plus a burst of ``burst_amps`` for ``width_s`` every ``period_s`` from
    ``first_s`` (``count`` bursts, or forever): paced inference at 1/period_s fps. Vectorised
    and exact, so it can feed a 100 kHz emulator for hours. Logic bit 0 is high in bursts."""

    supply_volts: float
    base_amps: float
    burst_amps: float
    period_s: float
    width_s: float
    first_s: float = 0.0
    count: int | None = None

    def _in_burst(self, t: FloatArray) -> npt.NDArray[np.bool_]:
        rel = t - self.first_s
        k = np.floor(rel / self.period_s)
        inside = (rel >= 0) & (rel - k * self.period_s < self.width_s)
        if self.count is not None:
            inside &= k < self.count
        return np.asarray(inside, dtype=np.bool_)

    def amps(self, t_s: FloatArray) -> FloatArray:
        t = np.asarray(t_s, dtype=np.float64)
        return np.asarray(self.base_amps + self.burst_amps * self._in_burst(t), dtype=np.float64)

    def volts(self, t_s: FloatArray) -> FloatArray:
        return np.full(np.shape(t_s), self.supply_volts, dtype=np.float64)

    def logic(self, t_s: FloatArray) -> npt.NDArray[np.uint8]:
        return self._in_burst(np.asarray(t_s, dtype=np.float64)).astype(np.uint8)

    def _burst_time_until(self, t: float) -> float:
        rel = t - self.first_s
        if rel <= 0:
            return 0.0
        k = int(rel // self.period_s)
        if self.count is not None and k >= self.count:
            return self.count * self.width_s
        return k * self.width_s + min(rel - k * self.period_s, self.width_s)

    def charge_c(self, t0_s: float, t1_s: float) -> float:
        return self.base_amps * (t1_s - t0_s) + self.burst_amps * (
            self._burst_time_until(t1_s) - self._burst_time_until(t0_s))

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        return self.supply_volts * self.charge_c(t0_s, t1_s)


@dataclass(frozen=True)
class SampledLoad:
    """A recorded load (e.g. the emulated phone's physics, logged as it ran): current and
    voltage linear between samples, held outside them. Its ground truth is the exact integral
    of that piecewise-linear function. Logic bit 0 is high where ``amps`` exceeds
    ``marker_amps`` (when given)."""

    t_s: tuple[float, ...]
    amps_series: tuple[float, ...]
    volts_series: tuple[float, ...]
    marker_amps: float | None = None

    def __post_init__(self) -> None:
        n = len(self.t_s)
        if n < 2 or len(self.amps_series) != n or len(self.volts_series) != n:
            raise ValueError("a sampled load needs at least 2 samples and as many amps/volts as times")
        if any(b < a for a, b in zip(self.t_s, self.t_s[1:], strict=False)):
            raise ValueError("sample times go backwards")

    def amps(self, t_s: FloatArray) -> FloatArray:
        return np.interp(np.asarray(t_s, dtype=np.float64), self.t_s, self.amps_series)

    def volts(self, t_s: FloatArray) -> FloatArray:
        return np.interp(np.asarray(t_s, dtype=np.float64), self.t_s, self.volts_series)

    def logic(self, t_s: FloatArray) -> npt.NDArray[np.uint8]:
        if self.marker_amps is None:
            return np.zeros(np.shape(t_s), dtype=np.uint8)
        return (self.amps(t_s) > self.marker_amps).astype(np.uint8)

    def _integral(self, t0_s: float, t1_s: float, power: bool) -> float:
        # exact for the piecewise-linear I and V: Simpson on each piece (I·V is quadratic there)
        knots = np.asarray(self.t_s, dtype=np.float64)
        inner = knots[(knots > t0_s) & (knots < t1_s)]
        edges = np.concatenate(([t0_s], inner, [t1_s]))
        a, b = edges[:-1], edges[1:]
        m = (a + b) / 2

        def f(t: FloatArray) -> FloatArray:
            return np.asarray(self.amps(t) * self.volts(t) if power else self.amps(t), dtype=np.float64)

        return float(np.sum((b - a) / 6 * (f(a) + 4 * f(m) + f(b))))

    def charge_c(self, t0_s: float, t1_s: float) -> float:
        return self._integral(t0_s, t1_s, power=False)

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        return self._integral(t0_s, t1_s, power=True)


class PowerLoad:
    """A load known by its power over time on a fixed supply: amps = power / volts; logic bit 0
    high above ``marker_watts``. Subclasses give ``_power`` (watts at each time)."""

    supply_volts: float
    marker_watts: float | None

    def _power(self, t_s: FloatArray) -> FloatArray:
        raise NotImplementedError

    def amps(self, t_s: FloatArray) -> FloatArray:
        return self._power(t_s) / self.supply_volts

    def volts(self, t_s: FloatArray) -> FloatArray:
        return np.full(np.shape(t_s), self.supply_volts, dtype=np.float64)

    def logic(self, t_s: FloatArray) -> npt.NDArray[np.uint8]:
        if self.marker_watts is None:
            return np.zeros(np.shape(t_s), dtype=np.uint8)
        return (self._power(t_s) > self.marker_watts).astype(np.uint8)


class LiveLoad(PowerLoad):
    """A load read live from something that knows its power now — e.g. the emulated phone's
    physics: ``LiveLoad(lambda: driver.state.power_w, supply_volts=3.9)``. Each time the
    emulator asks about times it has not asked about before, the power read then holds from
    the earliest of those times on; the history is kept, so the ground truth is the exact
    integral of what the meter was fed. Logic bit 0 is high above ``marker_watts``."""

    def __init__(self, read_power_w: Callable[[], float], supply_volts: float,
                 marker_watts: float | None = None) -> None:
        self._read = read_power_w
        self.supply_volts = supply_volts
        self.marker_watts = marker_watts
        self._lock = threading.Lock()
        self._starts: list[float] = []
        self._watts: list[float] = []
        self._served_until_s = float("-inf")

    def _power(self, t_s: FloatArray) -> FloatArray:
        t = np.asarray(t_s, dtype=np.float64)
        with self._lock:
            if t.size and float(np.max(t)) > self._served_until_s:
                fresh = t[t > self._served_until_s]
                watts = float(self._read())
                if not self._watts or watts != self._watts[-1]:
                    # times already served keep the value they were served with
                    self._starts.append(float(np.min(fresh)))
                    self._watts.append(watts)
                self._served_until_s = float(np.max(t))
            starts = np.asarray(self._starts)
            values = np.asarray(self._watts)
        if starts.size == 0:
            return np.zeros(t.shape)
        k = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, starts.size - 1)
        return np.asarray(values[k], dtype=np.float64)

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        with self._lock:
            starts = list(self._starts)
            watts = list(self._watts)
        total = 0.0
        for k, (s, w) in enumerate(zip(starts, watts, strict=True)):
            seg0 = s if k else float("-inf")
            seg1 = starts[k + 1] if k + 1 < len(starts) else float("inf")
            overlap = min(t1_s, seg1) - max(t0_s, seg0)
            if overlap > 0:
                total += w * overlap
        return total

    def charge_c(self, t0_s: float, t1_s: float) -> float:
        return self.energy_j(t0_s, t1_s) / self.supply_volts
