"""Where the time went, from one ftrace trace: every attribution of
:mod:`perflab.tracing.sections` (ATrace sections, inferences, operators, segments) and
:mod:`perflab.tracing.kernel_events` (irqs, CPU busy time, binder and fastrpc round trips,
switch latency) at once, as one :class:`Attribution`. A trace is parsed whole
(:class:`~perflab.tracing.ftrace.ParsedTrace`) or streamed (:func:`stream_facts`: one pass,
memory bounded by what :class:`~perflab.tracing.facts.TraceFacts` keeps).

Times are µs (``us_per_tick`` turns trace units into µs).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from perflab.analysis.stats import SeriesStats
from perflab.errors import MeasurementError
from perflab.tracing.facts import TraceFacts
from perflab.tracing.ftrace import (
    DEFAULT_BLOCK_CHARS,
    ParsedTrace,
    scan_trace,
    text_chunks,
)
from perflab.tracing.kernel_events import (
    DEFAULT_DSP_IRQ_RE,
    DEFAULT_GPU_IRQ_RE,
    FASTRPC_SEND_EVENTS,
    CpuBusy,
    IrqInterval,
    IrqSummary,
    RoundTrip,
    SwitchLatency,
    irq_summary,
    switch_latencies,
)
from perflab.tracing.sections import (
    DEFAULT_INVOKE_RE,
    Inference,
    Markers,
    OpStats,
    Segment,
    inferences,
    latency_stats,
    op_stats,
    segments,
    select_inferences,
)

ATTRIBUTION_EVENTS = ("tracing_mark_write", "0", "print", "sched_switch", "irq_handler_entry",
                      "irq_handler_exit", "binder_transaction", "binder_transaction_received",
                      *FASTRPC_SEND_EVENTS, "fastrpc_transport_response", "kgsl_issueibcmds",
                      "adreno_cmdbatch_submitted")


@dataclass(frozen=True, slots=True)
class Attribution:
    us_per_tick: float
    markers: Markers
    inferences: list[Inference]  # those selected (segment, skip_first); the statistics use these
    inferences_in_trace: int  # before the selection
    latency_ms: SeriesStats | None
    ops: list[OpStats]
    segments: list[Segment]
    unmatched_segment_markers: int
    irqs: list[IrqInterval]
    irq_summary: list[IrqSummary]
    unmatched_irq_events: int
    busy: CpuBusy | None  # of the inference threads' process, when known
    busy_tids: tuple[int, ...]
    binder: list[RoundTrip]
    binder_unanswered: int
    fastrpc: list[RoundTrip]
    fastrpc_unanswered: int
    switches: list[SwitchLatency]


def attribute(trace: ParsedTrace | TraceFacts, *, us_per_tick: float,
              invoke_re: re.Pattern[str] = DEFAULT_INVOKE_RE, accel_irq_re: re.Pattern[str] | None = None,
              tgid: int | None = None, busy_tids: Collection[int] | None = None, segment: str | None = None,
              skip_first: int = 0) -> Attribution:
    """Every attribution over one trace: parsed whole (its rows go through
    :class:`TraceFacts`) or streamed (:func:`stream_facts`). ``tgid`` limits inferences to
    one process; ``busy_tids`` names the threads whose CPU time to sum (default: the threads
    of the process that ran the inferences, when the trace has the tgid column, else the
    threads that wrote the invoke sections). ``segment`` and ``skip_first`` select the
    inferences the statistics use (:func:`select_inferences`)."""
    facts = trace if isinstance(trace, TraceFacts) else TraceFacts.of(trace)
    upt = us_per_tick
    irqs, irq_unmatched = facts.irq_intervals(upt)
    return assemble(
        us_per_tick=upt, markers=facts.markers(upt), irqs=irqs, irq_unmatched=irq_unmatched,
        irq_summaries=facts.irq_summaries(upt),
        busy_of=lambda tids: facts.busy(tids, upt), tids_of=facts.tids_of, tids_named=facts.tids_named,
        marker_comms_of=facts.marker_comms_of, has_tgid=facts.info.has_tgid,
        binder=facts.binder_round_trips(upt), fastrpc=facts.fastrpc_round_trips(upt),
        submits_us=facts.submits_us(upt), invoke_re=invoke_re, accel_irq_re=accel_irq_re, tgid=tgid,
        busy_tids=busy_tids, segment=segment, skip_first=skip_first)


def assemble(*, us_per_tick: float, markers: Markers, irqs: list[IrqInterval], irq_unmatched: int,
             busy_of: Callable[[Collection[int]], CpuBusy], tids_of: Callable[[int], set[int]],
             tids_named: Callable[[str], set[int]], marker_comms_of: Callable[[set[int]], set[str]],
             has_tgid: bool | None, binder: tuple[list[RoundTrip], int], fastrpc: tuple[list[RoundTrip], int],
             submits_us: Sequence[float], invoke_re: re.Pattern[str], accel_irq_re: re.Pattern[str] | None,
             tgid: int | None, busy_tids: Collection[int] | None, segment: str | None,
             skip_first: int, irq_summaries: list[IrqSummary] | None = None) -> Attribution:
    """The :class:`Attribution` from the per-event results (one home for the streamed path
    and the plain one in :mod:`perflab.tracing.reference`); ``irq_summaries``, when given,
    are :func:`irq_summary` of ``irqs`` computed by the caller."""
    all_infs = inferences(markers.sections, invoke_re=invoke_re, tgid=tgid)
    segs, seg_unmatched = segments(markers.plain)
    infs = select_inferences(all_infs, segs, segment=segment, skip_first=skip_first)
    if busy_tids is None:
        procs = {i.tgid for i in infs if i.tgid is not None}
        tids: set[int] = {i.tid for i in infs}
        if has_tgid:
            for p in procs:
                tids |= tids_of(p)
        else:  # no tgid column: the threads that share the inference threads' name
            for comm in marker_comms_of(tids):
                tids |= tids_named(comm)
        busy_tids = tids
    busy = busy_of(busy_tids) if busy_tids else None
    (binder_trips, binder_open), (rpc, rpc_open) = binder, fastrpc
    accel = accel_irq_re or re.compile(f"{DEFAULT_GPU_IRQ_RE.pattern}|{DEFAULT_DSP_IRQ_RE.pattern}", re.IGNORECASE)
    return Attribution(
        us_per_tick=us_per_tick,
        markers=markers,
        inferences=infs,
        inferences_in_trace=len(all_infs),
        latency_ms=latency_stats(infs),
        ops=op_stats(infs),
        segments=segs,
        unmatched_segment_markers=seg_unmatched,
        irqs=irqs,
        irq_summary=irq_summary(irqs) if irq_summaries is None else irq_summaries,
        unmatched_irq_events=irq_unmatched,
        busy=busy,
        busy_tids=tuple(sorted(busy_tids)),
        binder=binder_trips,
        binder_unanswered=binder_open,
        fastrpc=rpc,
        fastrpc_unanswered=rpc_open,
        switches=switch_latencies(infs, irqs, accel, submits_us, [*rpc, *binder_trips]),
    )



def stream_facts(chunks: Iterable[str | bytes], *, trace_clock: str | None = None, source: str = "",
                 block_chars: int = DEFAULT_BLOCK_CHARS) -> TraceFacts:
    """Parse a trace handed over in pieces (:func:`~perflab.tracing.ftrace.file_chunks`,
    :func:`~perflab.tracing.ftrace.text_chunks`) and keep what attribution needs, in one pass:
    memory is a block of text plus what :class:`TraceFacts` keeps, never the whole trace."""
    facts = TraceFacts()
    facts.info = scan_trace(chunks, facts.add, trace_clock=trace_clock, source=source, block_chars=block_chars)
    return facts


def saved_trace_facts(text: str, source: str) -> tuple[TraceFacts, float]:
    """A saved trace's facts (:func:`stream_facts`) and its µs per tick; MeasurementError for a
    tick clock whose rate the trace does not give."""
    facts = stream_facts(text_chunks(text), source=source)
    per_tick = facts.info.us_per_tick()
    if per_tick is None:
        raise MeasurementError(f"{source}: a tick clock ({facts.info.clock}) without its rate")
    return facts, per_tick
