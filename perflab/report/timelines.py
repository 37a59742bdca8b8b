"""Per-device timelines for the report: the stored sampler files of a device's idle baseline and cells,
parsed by the one parser (:func:`perflab.analysis.timeline.parse_sampler_output`), laid end to end on
the device's own monotonic clock, with each cell's inference window. Pure: parsed timelines and stored
records in, plot-ready series out.

Battery current and voltage are stored raw (unit and sign are decided per device when the run ends,
``TelemetryRecord.current_convention``). The report does not decide them again: it scales the raw
values by the one of the few possible conventions (µA or mA, either sign; µV or mV) that reproduces the
mean the run stored for the same window, and says so. Where nothing was stored to compare with, the
stream is shown missing with that reason.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

from perflab.analysis.timeline import Timeline

CURRENT_SCALES_MA = (-1e-3, 1e-3, -1.0, 1.0)  # raw µA or mA, discharge negative or positive
VOLTAGE_SCALES_V = (1e-6, 1e-3)  # raw µV or mV

Series = list[tuple[float, float]]


@dataclass(frozen=True)
class Segment:
    """One sampler file: the device at rest (``cell_key`` None) or one cell."""

    label: str
    cell_key: str | None
    timeline: Timeline
    current_ma: float | None = None  # the mean the run stored for this segment's window
    voltage_v: float | None = None
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


def cpu_busy_series(tl: Timeline, name: str = "cpu") -> Series:
    """Busy share of /proc/stat between consecutive ticks (%), at the later tick."""
    pts = tl.cpu_ticks.get(name, [])
    out: Series = []
    for (_, (b0, t0)), (t, (b1, t1)) in itertools.pairwise(pts):
        if t1 > t0:
            out.append((t, 100.0 * (b1 - b0) / (t1 - t0)))
    return out


def rapl_package_mw(tl: Timeline) -> Series:
    """Host package power from the cumulative RAPL energy counters of the package zones (``intel-rapl:N``),
    between consecutive samples, summed over packages; an interval where a counter wrapped is left out."""
    per_tick: dict[float, float] = {}
    for name, pts in tl.rapl_uj.items():
        if name.count(":") != 1:
            continue  # sub-zones (core, uncore, dram) are inside their package
        for (ta, ea), (tb, eb) in itertools.pairwise(pts):
            if tb > ta and eb >= ea:
                per_tick[tb] = per_tick.get(tb, 0.0) + (eb - ea) / 1000.0 / (tb - ta)
    return sorted(per_tick.items())


def process_window(tl: Timeline) -> tuple[float, float] | None:
    """The ticks at which the measured process was seen (its ``rss`` lines): the cell's inference window."""
    return (tl.rss_kb[0][0], tl.rss_kb[-1][0]) if tl.rss_kb else None


def _in(series: Sequence[tuple[float, float]], win: tuple[float, float] | None) -> list[float]:
    return [v for t, v in series if win is None or win[0] <= t <= win[1]]


def pick_scale(pairs: Sequence[tuple[list[float], float]], scales: Sequence[float]) -> float | None:
    """The scale that best turns each segment's raw values into the mean the run stored for it (least total
    relative error), or None where no segment has both."""
    usable = [(raw, stored) for raw, stored in pairs if raw and stored]
    if not usable:
        return None

    def err(k: float) -> float:
        return sum(abs(k * sum(raw) / len(raw) - stored) / abs(stored) for raw, stored in usable)

    return min(scales, key=err)


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


def _current_and_power(segs: Sequence[Segment], t0: float, notes: list[str]) -> tuple[Stream, Stream]:
    """Raw current scaled by the convention that reproduces the stored means; power = current × voltage."""
    cur_scale = pick_scale([(_in(s.timeline.bat_current_raw, process_window(s.timeline)), s.current_ma or 0.0)
                            for s in segs], CURRENT_SCALES_MA)
    volt_scale = pick_scale([(_in(s.timeline.bat_voltage_uv, process_window(s.timeline)), s.voltage_v or 0.0)
                             for s in segs], VOLTAGE_SCALES_V)
    current = Stream("battery current", "mA")
    power = Stream("power", "mW")
    if not any(s.timeline.bat_current_raw for s in segs):
        current.missing = power.missing = _first_reason(segs, ("bat",), "the sampler read no battery current")
        rapl = [_shift(rapl_package_mw(s.timeline), t0) for s in segs]
        if any(rapl):
            power.name, power.segments, power.missing = "host package power (RAPL)", rapl, None
        return current, power
    if cur_scale is None:
        current.missing = power.missing = ("raw battery current was sampled, but the run stored no mean current to "
                                           "fix its unit and sign by")
        return current, power
    for s in segs:
        ma = _shift(s.timeline.bat_current_raw, t0, cur_scale)
        current.segments.append(ma)
        vt = s.timeline.bat_voltage_uv
        if volt_scale is not None and vt:
            power.segments.append([(t, v * _nearest(vt, t + t0) * volt_scale) for t, v in ma])
    if power.empty:
        power.missing = ("no battery voltage was sampled" if not any(s.timeline.bat_voltage_uv for s in segs)
                         else "battery voltage was sampled, but the run stored no mean voltage to fix its unit by")
    notes.append("Current is the sampler's raw current_now scaled by the unit and discharge sign the run decided "
                 "(the one that reproduces each cell's stored mean); power = current × battery voltage.")
    return current, power


def _temperature(segs: Sequence[Segment], t0: float) -> Stream:
    temp = Stream("temperature", "°C")
    zones: set[str] = set()
    for s in segs:
        tz = s.timeline.temp_c
        zone = s.temp_zone if s.temp_zone in tz else next(iter(tz), None)
        if zone is not None:
            temp.segments.append(_shift(tz[zone], t0))
            zones.add(zone)
        elif s.timeline.bat_temp_c:
            temp.segments.append(_shift(s.timeline.bat_temp_c, t0))
            zones.add("battery")
    if temp.empty:
        temp.missing = _first_reason(segs, ("tz",), "no thermal zone or battery temperature was sampled")
    else:
        temp.name = f"temperature ({', '.join(sorted(zones))})"
    return temp


def build_device_timeline(segments: Sequence[Segment]) -> DeviceTimeline | None:
    """A device's streams over the run (x in seconds from its first tick) with each cell's window."""
    segs = sorted((s for s in segments if s.timeline.ticks), key=lambda s: s.timeline.ticks[0])
    if not segs:
        return None
    t0 = segs[0].timeline.ticks[0]
    notes: list[str] = []
    current, power = _current_and_power(segs, t0, notes)
    cpu = Stream("device CPU busy", "%", [_shift(cpu_busy_series(s.timeline), t0) for s in segs])
    if cpu.empty:
        cpu.missing = _first_reason(segs, ("cpu",), "the sampler read no /proc/stat")
    gpu = Stream("GPU busy", "%", [_shift(s.timeline.gpu_busy_pct, t0) for s in segs])
    if gpu.empty:
        gpu.missing = _first_reason(segs, ("gpu",), "no GPU load was sampled")
    mem = Stream("measured process RSS", "MB", [_shift(s.timeline.rss_kb, t0, 1 / 1024) for s in segs])
    if mem.empty:
        mem.missing = _first_reason(segs, ("rss",), "the measured process was not seen by the sampler")
    return DeviceTimeline(t0, [current, power, _temperature(segs, t0), cpu, gpu, mem], _windows(segs, t0), notes)


def _nearest(series: Sequence[tuple[float, float]], t: float) -> float:
    """The value of ``series`` (sorted by time) at the sample nearest ``t`` (voltage moves slowly)."""
    i = bisect.bisect_left(series, t, key=lambda p: p[0])
    if i == 0:
        return series[0][1]
    if i == len(series):
        return series[-1][1]
    before, after = series[i - 1], series[i]
    return before[1] if t - before[0] <= after[0] - t else after[1]
