"""Where the time went, from parsed ftrace records. Pure functions.

- **ATrace sections** (trace_marker ``B|pid|name`` … ``E``/``E|pid``/``E|pid|name``;
  formats.md §6.3): matched per *thread* (the tid of the line prefix), innermost first, as
  ATrace does. Counters ``C|pid|name|value``, async ``S``/``F`` and instants ``I`` are kept
  for the export. Legacy kernels print the marker event as ``0:``; ``print`` lines of
  trace-cmd style carry ``tracing_mark_write: `` in front: both are read.
- **Inferences**: outermost sections named like TFLite's invoke (``Invoke``, ``invoke``,
  ``TfLiteInterpreter::Invoke``, perflab's own ``perflab:invoke``, each optionally with
  ``@…``); **operators**: sections nested inside named ``<op>@<node>/<subgraph>`` (TFLite's
  ATrace profiler: ``CONV_2D@3/0``; a delegate kernel is one node, ``TfLiteGpuDelegateV2@1/0``).
- **Segments**: perflab's plain markers ``perflab:segment:<name>:begin`` / ``…:end``.
- **irqs**: irq_handler_entry/exit pairs per CPU → count and time by irq name.
- **CPU busy** time of given threads from sched_switch (only intervals whose switch-in and
  switch-out are both in the trace).
- **binder** round trips (transaction → reply received on the calling thread) and
  **fastrpc** round trips (transport_send → transport_response, matched by ctx).
- **Switch latency** between processors around each delegate node: end of the previous CPU
  op → first accelerator irq in the node, and last accelerator irq → start of the next
  CPU op.

Times: records carry ``ts`` in trace units; every function here takes ``us_per_tick``
(:meth:`TraceInfo.us_per_tick`) and returns µs.
"""

from __future__ import annotations

import bisect
import functools
import re
from array import array
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import is_, itemgetter
from typing import cast

import numpy as np

from perflab.analysis.stats import SeriesStats, summarize
from perflab.errors import UserInputError
from perflab.tracing.ftrace import (
    DEFAULT_BLOCK_CHARS,
    ParsedTrace,
    Row,
    TraceInfo,
    TraceRecord,
    fields_cached,
    record_of,
    scan_trace,
    ts_from_text,
    typed_field_columns,
)

MARKER_EVENTS = frozenset({"tracing_mark_write", "0", "print"})
DEFAULT_INVOKE_RE = re.compile(r"^(?:Invoke|invoke|TfLiteInterpreter::Invoke|perflab:invoke)(?:@.*)?$")
OP_RE = re.compile(r"^(?P<op>[^@]+)@(?P<node>\d+)/(?P<subgraph>\d+)$")
DELEGATE_OP_RE = re.compile(r"^TfLite\w*Delegate\w*$")
SEGMENT_RE = re.compile(r"^perflab:segment:(?P<name>.+):(?P<edge>begin|end)$")
# Accelerator irq names (device configs can name their own): Adreno (kgsl), Mali (kbase names
# its irqs after the device node, e.g. 13000000.mali), generic gpu; DSP/NPU mailboxes.
DEFAULT_GPU_IRQ_RE = re.compile(r"kgsl|adreno|mali|gpu", re.IGNORECASE)
DEFAULT_DSP_IRQ_RE = re.compile(r"ipcc|glink|adsprpc|fastrpc|cdsp|npu|apu", re.IGNORECASE)
_FASTRPC_SEND = re.compile(r"to cid (?P<cid>\d+):.*?\bctx (?P<ctx>0x[0-9a-f]+)")
_FASTRPC_RESP = re.compile(r"from cid (?P<cid>\d+): ctx (?P<ctx>0x[0-9a-f]+)")


# ---- ATrace sections -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Section:
    name: str
    tid: int  # the thread that wrote B and E
    tgid: int | None  # the pid field of B|pid|… (the process)
    begin_us: float
    end_us: float
    depth: int  # 0 = outermost on its thread
    args: str = ""  # Chromium-style extras after the name (``arg1=1|cat1``)

    @property
    def duration_us(self) -> float:
        return self.end_us - self.begin_us


@dataclass(frozen=True, slots=True)
class CounterSample:
    name: str
    tgid: int | None
    ts_us: float
    value: float


@dataclass(frozen=True, slots=True)
class AsyncSlice:
    name: str
    tgid: int | None
    cookie: str
    begin_us: float
    end_us: float


@dataclass(frozen=True, slots=True)
class Instant:
    name: str
    tid: int
    tgid: int | None
    ts_us: float


@dataclass(frozen=True, slots=True)
class Marker:
    """A trace_marker line that is not ATrace syntax (perflab segments, clock sync, …)."""

    text: str
    tid: int
    ts_us: float


@dataclass(slots=True)
class Markers:
    sections: list[Section] = field(default_factory=list)
    counters: list[CounterSample] = field(default_factory=list)
    async_slices: list[AsyncSlice] = field(default_factory=list)
    instants: list[Instant] = field(default_factory=list)
    plain: list[Marker] = field(default_factory=list)
    unmatched_ends: int = 0  # E with no open B on its thread (its B was overwritten or lost)
    unclosed: int = 0  # B still open at the end of the trace


def _int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _other_marker(text: str, tid: int, ts_us: float, out: Markers,
                  async_open: dict[tuple[int | None, str, str], float]) -> None:
    """Counters ``C|pid|name|value``, async ``S``/``F|pid|name|cookie``, instants
    ``I|pid|name``; anything else is a plain marker."""
    kind = text[:2]
    parts = text.split("|")
    if kind == "C|" and len(parts) >= 4:
        try:
            out.counters.append(CounterSample(parts[2], _int_or_none(parts[1]), ts_us, float(parts[3])))
            return
        except ValueError:
            pass
    elif kind in ("S|", "F|") and len(parts) >= 4:
        key = (_int_or_none(parts[1]), parts[2], parts[3])
        if kind == "S|":
            async_open[key] = ts_us
        elif key in async_open:
            out.async_slices.append(AsyncSlice(parts[2], key[0], parts[3], async_open.pop(key), ts_us))
        return
    elif kind == "I|" and len(parts) >= 3:
        out.instants.append(Instant(parts[2], tid, _int_or_none(parts[1]), ts_us))
        return
    out.plain.append(Marker(text, tid, ts_us))


def parse_markers(records: Iterable[TraceRecord], us_per_tick: float) -> Markers:
    """ATrace sections and the other marker kinds, from marker records in time order."""
    out = Markers()
    stacks: dict[int, list[tuple[str, int | None, float, str]]] = {}
    async_open: dict[tuple[int | None, str, str], float] = {}
    for r in records:
        if r.event not in MARKER_EVENTS:
            continue
        text = r.payload
        if r.event == "print" and text.startswith("tracing_mark_write: "):
            text = text[len("tracing_mark_write: "):]
        ts_us = r.ts * us_per_tick
        kind = text[:2]
        if kind == "B|":
            parts = text.split("|", 3)
            if len(parts) < 3:
                out.plain.append(Marker(text, r.pid, ts_us))
                continue
            stacks.setdefault(r.pid, []).append((parts[2], _int_or_none(parts[1]), ts_us,
                                                 parts[3] if len(parts) > 3 else ""))
        elif text == "E" or kind == "E|":
            stack = stacks.get(r.pid)
            if not stack:
                out.unmatched_ends += 1
                continue
            name, tgid, begin, args = stack.pop()
            out.sections.append(Section(name, r.pid, tgid, begin, ts_us, len(stack), args))
        else:
            _other_marker(text, r.pid, ts_us, out, async_open)
    out.unclosed = sum(len(s) for s in stacks.values())
    out.sections.sort(key=lambda s: (s.begin_us, s.depth))
    return out


# ---- inferences and operators ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpInterval:
    name: str  # as traced, e.g. "CONV_2D@0/0"
    op_type: str  # "CONV_2D"
    node_index: int | None
    subgraph: int | None
    begin_us: float
    end_us: float
    depth: int  # 1 = directly inside the inference
    delegate: bool  # a delegate kernel (one node standing for many ops)

    @property
    def duration_us(self) -> float:
        return self.end_us - self.begin_us


@dataclass(frozen=True, slots=True)
class Inference:
    index: int
    name: str
    tid: int
    tgid: int | None
    begin_us: float
    end_us: float
    ops: tuple[OpInterval, ...]

    @property
    def duration_us(self) -> float:
        return self.end_us - self.begin_us


def _ops_inside(inv: Section, inner: list[Section], invoke_re: re.Pattern[str], is_invoke: dict[str, bool],
                op_of: dict[str, tuple[str, int | None, int | None, bool]]) -> list[OpInterval]:
    ops = []
    for s in inner:
        if s.name not in is_invoke:
            is_invoke[s.name] = invoke_re.match(s.name) is not None
    # a subgraph's own Invoke inside the interpreter's: ops count their depth from the
    # innermost invoke around them, so "top-level op" means the same with or without it
    invokes = [inv, *(s for s in inner if is_invoke[s.name])]
    for s in inner:
        if is_invoke[s.name]:
            continue
        # (inner sections lie inside the invoke and deeper: with no nested invoke, its depth)
        base = inv.depth if len(invokes) == 1 else max(
            v.depth for v in invokes if v.begin_us <= s.begin_us and s.end_us <= v.end_us and v.depth < s.depth)
        op = op_of.get(s.name)
        if op is None:
            m = OP_RE.match(s.name)
            op_type = m.group("op") if m else s.name
            op = op_of[s.name] = (op_type, int(m.group("node")) if m else None,
                                  int(m.group("subgraph")) if m else None, bool(DELEGATE_OP_RE.match(op_type)))
        ops.append(OpInterval(s.name, op[0], op[1], op[2], s.begin_us, s.end_us, s.depth - base, op[3]))
    return ops


def inferences(sections: Sequence[Section], *, invoke_re: re.Pattern[str] = DEFAULT_INVOKE_RE,
               tgid: int | None = None) -> list[Inference]:
    """Outermost invoke sections (optionally of one process) with the operator sections
    nested inside them on the same thread."""
    by_tid: dict[int, list[Section]] = {}
    for s in sections:
        by_tid.setdefault(s.tid, []).append(s)
    found: list[tuple[Section, list[Section]]] = []
    for secs in by_tid.values():
        secs.sort(key=lambda s: (s.begin_us, s.depth))
        current: Section | None = None
        inner: list[Section] = []
        for s in secs:
            if current is not None and s.begin_us >= current.begin_us and s.end_us <= current.end_us \
                    and s.depth > current.depth:
                inner.append(s)
                continue
            if current is not None:
                found.append((current, inner))
                current, inner = None, []
            if invoke_re.match(s.name) and (tgid is None or s.tgid == tgid):
                current = s
        if current is not None:
            found.append((current, inner))
    found.sort(key=lambda pair: pair[0].begin_us)
    out = []
    is_invoke: dict[str, bool] = {}  # section names recur: each is matched once
    op_of: dict[str, tuple[str, int | None, int | None, bool]] = {}
    for i, (inv, inner) in enumerate(found):
        ops = _ops_inside(inv, inner, invoke_re, is_invoke, op_of)
        out.append(Inference(i, inv.name, inv.tid, inv.tgid, inv.begin_us, inv.end_us, tuple(ops)))
    return out


@dataclass(frozen=True, slots=True)
class OpStats:
    name: str
    op_type: str
    delegate: bool
    stats_ms: SeriesStats
    share_pct: float  # its median over the sum of the medians of the top-level ops (0 for nested ops)


def op_stats(infs: Sequence[Inference]) -> list[OpStats]:
    """Per operator (by traced name), statistics of its duration over the inferences;
    sorted by median, largest first."""
    durs: dict[str, list[float]] = {}
    meta: dict[str, OpInterval] = {}
    for inf in infs:
        for op in inf.ops:
            durs.setdefault(op.name, []).append(op.duration_us / 1000.0)
            meta.setdefault(op.name, op)
    stats = {name: summarize(v) for name, v in durs.items()}
    top_total = sum(stats[n].median_ms for n in stats if meta[n].depth == 1)
    out = [
        OpStats(n, meta[n].op_type, meta[n].delegate, s,
                s.median_ms / top_total * 100.0 if top_total > 0 and meta[n].depth == 1 else 0.0)
        for n, s in stats.items()
    ]
    out.sort(key=lambda o: -o.stats_ms.median_ms)
    return out


def select_inferences(infs: Sequence[Inference], segs: Sequence[Segment], *, segment: str | None = None,
                      skip_first: int = 0) -> list[Inference]:
    """The inferences inside segments named ``segment`` (all when None), less the first
    ``skip_first`` of them (benchmark_model's warm-up runs are Invoke sections too).
    UserInputError when no segment has that name."""
    chosen = list(infs)
    if segment is not None:
        windows = [s for s in segs if s.name == segment]
        if not windows:
            names = ", ".join(sorted({s.name for s in segs})) or "none"
            raise UserInputError(f"no perflab segment named {segment!r} in the trace (segments: {names})")
        chosen = [i for i in chosen if any(w.begin_us <= i.begin_us and i.end_us <= w.end_us for w in windows)]
    return chosen[max(0, skip_first):]


def latency_stats(infs: Sequence[Inference]) -> SeriesStats | None:
    """Median, p90, … of the inference durations (ms); None without inferences."""
    return summarize([i.duration_us / 1000.0 for i in infs]) if infs else None


# ---- perflab segments ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Segment:
    name: str
    begin_us: float
    end_us: float

    @property
    def duration_us(self) -> float:
        return self.end_us - self.begin_us


def segments(plain: Iterable[Marker]) -> tuple[list[Segment], int]:
    """perflab's ``perflab:segment:<name>:begin|end`` markers as intervals, and the number
    of begin or end markers that had no partner."""
    open_: dict[str, list[float]] = {}
    out: list[Segment] = []
    unmatched = 0
    for m in plain:
        sm = SEGMENT_RE.match(m.text)
        if sm is None:
            continue
        name = sm.group("name")
        if sm.group("edge") == "begin":
            open_.setdefault(name, []).append(m.ts_us)
        elif open_.get(name):
            out.append(Segment(name, open_[name].pop(), m.ts_us))
        else:
            unmatched += 1
    unmatched += sum(len(v) for v in open_.values())
    out.sort(key=lambda s: s.begin_us)
    return out, unmatched


# ---- irqs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IrqInterval:
    irq: int
    name: str
    cpu: int
    begin_us: float
    end_us: float


@dataclass(frozen=True, slots=True)
class IrqSummary:
    name: str
    irqs: tuple[int, ...]
    count: int
    total_us: float
    max_us: float


def irq_intervals(records: Iterable[TraceRecord], us_per_tick: float) -> tuple[list[IrqInterval], int]:
    """irq_handler_entry/exit pairs per CPU (nesting allowed); returns the intervals and the
    number of entries or exits without a partner."""
    open_: dict[int, list[tuple[int, str, float]]] = {}
    out: list[IrqInterval] = []
    unmatched = 0
    for r in records:
        if r.event == "irq_handler_entry":
            f = r.fields
            open_.setdefault(r.cpu, []).append((int(f.get("irq", "-1")), f.get("name", "?"), r.ts * us_per_tick))
        elif r.event == "irq_handler_exit":
            stack = open_.get(r.cpu)
            irq = int(r.fields.get("irq", "-1"))
            if stack and stack[-1][0] == irq:
                _, name, begin = stack.pop()
                out.append(IrqInterval(irq, name, r.cpu, begin, r.ts * us_per_tick))
            else:
                unmatched += 1
    unmatched += sum(len(s) for s in open_.values())
    return out, unmatched


def irq_summary(intervals: Iterable[IrqInterval]) -> list[IrqSummary]:
    irqs: dict[str, set[int]] = {}
    count: dict[str, int] = {}
    total: dict[str, float] = {}
    longest: dict[str, float] = {}
    for iv in intervals:
        name, d = iv.name, iv.end_us - iv.begin_us
        if name in count:
            irqs[name].add(iv.irq)
            count[name] += 1
            total[name] += d
            longest[name] = max(longest[name], d)
        else:
            irqs[name], count[name], total[name], longest[name] = {iv.irq}, 1, 0.0 + d, max(0.0, d)
    out = [IrqSummary(name, tuple(sorted(irqs[name])), n, total[name], longest[name]) for name, n in count.items()]
    out.sort(key=lambda s: (-s.count, s.name))
    return out


# ---- CPU busy time ---------------------------------------------------------------------


def threads_of(records: Iterable[TraceRecord], tgid: int) -> set[int]:
    """Thread ids seen with this process id (needs the tgid column), plus the tgid itself."""
    return {r.pid for r in records if r.tgid == tgid} | {tgid}


@dataclass(frozen=True, slots=True)
class RunInterval:
    """One stretch a thread ran on a CPU (switch-in to switch-out)."""

    cpu: int
    tid: int
    begin_us: float
    end_us: float


@dataclass(frozen=True, slots=True)
class CpuBusy:
    per_thread_us: dict[int, float]
    per_cpu_us: dict[int, float]
    intervals: tuple[RunInterval, ...] = ()

    @property
    def total_us(self) -> float:
        return sum(self.per_thread_us.values())


def cpu_busy(records: Iterable[TraceRecord], tids: Collection[int], us_per_tick: float,
             window_us: tuple[float, float] | None = None) -> CpuBusy:
    """Time the given threads ran on CPUs, from sched_switch; clipped to ``window_us`` when
    given. A thread running when the trace starts is counted from its next switch-in."""
    wanted = frozenset(tids)
    running: dict[int, tuple[int, float]] = {}  # cpu -> (tid, since_us)
    per_thread: dict[int, float] = {}
    per_cpu: dict[int, float] = {}
    intervals: list[RunInterval] = []
    lo, hi = window_us if window_us is not None else (float("-inf"), float("inf"))

    def add(cpu: int, tid: int, begin: float, end: float) -> None:
        b, e = max(begin, lo), min(end, hi)
        if e > b:
            per_thread[tid] = per_thread.get(tid, 0.0) + (e - b)
            per_cpu[cpu] = per_cpu.get(cpu, 0.0) + (e - b)
            intervals.append(RunInterval(cpu, tid, b, e))

    for r in records:
        if r.event != "sched_switch":
            continue
        f = r.fields
        ts = r.ts * us_per_tick
        prev = running.pop(r.cpu, None)
        prev_pid = int(f.get("prev_pid", "-1"))
        if prev is not None and prev[0] == prev_pid:
            add(r.cpu, prev_pid, prev[1], ts)
        nxt = int(f.get("next_pid", "-1"))
        if nxt in wanted:
            running[r.cpu] = (nxt, ts)
    return CpuBusy(per_thread, per_cpu, tuple(intervals))


# ---- binder and fastrpc round trips ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundTrip:
    kind: str  # "binder" or "fastrpc"
    tid: int  # the calling thread
    peer: str  # binder: "proc <dest_proc>"; fastrpc: "cid <n>"
    begin_us: float
    end_us: float

    @property
    def duration_us(self) -> float:
        return self.end_us - self.begin_us


def binder_round_trips(records: Iterable[TraceRecord], us_per_tick: float) -> tuple[list[RoundTrip], int]:
    """Two-way binder calls: ``binder_transaction`` (reply=0, not one-way) from a thread →
    the reply's ``binder_transaction_received`` on that thread (or the reply itself being sent
    when its receipt is not traced). Returns the round trips and the calls left without reply."""
    pending: dict[int, list[tuple[float, str]]] = {}  # caller tid -> [(begin, peer)]
    reply_to: dict[str, tuple[int, float]] = {}  # reply transaction id -> (caller tid, reply sent)
    out: list[RoundTrip] = []
    for r in records:
        if r.event == "binder_transaction":
            f = r.fields
            flags = int(f.get("flags", "0"), 16) if f.get("flags", "0").startswith("0x") else 0
            if f.get("reply") == "0":
                if not flags & 0x1:  # TF_ONE_WAY has no reply
                    pending.setdefault(r.pid, []).append((r.ts * us_per_tick, f"proc {f.get('dest_proc', '?')}"))
            else:
                caller = int(f.get("dest_thread", "0"))
                if pending.get(caller):
                    reply_to[f.get("transaction", "")] = (caller, r.ts * us_per_tick)
        elif r.event == "binder_transaction_received":
            tx = r.fields.get("transaction", "")
            if tx in reply_to:
                caller, _ = reply_to.pop(tx)
                begin, peer = pending[caller].pop()
                out.append(RoundTrip("binder", caller, peer, begin, r.ts * us_per_tick))
    for caller, sent in reply_to.values():  # reply sent, its receipt not traced
        if pending.get(caller):
            begin, peer = pending[caller].pop()
            out.append(RoundTrip("binder", caller, peer, begin, sent))
    out.sort(key=lambda t: t.begin_us)
    return out, sum(len(v) for v in pending.values())


FASTRPC_SEND_EVENTS = ("fastrpc_transport_send", "fastrpc_transport_send_ipcmsg", "fastrpc_glink_send",
                       "fastrpc_rpmsg_send")


def fastrpc_round_trips(records: Iterable[TraceRecord], us_per_tick: float) -> tuple[list[RoundTrip], int]:
    """fastrpc_transport_send (``fastrpc_glink_send``/``fastrpc_rpmsg_send`` on older trees,
    ``fastrpc_transport_send_ipcmsg`` with ``type``/``priority`` on the newest) →
    fastrpc_transport_response with the same ctx on the same channel (cid). The response is
    printed in the context of whatever the CPU ran when the DSP's answer came in (often
    ``<idle>-0``), so the round trip's thread is the sender's."""
    open_: dict[tuple[str, str], tuple[int, str, float]] = {}  # (cid, ctx): ctx ids are per channel
    out: list[RoundTrip] = []
    for r in records:
        if r.event in FASTRPC_SEND_EVENTS:
            m = _FASTRPC_SEND.search(r.payload)
            if m:
                open_[(m.group("cid"), m.group("ctx"))] = (r.pid, f"cid {m.group('cid')}", r.ts * us_per_tick)
        elif r.event == "fastrpc_transport_response":
            m = _FASTRPC_RESP.search(r.payload)
            if m and (m.group("cid"), m.group("ctx")) in open_:
                tid, peer, begin = open_.pop((m.group("cid"), m.group("ctx")))
                out.append(RoundTrip("fastrpc", tid, peer, begin, r.ts * us_per_tick))
    return out, len(open_)


# ---- switch latency between processors --------------------------------------------------

# Events that mark work handed to an accelerator (when the kernel has them).
SUBMIT_EVENTS = (*FASTRPC_SEND_EVENTS, "kgsl_issueibcmds", "adreno_cmdbatch_submitted")


@dataclass(frozen=True, slots=True)
class SwitchLatency:
    """Hand-over between the CPU and an accelerator around one delegate node.

    ``cpu_to_accel_us``: end of the previous CPU op (or the node's begin when it comes first)
    → the first submission event inside the node (``via="submit"``: fastrpc send, kgsl/adreno
    submission) or, when the kernel has none, → the first accelerator irq (``via="irq"``:
    this then includes the accelerator's own work). ``accel_to_cpu_us``: the last accelerator
    irq inside the node → the next CPU op's begin (``resumed="next op"``), or the node's end
    when it is the inference's last op (``resumed="node end"``).

    A node with no accelerator irq but RPC round trips inside it (an NNAPI call to the NN HAL
    over binder, a fastrpc call to the DSP) is measured from the RPC timestamps instead:
    ``via="fastrpc"`` (preferred: it reaches the DSP itself) from the end of the previous CPU
    op to the first send, and from the last response to the next CPU op; ``via="binder"``
    (the accelerator's HAL process is as far as the kernel sees) from the call's
    ``binder_transaction`` and to the reply's receipt on the calling thread. ``irq_name`` then
    names the peer (``fastrpc cid 3``, ``binder proc 1190``) and ``irqs`` counts round trips."""

    inference: int
    op: str  # the delegate node
    irq_name: str
    irqs: int  # accelerator irqs inside the node
    via: str  # "submit", "irq", "fastrpc" or "binder"
    cpu_to_accel_us: float
    accel_to_cpu_us: float
    resumed: str  # "next op" or "node end"


def _between(sorted_ts: Sequence[float], lo: float, hi: float) -> tuple[int, int]:
    return bisect.bisect_left(sorted_ts, lo), bisect.bisect_right(sorted_ts, hi)


def _rpc_inside(trips: Sequence[RoundTrip], lo: float, hi: float) -> list[RoundTrip]:
    inside = [t for t in trips if lo <= t.begin_us and t.end_us <= hi]
    for kind in ("fastrpc", "binder"):
        chosen = [t for t in inside if t.kind == kind]
        if chosen:
            return chosen
    return []


def switch_latencies(infs: Sequence[Inference], irqs: Sequence[IrqInterval],
                     accel_irq_re: re.Pattern[str] = DEFAULT_GPU_IRQ_RE,
                     submits_us: Sequence[float] = (), rpcs: Sequence[RoundTrip] = ()) -> list[SwitchLatency]:
    """One :class:`SwitchLatency` per delegate node that accelerator irqs — or, without
    those, RPC round trips (``rpcs``) — fall inside."""
    accel = sorted((iv for iv in irqs if accel_irq_re.search(iv.name)), key=lambda iv: iv.begin_us)
    begins = [iv.begin_us for iv in accel]
    submits = sorted(submits_us)
    trips = sorted(rpcs, key=lambda t: t.begin_us)
    out: list[SwitchLatency] = []
    for inf in infs:
        top = sorted((op for op in inf.ops if op.depth == 1), key=lambda op: op.begin_us)
        for k, op in enumerate(top):
            if not op.delegate:
                continue
            prev_cpu_end = next((p.end_us for p in reversed(top[:k]) if not p.delegate), op.begin_us)
            nxt = next((p for p in top[k + 1:] if not p.delegate), None)
            resume, resumed = (nxt.begin_us, "next op") if nxt is not None else (op.end_us, "node end")
            lo, hi = _between(begins, op.begin_us, op.end_us)
            inside = accel[lo:hi]
            if inside:
                s_lo, s_hi = _between(submits, op.begin_us, op.end_us)
                start, via = (submits[s_lo], "submit") if s_hi > s_lo else (inside[0].begin_us, "irq")
                out.append(SwitchLatency(inf.index, op.name, inside[0].name, len(inside), via,
                                         start - prev_cpu_end, resume - inside[-1].begin_us, resumed))
                continue
            rpc = _rpc_inside(trips, op.begin_us, op.end_us)
            if rpc:
                out.append(SwitchLatency(inf.index, op.name, f"{rpc[0].kind} {rpc[0].peer}", len(rpc), rpc[0].kind,
                                         rpc[0].begin_us - prev_cpu_end, resume - max(t.end_us for t in rpc),
                                         resumed))
    return out


def round_trips_per_inference(infs: Sequence[Inference], trips: Sequence[RoundTrip]) -> list[int]:
    """How many of ``trips`` lie inside each inference (by index order of ``infs``)."""
    return [sum(1 for t in trips if inf.begin_us <= t.begin_us and t.end_us <= inf.end_us) for inf in infs]


# ---- everything at once ----------------------------------------------------------------

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
    """Every attribution above over one trace: parsed whole (its rows go through
    :class:`TraceFacts`) or streamed (:func:`stream_facts`). ``tgid`` limits inferences to
    one process; ``busy_tids`` names the threads whose CPU time to sum (default: the threads
    of the process that ran the inferences, when the trace has the tgid column, else the
    threads that wrote the invoke sections). ``segment`` and ``skip_first`` select the
    inferences the statistics use (:func:`select_inferences`)."""
    facts = trace if isinstance(trace, TraceFacts) else TraceFacts.of(trace)
    return facts.attribute(us_per_tick=us_per_tick, invoke_re=invoke_re, accel_irq_re=accel_irq_re, tgid=tgid,
                           busy_tids=busy_tids, segment=segment, skip_first=skip_first)


def assemble(*, us_per_tick: float, markers: Markers, irqs: list[IrqInterval], irq_unmatched: int,
             busy_of: Callable[[Collection[int]], CpuBusy], tids_of: Callable[[int], set[int]],
             tids_named: Callable[[str], set[int]], marker_comms_of: Callable[[set[int]], set[str]],
             has_tgid: bool | None, binder: tuple[list[RoundTrip], int], fastrpc: tuple[list[RoundTrip], int],
             submits_us: Sequence[float], invoke_re: re.Pattern[str], accel_irq_re: re.Pattern[str] | None,
             tgid: int | None, busy_tids: Collection[int] | None, segment: str | None,
             skip_first: int) -> Attribution:
    """The :class:`Attribution` from the per-event results (one home for the streamed path
    and the plain one in :mod:`perflab.tracing.reference`)."""
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
        irq_summary=irq_summary(irqs),
        unmatched_irq_events=irq_unmatched,
        busy=busy,
        busy_tids=tuple(sorted(busy_tids)),
        binder=binder_trips,
        binder_unanswered=binder_open,
        fastrpc=rpc,
        fastrpc_unanswered=rpc_open,
        switches=switch_latencies(infs, irqs, accel, submits_us, [*rpc, *binder_trips]),
    )


# ---- streaming: what attribution keeps of a trace ----------------------------------------

_COMM, _TID, _CPU, _TS, _EVENT, _PAYLOAD = (itemgetter(i) for i in (0, 1, 3, 5, 6, 7))
_THREAD = itemgetter(0, 1, 2)
_FIRST, _SECOND = itemgetter(0), itemgetter(1)
_IS_NONE = functools.partial(is_, None)
DEFAULT_BLOCK_ROWS = 1 << 15  # rows of a parsed trace handed to TraceFacts at a time
CACHE_ENTRIES = 1 << 14  # payloads remembered per kind (then forgotten and learnt again: memory stays bounded)
_PRINT_PREFIX = "tracing_mark_write: "
KEPT_EVENTS = frozenset({"cpu_frequency"})  # rare events kept as records (the export's counters)
_BINDER_EVENTS = frozenset({"binder_transaction", "binder_transaction_received"})
_IRQ_EVENTS = frozenset({"irq_handler_entry", "irq_handler_exit"})
_FASTRPC_EVENTS = frozenset({*FASTRPC_SEND_EVENTS, "fastrpc_transport_response"})
_SUBMIT_EVENTS = frozenset(SUBMIT_EVENTS)


def _select(rows: list[Row], events: list[str], wanted: frozenset[str]) -> list[Row]:
    return list(compress(rows, map(wanted.__contains__, events)))


class _Ints(dict[str, int]):
    """Decimal text -> int, each text converted once (CPU numbers and thread ids recur)."""

    def __missing__(self, text: str) -> int:
        if len(self) > CACHE_ENTRIES:
            self.clear()
        value = self[text] = int(text)
        return value


_INTS = _Ints()


def _pid(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


def _ticks(rows: Iterable[Row]) -> list[int]:
    return list(map(int, map(str.replace, map(_TS, rows), repeat("."), repeat(""))))


class TraceFacts:
    """What the attribution needs of a trace, taken in one block of rows at a time (a
    :func:`~perflab.tracing.ftrace.scan_trace` sink) so that a trace never has to be held
    whole: event counts; thread names; which thread ids went with which comm and tgid;
    ATrace sections, counters and markers; irq intervals; every sched_switch as four numbers
    in compact arrays (whose threads count is known only at the end); binder and fastrpc
    round trips; submission times; and the records of :data:`KEPT_EVENTS`. Times are kept
    in trace units and turned into µs when :meth:`attribute` is given ``us_per_tick``: its
    results are those of the per-record functions above (tested against
    :mod:`perflab.tracing.reference`)."""

    def __init__(self) -> None:
        self._info: TraceInfo | None = None  # set once the whole trace was taken in
        self._counts: Counter[str] = Counter()
        self._names: dict[str, str] = {}  # tid as printed -> its last comm
        self._threads: set[tuple[str, str, str]] = set()  # (comm, tid, tgid) as printed
        self._marker_comms: set[tuple[int, str]] = set()
        self._switch_pids: dict[str, tuple[int, int]] = {}  # payload -> (prev_pid, next_pid), bounded
        self._irq_fields: tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]] = ({}, {})  # entry, exit
        self._words: dict[str, str] = {}  # section names and binder peers, each kept once
        self._stacks: dict[int, list[tuple[str, int | None, int, str]]] = {}
        self._sections: list[tuple[str, int, int | None, int, int, int, str]] = []
        self._counters: list[tuple[str, int | None, int, float]] = []
        self._async_open: dict[tuple[int | None, str, str], int] = {}
        self._async: list[tuple[str, int | None, str, int, int]] = []
        self._instants: list[tuple[str, int, int | None, int]] = []
        self._plain: list[tuple[str, int, int]] = []
        self._unmatched_ends = 0
        self._sw_cpu = array("i")
        self._sw_ts = array("Q")
        self._sw_prev = array("q")
        self._sw_next = array("q")
        self._irq_open: dict[int, list[tuple[int, str, int]]] = {}
        self._irq_names: dict[str, int] = {}  # irq name -> its index in the intervals' name column
        self._irq_cols = (array("q"), array("i"), array("i"), array("Q"), array("Q"))  # irq, name, cpu, begin, end
        self._irq_unmatched = 0
        self._pending: dict[int, list[tuple[int, str]]] = {}
        self._reply_to: dict[str, tuple[int, int]] = {}
        self._binder: list[tuple[int, str, int, int]] = []
        self._rpc_open: dict[tuple[str, str], tuple[int, str, int]] = {}
        self._rpc: list[tuple[int, str, int, int]] = []
        self._submits = array("Q")
        self._kept: list[TraceRecord] = []

    @classmethod
    def of(cls, trace: ParsedTrace) -> TraceFacts:
        facts = cls()
        for start in range(0, len(trace.rows), DEFAULT_BLOCK_ROWS):
            facts.add(trace.rows[start:start + DEFAULT_BLOCK_ROWS])
        facts.info = trace.info
        return facts

    @property
    def info(self) -> TraceInfo:
        if self._info is None:
            raise RuntimeError("TraceFacts.info before the whole trace was taken in")
        return self._info

    @info.setter
    def info(self, info: TraceInfo) -> None:
        self._info = info

    # -- taking in rows ----------------------------------------------------------------

    def add(self, rows: list[Row]) -> None:
        """One block of event rows, in file order."""
        if not rows:
            return
        events = list(map(_EVENT, rows))
        block = Counter(events)
        self._counts.update(block)
        self._names.update(zip(map(_TID, rows), map(_COMM, rows), strict=True))
        self._threads.update(map(_THREAD, rows))
        present = block.keys()
        if present & MARKER_EVENTS:
            self._add_markers(_select(rows, events, MARKER_EVENTS))
        if "sched_switch" in present:
            self._add_switches(list(compress(rows, map("sched_switch".__eq__, events))))
        if present & _IRQ_EVENTS:
            self._add_irqs(_select(rows, events, _IRQ_EVENTS))
        if present & _BINDER_EVENTS:
            self._add_binder(_select(rows, events, _BINDER_EVENTS))
        if present & _FASTRPC_EVENTS:
            self._add_fastrpc(_select(rows, events, _FASTRPC_EVENTS))
        if present & _SUBMIT_EVENTS:
            self._submits.extend(_ticks(_select(rows, events, _SUBMIT_EVENTS)))
        if present & KEPT_EVENTS:
            self._kept.extend(map(record_of, _select(rows, events, KEPT_EVENTS)))

    def _add_markers(self, rows: list[Row]) -> None:
        """As :func:`parse_markers`, in trace units."""
        stacks, sections, plain = self._stacks, self._sections, self._plain
        names = self._words  # one string object per section name, not one per section
        tids = list(map(_INTS.__getitem__, map(_TID, rows)))
        self._marker_comms.update(zip(tids, map(_COMM, rows), strict=True))
        for event, text, tid, ts in zip(map(_EVENT, rows), map(str.rstrip, map(_PAYLOAD, rows)), tids, _ticks(rows),
                                        strict=True):
            if event == "print" and text.startswith(_PRINT_PREFIX):
                text = text[len(_PRINT_PREFIX):]
            kind = text[:2]
            if kind == "B|":
                parts = text.split("|", 3)
                if len(parts) < 3:
                    plain.append((text, tid, ts))
                    continue
                stacks.setdefault(tid, []).append((names.setdefault(parts[2], parts[2]), _int_or_none(parts[1]), ts,
                                                   parts[3] if len(parts) > 3 else ""))
            elif text == "E" or kind == "E|":
                stack = stacks.get(tid)
                if not stack:
                    self._unmatched_ends += 1
                    continue
                name, tgid, begin, args = stack.pop()
                sections.append((name, tid, tgid, begin, ts, len(stack), args))
            else:
                self._other_marker(text, tid, ts)

    def _other_marker(self, text: str, tid: int, ts: int) -> None:
        """As :func:`_other_marker`, in trace units."""
        kind = text[:2]
        parts = text.split("|")
        if kind == "C|" and len(parts) >= 4:
            try:
                self._counters.append((parts[2], _int_or_none(parts[1]), ts, float(parts[3])))
                return
            except ValueError:
                pass
        elif kind in ("S|", "F|") and len(parts) >= 4:
            key = (_int_or_none(parts[1]), parts[2], parts[3])
            if kind == "S|":
                self._async_open[key] = ts
            elif key in self._async_open:
                self._async.append((parts[2], key[0], parts[3], self._async_open.pop(key), ts))
            return
        elif kind == "I|" and len(parts) >= 3:
            self._instants.append((parts[2], tid, _int_or_none(parts[1]), ts))
            return
        self._plain.append((text, tid, ts))

    def _add_switches(self, rows: list[Row]) -> None:
        """prev_pid and next_pid of every switch, as its fields give them; a payload seen
        before (kernel traces repeat them: switches between the same threads) is looked up."""
        payloads = list(map(_PAYLOAD, rows))
        known = self._switch_pids
        if len(known) > CACHE_ENTRIES:
            known.clear()
        got = list(map(known.get, payloads))
        pids = cast(list[tuple[int, int]], got)
        if None in got:
            new = list(dict.fromkeys(compress(payloads, map(_IS_NONE, got))))
            # (a pid that is no number counts as none: cpu_busy stopped there)
            for p, (prev, nxt) in zip(new, typed_field_columns("sched_switch", [p.rstrip() for p in new],
                                                               ("prev_pid", "next_pid")), strict=True):
                known[p] = (_pid(prev or "-1"), _pid(nxt or "-1"))
            pids = list(map(known.__getitem__, payloads))
        self._sw_prev.extend(map(_FIRST, pids))
        self._sw_next.extend(map(_SECOND, pids))
        self._sw_cpu.extend(map(_INTS.__getitem__, map(_CPU, rows)))
        self._sw_ts.extend(_ticks(rows))

    def _add_irqs(self, rows: list[Row]) -> None:
        """As :func:`irq_intervals`, in trace units."""
        open_, names = self._irq_open, self._irq_names
        col_irq, col_name, col_cpu, col_begin, col_end = self._irq_cols
        entry_fields, exit_fields = self._irq_fields
        if len(entry_fields) + len(exit_fields) > CACHE_ENTRIES:
            entry_fields.clear()
            exit_fields.clear()
        for event, payload, cpu, ts in zip(map(_EVENT, rows), map(_PAYLOAD, rows), map(_INTS.__getitem__, map(_CPU, rows)),
                                           _ticks(rows), strict=True):
            entry = event == "irq_handler_entry"
            known = entry_fields if entry else exit_fields
            v = known.get(payload)
            if v is None:
                f = fields_cached(event, payload.rstrip())
                v = known[payload] = (f.get("irq", "-1"), f.get("name", "?"))
            if entry:
                open_.setdefault(cpu, []).append((_INTS[v[0]], v[1], ts))
                continue
            stack = open_.get(cpu)
            irq = _INTS[v[0]]
            if stack and stack[-1][0] == irq:
                _, name, begin = stack.pop()
                col_irq.append(irq)
                col_name.append(names.setdefault(name, len(names)))
                col_cpu.append(cpu)
                col_begin.append(begin)
                col_end.append(ts)
            else:
                self._irq_unmatched += 1

    def _add_binder(self, rows: list[Row]) -> None:
        """As :func:`binder_round_trips`, in trace units."""
        pending, reply_to = self._pending, self._reply_to
        events = list(map(_EVENT, rows))
        payloads = list(map(str.rstrip, map(_PAYLOAD, rows)))
        sent = iter(typed_field_columns(
            "binder_transaction", [p for e, p in zip(events, payloads, strict=True) if e == "binder_transaction"],
            ("flags", "reply", "dest_proc", "dest_thread", "transaction")))
        received = iter(typed_field_columns(
            "binder_transaction_received",
            [p for e, p in zip(events, payloads, strict=True) if e == "binder_transaction_received"], ("transaction",)))
        for event, tid, ts in zip(events, map(_INTS.__getitem__, map(_TID, rows)), _ticks(rows), strict=True):
            if event == "binder_transaction":
                flags_text, reply, dest_proc, dest_thread, transaction = next(sent)
                flags_text = "0" if flags_text is None else flags_text
                flags = int(flags_text, 16) if flags_text.startswith("0x") else 0
                if reply == "0":
                    if not flags & 0x1:  # TF_ONE_WAY has no reply
                        peer = f"proc {'?' if dest_proc is None else dest_proc}"
                        pending.setdefault(tid, []).append((ts, self._words.setdefault(peer, peer)))
                else:
                    caller = int("0" if dest_thread is None else dest_thread)
                    if pending.get(caller):
                        reply_to["" if transaction is None else transaction] = (caller, ts)
            else:
                tx = next(received)[0] or ""
                if tx in reply_to:
                    caller, _ = reply_to.pop(tx)
                    begin, peer = pending[caller].pop()
                    self._binder.append((caller, peer, begin, ts))

    def _add_fastrpc(self, rows: list[Row]) -> None:
        """As :func:`fastrpc_round_trips`, in trace units."""
        for r in rows:
            payload = r[7].rstrip()
            if r[6] in FASTRPC_SEND_EVENTS:
                m = _FASTRPC_SEND.search(payload)
                if m:
                    self._rpc_open[(m.group("cid"), m.group("ctx"))] = (int(r[1]), f"cid {m.group('cid')}",
                                                                        ts_from_text(r[5]))
            else:
                m = _FASTRPC_RESP.search(payload)
                if m and (m.group("cid"), m.group("ctx")) in self._rpc_open:
                    tid, peer, begin = self._rpc_open.pop((m.group("cid"), m.group("ctx")))
                    self._rpc.append((tid, peer, begin, ts_from_text(r[5])))

    # -- what a whole trace gives ------------------------------------------------------

    @property
    def event_counts(self) -> dict[str, int]:
        return dict(self._counts.most_common())

    def count(self, event: str) -> int:
        return self._counts.get(event, 0)

    def thread_names(self) -> dict[int, str]:
        """The last comm each thread id had in the line prefix. (Thread ids are told apart as
        printed: one written with leading zeros, which the kernel never does, would not be
        merged with its plain form in order.)"""
        return {int(tid): comm for tid, comm in self._names.items()}

    def tids_of(self, tgid: int) -> set[int]:
        """Thread ids seen with this process id in the tgid column, plus the tgid itself."""
        key = str(tgid)
        return {int(tid) for _, tid, g in self._threads if g == key} | {tgid}

    def tids_named(self, comm: str) -> set[int]:
        return {int(tid) for c, tid, _ in self._threads if c == comm}

    def records(self, events: Collection[str]) -> list[TraceRecord]:
        """The records of these events, of those kept (:data:`KEPT_EVENTS`)."""
        wanted = frozenset(events)
        return [r for r in self._kept if r.event in wanted]

    def markers(self, us_per_tick: float) -> Markers:
        out = Markers(
            sections=[Section(n, tid, tg, b * us_per_tick, e * us_per_tick, d, a)
                      for n, tid, tg, b, e, d, a in self._sections],
            counters=[CounterSample(n, tg, ts * us_per_tick, v) for n, tg, ts, v in self._counters],
            async_slices=[AsyncSlice(n, tg, c, b * us_per_tick, e * us_per_tick) for n, tg, c, b, e in self._async],
            instants=[Instant(n, tid, tg, ts * us_per_tick) for n, tid, tg, ts in self._instants],
            plain=[Marker(t, tid, ts * us_per_tick) for t, tid, ts in self._plain],
            unmatched_ends=self._unmatched_ends,
            unclosed=sum(len(s) for s in self._stacks.values()),
        )
        out.sections.sort(key=lambda s: (s.begin_us, s.depth))
        return out

    def busy(self, tids: Collection[int], us_per_tick: float) -> CpuBusy:
        """As :func:`cpu_busy` over the kept switches. A wanted thread ran from a switch that
        put it on a CPU to the next switch on that CPU when that one switches it out: the
        pairs of consecutive switches per CPU are found with numpy, and only those runs are
        summed, in trace order (the same sums as the record by record loop)."""
        per_thread: dict[int, float] = {}
        per_cpu: dict[int, float] = {}
        intervals: list[RunInterval] = []
        if len(self._sw_cpu) > 1 and tids:
            cpu = np.frombuffer(self._sw_cpu, dtype=np.intc)
            nxt_all = np.frombuffer(self._sw_next, dtype=np.int64)
            prev_all = np.frombuffer(self._sw_prev, dtype=np.int64)
            wanted = np.fromiter(tids, dtype=np.int64, count=len(tids))
            runs: list[tuple[int, int]] = []
            for c in np.unique(cpu).tolist():  # one CPU at a time: small temporaries
                at_cpu = np.flatnonzero(cpu == c)  # its switches, in trace order
                before, at = at_cpu[:-1], at_cpu[1:]
                nxt = nxt_all[before]
                hit = np.isin(nxt, wanted) & (prev_all[at] == nxt)
                runs.extend(zip(at[hit].tolist(), before[hit].tolist(), strict=True))
            runs.sort()
            ts, cpus, prevs = self._sw_ts, self._sw_cpu, self._sw_prev
            ints: dict[int, int] = {}  # one int object per thread id and CPU, not one per run
            for k, k_before in runs:
                begin, end = ts[k_before] * us_per_tick, ts[k] * us_per_tick
                if end > begin:
                    tid, c = ints.setdefault(prevs[k], prevs[k]), ints.setdefault(cpus[k], cpus[k])
                    per_thread[tid] = per_thread.get(tid, 0.0) + (end - begin)
                    per_cpu[c] = per_cpu.get(c, 0.0) + (end - begin)
                    intervals.append(RunInterval(c, tid, begin, end))
        return CpuBusy(per_thread, per_cpu, tuple(intervals))

    def attribute(self, *, us_per_tick: float, invoke_re: re.Pattern[str] = DEFAULT_INVOKE_RE,
                  accel_irq_re: re.Pattern[str] | None = None, tgid: int | None = None,
                  busy_tids: Collection[int] | None = None, segment: str | None = None,
                  skip_first: int = 0) -> Attribution:
        """See :func:`attribute`; may be called again with other choices."""
        upt = us_per_tick
        names = list(self._irq_names)
        ints: dict[int, int] = {}  # one int object per irq number, not one per interval
        irqs = [IrqInterval(ints.setdefault(irq, irq), names[k], cpu, b * upt, e * upt)
                for irq, k, cpu, b, e in zip(*self._irq_cols, strict=True)]
        binder = [RoundTrip("binder", tid, peer, b * upt, e * upt) for tid, peer, b, e in self._binder]
        pending = {k: list(v) for k, v in self._pending.items()}
        for caller, sent in self._reply_to.values():  # reply sent, its receipt not traced
            if pending.get(caller):
                begin, peer = pending[caller].pop()
                binder.append(RoundTrip("binder", caller, peer, begin * upt, sent * upt))
        binder.sort(key=lambda t: t.begin_us)
        rpc = [RoundTrip("fastrpc", tid, peer, b * upt, e * upt) for tid, peer, b, e in self._rpc]
        return assemble(
            us_per_tick=upt, markers=self.markers(upt), irqs=irqs,
            irq_unmatched=self._irq_unmatched + sum(len(s) for s in self._irq_open.values()),
            busy_of=lambda tids: self.busy(tids, upt), tids_of=self.tids_of, tids_named=self.tids_named,
            marker_comms_of=lambda tids: {c for t, c in self._marker_comms if t in tids},
            has_tgid=self.info.has_tgid, binder=(binder, sum(len(v) for v in pending.values())),
            fastrpc=(rpc, len(self._rpc_open)), submits_us=[ts * upt for ts in self._submits],
            invoke_re=invoke_re, accel_irq_re=accel_irq_re, tgid=tgid, busy_tids=busy_tids, segment=segment,
            skip_first=skip_first)


def stream_facts(chunks: Iterable[str | bytes], *, trace_clock: str | None = None, source: str = "",
                 block_chars: int = DEFAULT_BLOCK_CHARS) -> TraceFacts:
    """Parse a trace handed over in pieces (:func:`~perflab.tracing.ftrace.file_chunks`,
    :func:`~perflab.tracing.ftrace.text_chunks`) and keep what attribution needs, in one pass:
    memory is a block of text plus what :class:`TraceFacts` keeps, never the whole trace."""
    facts = TraceFacts()
    facts.info = scan_trace(chunks, facts.add, trace_clock=trace_clock, source=source, block_chars=block_chars)
    return facts
