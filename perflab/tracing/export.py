"""Chrome trace-event JSON (the "JSON Object Format") that the Perfetto UI
(ui.perfetto.dev) and chrome://tracing open. Pure: attribution in, a JSON-ready dict out.

Tracks:
- every ATrace section as a complete ("X") slice on its process/thread; invoke sections that
  are inferences are named ``Invoke #<i>`` (category ``inference``), operator sections get
  category ``op`` (``delegate`` for delegate nodes), others ``atrace``;
- async ATrace slices (``S``/``F``) as "b"/"e" pairs, instants (``I``) as "i" events, ATrace
  counters (``C``) as "C" counters under their process;
- irq handler slices on a pseudo-process ``irqs`` with one thread per CPU;
- when the threads ran on which CPU (the benchmark's threads, from sched_switch) on a
  pseudo-process ``CPUs`` with one thread per CPU;
- perflab segments on a pseudo-process ``perflab segments``;
- binder and fastrpc round trips on a pseudo-process ``rpc round trips``, one thread per
  calling thread (they need not nest inside the caller's sections);
- ``cpu_frequency`` events and any extra counters the caller passes (telemetry already
  aligned to the trace clock, in µs) as "C" counters.

Timestamps are µs on the trace's clock (absolute, so other streams on that clock line up).
Slices on one thread nest properly by construction (ATrace and irqs are stacks), which
Perfetto's JSON importer requires.

Write the document with :func:`dumps`: UTF-8 text, not ``\\uXXXX`` escapes. Python's default
escapes a character outside the Basic Multilingual Plane (an emoji in a thread name) as a
surrogate pair, and Perfetto's JSON parser refuses those, failing the whole file; counter
values that are not finite are left out, since NaN and Infinity are not JSON either
(tests/test_tracing_viewer.py replays Perfetto's importer on exports).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from perflab.errors import MeasurementError
from perflab.tracing.attribution import Attribution
from perflab.tracing.facts import TraceFacts
from perflab.tracing.ftrace import ParsedTrace
from perflab.tracing.sections import DELEGATE_OP_RE

PSEUDO_PID_IRQS = 1 << 30
PSEUDO_PID_SEGMENTS = PSEUDO_PID_IRQS + 1
PSEUDO_PID_RPC = PSEUDO_PID_IRQS + 2
PSEUDO_PID_COUNTERS = PSEUDO_PID_IRQS + 3
PSEUDO_PID_CPUS = PSEUDO_PID_IRQS + 4


@dataclass(frozen=True)
class CounterPoint:
    """One sample of an external counter (telemetry), on the trace's clock."""

    name: str
    ts_us: float
    value: float


Event = dict[str, object]


def _meta(pid: int, name: str, tid: int | None = None) -> Event:
    if tid is None:
        return {"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": name}}
    return {"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": name}}


def _x(name: str, cat: str, pid: int, tid: int, begin_us: float, end_us: float,
       args: dict[str, object] | None = None) -> Event:
    ev: Event = {"name": name, "cat": cat, "ph": "X", "pid": pid, "tid": tid,
                 "ts": round(begin_us, 3), "dur": round(max(0.0, end_us - begin_us), 3)}
    if args:
        ev["args"] = args
    return ev


class _Builder:
    def __init__(self, names: dict[int, str]) -> None:
        self.names = names
        self.events: list[Event] = []
        self.procs: set[int] = set()
        self.threads: set[tuple[int, int]] = set()

    def thread(self, pid: int, tid: int | None = None) -> None:
        self.procs.add(pid)
        if tid is not None:
            self.threads.add((pid, tid))

    def sections(self, attr: Attribution) -> None:
        inference_at = {(i.tid, i.begin_us, i.end_us): i for i in attr.inferences}
        for s in attr.markers.sections:
            pid = s.tgid if s.tgid is not None else s.tid
            self.thread(pid, s.tid)
            inf = inference_at.get((s.tid, s.begin_us, s.end_us))
            if inf is not None:
                self.events.append(_x(f"Invoke #{inf.index}", "inference", pid, s.tid, s.begin_us, s.end_us,
                                      {"section": s.name, "duration_ms": round(s.duration_us / 1000.0, 6)}))
                continue
            op_type = s.name.split("@")[0]
            cat = "atrace" if "@" not in s.name else "delegate" if DELEGATE_OP_RE.match(op_type) else "op"
            self.events.append(_x(s.name, cat, pid, s.tid, s.begin_us, s.end_us, {"args": s.args} if s.args else None))

    def markers(self, attr: Attribution) -> None:
        for a in attr.markers.async_slices:
            pid = a.tgid if a.tgid is not None else 0
            self.thread(pid)
            common: Event = {"name": a.name, "cat": "async", "id": a.cookie, "pid": pid, "tid": pid}
            self.events.append({**common, "ph": "b", "ts": round(a.begin_us, 3)})
            self.events.append({**common, "ph": "e", "ts": round(a.end_us, 3)})
        for i in attr.markers.instants:
            pid = i.tgid if i.tgid is not None else i.tid
            self.thread(pid, i.tid)
            self.events.append({"name": i.name, "cat": "atrace", "ph": "i", "s": "t", "pid": pid, "tid": i.tid,
                                "ts": round(i.ts_us, 3)})
        for c in attr.markers.counters:
            pid = c.tgid if c.tgid is not None else 0
            self.thread(pid)
            self.counter(c.name, "counter", pid, c.ts_us, c.value)

    def counter(self, name: str, cat: str, pid: int, ts_us: float, value: float) -> None:
        if not math.isfinite(value):  # NaN/Infinity are not JSON: Perfetto would refuse the file
            return
        self.events.append({"name": name, "cat": cat, "ph": "C", "pid": pid, "tid": 0, "ts": round(ts_us, 3),
                            "args": {"value": value}})

    def meta(self) -> list[Event]:
        out = [_meta(pid, self.names.get(pid, f"pid {pid}")) for pid in sorted(self.procs)]
        out.extend(_meta(pid, self.names.get(tid, f"tid {tid}"), tid) for pid, tid in sorted(self.threads))
        return out


def chrome_trace(trace: ParsedTrace | TraceFacts, attr: Attribution, *, source: str = "",
                 counters: Sequence[CounterPoint] = (), thread_names: dict[int, str] | None = None) -> dict[str, object]:
    """The whole trace as a Chrome trace-event JSON object."""
    b = _Builder(dict(thread_names) if thread_names else trace.thread_names())
    b.sections(attr)
    b.markers(attr)
    meta = b.meta()
    irq_cpus = sorted({iv.cpu for iv in attr.irqs})
    if irq_cpus:
        meta.append(_meta(PSEUDO_PID_IRQS, "irqs"))
        meta.extend(_meta(PSEUDO_PID_IRQS, f"CPU {cpu}", cpu) for cpu in irq_cpus)
    for iv in attr.irqs:
        b.events.append(_x(iv.name, "irq", PSEUDO_PID_IRQS, iv.cpu, iv.begin_us, iv.end_us, {"irq": iv.irq}))
    runs = attr.busy.intervals if attr.busy is not None else ()
    if runs:
        meta.append(_meta(PSEUDO_PID_CPUS, "CPUs: the benchmark's threads running"))
        meta.extend(_meta(PSEUDO_PID_CPUS, f"CPU {cpu}", cpu) for cpu in sorted({r.cpu for r in runs}))
    for run in runs:
        b.events.append(_x(f"{b.names.get(run.tid, 'tid')} {run.tid}", "sched", PSEUDO_PID_CPUS, run.cpu,
                           run.begin_us, run.end_us))
    if attr.segments:
        meta.append(_meta(PSEUDO_PID_SEGMENTS, "perflab segments"))
    for seg in attr.segments:
        b.events.append(_x(seg.name, "segment", PSEUDO_PID_SEGMENTS, 0, seg.begin_us, seg.end_us))
    trips = [*attr.binder, *attr.fastrpc]
    if trips:
        meta.append(_meta(PSEUDO_PID_RPC, "rpc round trips"))
        meta.extend(_meta(PSEUDO_PID_RPC, f"from {b.names.get(t, 'tid')} {t}", t) for t in sorted({t.tid for t in trips}))
    for t in trips:
        b.events.append(_x(f"{t.kind} → {t.peer}", t.kind, PSEUDO_PID_RPC, t.tid, t.begin_us, t.end_us))
    freq = list(_cpu_frequency(trace, attr.us_per_tick))
    if freq or counters:
        meta.append(_meta(PSEUDO_PID_COUNTERS, "counters"))
    for name, ts_us, value in freq:
        b.counter(name, "counter", PSEUDO_PID_COUNTERS, ts_us, value)
    for c in counters:
        b.counter(c.name, "telemetry", PSEUDO_PID_COUNTERS, c.ts_us, c.value)
    info = trace.info
    b.events.sort(key=_ts)
    return {
        "traceEvents": meta + b.events,
        "displayTimeUnit": "ms",
        "otherData": {
            "producer": "perflab trace export",
            "source": source,
            "clock": info.clock or "unknown",
            "clock_source": info.clock_source,
            "us_per_tick": attr.us_per_tick,
            "lost_events": info.lost_total,
            "lost_uncounted_cpus": list(info.lost_uncounted_cpus),
            "overwritten_events": info.overwritten_events,
            "buffer_started_cpus": list(info.buffer_started_cpus),
            "inferences": len(attr.inferences),
        },
    }


def dumps(doc: Mapping[str, object]) -> str:
    """The JSON text of an exported trace, as Perfetto's importer reads it: UTF-8 characters
    (no surrogate-pair escapes), compact, never NaN or Infinity (MeasurementError, naming
    the first such value's event, instead of a file Perfetto refuses)."""
    try:
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        events = doc.get("traceEvents")
        bad = next((ev for ev in events if not _finite(ev)), None) if isinstance(events, list) else None
        raise MeasurementError(f"the exported trace holds a value that is not a number (NaN or Infinity), "
                               f"which Perfetto cannot read: {bad!r}"[:300]) from exc


def _finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


def _ts(ev: Event) -> float:
    ts = ev.get("ts")
    return float(ts) if isinstance(ts, (int, float)) else 0.0


def _cpu_frequency(trace: ParsedTrace | TraceFacts, us_per_tick: float) -> Iterable[tuple[str, float, float]]:
    for r in trace.records(("cpu_frequency",)):
        f = r.fields
        try:
            yield f"cpu{int(f['cpu_id'])} freq (kHz)", r.ts * us_per_tick, float(f["state"])
        except (KeyError, ValueError):
            continue
