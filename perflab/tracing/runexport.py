"""One Chrome trace JSON for a whole run folder: every kernel trace plus the telemetry counters.

``perflab trace export RUN_DIR --out FILE.json`` reads ``<run>/traces/*.trace`` (saved by the
capture with their ``# trace_clock:`` line) and ``<run>/telemetry/*.txt`` (the sampler's
lines, perflab.analysis.timeline), and merges them (pure: texts in, one JSON-ready dict out):

- each trace is exported by perflab.tracing.export.chrome_trace; its processes are renumbered
  (traces of different cells share pseudo-processes and may share pids) and their names
  prefixed with the trace's name, so each cell's tracks stay apart in the Perfetto UI;
- each telemetry file becomes counter tracks on a process ``telemetry: <name>``: per-CPU
  busy % (from /proc/stat deltas), core frequencies (MHz), GPU busy %, RSS and available
  memory (MB), thermal zones (°C), battery current (mA, positive = discharge) and voltage (V)
  scaled by the convention the run stored for that file (``BatteryScale``, from results.json;
  without it the raw battery values are not exported, and ``otherData.battery_not_scaled``
  says so — never guessed); timestamps are the sampler's clock in
  µs. The local sampler's clock is ``time.monotonic()`` (CLOCK_MONOTONIC), which is the trace
  clock ``mono`` the local capture uses, so both line up; a phone's sampler uses
  /proc/uptime. ``otherData.clocks`` records each part's clock so a reader can tell.

The kernel trace is a separate pass from the timed series that telemetry samples, so on one
timeline they sit side by side, not on top of each other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from perflab.analysis.timeline import Timeline, cpu_busy_per_tick
from perflab.core.units import khz_to_mhz, kib_to_mib, s_to_us
from perflab.errors import PerflabError
from perflab.tracing.attribution import attribute, stream_facts
from perflab.tracing.export import chrome_trace
from perflab.tracing.ftrace import text_chunks

Event = dict[str, object]
NOT_SCALED = ("the run stored no battery convention for this file (no results.json, or one written before perflab "
              "stored it): its raw battery values are not exported")


@dataclass(frozen=True)
class NamedText:
    name: str  # e.g. the file stem (the cell's artifact dir)
    text: str


def _counter(pid: int, name: str, ts_s: float, value: float) -> Event:
    return {"name": name, "cat": "telemetry", "ph": "C", "pid": pid, "tid": 0, "ts": round(s_to_us(ts_s), 3),
            "args": {"value": round(float(value), 6)}}


@dataclass(frozen=True)
class BatteryScale:
    """How one telemetry file's raw battery values scale, as the run stored them (CurrentConventionRecord)."""

    ma_per_raw: float  # mA drawn from the battery per raw current_now unit
    v_per_raw: float  # volts per raw voltage_now unit


def timeline_counters(tl: Timeline, pid: int, battery: BatteryScale | None = None) -> list[Event]:
    """Counter events of one sampler timeline (pure); battery counters only with their stored scale."""
    out: list[Event] = []
    for cpu in tl.cpu_ticks:
        out.extend(_counter(pid, f"{cpu} busy %", t, pct) for t, pct in cpu_busy_per_tick(tl, cpu))
    for core, fseries in tl.freq_khz.items():
        out.extend(_counter(pid, f"freq {core} MHz", t, khz_to_mhz(v)) for t, v in fseries)
    out.extend(_counter(pid, "GPU busy %", t, v) for t, v in tl.gpu_busy_pct)
    out.extend(_counter(pid, "RSS MB", t, kib_to_mib(v)) for t, v in tl.rss_kb)
    out.extend(_counter(pid, "MemAvailable MB", t, kib_to_mib(v)) for t, v in tl.mem_avail_kb)
    for zone, tseries in tl.temp_c.items():
        out.extend(_counter(pid, f"{zone} °C", t, v) for t, v in tseries)
    if battery is not None:
        out.extend(_counter(pid, "battery mA", t, v * battery.ma_per_raw) for t, v in tl.bat_current_raw)
        out.extend(_counter(pid, "battery V", t, v * battery.v_per_raw) for t, v in tl.bat_voltage_uv)
    return out


def run_chrome_trace(traces: Sequence[NamedText], timelines: Sequence[tuple[str, Timeline]], *,
                     source: str = "", battery: Mapping[str, BatteryScale] | None = None) -> dict[str, object]:
    """All traces and telemetry of a run as one Chrome trace-event JSON object. A trace that
    cannot be read is listed in ``otherData.skipped`` with why."""
    events: list[Event] = []
    meta: list[Event] = []
    next_pid = 1
    clocks: dict[str, str] = {}
    skipped: dict[str, str] = {}
    inferences = 0
    for t in traces:
        try:
            parsed = stream_facts(text_chunks(t.text), source=t.name)
            per_tick = parsed.info.us_per_tick()
            if per_tick is None:
                skipped[t.name] = f"tick clock {parsed.info.clock} without its rate"
                continue
            doc = chrome_trace(parsed, attribute(parsed, us_per_tick=per_tick), source=t.name)
        except PerflabError as exc:  # one unreadable trace must not lose the others
            skipped[t.name] = str(exc)
            continue
        clocks[t.name] = parsed.info.clock or "unknown"
        other = doc.get("otherData")
        if isinstance(other, dict):
            inferences += int(other.get("inferences", 0) or 0)
        remap: dict[object, int] = {}
        evs = doc["traceEvents"]
        assert isinstance(evs, list)
        for ev in evs:
            pid = ev["pid"]
            if pid not in remap:
                remap[pid] = next_pid
                next_pid += 1
            ev = dict(ev, pid=remap[pid])
            if ev["ph"] == "M" and ev["name"] == "process_name":
                args = ev.get("args")
                name = args.get("name", "") if isinstance(args, dict) else ""
                ev["args"] = {"name": f"{t.name}: {name}"}
            (meta if ev["ph"] == "M" else events).append(ev)
        named = {e["pid"] for e in meta if e["name"] == "process_name"}
        for old, new in remap.items():
            if new not in named:
                meta.append({"name": "process_name", "ph": "M", "pid": new, "tid": 0,
                             "args": {"name": f"{t.name}: pid {old}"}})
    scales = battery or {}
    not_scaled = {name: NOT_SCALED for name, tl in timelines
                  if name not in scales and (tl.bat_current_raw or tl.bat_voltage_uv)}
    for name, tl in timelines:
        counters = timeline_counters(tl, next_pid, scales.get(name))
        if not counters:
            skipped[f"telemetry {name}"] = "no counter samples"
            continue
        meta.append({"name": "process_name", "ph": "M", "pid": next_pid, "tid": 0,
                     "args": {"name": f"telemetry: {name}"}})
        events.extend(counters)
        clocks[f"telemetry {name}"] = "sampler clock (local: time.monotonic = trace clock mono; phones: /proc/uptime)"
        next_pid += 1
    events.sort(key=lambda e: float(e["ts"]) if isinstance(e.get("ts"), (int, float)) else 0.0)  # type: ignore[arg-type]
    return {
        "traceEvents": meta + events,
        "displayTimeUnit": "ms",
        "otherData": {"producer": "perflab trace export (run folder)", "source": source, "clocks": clocks,
                      "traces": [t.name for t in traces if t.name not in skipped],
                      "telemetry": [n for n, _ in timelines if f"telemetry {n}" not in skipped],
                      "skipped": skipped, "inferences": inferences, "battery_not_scaled": not_scaled},
    }
