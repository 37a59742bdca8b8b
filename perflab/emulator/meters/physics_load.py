"""The emulated phone's physics as a meter's load (EMULATED): what a meter wired to an emulated
phone reads, and the ground truth it is checked against.

Ground truth, precisely: the emulated SoC draws ``P = idle + cpu_w_per_core · busy_cores +
gpu_w · gpu_busy_fraction`` (perflab.emulator.physics), constant over each step of the model
(each ``PhysicsDriver.advance``: the work measured since the previous step, spread evenly).
The truth over a window is the exact integral of that piecewise-constant power, from the
driver's step history (``PhysicsDriver.power_history``).

- ``PhysicsLoad`` (placement "bypass"): a supply that replaces the battery delivers the SoC
  power at its set voltage, so the meter sees ``I = P / V_supply``. The model knows a step's
  power only when the step ends, so the load asks the driver to step at least every
  ``refresh_s`` while a meter reads it, and a streaming meter (PPK2) is only sent samples the
  model already knows (``settle``): its stream lags by at most ``refresh_s`` plus a tick, as
  a real PPK2's USB buffering does, and its time stamps are unaffected.
- ``usb_load`` (placement "usb"): an inline USB meter on the charger path sees the same
  physics as the phone: on USB the system load plus the charge current (the load alone with a
  full battery), nothing with charging suspended; at VBUS (5 V), read live from the model
  (approximate, no ground-truth claim: USB meters are medium confidence at best).
"""

from __future__ import annotations

import bisect
import threading
import time

import numpy as np
import numpy.typing as npt

from perflab.emulator.meters.source import LiveLoad, PowerLoad
from perflab.emulator.physics import PhysicsDriver, PhysicsState, on_usb

FloatArray = npt.NDArray[np.float64]

USB_VBUS_V = 5.0


class PhysicsLoad(PowerLoad):
    """The SoC power of an emulated phone on a battery-bypass supply (see the module doc)."""

    def __init__(self, driver: PhysicsDriver, supply_volts: float = 3.9, *, refresh_s: float = 0.02,
                 marker_watts: float | None = None) -> None:
        self.driver = driver
        self.supply_volts = supply_volts
        self.refresh_s = refresh_s
        self.marker_watts = marker_watts
        self.origin_s = time.monotonic()
        self._lock = threading.Lock()
        self._from: list[float] = []
        self._to: list[float] = []
        self._watts: list[float] = []

    # -- clocks ------------------------------------------------------------------------------
    def bind_origin(self, origin_mono_s: float) -> None:
        self.origin_s = origin_mono_s

    def _pull(self) -> None:
        since = self._to[-1] if self._to else float("-inf")
        for t0, t1, w in self.driver.power_history(since):
            self._from.append(t0)
            self._to.append(t1)
            self._watts.append(w)

    def _refresh(self, upto_mono_s: float) -> float:
        """Step the model if what is asked lies beyond what it knows; return the known end."""
        with self._lock:
            self._pull()
            known = self._to[-1] if self._to else float("-inf")
            if upto_mono_s > known + self.refresh_s or not self._to:
                self.driver.advance(force=True)  # a meter asks for now: step even within a read burst
                self._pull()
                known = self._to[-1] if self._to else float("-inf")
            return known

    def settle(self, now_s: float) -> float:
        """Emulator time up to which the power is known (stepping the model when stale)."""
        return self._refresh(self.origin_s + now_s) - self.origin_s

    # -- LoadSource --------------------------------------------------------------------------
    def _power(self, t_s: FloatArray) -> FloatArray:
        t = np.asarray(t_s, dtype=np.float64) + self.origin_s
        if t.size:
            self._refresh(float(np.max(t)))
        with self._lock:  # only the steps from the earliest time asked on (meters ask near the end)
            first = bisect.bisect_left(self._to, float(np.min(t))) if t.size else 0
            first = max(0, min(first, len(self._to) - 1))
            to = np.asarray(self._to[first:], dtype=np.float64)
            watts = np.asarray(self._watts[first:], dtype=np.float64)
        if to.size == 0:
            return np.zeros(t.shape)
        k = np.clip(np.searchsorted(to, t, side="left"), 0, to.size - 1)
        return np.asarray(watts[k], dtype=np.float64)

    def soc_energy_j(self, start_mono_s: float, end_mono_s: float) -> float:
        """Ground truth: the SoC model's power integrated over [start, end] (host monotonic)."""
        steps = self.driver.power_history()
        if not steps or end_mono_s > steps[-1][1]:  # the model has not stepped past the end yet
            self.driver.advance(force=True)
            steps = self.driver.power_history()
        if not steps or end_mono_s <= start_mono_s:
            return 0.0
        if start_mono_s < steps[0][0] or end_mono_s > steps[-1][1]:
            raise ValueError(f"the physics history covers [{steps[0][0]:.3f}, {steps[-1][1]:.3f}] s, "
                             f"not [{start_mono_s:.3f}, {end_mono_s:.3f}]")
        total = 0.0
        for t0, t1, w in steps:
            overlap = min(t1, end_mono_s) - max(t0, start_mono_s)
            if overlap > 0:
                total += w * overlap
        return total

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        return self.soc_energy_j(self.origin_s + t0_s, self.origin_s + t1_s)

    def charge_c(self, t0_s: float, t1_s: float) -> float:
        return self.energy_j(t0_s, t1_s) / self.supply_volts


def usb_power_w(state: PhysicsState) -> float:
    """What the charger path carries in the model (perflab.emulator.physics): on USB, the system
    load plus the charge current at the battery's voltage (the load alone when the battery is
    full); 0 when charging is suspended or the cable is out (the battery carries the load)."""
    if not on_usb(state):
        return 0.0
    into_battery_w = max(0.0, state.battery_current_ua) * 1e-6 * state.voltage_uv * 1e-6
    return state.power_w + into_battery_w


def usb_load(driver: PhysicsDriver) -> LiveLoad:
    """An inline USB meter's view of an emulated phone (VBUS 5 V, read live)."""
    return LiveLoad(lambda: usb_power_w(driver.state), supply_volts=USB_VBUS_V)
