"""How a battery's raw sysfs numbers become physical ones: one home for the formula that the
sampler's convention decision (perflab.telemetry.battery) and the stored record the report
reads (perflab.store.results) both apply."""

from __future__ import annotations


def battery_ma_per_raw(ua_per_unit: float, discharge_sign: int) -> float:
    """mA drawn from the battery (positive = discharge) per raw ``current_now`` unit: the unit
    in µA (1 for µA kernels, 1000 for mA ones) times the sign a discharge has on this kernel."""
    return ua_per_unit * discharge_sign / 1000.0


def volts_per_raw(uv_per_unit: float) -> float:
    """Volts per raw ``voltage_now`` unit (1 for µV, 1000 for mV, 1e6 for V)."""
    return uv_per_unit / 1e6
