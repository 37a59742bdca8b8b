"""What a cell cost, from its sampler timeline: load, memory, heat, current, power, energy (pure).

The window is the span over which the measured process was alive on the device (the ticks
that carry an ``rss`` line), on the device's own clock, so no host↔device clock alignment is
needed for sampler streams. Every value that cannot be computed is None with its reason in
``missing``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from perflab.analysis.thermal_zones import skin_zone, soc_zone
from perflab.analysis.timeline import (
    Timeline,
    cpu_busy_per_tick,
    is_rapl_package,
    process_window,
    rapl_mw,
)
from perflab.core.proc import CpuTimes, busy_pct
from perflab.core.units import FREQ_TO_MHZ, hz_to_mhz, khz_to_mhz, kib_to_mib, ma_to_a, s_to_ms
from perflab.errors import MeasurementError
from perflab.telemetry.battery import CurrentConvention, charging_during, decide_convention
from perflab.telemetry.energy import EnergyWindow, integrate


@dataclass(frozen=True)
class StreamConfig:
    """How to read the raw streams of one device (from its device config)."""

    gpu_freq_unit: str = "hz"
    current_unit: str | None = None  # "ua"/"ma" when the config says so; None → decide from the data
    discharge_sign: int | None = None
    voltage_unit: str | None = None  # "uv"/"mv"/"v" when the config says so; None → decide from the magnitude
    temp_zone: str | None = None  # the cool-down gate zone (not the cost's: that is the SoC zone, thermal_zones)


@dataclass(frozen=True)
class Summary:
    start_s: float | None = None
    end_s: float | None = None
    cpu_busy_pct: float | None = None  # device-wide, 100 = every core busy
    cpu_core_busy_pct: dict[str, float] = field(default_factory=dict)
    cpu_freq_mhz: dict[str, float] = field(default_factory=dict)  # mean per core/policy
    gpu_busy_pct: float | None = None
    gpu_freq_mhz: float | None = None
    rss_peak_mb: float | None = None
    mem_avail_min_mb: float | None = None
    temp_zone: str | None = None  # the SoC/CPU zone (analysis.thermal_zones.soc_zone), else the battery's
    temp_start_c: float | None = None
    temp_end_c: float | None = None
    temp_max_c: float | None = None
    skin_zone: str | None = None  # the skin sensor (quiet_therm, skin…), its own figure
    skin_start_c: float | None = None
    skin_end_c: float | None = None
    skin_max_c: float | None = None
    current_ma: float | None = None  # mean, drawn from the battery (positive = discharge)
    voltage_v: float | None = None
    power_mw: float | None = None
    energy: EnergyWindow | None = None
    charging: bool | None = None
    current_how: str | None = None
    convention: CurrentConvention | None = None  # the unit and sign current_ma was computed with, and why
    host_package_mw: float | None = None  # RAPL package power on `local` hosts that have it
    sampler_cpu_pct: float | None = None  # the sampler's own CPU time / wall time × 100
    sample_rate_hz: float | None = None  # ticks achieved over the window: (n − 1) / span
    sample_max_gap_ms: float | None = None  # the longest interval between ticks in the window
    sample_ticks: int | None = None  # ticks in the window
    missing: dict[str, str] = field(default_factory=dict)


def _between(series: Sequence[tuple[float, float]], t0: float, t1: float) -> list[tuple[float, float]]:
    return [(t, v) for t, v in series if t0 <= t <= t1]


def _busy_pct(series: Sequence[tuple[float, tuple[int, int]]], t0: float, t1: float) -> float | None:
    """Δbusy/Δtotal of cumulative tick counters from the last sample ≤ t0 to the first ≥ t1."""
    before = [x for x in series if x[0] <= t0]
    after = [x for x in series if x[0] >= t1]
    a = before[-1] if before else (series[0] if series else None)
    b = after[0] if after else (series[-1] if series else None)
    if a is None or b is None:
        return None
    return busy_pct(CpuTimes(*a[1]), CpuTimes(*b[1]))


def _mean(series: Sequence[tuple[float, float]]) -> float | None:
    return float(np.mean([v for _, v in series])) if series else None


def _cpu(tl: Timeline, t0: float, t1: float, out: dict[str, object], missing: dict[str, str]) -> None:
    if "cpu" in tl.cpu_ticks:
        out["cpu_busy_pct"] = _busy_pct(tl.cpu_ticks["cpu"], t0, t1)
        out["cpu_core_busy_pct"] = {
            name: v for name, s in tl.cpu_ticks.items() if name != "cpu" and (v := _busy_pct(s, t0, t1)) is not None
        }
    else:
        missing["cpu_busy_pct"] = tl.missing.get("cpu", "the sampler read no /proc/stat")
    freqs = {core: m for core, s in tl.freq_khz.items() if (m := _mean(_between(s, t0, t1))) is not None}
    out["cpu_freq_mhz"] = {core: khz_to_mhz(v) for core, v in freqs.items()}
    if not freqs:
        missing["cpu_freq_mhz"] = tl.missing.get("freq", "no cpufreq nodes were read")


def _gpu(tl: Timeline, t0: float, t1: float, cfg: StreamConfig, out: dict[str, object],
         missing: dict[str, str]) -> None:
    busy = _mean(_between(tl.gpu_busy_pct, t0, t1))
    out["gpu_busy_pct"] = busy
    if busy is None:
        missing["gpu_busy_pct"] = tl.missing.get("gpu", "no GPU load node configured for this device")
    freq = _mean(_between(tl.gpu_freq_raw, t0, t1))
    out["gpu_freq_mhz"] = None if freq is None else freq * FREQ_TO_MHZ.get(cfg.gpu_freq_unit, hz_to_mhz(1.0))
    if freq is None:
        missing["gpu_freq_mhz"] = tl.missing.get("gpufreq", "no GPU clock node configured for this device")


def _memory(tl: Timeline, t0: float, t1: float, out: dict[str, object], missing: dict[str, str]) -> None:
    rss = _between(tl.rss_kb, t0, t1)
    out["rss_peak_mb"] = kib_to_mib(max(v for _, v in rss)) if rss else None
    if not rss:
        missing["rss_peak_mb"] = tl.missing.get("rss", "the measured process was not seen")
    mem = _between(tl.mem_avail_kb, t0, t1)
    out["mem_avail_min_mb"] = kib_to_mib(min(v for _, v in mem)) if mem else None
    if not mem:
        missing["mem_avail_min_mb"] = tl.missing.get("mem", "MemAvailable was not read")


def _thermal(tl: Timeline, t0: float, t1: float, out: dict[str, object], missing: dict[str, str]) -> None:
    """The SoC/CPU zone's temperature (never the skin's: it lags the load) and, apart, the skin
    zone's; each zone is named, and one figure never mixes two sensors."""
    zone = soc_zone(tl.temp_c)
    series = _between(tl.temp_c[zone], t0, t1) if zone is not None else []
    if not series and tl.bat_temp_c:
        series, zone = _between(tl.bat_temp_c, t0, t1), "battery (power_supply temp)"
    if series:
        vals = [v for _, v in series]
        out.update(temp_zone=zone, temp_start_c=vals[0], temp_end_c=vals[-1], temp_max_c=max(vals))
    else:
        missing["temp_c"] = tl.missing.get("tz") or (
            f"no CPU/SoC thermal zone among {', '.join(tl.temp_c)} and no battery temperature" if tl.temp_c
            else "no thermal zone or battery temperature was read")
    skin = skin_zone(tl.temp_c)
    skin_series = _between(tl.temp_c[skin], t0, t1) if skin is not None else []
    if skin_series:
        vals = [v for _, v in skin_series]
        out.update(skin_zone=skin, skin_start_c=vals[0], skin_end_c=vals[-1], skin_max_c=max(vals))
    else:
        missing["skin_c"] = tl.missing.get("tz") or (
            f"no skin thermal zone among {', '.join(tl.temp_c) or 'the zones read'}" if skin is None
            else f"{skin} was not read in the window")


def _power(tl: Timeline, t0: float, t1: float, cfg: StreamConfig, out: dict[str, object],
           missing: dict[str, str]) -> None:
    cur = _between(tl.bat_current_raw, t0, t1)
    if not cur:
        missing["current_ma"] = tl.missing.get("bat", "no battery current was read")
        return
    # decided once per sampler file, from the whole file: the longer the span, the surer the counter's slope,
    # and the process starting and stopping inside it is the load step
    conv: CurrentConvention = decide_convention(
        tl.bat_current_raw, charge=tl.bat_charge_uah, voltage=[v for _, v in tl.bat_voltage_uv],
        load_pct=cpu_busy_per_tick(tl), configured_unit=cfg.current_unit, configured_sign=cfg.discharge_sign,
        configured_voltage_unit=cfg.voltage_unit)
    out["current_how"] = conv.how
    out["convention"] = conv
    out["charging"] = charging_during([s for t, s in tl.bat_status if t0 <= t <= t1])
    ma = [(t, conv.discharge_ma(v)) for t, v in cur]
    out["current_ma"] = _mean(ma)
    volt = _between(tl.bat_voltage_uv, t0, t1)
    if not volt:
        missing["power_mw"] = tl.missing.get("bat", "no battery voltage was read: energy needs it")
        return
    v_scale = conv.v_per_raw
    vt = np.asarray([t for t, _ in volt])
    vv = np.asarray([v * v_scale for _, v in volt])
    t = np.asarray([t for t, _ in ma])
    volts = np.interp(t, vt, vv)
    out["voltage_v"] = float(np.mean(vv))
    if len(t) < 2:
        out["power_mw"] = float(ma[0][1] * volts[0])
        missing["energy"] = "a single current sample: no integral"
        return
    try:
        e = integrate(t, np.asarray([ma_to_a(v) for _, v in ma]), volts, start_s=t0, end_s=t1)
    except MeasurementError as exc:
        missing["energy"] = str(exc)
        return
    out.update(energy=e, power_mw=e.mean_mw, current_ma=e.mean_ma)


def sampling(tl: Timeline, t0: float, t1: float) -> tuple[float | None, float | None, int]:
    """(achieved rate Hz, longest gap ms, ticks) of the sampler over [t0, t1]: what it did, not what it was asked."""
    ticks = [t for t in tl.ticks if t0 <= t <= t1]
    if len(ticks) < 2 or not ticks[-1] > ticks[0]:
        return None, None, len(ticks)
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    return (len(ticks) - 1) / (ticks[-1] - ticks[0]), s_to_ms(max(gaps)), len(ticks)


def _host_power(tl: Timeline, t0: float, t1: float, out: dict[str, object], missing: dict[str, str]) -> None:
    """Package power from RAPL energy counters (intel-rapl:N zones), over the window."""
    total_mw = 0.0
    for name, series in tl.rapl_uj.items():
        s = _between(series, t0, t1)
        if not is_rapl_package(name) or len(s) < 2:
            continue
        total_mw += rapl_mw(s[0], s[-1]) or 0.0  # a counter wrap is dropped, not guessed
    if total_mw > 0:
        out["host_package_mw"] = total_mw
    else:
        missing["host_package_mw"] = tl.missing.get("rapl", "no RAPL package counter moved in the window")


def summarize_window(tl: Timeline, cfg: StreamConfig, window: tuple[float, float] | None = None) -> Summary:
    """The cell's cost over ``window`` (default: while the measured process was alive)."""
    win = window or process_window(tl)
    if win is None or not win[1] > win[0]:
        why = "the sampler saw no window (the measured process was never seen)" if win is None else \
            "the window is shorter than one sampling interval"
        return Summary(missing={"window": why, **tl.missing})
    t0, t1 = win
    out: dict[str, object] = {"start_s": t0, "end_s": t1}
    missing: dict[str, str] = {}
    _cpu(tl, t0, t1, out, missing)
    _gpu(tl, t0, t1, cfg, out, missing)
    _memory(tl, t0, t1, out, missing)
    _thermal(tl, t0, t1, out, missing)
    _power(tl, t0, t1, cfg, out, missing)
    _host_power(tl, t0, t1, out, missing)
    rate_hz, gap_ms, n_ticks = sampling(tl, t0, t1)
    out.update(sample_rate_hz=rate_hz, sample_max_gap_ms=gap_ms, sample_ticks=n_ticks)
    if rate_hz is None:
        missing["sample_rate_hz"] = f"{n_ticks} sampler tick(s) in the window: no rate"
    if len(tl.self_cpu_s) >= 2 and tl.self_cpu_s[-1][0] > tl.self_cpu_s[0][0]:
        (ta, ca), (tb, cb) = tl.self_cpu_s[0], tl.self_cpu_s[-1]
        out["sampler_cpu_pct"] = 100.0 * (cb - ca) / (tb - ta)
    else:
        missing["sampler_cpu_pct"] = "the sampler did not report its own CPU time"
    return Summary(**out, missing=missing)  # type: ignore[arg-type]
