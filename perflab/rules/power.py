"""Where a cell's power comes from, how far it is trusted, and the energy of one frame (pure).

Power source ranking (METHOD.md): external meter on a battery-bypass supply (high) > on-device
power rails > battery counters with charging suspended (medium) > battery counters while
charging (low, flagged). On ``local``, RAPL package power where the host has it (medium).
"""

from __future__ import annotations

from dataclasses import dataclass

from perflab.core.units import mw_ms_to_mj
from perflab.rules.device import emulated_label

BATTERY_COUNTERS = "battery counters"
RAPL_PACKAGE = "RAPL package energy (host CPU package only)"


@dataclass(frozen=True)
class PowerSource:
    source: str  # TelemetryRecord.power_source
    confidence: str  # "high" | "medium" | "low"


def battery_source(*, emulated: bool, charging: bool | None) -> PowerSource:
    """Battery counters: medium when the battery was not charging, low while it was (the
    current is net of the charger)."""
    label = emulated_label(BATTERY_COUNTERS, emulated=emulated)
    if charging:
        return PowerSource(f"{label} while charging", "low")
    return PowerSource(f"{label} (not charging)", "medium")


def meter_source(label: str, placement: str, *, emulated: bool) -> PowerSource:
    """An external meter: high on a battery-bypass supply, medium inline on USB (it measures
    the charger path)."""
    return PowerSource(emulated_label(label, emulated=emulated), "high" if placement == "bypass" else "medium")


def rapl_source() -> PowerSource:
    return PowerSource(RAPL_PACKAGE, "medium")


def mj_per_frame(power_mw: float | None, *, fps: float | None, latency_mean_ms: float | None) -> float | None:
    """Energy of one frame: paced, the mean power over one frame period (power / fps); back to
    back, the mean power over one inference (power × mean latency). None when neither is known."""
    if power_mw is None:
        return None
    if fps:
        return power_mw / fps
    if latency_mean_ms is not None:
        return mw_ms_to_mj(power_mw, latency_mean_ms)
    return None
