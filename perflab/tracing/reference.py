"""A straightforward line-by-line regular-expression ftrace parser, kept for comparison.

It is what one writes first: split the text into lines, match each against one pattern,
build a record and parse its ``key=value`` fields right away. The fast parser
(:func:`perflab.tracing.ftrace.parse_trace`) must give identical records and the same
:class:`~perflab.tracing.ftrace.TraceInfo` (tests/test_tracing_ftrace.py), and is measured
against this one (benchmarks/bench_ftrace.py).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from perflab.tracing.attribution import Attribution, assemble
from perflab.tracing.ftrace import (
    LINE_PATTERN,
    HeaderState,
    TraceInfo,
    TraceRecord,
    check_is_trace,
    parse_fields,
    strip_preamble,
)
from perflab.tracing.kernel_events import (
    SUBMIT_EVENTS,
    binder_round_trips,
    cpu_busy,
    fastrpc_round_trips,
    irq_intervals,
)
from perflab.tracing.sections import DEFAULT_INVOKE_RE, MARKER_EVENTS, parse_markers

_LINE_RE = re.compile(LINE_PATTERN)


@dataclass(frozen=True)
class ReferenceTrace:
    info: TraceInfo
    records: list[TraceRecord]
    fields: list[dict[str, str]]  # parsed eagerly, one per record


def parse_trace_reference(text: str, *, trace_clock: str | None = None, source: str = "") -> ReferenceTrace:
    state = HeaderState()
    records: list[TraceRecord] = []
    fields: list[dict[str, str]] = []
    unparsed: list[str] = []
    n_unparsed = 0
    first_ts_text: str | None = None
    first_flags: str | None = None
    any_tgid = False
    for line in strip_preamble(text).split("\n"):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if line.startswith("#"):
            state.comment(line)
            continue
        if state.lost_line(line):
            continue
        m = _LINE_RE.match(line)
        if m is None:
            n_unparsed += 1
            if len(unparsed) < 3:
                unparsed.append(line)
            continue
        comm, pid, tgid, cpu, flags, ts, event, payload = m.groups()
        if first_ts_text is None:
            first_ts_text, first_flags = ts, flags or ""
        if tgid is not None and len(records) < 1000:
            any_tgid = True
        whole, _, frac = ts.partition(".")
        ts_value = int(whole) * 1_000_000 + int(frac) if frac else int(whole)
        rec = TraceRecord(
            ts=ts_value,
            cpu=int(cpu),
            comm=comm,
            pid=int(pid),
            tgid=None if tgid is None or tgid.startswith("-") else int(tgid),
            flags=flags or "",
            event=event,
            payload=payload.rstrip(),
        )
        records.append(rec)
        fields.append(parse_fields(rec.payload))
    info = state.info(
        trace_clock=trace_clock,
        first_ts_text=first_ts_text,
        first_flags=first_flags,
        any_tgid=any_tgid,
        records=len(records),
        unparsed=n_unparsed,
        unparsed_examples=unparsed,
        first_ts=records[0].ts if records else None,
        last_ts=records[-1].ts if records else None,
    )
    check_is_trace(info, source)
    return ReferenceTrace(info, records, fields)



def attribute_reference(trace: ReferenceTrace, *, us_per_tick: float, busy_tids: Collection[int] | None = None,
                        segment: str | None = None, skip_first: int = 0, tgid: int | None = None) -> Attribution:
    """The attribution the plain way: every per-record function of
    :mod:`perflab.tracing.sections` and :mod:`perflab.tracing.kernel_events` over the
    reference parser's records. The streamed :class:`~perflab.tracing.facts.TraceFacts`
    must give the same (tested)."""
    recs = trace.records
    markers = parse_markers(recs, us_per_tick)
    irqs, irq_unmatched = irq_intervals(recs, us_per_tick)
    return assemble(
        us_per_tick=us_per_tick, markers=markers, irqs=irqs, irq_unmatched=irq_unmatched,
        busy_of=lambda tids: cpu_busy(recs, tids, us_per_tick),
        tids_of=lambda p: {r.pid for r in recs if r.tgid == p} | {p},
        tids_named=lambda comm: {r.pid for r in recs if r.comm == comm},
        marker_comms_of=lambda tids: {r.comm for r in recs if r.pid in tids and r.event in MARKER_EVENTS},
        has_tgid=trace.info.has_tgid, binder=binder_round_trips(recs, us_per_tick),
        fastrpc=fastrpc_round_trips(recs, us_per_tick),
        submits_us=[r.ts * us_per_tick for r in recs if r.event in SUBMIT_EVENTS],
        invoke_re=DEFAULT_INVOKE_RE, accel_irq_re=None, tgid=tgid, busy_tids=busy_tids, segment=segment,
        skip_first=skip_first)
