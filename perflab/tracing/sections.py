"""ATrace sections, inferences and operators, and perflab's segments, from parsed ftrace
records. Pure functions.

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

Times: records carry ``ts`` in trace units; every function here takes ``us_per_tick``
(:meth:`~perflab.tracing.ftrace.TraceInfo.us_per_tick`) and returns µs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from perflab.analysis.stats import SeriesStats, summarize
from perflab.errors import UserInputError
from perflab.tracing.ftrace import (
    TraceRecord,
)

MARKER_EVENTS = frozenset({"tracing_mark_write", "0", "print"})
DEFAULT_INVOKE_RE = re.compile(r"^(?:Invoke|invoke|TfLiteInterpreter::Invoke|perflab:invoke)(?:@.*)?$")
OP_RE = re.compile(r"^(?P<op>[^@]+)@(?P<node>\d+)/(?P<subgraph>\d+)$")
DELEGATE_OP_RE = re.compile(r"^TfLite\w*Delegate\w*$")
SEGMENT_RE = re.compile(r"^perflab:segment:(?P<name>.+):(?P<edge>begin|end)$")


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


def int_or_none(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


class MarkerReader:
    """The marker grammar, one marker at a time in trace units (``ts`` as the record has it),
    for :func:`parse_markers` and :class:`~perflab.tracing.facts.TraceFacts` alike: ATrace
    sections ``B``/``E`` matched per thread, counters ``C|pid|name|value``, async
    ``S``/``F|pid|name|cookie``, instants ``I|pid|name``; anything else is a plain marker.
    :meth:`markers` gives them in µs. ``words`` keeps one string object per section name."""

    def __init__(self, words: dict[str, str] | None = None) -> None:
        self._words = {} if words is None else words
        self._stacks: dict[int, list[tuple[str, int | None, int, str]]] = {}
        self._sections: list[tuple[str, int, int | None, int, int, int, str]] = []
        self._counters: list[tuple[str, int | None, int, float]] = []
        self._async_open: dict[tuple[int | None, str, str], int] = {}
        self._async: list[tuple[str, int | None, str, int, int]] = []
        self._instants: list[tuple[str, int, int | None, int]] = []
        self._plain: list[tuple[str, int, int]] = []
        self._unmatched_ends = 0

    def add(self, text: str, tid: int, ts: int) -> None:
        """One marker's text (without a ``tracing_mark_write: `` prefix), written by ``tid``."""
        kind = text[:2]
        if kind == "B|":
            parts = text.split("|", 3)
            if len(parts) < 3:
                self._plain.append((text, tid, ts))
                return
            self._stacks.setdefault(tid, []).append((self._words.setdefault(parts[2], parts[2]),
                                                     int_or_none(parts[1]), ts, parts[3] if len(parts) > 3 else ""))
        elif text == "E" or kind == "E|":
            stack = self._stacks.get(tid)
            if not stack:
                self._unmatched_ends += 1
                return
            name, tgid, begin, args = stack.pop()
            self._sections.append((name, tid, tgid, begin, ts, len(stack), args))
        else:
            self._other(text, tid, ts)

    def _other(self, text: str, tid: int, ts: int) -> None:
        kind = text[:2]
        parts = text.split("|")
        if kind == "C|" and len(parts) >= 4:
            try:
                self._counters.append((parts[2], int_or_none(parts[1]), ts, float(parts[3])))
                return
            except ValueError:
                pass
        elif kind in ("S|", "F|") and len(parts) >= 4:
            key = (int_or_none(parts[1]), parts[2], parts[3])
            if kind == "S|":
                self._async_open[key] = ts
            elif key in self._async_open:
                self._async.append((parts[2], key[0], parts[3], self._async_open.pop(key), ts))
            return
        elif kind == "I|" and len(parts) >= 3:
            self._instants.append((parts[2], tid, int_or_none(parts[1]), ts))
            return
        self._plain.append((text, tid, ts))

    def markers(self, us_per_tick: float) -> Markers:
        """Everything read so far, in µs; sections by begin, outermost first."""
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


def parse_markers(records: Iterable[TraceRecord], us_per_tick: float) -> Markers:
    """ATrace sections and the other marker kinds, from marker records in time order."""
    reader = MarkerReader()
    for r in records:
        if r.event not in MARKER_EVENTS:
            continue
        text = r.payload
        if r.event == "print" and text.startswith("tracing_mark_write: "):
            text = text[len("tracing_mark_write: "):]
        reader.add(text, r.pid, r.ts)
    return reader.markers(us_per_tick)


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
