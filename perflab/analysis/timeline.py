"""The sampler's line format and its parser: raw lines in, typed timelines out (pure).

It lives in analysis because the sampler (perflab.telemetry) writes this format and the
report reads the stored files: the one parser sits below both.

One sampler per cell prints, every tick, a block of lines (space-separated, first token the
record type). The device-side shell script (``sampler.sh``) and the local sampler
(:mod:`perflab.telemetry.local`) print the same format, so one parser reads both::

    P <pid>                       the sampler's own PID (first line; perflab kills it by this PID)
    T <clock_s>                   tick start on the device's monotonic clock (seconds)
    cpu <name> <user> <nice> <system> <idle> <iowait> <irq> <softirq> [steal …]
                                  a /proc/stat cpu line (ticks; ``cpu`` = all cores)
    cpu  <user> …  /  cpuN <user> …
                                  the same, as /proc/stat prints it (the phone script copies
                                  the file's cpu lines in one ``read -d i``)
    freq <core> <khz>             scaling_cur_freq of one core
    freq <core>=<khz> …           the same for several cores in one line (empty = not read)
    gpu kgsl <busy> <total>       Adreno gpubusy: the last window's busy/total (not cumulative)
    gpu pct <percent>             Mali utilization / kgsl gpu_busy_percentage ("37 %" → 37)
    gpu ged <load> <block> <idle> MediaTek GED gpu_utilization
    gpu <kind>                    the node gave nothing this tick (no sample)
    gpufreq <raw>                 GPU clock as the node gives it (unit from the device config)
    rss <kb>                      VmRSS of the measured process (absent while it is not running)
    mem <kb>                      MemAvailable of the device
    mem MemAvailable: <kb>        the same with meminfo's key (the phone reads its third line)
    tz <name> <raw>               a thermal zone's temp (raw: m°C on most kernels)
    tz <name>=<raw> …             the same for several zones in one line (empty = not read)
    bat <current_raw> <voltage_uv> <charge_uah> <temp_dc> <status>
                                  the battery's sysfs nodes, raw (units and sign decided later)
    bat c=<current_raw> v=<voltage_uv> ch=<charge_uah> te=<temp_dc> st=<status…>
                                  the same by name (empty = not read; the status comes last)
    rapl <zone> <energy_uj>       a powercap RAPL counter (host package/core energy, µJ, cumulative)
    self <utime_ticks> <stime_ticks> [<cutime_ticks> <cstime_ticks>] <clk_tck>
                                  the sampler's own CPU time (with its waited-for children's,
                                  e.g. a forked ``sleep``, when given)
    E <stream> <message…>         a stream could not be read (said once, kept as the reason)

Anything else is counted as garbage and reported, never guessed at.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from perflab.core.proc import CpuTimes, busy_pct
from perflab.core.units import millidegrees_to_c, uw_to_mw

THERMAL_RAW_MC_LIMIT = 200.0  # raw values below this are °C already (formats.md §3.1 heuristic)


@dataclass
class Timeline:
    """Per-stream time series on the device clock (seconds), plus why streams are missing."""

    cpu_ticks: dict[str, list[tuple[float, tuple[int, int]]]] = field(default_factory=dict)  # name → (t, (busy, total))
    freq_khz: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    gpu_busy_pct: list[tuple[float, float]] = field(default_factory=list)
    gpu_freq_raw: list[tuple[float, float]] = field(default_factory=list)
    rss_kb: list[tuple[float, float]] = field(default_factory=list)
    mem_avail_kb: list[tuple[float, float]] = field(default_factory=list)
    temp_c: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    bat_current_raw: list[tuple[float, float]] = field(default_factory=list)
    bat_voltage_uv: list[tuple[float, float]] = field(default_factory=list)
    bat_charge_uah: list[tuple[float, float]] = field(default_factory=list)
    bat_temp_c: list[tuple[float, float]] = field(default_factory=list)
    bat_status: list[tuple[float, str]] = field(default_factory=list)
    self_cpu_s: list[tuple[float, float]] = field(default_factory=list)
    rapl_uj: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    ticks: list[float] = field(default_factory=list)
    missing: dict[str, str] = field(default_factory=dict)
    garbage_lines: int = 0
    sampler_pid: int | None = None

    @property
    def span_s(self) -> tuple[float, float] | None:
        return (self.ticks[0], self.ticks[-1]) if self.ticks else None


def _num(text: str) -> float | None:
    try:
        v = float(text.strip().rstrip("%").strip())
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def zone_temp_c(raw: float) -> float | None:
    """A thermal zone's raw value in °C: m°C on most kernels, °C below 200; absurd values
    (disabled zones read -273000 or similar) are None."""
    c = raw if abs(raw) < THERMAL_RAW_MC_LIMIT else millidegrees_to_c(raw)
    return c if -40.0 <= c <= 150.0 else None


class _Parser:
    def __init__(self) -> None:
        self.tl = Timeline()
        self.t: float | None = None

    def feed(self, line: str) -> None:
        parts = line.split()
        if not parts:
            return
        kind, args = parts[0], parts[1:]
        if kind == "T":
            t = _num(args[0]) if args else None
            if t is None:
                self.tl.garbage_lines += 1
                return
            self.t = t
            self.tl.ticks.append(t)
            return
        if kind == "P" and len(args) == 1 and args[0].isdigit():
            self.tl.sampler_pid = int(args[0])
            return
        if kind == "E":
            if args:
                self.tl.missing.setdefault(args[0], " ".join(args[1:]) or "could not be read")
            return
        if (kind.startswith("cpu") and kind[3:].isdigit()) or (kind == "cpu" and args and args[0].isdigit()):
            kind, args = "cpu", [kind, *args]  # a raw /proc/stat line
        handler = _HANDLERS.get(kind)
        if self.t is None or handler is None or not handler(self.tl, self.t, args):
            self.tl.garbage_lines += 1


def _cpu(tl: Timeline, t: float, a: list[str]) -> bool:
    nums = [int(x) for x in a[1:] if x.isdigit()]
    if len(nums) < 4 or len(nums) != len(a) - 1:
        return False
    idle = nums[3] + (nums[4] if len(nums) > 4 else 0)  # idle + iowait
    total = sum(nums[:8])  # user..steal; guest is already inside user
    tl.cpu_ticks.setdefault(a[0], []).append((t, (total - idle, total)))
    return True


def _pairs(a: list[str]) -> list[tuple[str, str]] | None:
    """``name=value`` arguments (a value may be empty: not read this tick); None if any is not."""
    pairs = [x.partition("=") for x in a]
    if not a or any(not sep or not name for name, sep, _ in pairs):
        return None
    return [(name, value) for name, _, value in pairs]


def _each_named_number(a: list[str], add: Callable[[str, float], None]) -> bool:
    """``name=value …`` arguments (or the older two-field ``name value``) whose values are numbers:
    ``add(name, value)`` for each one read, in order (an empty value: not read this tick); False
    at the first value that is not a number (the line is garbage), or where the arguments are not
    that form. The one grammar of the per-name lines (frequencies, thermal zones)."""
    pairs = _pairs(a) if len(a) != 2 or "=" in a[0] else [(a[0], a[1])]
    if pairs is None:
        return False
    for name, text in pairs:
        v = _num(text) if text else None
        if text and v is None:
            return False
        if v is not None:
            add(name, v)
    return True


def _freq(tl: Timeline, t: float, a: list[str]) -> bool:
    return _each_named_number(a, lambda name, khz: tl.freq_khz.setdefault(name, []).append((t, khz)))


def _gpu(tl: Timeline, t: float, a: list[str]) -> bool:
    if not a:
        return False
    vals = [_num(x) for x in a[1:]]
    if not vals:
        return a[0] in ("kgsl", "pct", "ged")  # read nothing this tick: no sample
    if any(v is None for v in vals):
        return False
    nums = [v for v in vals if v is not None]
    if a[0] == "kgsl" and len(nums) == 2:
        busy, total = nums
        if total > 0:  # "0 0" while the GPU is off: no window, no sample
            tl.gpu_busy_pct.append((t, 100.0 * busy / total))
        return True
    if a[0] in ("pct", "ged"):
        tl.gpu_busy_pct.append((t, nums[0]))
        return True
    return False


Handler = Callable[["Timeline", float, list[str]], bool]


def _series(attr: str, scale: float = 1.0) -> Handler:
    """``kind value``; ``kind`` alone is a tick that could not read it (no sample, not garbage)."""
    def handler(tl: Timeline, t: float, a: list[str]) -> bool:
        if not a:
            return True
        v = _num(a[0]) if len(a) == 1 else None
        if v is None:
            return False
        getattr(tl, attr).append((t, v * scale))
        return True

    return handler


def _tz(tl: Timeline, t: float, a: list[str]) -> bool:
    def add(zone: str, raw: float) -> None:
        c = zone_temp_c(raw)
        if c is not None:
            tl.temp_c.setdefault(zone, []).append((t, c))

    return _each_named_number(a, add)


_BAT_KEYS = ("c=", "v=", "ch=", "te=", "st=")


def _bat_by_name(a: list[str]) -> list[str] | None:
    """``c=… v=… ch=… te=… st=…`` → the positional fields ("x" where not read)."""
    if len(a) < len(_BAT_KEYS) or any(not x.startswith(k) for x, k in zip(a, _BAT_KEYS, strict=False)):
        return None
    values = [x.split("=", 1)[1] for x in a[:4]] + [" ".join([a[4].split("=", 1)[1], *a[5:]]).strip()]
    return [v or "x" for v in values]


def _bat(tl: Timeline, t: float, a: list[str]) -> bool:
    if a and a[0].startswith("c="):
        named = _bat_by_name(a)
        if named is None:
            return False
        a = named
    if len(a) < 5:  # the status may hold a space ("Not charging": charging suspended)
        return False
    cur, volt, charge, temp = (_num(x) for x in a[:4])
    if cur is not None:
        tl.bat_current_raw.append((t, cur))
    if volt is not None and volt > 0:
        tl.bat_voltage_uv.append((t, volt))
    if charge is not None:
        tl.bat_charge_uah.append((t, charge))
    if temp is not None:
        tl.bat_temp_c.append((t, temp / 10.0))
    tl.bat_status.append((t, " ".join(a[4:])))
    return True


def _mem(tl: Timeline, t: float, a: list[str]) -> bool:
    if not a:
        return True  # not read this tick
    if len(a) == 2 and a[0] == "MemAvailable:":
        a = a[1:]
    v = _num(a[0]) if len(a) == 1 else None
    if v is None:
        return False
    tl.mem_avail_kb.append((t, v))
    return True


def _rapl(tl: Timeline, t: float, a: list[str]) -> bool:
    v = _num(a[1]) if len(a) == 2 else None
    if v is None:
        return False
    tl.rapl_uj.setdefault(a[0], []).append((t, v))
    return True


def _self(tl: Timeline, t: float, a: list[str]) -> bool:
    if len(a) == 1 and _num(a[0]):
        return True  # only the clock-tick rate: its own stat not read this tick
    nums = [v for v in (_num(x) for x in a) if v is not None]
    if len(nums) != len(a) or len(nums) not in (3, 5) or not nums[-1]:
        return False
    tl.self_cpu_s.append((t, sum(nums[:-1]) / nums[-1]))
    return True


_HANDLERS: dict[str, Handler] = {
    "cpu": _cpu, "freq": _freq, "gpu": _gpu, "gpufreq": _series("gpu_freq_raw"), "rss": _series("rss_kb"),
    "mem": _mem, "tz": _tz, "bat": _bat, "self": _self, "rapl": _rapl,
}


def parse_sampler_output(lines: Iterable[str]) -> Timeline:
    """Sampler lines → a Timeline. Unknown or malformed lines are counted in ``garbage_lines``."""
    p = _Parser()
    for line in lines:
        p.feed(line)
    return p.tl


# ---------------------------------------------------------------------------------------------
# rules read off a timeline: one home for the cell's summary (perflab.telemetry.summary), the
# report's plots (perflab.report.timelines) and the trace export (perflab.tracing.runexport)

Series = list[tuple[float, float]]


def process_window(tl: Timeline) -> tuple[float, float] | None:
    """First and last tick at which the measured process was seen (its ``rss`` lines): the
    cell's inference window."""
    return (tl.rss_kb[0][0], tl.rss_kb[-1][0]) if tl.rss_kb else None


def cpu_busy_per_tick(tl: Timeline, name: str = "cpu") -> Series:
    """Busy share of a /proc/stat cpu line (``cpu`` = all cores) between consecutive ticks (%),
    at the later tick (the rule: :func:`perflab.core.proc.busy_pct`)."""
    out: Series = []
    for (_, a), (t, b) in itertools.pairwise(tl.cpu_ticks.get(name, [])):
        pct = busy_pct(CpuTimes(*a), CpuTimes(*b))
        if pct is not None:
            out.append((t, pct))
    return out


def is_rapl_package(zone: str) -> bool:
    """A RAPL package zone (``intel-rapl:N``); its sub-zones (``intel-rapl:N:M``: core, uncore,
    dram) are inside it and never added again."""
    return zone.count(":") == 1


def rapl_mw(a: tuple[float, float], b: tuple[float, float]) -> float | None:
    """Mean power (mW) between two samples ``(t_s, energy_uj)`` of a cumulative RAPL energy
    counter: µJ/s = µW → mW. None where no time passed or the counter wrapped (a wrap is
    dropped, not guessed)."""
    (ta, ea), (tb, eb) = a, b
    if not tb > ta or eb < ea:
        return None
    return uw_to_mw((eb - ea) / (tb - ta))


def rapl_package_mw_per_tick(tl: Timeline) -> Series:
    """Host package power between consecutive samples, summed over the package zones; an
    interval where a counter wrapped is left out of that package's sum."""
    per_tick: dict[float, float] = {}
    for zone, pts in tl.rapl_uj.items():
        if not is_rapl_package(zone):
            continue
        for a, b in itertools.pairwise(pts):
            mw = rapl_mw(a, b)
            if mw is not None:
                per_tick[b[0]] = per_tick.get(b[0], 0.0) + mw
    return sorted(per_tick.items())
