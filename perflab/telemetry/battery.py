"""Battery counters: decide the unit and sign of ``current_now`` and normalise it (pure).

``current_now`` is µA on most devices but mA on some (many Samsung, some MediaTek), and the
sign for discharge differs by vendor (formats.md §2.2). perflab keeps the raw values and
decides, in this order: the device config when it says so explicitly; else the charge
counter's slope over the window (µAh per hour *is* µA: it gives both the unit and the sign
when the counter moved enough); else a magnitude heuristic for the unit and the kernel ABI's
sign (negative = discharging) — each decision states how it was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MA_HEURISTIC_LIMIT = 10_000.0  # |value| below this while clearly drawing current → mA (formats.md §2.2)
MIN_COUNTER_STEP_UAH = 50.0  # the counter must move at least this much for its slope to decide
CHARGING_STATES = frozenset({"Charging", "Full"})


@dataclass(frozen=True)
class CurrentConvention:
    """How to turn raw ``current_now`` into mA drawn from the battery (positive = discharge)."""

    ua_per_unit: float  # 1 for µA nodes, 1000 for mA nodes
    discharge_sign: int  # sign of the raw value while discharging
    how: str  # how the unit and sign were decided

    def discharge_ma(self, raw: float) -> float:
        return raw * self.ua_per_unit * self.discharge_sign / 1000.0


def counter_slope_ua(t_s: Sequence[float], charge_uah: Sequence[float]) -> float | None:
    """Least-squares slope of the charge counter in µA (µAh per hour), or None when it did not
    move at least MIN_COUNTER_STEP_UAH over the samples."""
    if len(t_s) < 3 or (max(charge_uah) - min(charge_uah)) < MIN_COUNTER_STEP_UAH:
        return None
    slope_uah_per_s = float(np.polyfit(np.asarray(t_s, float), np.asarray(charge_uah, float), 1)[0])
    return slope_uah_per_s * 3600.0


def decide_convention(
    raw: Sequence[float],
    *,
    t_s: Sequence[float] = (),
    charge_uah: Sequence[float] = (),
    configured_unit: str | None = None,
    configured_sign: int | None = None,
) -> CurrentConvention:
    """The unit and sign of ``raw`` current samples (see the module doc for the order)."""
    med = float(np.median(np.abs(raw))) if len(raw) else 0.0
    mean_raw = float(np.mean(raw)) if len(raw) else 0.0
    slope = counter_slope_ua(t_s, charge_uah) if len(t_s) == len(charge_uah) and len(charge_uah) else None
    how: list[str] = []
    if configured_unit is not None:
        ua_per_unit = 1000.0 if configured_unit == "ma" else 1.0
        how.append(f"unit {configured_unit} from the device config")
    elif slope is not None and med > 0:
        ratio = abs(slope) / med
        ua_per_unit = 1000.0 if ratio > 31.6 else 1.0  # geometric middle of 1 and 1000
        how.append(f"unit {'mA' if ua_per_unit == 1000 else 'µA'} from the charge counter's slope "
                   f"({slope / 1000:.0f} mA vs median |raw| {med:.0f})")
    else:
        ua_per_unit = 1000.0 if 0 < med < MA_HEURISTIC_LIMIT else 1.0
        how.append(f"unit {'mA' if ua_per_unit == 1000 else 'µA'} guessed from the magnitude (median |raw| "
                   f"{med:.0f}; set battery.current_unit in the device config to be sure)")
    if configured_sign is not None:
        sign = configured_sign
        how.append(f"discharge sign {sign:+d} from the device config")
    elif slope is not None and mean_raw != 0:
        # the counter falls while discharging: raw has the discharge sign when it moves against the counter
        sign = 1 if (slope < 0) == (mean_raw > 0) else -1
        how.append(f"discharge sign {sign:+d} from the charge counter's direction")
    else:
        sign = -1
        how.append("discharge sign -1 assumed (kernel ABI: negative = discharging)")
    return CurrentConvention(ua_per_unit, sign, "; ".join(how))


def charging_during(statuses: Sequence[str]) -> bool:
    """True when the battery reported charging (or full, on a charger) at any sample."""
    return any(s in CHARGING_STATES for s in statuses)
