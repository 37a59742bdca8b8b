"""Per-device timelines for the report: the stored sampler files of a device's idle baseline and cells,
parsed by the one parser (:func:`perflab.analysis.timeline.parse_sampler_output`), laid end to end on
the device's own monotonic clock, with each cell's inference window. Pure: parsed timelines and stored
records in, plot-ready series out.

Battery current and voltage are stored raw; the run decided their unit and sign once per sampler file
(perflab.telemetry.battery) and stored the numbers (``TelemetryRecord.convention``,
``IdleRecord.convention``: µA per raw unit, the discharge sign, µV per raw unit). The report applies those
numbers and never decides again: a file whose record lacks them (written by a perflab before they were
stored) has its raw current left out of the plot, and the report says so and why.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from perflab.analysis.thermal_zones import skin_zone, soc_zone
from perflab.analysis.timeline import (
    Series,
    Timeline,
    cpu_busy_per_tick,
    process_window,
    rapl_package_mw_per_tick,
)
from perflab.core.units import UA_PER_MA, UV_PER_MV, UV_PER_V, kib_to_mib
from perflab.store.results import CurrentConventionRecord

NO_CONVENTION = ("its record stores how the unit and sign of current_now were decided only in words (results.json "
                 "written before perflab stored them as numbers), so its raw current cannot be plotted in mA; the "
                 "report does not guess them again")


@dataclass(frozen=True)
class Segment:
    """One sampler file: the device at rest (``cell_key`` None) or one cell."""

    label: str
    cell_key: str | None
    timeline: Timeline
    convention: CurrentConventionRecord | None = None  # how this file's raw battery values scale (stored by the run)
    temp_zone: str | None = None
    emulated: bool = False


@dataclass(frozen=True)
class Window:
    start_s: float
    end_s: float
    number: int | None  # the cell's number in the key; None for the idle baseline
    label: str
    whole_span: bool = False  # the measured process was not seen: the window is the file's whole span


@dataclass
class Stream:
    name: str
    unit: str
    segments: list[Series] = field(default_factory=list)  # one line per sampler file (never joined across gaps)
    missing: str | None = None

    @property
    def empty(self) -> bool:
        return not any(self.segments)


@dataclass
class DeviceTimeline:
    t0_s: float  # the first tick on the device clock: x = 0
    streams: list[Stream]
    windows: list[Window]
    notes: list[str] = field(default_factory=list)


def _first_reason(segments: Sequence[Segment], keys: Sequence[str], default: str) -> str:
    for s in segments:
        for k in keys:
            if k in s.timeline.missing:
                return s.timeline.missing[k]
    return default


def _windows(segs: Sequence[Segment], t0: float) -> list[Window]:
    windows: list[Window] = []
    number = 0
    for s in segs:
        win = process_window(s.timeline)
        span = (s.timeline.ticks[0], s.timeline.ticks[-1])
        if s.cell_key is None:
            windows.append(Window(span[0] - t0, span[1] - t0, None, s.label))
            continue
        number += 1
        w = win if win is not None else span
        windows.append(Window(w[0] - t0, w[1] - t0, number, s.label, whole_span=win is None))
    return windows


def _shift(series: Sequence[tuple[float, float]], t0: float, k: float = 1.0) -> Series:
    return [(t - t0, v * k) for t, v in series]


def _shift_kib_to_mib(series: Sequence[tuple[float, float]], t0: float) -> Series:
    return [(t - t0, kib_to_mib(v)) for t, v in series]


def _current_and_power(segs: Sequence[Segment], t0: float, notes: list[str]) -> tuple[Stream, Stream]:
    """Raw current scaled by the convention the run stored for each file; power = current × voltage."""
    current = Stream("battery current", "mA")
    power = Stream("power", "mW")
    if not any(s.timeline.bat_current_raw for s in segs):
        current.missing = power.missing = _first_reason(segs, ("bat",), "the sampler read no battery current")
        rapl = [_shift(rapl_package_mw_per_tick(s.timeline), t0) for s in segs]
        if any(rapl):
            power.name, power.segments, power.missing = "host package power (RAPL)", rapl, None
        return current, power
    unscaled = [s.label for s in segs if s.timeline.bat_current_raw and s.convention is None]
    for s in segs:
        if s.convention is None or not s.timeline.bat_current_raw:
            continue
        ma = _shift(s.timeline.bat_current_raw, t0, s.convention.ma_per_raw)
        current.segments.append(ma)
        vt = s.timeline.bat_voltage_uv
        if vt:
            k = s.convention.v_per_raw
            power.segments.append([(t, v * _nearest(vt, t + t0) * k) for t, v in ma])
    if current.empty:
        current.missing = power.missing = f"raw battery current was sampled, but {NO_CONVENTION}"
        return current, power
    if unscaled:
        notes.append(f"Battery current and power not drawn for {', '.join(unscaled)}: {NO_CONVENTION}.")
    if power.empty:
        power.missing = "no battery voltage was sampled"
    conventions = sorted({_convention_words(s.convention) for s in segs if s.convention is not None})
    notes.append("Current is the sampler's raw current_now scaled by the unit and discharge sign the run decided and "
                 f"stored ({'; '.join(conventions)}); power = current × battery voltage.")
    return current, power


def _convention_words(c: CurrentConventionRecord) -> str:
    unit = {1.0: "µA", UA_PER_MA: "mA"}.get(c.ua_per_unit, f"{c.ua_per_unit:g} µA")
    volt = {1.0: "µV", UV_PER_MV: "mV", UV_PER_V: "V"}.get(c.uv_per_unit, f"{c.uv_per_unit:g} µV")
    return (f"current_now in {unit} (from {c.unit_source.replace('_', ' ')}), {c.discharge_sign:+d} while "
            f"discharging (from {c.sign_source.replace('_', ' ')}), voltage_now in {volt}")


def _zone_stream(segs: Sequence[Segment], t0: float, label: str, zone: str | None, why: str) -> Stream:
    """One named sensor over every segment: a segment that did not read ``zone`` leaves a gap, it
    never lends another sensor's line."""
    stream = Stream(f"{label} ({zone})" if zone else label, "°C")
    if zone is not None:
        stream.segments = [_shift(s.timeline.temp_c[zone], t0) for s in segs if zone in s.timeline.temp_c]
    if stream.empty:
        stream.missing = _first_reason(segs, ("tz",), why)
    return stream


def _temperatures(segs: Sequence[Segment], t0: float) -> list[Stream]:
    """The SoC/CPU zone's line and the skin sensor's line, each zone picked once for the whole
    device by the one naming rule (analysis.thermal_zones); with no CPU/SoC zone, the battery's."""
    names = list(dict.fromkeys(z for s in segs for z in s.timeline.temp_c))
    soc = soc_zone(names)
    if soc is None and any(s.timeline.bat_temp_c for s in segs):
        temp = Stream("temperature (battery)", "°C", [_shift(s.timeline.bat_temp_c, t0) for s in segs])
    else:
        temp = _zone_stream(segs, t0, "SoC temperature", soc,
                            f"no CPU/SoC thermal zone among {', '.join(names)}" if names
                            else "no thermal zone or battery temperature was sampled")
    skin = _zone_stream(segs, t0, "skin temperature", skin_zone(names),
                        f"no skin thermal zone among {', '.join(names)}" if names else "no thermal zone was sampled")
    return [temp, skin]


def build_device_timeline(segments: Sequence[Segment]) -> DeviceTimeline | None:
    """A device's streams over the run (x in seconds from its first tick) with each cell's window."""
    segs = sorted((s for s in segments if s.timeline.ticks), key=lambda s: s.timeline.ticks[0])
    if not segs:
        return None
    t0 = segs[0].timeline.ticks[0]
    notes: list[str] = []
    current, power = _current_and_power(segs, t0, notes)
    cpu = Stream("device CPU busy", "%", [_shift(cpu_busy_per_tick(s.timeline), t0) for s in segs])
    if cpu.empty:
        cpu.missing = _first_reason(segs, ("cpu",), "the sampler read no /proc/stat")
    gpu = Stream("GPU busy", "%", [_shift(s.timeline.gpu_busy_pct, t0) for s in segs])
    if gpu.empty:
        gpu.missing = _first_reason(segs, ("gpu",), "no GPU load was sampled")
    mem = Stream("measured process RSS", "MB", [_shift_kib_to_mib(s.timeline.rss_kb, t0) for s in segs])
    if mem.empty:
        mem.missing = _first_reason(segs, ("rss",), "the measured process was not seen by the sampler")
    return DeviceTimeline(t0, [current, power, *_temperatures(segs, t0), cpu, gpu, mem], _windows(segs, t0), notes)


def _nearest(series: Sequence[tuple[float, float]], t: float) -> float:
    """The value of ``series`` (sorted by time) at the sample nearest ``t`` (voltage moves slowly)."""
    i = bisect.bisect_left(series, t, key=lambda p: p[0])
    if i == 0:
        return series[0][1]
    if i == len(series):
        return series[-1][1]
    before, after = series[i - 1], series[i]
    return before[1] if t - before[0] <= after[0] - t else after[1]
