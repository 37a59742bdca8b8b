"""Unit conversions and the small physical rules every layer shares: one home each.

The unit is in every name (``us_to_ms``, ``kib_to_mib``), so a reader never meets a bare
``/ 1000`` and has to guess which way it goes. "MB" in perflab's fields and labels
(``rss_peak_mb``, "RSS MB") means MiB (1024 KiB), as ``/proc`` reports kB = KiB; the
functions say MiB so the factor is plain.

Pure functions; imports nothing from perflab.
"""

from __future__ import annotations

from typing import Protocol

MS_PER_S = 1000.0
US_PER_MS = 1000.0
US_PER_S = 1e6
BYTES_PER_KIB = 1024
KIB_PER_MIB = 1024
UA_PER_MA = 1000.0
UV_PER_MV = 1000.0
UV_PER_V = 1e6


# --- time ------------------------------------------------------------------------------------

def us_to_ms(us: float) -> float:
    return us / US_PER_MS


def ms_to_us(ms: float) -> float:
    return ms * US_PER_MS


def ms_to_s(ms: float) -> float:
    return ms / MS_PER_S


def s_to_ms(s: float) -> float:
    return s * MS_PER_S


def s_to_us(s: float) -> float:
    return s * US_PER_S


def us_to_s(us: float) -> float:
    return us / US_PER_S


def hz_to_period_ms(hz: float) -> float:
    """The period of a rate, in ms: 30 Hz → 33.3 ms."""
    return MS_PER_S / hz


def period_ms_to_hz(period_ms: float) -> float:
    """The rate of a period given in ms: 50 ms → 20 Hz."""
    return MS_PER_S / period_ms


def frame_budget_ms(fps: float | None) -> float | None:
    """The frame budget of a paced scenario: 1000/fps ms; None when it is not paced (no fps)."""
    return hz_to_period_ms(fps) if fps else None


# --- sizes -----------------------------------------------------------------------------------

def bytes_to_kib(n_bytes: float) -> float:
    return n_bytes / BYTES_PER_KIB


def kib_to_bytes(kib: float) -> float:
    return kib * BYTES_PER_KIB


def kib_to_mib(kib: float) -> float:
    """KiB (what /proc's "kB" means) → MiB (what perflab's "MB" fields hold)."""
    return kib / KIB_PER_MIB


def bytes_to_mib(n_bytes: float) -> float:
    return n_bytes / (BYTES_PER_KIB * KIB_PER_MIB)


# --- temperature -----------------------------------------------------------------------------

def millidegrees_to_c(mdeg_c: float) -> float:
    """m°C (what most kernels' thermal zones give) → °C."""
    return mdeg_c / 1000.0


# --- frequency, current, power, energy ---------------------------------------------------------

def khz_to_mhz(khz: float) -> float:
    return khz / 1000.0


def hz_to_mhz(hz: float) -> float:
    return hz / 1e6


FREQ_TO_MHZ = {"hz": hz_to_mhz(1.0), "khz": khz_to_mhz(1.0), "mhz": 1.0}
"""MHz per raw unit of a clock node, by the unit a device config names."""


def ma_to_a(ma: float) -> float:
    return ma / 1000.0


def ua_to_ma(ua: float) -> float:
    return ua / UA_PER_MA


def uw_to_mw(uw: float) -> float:
    return uw / 1000.0


def mw_ms_to_mj(mw: float, ms: float) -> float:
    """Energy of a power held for a time: mW × ms = µJ → mJ."""
    return mw * ms_to_s(ms)


def battery_ma_per_raw(ua_per_unit: float, discharge_sign: int) -> float:
    """mA drawn from the battery (positive = discharge) per raw ``current_now`` unit: the unit
    in µA (1 for µA kernels, 1000 for mA ones) times the sign a discharge has on this kernel.

    How a battery's raw sysfs numbers become physical ones has one home here: the sampler's
    convention decision (perflab.telemetry.battery) and the stored record the report reads
    (perflab.store.results) both apply it."""
    return ua_to_ma(ua_per_unit * discharge_sign)


def volts_per_raw(uv_per_unit: float) -> float:
    """Volts per raw ``voltage_now`` unit (1 for µV, 1000 for mV, 1e6 for V)."""
    return uv_per_unit / UV_PER_V


class _RawBatteryUnits(Protocol):
    @property
    def ua_per_unit(self) -> float: ...
    @property
    def discharge_sign(self) -> int: ...
    @property
    def uv_per_unit(self) -> float: ...


class RawBatteryScale:
    """The two scales as properties, for any record that carries ``ua_per_unit``,
    ``discharge_sign`` and ``uv_per_unit`` (the decision and the stored record alike)."""

    __slots__ = ()

    @property
    def ma_per_raw(self: _RawBatteryUnits) -> float:
        """mA drawn from the battery (positive = discharge) per raw current_now unit."""
        return battery_ma_per_raw(self.ua_per_unit, self.discharge_sign)

    @property
    def v_per_raw(self: _RawBatteryUnits) -> float:
        """Volts per raw voltage_now unit."""
        return volts_per_raw(self.uv_per_unit)
