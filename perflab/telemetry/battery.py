"""Battery counters: decide the unit and sign of ``current_now`` and the unit of ``voltage_now`` (pure).

``current_now`` is µA on most devices but mA on some (many Samsung, some MediaTek), and the
sign for discharge differs by vendor (formats.md §2.2). perflab keeps the raw values and
decides once per sampler file, in this order, each part separately:

- **config**: the device config says so explicitly (a model's own config; the shipped
  ``generic`` config's kernel-ABI values are defaults, not knowledge — lab.costs passes only
  explicit values);
- **charge_counter**: the charge counter's least-squares slope over the file (µAh per hour *is*
  µA) gives the unit (slope ≈ |raw| → µA, ≈ 1000·|raw| → mA) and the sign (the counter falls
  while the raw value has the discharge sign), when it moved at least MIN_COUNTER_STEP_UAH and
  fell or rose steadily (|r| ≥ MIN_COUNTER_R);
- **load_step**: the sign only, from the device's own load steps (the measured process starting
  and stopping): the raw current moves in the discharge direction when the CPU gets busier, so
  the sign of its correlation with CPU busy is the discharge sign (|r| ≥ MIN_LOAD_R, n ≥ MIN_LOAD_N);
- **heuristic**: the unit from the magnitude (median |raw| below MA_HEURISTIC_LIMIT → mA), the
  sign from the kernel ABI (negative = discharging).

Voltage is µV unless the config says mV, or, without a config, by its magnitude (a battery is
2.5–5 V: millions → µV, thousands → mV, units → V).

The result carries the numbers it was decided from (slope, correlation, n) and, where the
config and the data disagree, says so: the config still wins (it is an override), the
disagreement becomes a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from perflab.core.units import RawBatteryScale

MA_HEURISTIC_LIMIT = 10_000.0  # |value| below this while clearly drawing current → mA (formats.md §2.2)
MIN_COUNTER_STEP_UAH = 50.0  # the counter must move at least this much for its slope to decide
MIN_COUNTER_R = 0.8  # … and steadily: |Pearson r| of counter vs time
MIN_LOAD_R = 0.5  # |Pearson r| of raw current vs CPU busy for a load step to decide the sign
MIN_LOAD_N = 6  # ticks with both a current and a CPU busy value
UNIT_RATIO_SPLIT = 31.6  # geometric middle of 1 (µA nodes) and 1000 (mA nodes)
CHARGING_STATES = frozenset({"Charging", "Full"})
UNIT_NAMES = {1.0: "µA", 1000.0: "mA"}
VOLT_NAMES = {1.0: "µV", 1000.0: "mV", 1e6: "V"}
VOLT_PER_UNIT = {"uv": 1.0, "mv": 1000.0, "v": 1e6}


class ConventionSource(StrEnum):
    """How one part of the convention (unit, sign, voltage unit) was decided."""

    CONFIG = "config"
    CHARGE_COUNTER = "charge_counter"
    LOAD_STEP = "load_step"
    HEURISTIC = "heuristic"


@dataclass(frozen=True)
class CounterEvidence:
    slope_ua: float  # the charge counter's slope in µAh per hour = µA (negative: falling)
    r: float  # Pearson correlation of the counter with time
    n: int  # counter samples
    span_uah: float  # max − min of the counter
    mean_raw: float  # mean raw current over the same ticks
    median_abs_raw: float


@dataclass(frozen=True)
class LoadEvidence:
    r: float  # Pearson correlation of raw current with device CPU busy, per tick
    n: int


@dataclass(frozen=True)
class CurrentConvention(RawBatteryScale):
    """How to turn raw ``current_now`` into mA drawn from the battery (positive = discharge) and raw
    ``voltage_now`` into volts, how each part was decided, and the evidence."""

    ua_per_unit: float  # 1 for µA nodes, 1000 for mA nodes
    discharge_sign: int  # sign of the raw value while discharging
    uv_per_unit: float  # 1 for µV nodes, 1000 for mV, 1e6 for V
    unit_source: ConventionSource
    sign_source: ConventionSource
    voltage_source: ConventionSource
    n: int  # raw current samples the decision saw
    median_abs_raw: float | None
    counter: CounterEvidence | None
    load: LoadEvidence | None
    disagreements: tuple[str, ...]  # where the config and the data disagree (the config wins)
    how: str  # the same, in words

    def discharge_ma(self, raw: float) -> float:
        return raw * self.ma_per_raw


def _pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    if len(x) < 3 or float(np.std(x)) == 0.0 or float(np.std(y)) == 0.0:
        return None
    return float(np.corrcoef(np.asarray(x, float), np.asarray(y, float))[0, 1])


def counter_slope_ua(t_s: Sequence[float], charge_uah: Sequence[float]) -> float | None:
    """Least-squares slope of the charge counter in µA (µAh per hour), or None when it did not move at least
    MIN_COUNTER_STEP_UAH over the samples."""
    if len(t_s) < 3 or len(t_s) != len(charge_uah) or (max(charge_uah) - min(charge_uah)) < MIN_COUNTER_STEP_UAH:
        return None
    slope_uah_per_s = float(np.polyfit(np.asarray(t_s, float), np.asarray(charge_uah, float), 1)[0])
    return slope_uah_per_s * 3600.0


def counter_evidence(current: Sequence[tuple[float, float]],
                     charge: Sequence[tuple[float, float]]) -> CounterEvidence | None:
    """The charge counter's slope (µA) with its correlation and the raw current over the same span, or None
    when the counter did not move at least MIN_COUNTER_STEP_UAH or there is no current to compare."""
    t = [x for x, _ in charge]
    q = [v for _, v in charge]
    slope = counter_slope_ua(t, q)
    r = _pearson(t, q)
    if slope is None or r is None or not current:
        return None
    raw = [v for tt, v in current if t[0] <= tt <= t[-1]] or [v for _, v in current]
    return CounterEvidence(slope, r, len(charge), max(q) - min(q), float(np.mean(raw)),
                           float(np.median(np.abs(raw))))


def load_evidence(current: Sequence[tuple[float, float]], load_pct: Sequence[tuple[float, float]]) -> LoadEvidence | None:
    """Correlation of raw current with CPU busy at the same ticks, or None with too few paired ticks or no
    variation in either."""
    by_t = dict(load_pct)
    pairs = [(v, by_t[t]) for t, v in current if t in by_t]
    if len(pairs) < MIN_LOAD_N:
        return None
    r = _pearson([a for a, _ in pairs], [b for _, b in pairs])
    return None if r is None else LoadEvidence(r, len(pairs))


def _unit_from_counter(ev: CounterEvidence) -> float | None:
    if ev.median_abs_raw <= 0 or abs(ev.r) < MIN_COUNTER_R:
        return None
    return 1000.0 if abs(ev.slope_ua) / ev.median_abs_raw > UNIT_RATIO_SPLIT else 1.0


def _sign_from_counter(ev: CounterEvidence) -> int | None:
    if ev.mean_raw == 0 or abs(ev.r) < MIN_COUNTER_R:
        return None
    # the counter falls while discharging: raw has the discharge sign when it moves against the counter
    return 1 if (ev.slope_ua < 0) == (ev.mean_raw > 0) else -1


def _sign_from_load(ev: LoadEvidence) -> int | None:
    return (1 if ev.r > 0 else -1) if abs(ev.r) >= MIN_LOAD_R else None


def _voltage_unit(voltage: Sequence[float], configured: str | None) -> tuple[float, ConventionSource, str]:
    if configured is not None:
        per = VOLT_PER_UNIT.get(configured, 1.0)
        return per, ConventionSource.CONFIG, f"voltage in {VOLT_NAMES[per]} from the device config"
    if not voltage:
        return 1.0, ConventionSource.HEURISTIC, "voltage in µV assumed (no voltage sampled)"
    med = float(np.median(np.abs(voltage)))
    per = 1.0 if med > 100_000 else 1000.0 if med > 100 else 1e6
    return per, ConventionSource.HEURISTIC, f"voltage in {VOLT_NAMES[per]} from its magnitude (median {med:g})"


def decide_convention(
    current: Sequence[tuple[float, float]],
    *,
    charge: Sequence[tuple[float, float]] = (),
    voltage: Sequence[float] = (),
    load_pct: Sequence[tuple[float, float]] = (),
    configured_unit: str | None = None,
    configured_sign: int | None = None,
    configured_voltage_unit: str | None = None,
) -> CurrentConvention:
    """The convention of raw ``current`` samples ``(t, raw)`` (see the module doc for the order). ``charge`` is
    the charge counter ``(t, µAh)``, ``load_pct`` device CPU busy ``(t, %)`` at the same ticks."""
    raw = [v for _, v in current]
    med = float(np.median(np.abs(raw))) if raw else None
    cev = counter_evidence(current, charge)
    lev = load_evidence(current, load_pct)
    c_unit = _unit_from_counter(cev) if cev is not None else None
    c_sign = _sign_from_counter(cev) if cev is not None else None
    l_sign = _sign_from_load(lev) if lev is not None else None
    how: list[str] = []
    disagree: list[str] = []

    if configured_unit is not None:
        ua_per_unit, unit_src = (1000.0 if configured_unit == "ma" else 1.0), ConventionSource.CONFIG
        how.append(f"unit {UNIT_NAMES[ua_per_unit]} from the device config")
        if c_unit is not None and c_unit != ua_per_unit and cev is not None:
            disagree.append(f"the device config says current_now is in {UNIT_NAMES[ua_per_unit]}, but the charge "
                            f"counter's slope ({cev.slope_ua / 1000:.0f} mA over {cev.n} samples) against median "
                            f"|raw| {cev.median_abs_raw:.0f} says {UNIT_NAMES[c_unit]}")
    elif c_unit is not None and cev is not None:
        ua_per_unit, unit_src = c_unit, ConventionSource.CHARGE_COUNTER
        how.append(f"unit {UNIT_NAMES[c_unit]} from the charge counter's slope ({cev.slope_ua / 1000:.0f} mA, "
                   f"r {cev.r:+.2f}, n {cev.n}) vs median |raw| {cev.median_abs_raw:.0f}")
    else:
        ua_per_unit = 1000.0 if med is not None and 0 < med < MA_HEURISTIC_LIMIT else 1.0
        unit_src = ConventionSource.HEURISTIC
        how.append(f"unit {UNIT_NAMES[ua_per_unit]} guessed from the magnitude (median |raw| {med or 0:.0f}; set "
                   "battery.current_unit in the device config to be sure)")

    data_sign, data_src = (c_sign, ConventionSource.CHARGE_COUNTER) if c_sign is not None else \
        (l_sign, ConventionSource.LOAD_STEP)
    if configured_sign is not None:
        sign, sign_src = configured_sign, ConventionSource.CONFIG
        how.append(f"discharge sign {sign:+d} from the device config")
        if data_sign is not None and data_sign != sign:
            what = "the charge counter's direction" if data_src is ConventionSource.CHARGE_COUNTER else \
                f"the current's response to load (r {lev.r:+.2f}, n {lev.n})" if lev is not None else "the data"
            disagree.append(f"the device config says current_now is {sign:+d} while discharging, but {what} "
                            f"says {data_sign:+d}")
    elif data_sign is not None:
        sign, sign_src = data_sign, data_src
        if data_src is ConventionSource.CHARGE_COUNTER:
            how.append(f"discharge sign {sign:+d} from the charge counter's direction")
        else:
            assert lev is not None
            how.append(f"discharge sign {sign:+d} from the current's response to load steps (r {lev.r:+.2f} "
                       f"with CPU busy, n {lev.n})")
    else:
        sign, sign_src = -1, ConventionSource.HEURISTIC
        how.append("discharge sign -1 assumed (kernel ABI: negative = discharging)")

    uv_per_unit, volt_src, volt_how = _voltage_unit(voltage, configured_voltage_unit)
    how.append(volt_how)
    return CurrentConvention(ua_per_unit, sign, uv_per_unit, unit_src, sign_src, volt_src, len(raw), med, cev, lev,
                             tuple(disagree), "; ".join(how))


def charging_during(statuses: Sequence[str]) -> bool:
    """True when the battery reported charging (or full, on a charger) at any sample."""
    return any(s in CHARGING_STATES for s in statuses)
