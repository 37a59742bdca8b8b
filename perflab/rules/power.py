"""Where a cell's power comes from, how far it is trusted, and the energy of one frame (pure).

Power source ranking (METHOD.md, docs/methodology.md "Cost"): a meter on a bench supply in
place of the battery (high) > a USB inline meter, only while the phone runs from USB with its
battery neither charging nor discharging, checked against the battery current (medium) >
battery counters with charging suspended (medium) > battery counters while charging (low,
flagged). A USB reading of a charging (or discharging) phone is never its consumption: the
meter is kept beside and the battery counters stay the source. On ``local``, RAPL package
power where the host has it (medium). Where two sources that both measure consumption disagree
beyond their stated errors, both are shown and the disagreement is said
(:func:`sources_disagree`).
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


def meter_source(label: str, placement: str, *, emulated: bool, checked: bool = True) -> PowerSource:
    """An external meter: high on a battery-bypass supply, medium inline on USB (it measures
    the charger path; checked against the battery current), low inline on USB when no battery
    current was read to check that the battery was idle."""
    if placement == "bypass":
        return PowerSource(emulated_label(label, emulated=emulated), "high")
    if not checked:
        return PowerSource(emulated_label(f"{label}, not checked against the battery current", emulated=emulated),
                           "low")
    return PowerSource(emulated_label(label, emulated=emulated), "medium")


#: the battery current (mA, either sign) within which a phone on USB counts as running from USB
#: with its battery neither charging nor discharging: the fuel gauge's offset plus noise
BATTERY_IDLE_MA = 25.0
#: stated errors of each source's mean power: (fraction of the reading, floor in mW)
METER_BYPASS_ERROR = (0.02, 5.0)
METER_USB_ERROR = (0.05, 25.0)
BATTERY_COUNTER_ERROR = (0.10, 50.0)


def usb_meter_refusal(*, charging: bool | None, battery_current_ma: float | None) -> str | None:
    """Why a USB inline meter's reading is not the phone's consumption, or None when it is
    (the phone ran from USB with the battery neither charging nor discharging). The battery
    current checks it: charging puts the charge current on the meter; a discharging battery
    carries load the meter does not see."""
    if charging:
        return ("the battery was charging: a USB inline meter reads the charge current as well as the phone's "
                "load, so it is not the phone's consumption")
    if battery_current_ma is None:
        return None  # not checkable: the meter stands, medium, and its note says what it measures
    if battery_current_ma > BATTERY_IDLE_MA:
        return (f"the battery was discharging ({battery_current_ma:.0f} mA, beyond ±{BATTERY_IDLE_MA:g} mA): it "
                "carried load a USB inline meter does not see (charging suspended cuts USB power)")
    if battery_current_ma < -BATTERY_IDLE_MA:
        return (f"the battery took {-battery_current_ma:.0f} mA (beyond ±{BATTERY_IDLE_MA:g} mA): the USB inline "
                "meter reads that charge current as well as the phone's load")
    return None


def stated_error_mw(power_mw: float, error: tuple[float, float]) -> float:
    return abs(power_mw) * error[0] + error[1]


def sources_disagree(a_mw: float, a_error: tuple[float, float], b_mw: float, b_error: tuple[float, float]) -> bool:
    """Two sources' mean powers differ by more than their stated errors together."""
    return abs(a_mw - b_mw) > stated_error_mw(a_mw, a_error) + stated_error_mw(b_mw, b_error)


def meter_error(placement: str) -> tuple[float, float]:
    return METER_BYPASS_ERROR if placement == "bypass" else METER_USB_ERROR


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
