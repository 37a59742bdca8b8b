"""Fast parser for the ftrace ``trace`` text format. Pure functions over text.

One line per event (formats.md §6.2, kernel ``trace_output.c``)::

    <comm>-<tid> [(<tgid>)] [<cpu>] [<flags>] <timestamp>: <event>: <payload>

- ``comm`` may hold spaces and ``-``; the tid is the **last** ``-<digits>`` before the tgid
  or cpu column. ``<...>`` means the kernel's saved_cmdlines overflowed.
- The tgid column ``(  123)`` appears with ``options/record-tgid`` (``print-tgid`` on older
  kernels; atrace turns it on); ``(-----)`` when unknown.
- Flags are 4 characters on older kernels (``d.h3``) and 5 on newer ones (``d..2.``, adding
  migrate-disable); absent when ``options/irq-info`` is off.
- The timestamp is ``seconds.microseconds`` (6 decimals) for the nanosecond clocks (local,
  global, mono, mono_raw, boot, tai, perf) and a raw integer for the others (counter,
  x86-tsc, uptime). :attr:`TraceRecord.ts` holds it as an exact integer: µs for the
  first group, raw ticks for the second (:attr:`TraceInfo.ts_unit` says which).

Besides records the parser reports what a trace can silently lack: ``CPU:N [LOST M EVENTS]``
lines (per-CPU ring buffer overruns while reading), ``entries-in-buffer/entries-written``
(events overwritten in a full ring buffer), and ``##### CPU N buffer started ####`` (a CPU's
older events are gone, so its first event comes later than the others'), plus the trace
clock: from a ``trace_clock`` file's content when given, else from a ``# trace_clock: …``
header line (perflab's capture is to write one, see docs/tracing.md), else guessed from
the timestamp form.

Why this is fast: one compiled regular expression runs over a block of whole lines at a
time (``findall``, in C; :class:`TraceScanner` cuts the text, or a file's chunks, into
blocks, so a trace is never held whole unless a caller keeps the rows) and the rows stay
tuples of strings; a :class:`TraceRecord` is built, and its
``key=value`` fields are parsed, only for the events a caller asks for; header, LOST and
blank lines are found with ``str.find``/``count``, and the rest of the text is looked at
again only when those counts do not add up; records are built with the cyclic garbage
collector paused (they cannot form cycles, and its passes doubled the time at 200 MB). The plain
line-by-line parser in :mod:`perflab.tracing.reference` gives identical records (tested) and
is what the benchmark compares against (benchmarks/bench_ftrace.py).
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import gc
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import compress
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple

from perflab.core.files import open_regular
from perflab.errors import UserInputError


class TsUnit(StrEnum):
    US = "us"  # nanosecond clocks, printed as seconds with 6 decimals: ts is in µs
    TICKS = "ticks"  # counter / x86-tsc / uptime: ts is the raw counter value


# Clocks whose time the kernel prints as seconds.microseconds (``in_ns`` in trace.c).
NS_CLOCKS = frozenset({"local", "global", "mono", "mono_raw", "boot", "tai", "perf"})
# Clocks printed as a raw integer.
TICK_CLOCKS = frozenset({"counter", "x86-tsc", "uptime"})
KNOWN_CLOCKS = NS_CLOCKS | TICK_CLOCKS


class TraceRecord(NamedTuple):
    """One event line (an immutable tuple: cheap to build by the million). ``pid`` is the
    thread id the kernel prints (``comm-<tid>``); ``tgid`` the process id when the trace has
    the tgid column and knows it."""

    ts: int  # µs when the trace's ts_unit is "us", else raw clock ticks
    cpu: int
    comm: str
    pid: int
    tgid: int | None
    flags: str  # "" when the trace has no flags column
    event: str  # e.g. "sched_switch"; "tracing_mark_write" (or "0" on legacy kernels) for markers
    payload: str  # the text after "<event>: ", right-stripped

    @property
    def fields(self) -> Mapping[str, str]:
        """``key=value`` pairs of the payload (empty for markers), read-only: the same payload
        text recurs a lot in kernel traces (an irq's entry line, switches between the same
        threads), so parsed fields are cached and shared. Common events go through a typed
        pattern of their own, the rest through :func:`parse_fields`; both give the same
        result (tested)."""
        return fields_cached(self.event, self.payload)


@dataclass(frozen=True)
class TraceInfo:
    """What the trace says about itself besides its events."""

    tracer: str | None
    cpus: int | None  # "#P:N" in the header
    entries_in_buffer: int | None
    entries_written: int | None
    has_tgid: bool | None  # tgid column seen in the header or the records
    flags_width: int | None  # 4 (older kernels), 5 (newer), None (no flags column / no records)
    clock: str | None  # local/global/mono/boot/counter/x86-tsc/... when known
    clock_source: str  # "trace_clock" (file content given), "header", "timestamps" (guessed), "none"
    ts_unit: TsUnit
    lost_events: dict[int, int]  # cpu -> events lost while reading (CPU:N [LOST M EVENTS])
    lost_uncounted_cpus: tuple[int, ...]  # CPU:N [LOST EVENTS]: the kernel did not know how many
    buffer_started_cpus: tuple[int, ...]  # "##### CPU N buffer started ####"
    records: int
    unparsed_lines: int
    unparsed_examples: tuple[str, ...]  # first few lines that are neither header nor event
    first_ts: int | None
    last_ts: int | None

    @property
    def overwritten_events(self) -> int | None:
        """Events the ring buffer overwrote before the trace was read (written − in buffer)."""
        if self.entries_in_buffer is None or self.entries_written is None:
            return None
        return max(0, self.entries_written - self.entries_in_buffer)

    @property
    def lost_total(self) -> int:
        return sum(self.lost_events.values())

    @property
    def complete(self) -> bool:
        """True when nothing says events are missing."""
        return not (self.lost_events or self.lost_uncounted_cpus or self.overwritten_events
                    or self.buffer_started_cpus)

    def us_per_tick(self, counter_hz: float | None = None) -> float | None:
        """Microseconds per unit of :attr:`TraceRecord.ts`: 1 for nanosecond clocks; for
        tick clocks 1e6 / counter_hz when the counter's frequency is given, else None."""
        if self.ts_unit is TsUnit.US:
            return 1.0
        if counter_hz is not None and counter_hz > 0:
            return 1e6 / counter_hz
        return None


# ---- shared line grammar ----------------------------------------------------------------

# Used by both parsers (this one over the whole buffer with MULTILINE, the reference per
# line). Groups: comm, pid, tgid, cpu, flags, ts, event, payload.
# An optional part is written ``(?:X|)``, not ``(?:X)?``: the same matches, but the regex
# engine runs an alternation faster than a repeat of a group (about 4% of the parse).
LINE_PATTERN = (
    r"^(?!#)[ \t]*(.*?)-(\d+)[ \t]+"  # comm-tid (lazy comm: the tid is the last -digits before the columns)
    r"(?:\([ \t]*(\d+|-+)\)[ \t]+|)"  # optional (tgid)
    r"\[(\d+)\][ \t]+"  # [cpu]
    r"(?:(\S{4,5})[ \t]+|)"  # optional irq-info flags, 4 or 5 chars
    r"(\d+(?:\.\d{6}|)):[ \t]"  # timestamp: sec.usec or raw ticks
    r"([^:\s]+):[ \t]?"  # event name (or the marker's ip symbol, "0" on legacy kernels)
    r"(.*)$"  # payload
)
LOST_RE = re.compile(r"^CPU:(\d+) \[LOST (?:(\d+) )?EVENTS\]\s*$")  # newer kernels: no count when unknown
BUFFER_STARTED_RE = re.compile(r"^##### CPU (\d+) buffer started ####\s*$")
TRACER_RE = re.compile(r"^#\s*tracer:\s*(\S+)")
ENTRIES_RE = re.compile(r"^#\s*entries-in-buffer/entries-written:\s*(\d+)/(\d+)(?:\s+#P:(\d+))?")
HEADER_CLOCK_RE = re.compile(r"^#\s*trace_clock:\s*(.+?)\s*$")
COLUMNS_RE = re.compile(r"^#\s+TASK-PID\b(.*)$")
MAX_UNPARSED_EXAMPLES = 3

_LINE_RE_M = re.compile(LINE_PATTERN, re.MULTILINE)


def lazy_runs(pattern: str, stops: str) -> str:
    """``pattern`` with each lazy ``(.*?)`` followed by one of ``stops`` written so that the
    regular expression engine tries the candidates stop by stop instead of character by
    character: ``((?:[^\\n<c>]*+<c>)*?[^\\n<c>]*+)<c>`` for the stop ``c`` (a character
    that stands for itself in a pattern: ``-``, a blank). The same matches: ``.*?`` before a
    literal ``c`` can only end where a ``c`` follows, and those ends are tried in the same
    order (shortest first)."""
    for c in stops:
        run = f"[^\\n{re.escape(c)}]*+"
        pattern = pattern.replace(f"(.*?){c}", f"((?:{run}{c})*?{run}){c}")
    return pattern


def ascii_digits(pattern: str) -> str:
    """``pattern`` with ``\\d`` written ``[0-9]``: the same matches over ASCII text (``\\d``
    is any Unicode decimal digit, a function call per character in the engine; ASCII has no
    decimal digits but 0-9), only for text that ``isascii()``."""
    return pattern.replace(r"\d", "[0-9]")


# The line grammar for a block of ASCII text (the usual case), the same matches as
# LINE_PATTERN's there (tested against the reference parser): about 14% fewer instructions.
_LINE_RE_ASCII = re.compile(ascii_digits(lazy_runs(LINE_PATTERN, "-")), re.MULTILINE)
_EMPTY_RE = re.compile(r"\n(?=\n)")  # empty lines, cheaply (a literal search)


_CLOCK_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # a kernel clock's name: "local", "x86-tsc", "mono_raw"


def clock_from_trace_clock(content: str) -> str:
    """The selected clock from a ``trace_clock`` file (``[local] global counter …``) or a
    bare clock name (lower-case letters, digits, ``_`` and ``-``, as the kernel names them).
    Raises UserInputError when neither."""
    text = content.strip()
    m = re.search(r"\[([^\]\s]+)\]", text)
    name = m.group(1) if m else text
    if _CLOCK_NAME_RE.fullmatch(name) is None:
        raise UserInputError(f"trace_clock: cannot tell the selected clock from {text[:80]!r} (a clock is a "
                             f"name such as {', '.join(sorted(KNOWN_CLOCKS))})")
    return name


def ts_unit_for_clock(clock: str) -> TsUnit | None:
    if clock in NS_CLOCKS:
        return TsUnit.US
    if clock in TICK_CLOCKS:
        return TsUnit.TICKS
    return None


@dataclass
class HeaderState:
    """Accumulates what comment and marker lines say (shared by both parsers)."""

    tracer: str | None = None
    cpus: int | None = None
    entries_in_buffer: int | None = None
    entries_written: int | None = None
    header_tgid: bool | None = None
    header_flags_width: int | None = None
    header_clock: str | None = None
    lost: dict[int, int] = field(default_factory=dict)
    lost_uncounted: list[int] = field(default_factory=list)
    buffer_started: list[int] = field(default_factory=list)

    def comment(self, line: str) -> None:
        """Take in one ``#`` line."""
        if (m := BUFFER_STARTED_RE.match(line)) is not None:
            self.buffer_started.append(int(m.group(1)))
        elif (m := TRACER_RE.match(line)) is not None:
            self.tracer = m.group(1)
        elif (m := ENTRIES_RE.match(line)) is not None:
            self.entries_in_buffer, self.entries_written = int(m.group(1)), int(m.group(2))
            self.cpus = int(m.group(3)) if m.group(3) else None
        elif (m := HEADER_CLOCK_RE.match(line)) is not None:
            try:
                self.header_clock = clock_from_trace_clock(m.group(1))
            except UserInputError:
                self.header_clock = None
        elif (m := COLUMNS_RE.match(line)) is not None:
            rest = m.group(1)
            self.header_tgid = "TGID" in rest
            bars = re.search(r"\|{4,5}", rest)
            self.header_flags_width = len(bars.group(0)) if bars else 0

    def lost_line(self, line: str) -> bool:
        m = LOST_RE.match(line)
        if m is None:
            return False
        cpu = int(m.group(1))
        if m.group(2) is None:
            if cpu not in self.lost_uncounted:
                self.lost_uncounted.append(cpu)
        else:
            self.lost[cpu] = self.lost.get(cpu, 0) + int(m.group(2))
        return True

    def info(
        self,
        *,
        trace_clock: str | None,
        first_ts_text: str | None,
        first_flags: str | None,
        any_tgid: bool,
        records: int,
        unparsed: int,
        unparsed_examples: list[str],
        first_ts: int | None,
        last_ts: int | None,
    ) -> TraceInfo:
        clock: str | None
        if trace_clock is not None:
            clock, source = clock_from_trace_clock(trace_clock), "trace_clock"
        elif self.header_clock is not None:
            clock, source = self.header_clock, "header"
        else:
            clock, source = None, "timestamps" if first_ts_text is not None else "none"
        unit = ts_unit_for_clock(clock) if clock is not None else None
        if unit is None:  # unknown clock name or none: the printed form decides
            unit = TsUnit.TICKS if first_ts_text is not None and "." not in first_ts_text else TsUnit.US
        if self.header_flags_width is not None:
            flags_width: int | None = self.header_flags_width or None
        else:
            flags_width = len(first_flags) if first_flags else None
        has_tgid = self.header_tgid if self.header_tgid is not None else (any_tgid if records else None)
        return TraceInfo(
            tracer=self.tracer,
            cpus=self.cpus,
            entries_in_buffer=self.entries_in_buffer,
            entries_written=self.entries_written,
            has_tgid=has_tgid,
            flags_width=flags_width,
            clock=clock,
            clock_source=source,
            ts_unit=unit,
            lost_events=dict(sorted(self.lost.items())),
            lost_uncounted_cpus=tuple(sorted(self.lost_uncounted)),
            buffer_started_cpus=tuple(self.buffer_started),
            records=records,
            unparsed_lines=unparsed,
            unparsed_examples=tuple(unparsed_examples[:MAX_UNPARSED_EXAMPLES]),
            first_ts=first_ts,
            last_ts=last_ts,
        )


_PREAMBLE_RE = re.compile(r"\A(?:capturing trace\.\.\.[^\n]*\n)?(?:[^\n]*\n)??TRACE:[ \t\r]*\n")


def strip_preamble(text: str) -> str:
    """Drop atrace's dump preamble (``capturing trace... done`` / ``TRACE:``) if present."""
    if text.startswith(("capturing trace", "TRACE:")):
        m = _PREAMBLE_RE.match(text[:4096])
        if m:
            return text[m.end():]
    return text


def ts_from_text(ts: str) -> int:
    """``"14063.748288"`` → 14063748288 (µs); ``"1374858930786"`` → the same integer (ticks).
    The grammar admits exactly 6 decimals, so dropping the dot is exact."""
    return int(ts.replace(".", ""))


def tgid_from_text(tgid: str) -> int | None:
    return int(tgid) if tgid and tgid[0] != "-" else None


# ---- key=value fields ---------------------------------------------------------------------

_KEY_RE = re.compile(r"(?<![^\s\[])(\w+)=")  # a word and '=' at the start, after blanks or '['



def parse_fields(payload: str) -> dict[str, str]:
    """``key=value`` pairs of a TP_printk payload. Values run to the next key, so comm
    values with spaces survive (``next_comm=Binder Thread #1 next_pid=…``); sched_switch's
    ``==>`` and softirq's ``[action=RCU]`` brackets are dropped. Payloads without ``=``
    (trace markers, fastrpc's prose formats) give {}."""
    if "=" not in payload:
        return {}
    keys = list(_KEY_RE.finditer(payload))
    out: dict[str, str] = {}
    for i, m in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(payload)
        value = payload[m.end():end].rstrip()
        if i + 1 < len(keys) and payload[keys[i + 1].start() - 1] == "[":
            value = value[:-1].rstrip() if value.endswith("[") else value
        if value.endswith("==>"):
            value = value[:-3].rstrip()
        if m.start() > 0 and payload[m.start() - 1] == "[" and value.endswith("]"):
            value = value[:-1]
        out.setdefault(m.group(1), value)
    return out


# Typed patterns for the events attribution reads most (the TP_printk formats of
# formats.md §6.3); a payload they do not match goes to the generic parser.
_TYPED_FIELDS: dict[str, tuple[re.Pattern[str], tuple[str, ...]]] = {
    "sched_switch": (
        re.compile(r"prev_comm=(.*?) prev_pid=(\d+) prev_prio=(-?\d+) prev_state=(\S+) ==> "
                   r"next_comm=(.*?) next_pid=(\d+) next_prio=(-?\d+)"),
        ("prev_comm", "prev_pid", "prev_prio", "prev_state", "next_comm", "next_pid", "next_prio"),
    ),
    "sched_wakeup": (
        re.compile(r"comm=(.*?) pid=(\d+) prio=(-?\d+) target_cpu=(\d+)"),
        ("comm", "pid", "prio", "target_cpu"),
    ),
    "irq_handler_entry": (re.compile(r"irq=(\d+) name=(.*?)"), ("irq", "name")),
    "irq_handler_exit": (re.compile(r"irq=(\d+) ret=(\w+)"), ("irq", "ret")),
    "binder_transaction_received": (re.compile(r"transaction=(\d+)"), ("transaction",)),
    "binder_transaction": (
        re.compile(r"transaction=(\d+) dest_node=(\d+) dest_proc=(\d+) dest_thread=(\d+) reply=(\d+) "
                   r"flags=(0x[0-9a-f]+) code=(0x[0-9a-f]+)"),
        ("transaction", "dest_node", "dest_proc", "dest_thread", "reply", "flags", "code"),
    ),
}

TYPED_EQUALS = {event: pattern.pattern.count("=") for event, (pattern, _) in _TYPED_FIELDS.items()}


FIELDS_CACHE_ENTRIES = 1 << 16


def fields_of(event: str, payload: str) -> dict[str, str]:
    """Fields of one event's payload: the event's typed pattern when it has one and it
    matches the whole payload, else :func:`parse_fields`."""
    typed = _TYPED_FIELDS.get(event)
    # a '=' inside a value (a comm) would make the generic rules split differently: leave it to them
    if typed is not None and payload.count("=") == TYPED_EQUALS[event]:
        m = typed[0].fullmatch(payload)
        if m is not None:
            return dict(zip(typed[1], m.groups(), strict=True))
    return parse_fields(payload)


def typed_field_columns(event: str, payloads: list[str], keys: tuple[str, ...]) -> list[tuple[str | None, ...]]:
    """``keys`` of each payload's fields as :func:`fields_of` gives them (None: no such key),
    for many payloads of one event (right-stripped, no newlines) at once: when the event has a
    typed pattern and every payload has its form and its count of ``=`` (the usual case), one
    regular expression over the joined payloads; else payload by payload."""
    typed = _TYPED_FIELDS.get(event)
    if typed is not None and payloads and set(keys) <= set(typed[1]):
        pattern, names = typed
        joined = "\n".join(payloads)
        ascii_text = joined.isascii()
        compiled = _TYPED_LINES.get((event, keys, ascii_text))
        if compiled is None:
            source = lazy_runs(pattern.pattern, " ")
            compiled = _TYPED_LINES[(event, keys, ascii_text)] = _typed_lines(
                ascii_digits(source) if ascii_text else source, names, keys)
        lines, wanted = compiled
        found = lines.findall(joined)
        # every line matched (a match cannot span lines) and, as each match holds at least the
        # pattern's '=', a total equal to that many per line means each has exactly as many
        if len(found) == len(payloads) and joined.count("=") == TYPED_EQUALS[event] * len(payloads):
            if len(wanted) == 1:
                return [(v,) * len(keys) for v in found]
            pick = itemgetter(*(wanted.index(k) for k in keys))
            return [(v,) for v in map(pick, found)] if len(keys) == 1 else list(map(pick, found))
    return [tuple(f.get(k) for k in keys) for f in (fields_cached(event, p) for p in payloads)]


_TYPED_LINES: dict[tuple[str, tuple[str, ...], bool], tuple[re.Pattern[str], tuple[str, ...]]] = {}
_GROUP_RE = re.compile(r"(?<!\\)\((?!\?)")  # a capturing group's opening parenthesis


def _typed_lines(pattern: str, names: tuple[str, ...], keys: tuple[str, ...]) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """A typed pattern for whole lines that captures only the groups of ``keys`` (the others
    made non-capturing: the same matches, fewer strings built), and the names it captures,
    in order."""
    opens = [m.start() for m in _GROUP_RE.finditer(pattern)]
    if len(opens) != len(names):  # not the plain form these patterns have: capture every group
        return re.compile(f"^(?:{pattern})$", re.MULTILINE), names
    wanted = tuple(n for n in names if n in keys)
    for at, name in reversed(list(zip(opens, names, strict=True))):
        if name not in keys:
            pattern = f"{pattern[:at]}(?:{pattern[at + 1:]}"
    return re.compile(f"^(?:{pattern})$", re.MULTILINE), wanted


fields_cached = functools.lru_cache(maxsize=FIELDS_CACHE_ENTRIES)(fields_of)


# ---- the fast parser ------------------------------------------------------------------------

_EVENT = itemgetter(6)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a million rows or records are built. They are
    tuples of strings, ints and None, which cannot form reference cycles, but every 700 new
    tuples start a collection, and the older generations' passes over a growing list cost
    more than the building itself (3x for every record of a 200 MB trace)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
Row = tuple[str, str, str, str, str, str, str, str]  # comm, tid, tgid, cpu, flags, ts, event, payload


def record_of(row: Row) -> TraceRecord:
    comm, pid, tgid, cpu, flags, ts, event, payload = row
    return TraceRecord(int(ts.replace(".", "")), int(cpu), comm, int(pid),
                       int(tgid) if tgid and tgid[0] != "-" else None, flags, event, payload.rstrip())


class ParsedTrace:
    """A parsed trace: :attr:`info` plus the event rows, kept as strings until asked for.

    ``records()`` builds :class:`TraceRecord` objects (all, or only the named events) in
    file order; ``count()`` and ``event_counts`` never build any.
    """

    def __init__(self, info: TraceInfo, rows: list[Row]) -> None:
        self.info = info
        self.rows = rows  # read-only: the event rows in file order
        self._rows = rows
        self._counts: Counter[str] | None = None

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def event_counts(self) -> dict[str, int]:
        if self._counts is None:
            self._counts = Counter(map(_EVENT, self._rows))
        return dict(self._counts.most_common())

    def count(self, event: str) -> int:
        return self.event_counts.get(event, 0)

    def records(self, events: Collection[str] | None = None) -> list[TraceRecord]:
        """Records in file order; with ``events``, only those events (by name)."""
        with _gc_paused():
            if events is None:
                return list(map(record_of, self._rows))
            wanted = frozenset(events)
            return list(map(record_of, compress(self._rows, map(wanted.__contains__, map(_EVENT, self._rows)))))

    def tids_of(self, tgid: int) -> set[int]:
        """Thread ids seen with this process id in the tgid column, plus the tgid itself."""
        key = str(tgid)
        return {int(r[1]) for r in self._rows if r[2] == key} | {tgid}

    def tids_named(self, comm: str) -> set[int]:
        """Thread ids seen with this comm in the line prefix."""
        return {int(r[1]) for r in self._rows if r[0] == comm}

    def thread_names(self) -> dict[int, str]:
        """The last comm each thread id had in the line prefix."""
        return {int(r[1]): r[0] for r in self._rows}

    def iter_records(self, events: Collection[str] | None = None) -> Iterator[TraceRecord]:
        wanted = None if events is None else frozenset(events)
        for r in self._rows:
            if wanted is None or r[6] in wanted:
                yield record_of(r)


DEFAULT_BLOCK_CHARS = 1 << 20  # text parsed per block: its overhead vanishes, its rows stay small (about 5 MB)
PREAMBLE_CHARS = 4096  # strip_preamble looks at this much of the start


class TraceScanner:
    """Parses ftrace text handed over in pieces (a file read in chunks), one block of whole
    lines at a time, with the same techniques and the same result as over the whole text:
    the text is never held whole. ``feed`` takes text (or bytes: UTF-8, undecodable bytes
    replaced, a character split between chunks put back together) and returns the event rows
    of the lines it completed; ``close`` returns the rest; ``info`` the :class:`TraceInfo`.
    A chunk may end anywhere: inside a line, inside a ``\\r\\n``, inside a UTF-8 character."""

    def __init__(self, *, block_chars: int = DEFAULT_BLOCK_CHARS) -> None:
        self.block_chars = max(1, block_chars)
        self._state = HeaderState()
        self._pending: list[str] = []  # text not parsed yet: the end of the last block's last line, new chunks
        self._pending_chars = 0
        self._started = False  # the atrace preamble was looked for
        self._in_header = True  # no line but '#' and blank ones seen yet
        self._decoder: codecs.IncrementalDecoder | None = None
        self.records = 0
        self._unparsed = 0
        self._examples: list[str] = []
        self._first: Row | None = None
        self._last_ts_text: str | None = None
        self._any_tgid = False

    def feed(self, chunk: str | bytes) -> list[Row]:
        if isinstance(chunk, bytes):
            if self._decoder is None:
                self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
            chunk = self._decoder.decode(chunk)
        if not chunk:
            return []
        self._pending.append(chunk)
        self._pending_chars += len(chunk)
        if self._pending_chars < (self.block_chars if self._started else max(self.block_chars, PREAMBLE_CHARS)):
            return []
        text = "".join(self._pending)
        if not self._started:
            text, self._started = strip_preamble(text), True
        cut = text.rfind("\n") + 1
        rest = text[cut:]
        self._pending, self._pending_chars = ([rest], len(rest)) if rest else ([], 0)
        return self._block(text[:cut]) if cut else []

    def close(self) -> list[Row]:
        """The rows of what is left (the last line may lack its newline)."""
        if self._decoder is not None:
            self._pending.append(self._decoder.decode(b"", final=True))
        text = "".join(self._pending)
        if not self._started:
            text, self._started = strip_preamble(text), True
        self._pending, self._pending_chars = [], 0
        return self._block(text) if text else []

    def _block(self, text: str) -> list[Row]:
        """Whole lines (the last one of the trace may lack its newline)."""
        # (the collector is left on: pausing it here was slower)
        rows: list[Row] = (_LINE_RE_ASCII if text.isascii() else _LINE_RE_M).findall(text)
        state = self._state
        n_header = body_start = 0
        if self._in_header:
            n_header, body_start = _scan_header(text, state)
            self._in_header = body_start >= len(text)
        n_lost = _scan_lost(text, state)
        n_lines = text.count("\n") + (1 if not text.endswith("\n") else 0)
        n_empty = len(_EMPTY_RE.findall(text)) + (1 if text.startswith("\n") else 0)
        # Every line is an event row, a LOST line, empty, a comment or unparsed. When the header's
        # comments account for all that is left, there is nothing more to look at (the usual case);
        # else '#' lines further down (a CPU's buffer started) and unparsed lines are looked for.
        unparsed = n_lines - n_empty - n_header - n_lost - len(rows)
        if unparsed != 0:
            unparsed -= _scan_comments(text, state, body_start)
            if unparsed != 0:  # rare: whitespace-only lines, or lines that are not events; look closer
                unparsed, examples = _unparsed_lines(text)
                self._examples.extend(examples[:MAX_UNPARSED_EXAMPLES - len(self._examples)])
        self._unparsed += unparsed
        if rows:
            if self._first is None:
                self._first = rows[0]
            if self.records < 1000 and not self._any_tgid:
                self._any_tgid = any(r[2] for r in rows[:1000 - self.records])
            self.records += len(rows)
            self._last_ts_text = rows[-1][5]
        return rows

    def info(self, *, trace_clock: str | None = None, source: str = "") -> TraceInfo:
        """What the trace said about itself, after :meth:`close`; UserInputError (naming
        ``source``) when it was no ftrace text."""
        first = self._first
        info = self._state.info(
            trace_clock=trace_clock,
            first_ts_text=first[5] if first else None,
            first_flags=first[4] if first else None,
            any_tgid=self._any_tgid,
            records=self.records,
            unparsed=self._unparsed,
            unparsed_examples=self._examples,
            first_ts=ts_from_text(first[5]) if first else None,
            last_ts=ts_from_text(self._last_ts_text) if self._last_ts_text is not None else None,
        )
        check_is_trace(info, source)
        return info


RowSink = Callable[[list[Row]], object]


def scan_trace(chunks: Iterable[str | bytes], sink: RowSink, *, trace_clock: str | None = None,
               source: str = "", block_chars: int = DEFAULT_BLOCK_CHARS) -> TraceInfo:
    """Parse the trace's pieces in order, handing each block's event rows (tuples of strings:
    comm, tid, tgid, cpu, flags, ts, event, payload; see :data:`LINE_PATTERN`) to ``sink``
    and keeping none; returns the :class:`TraceInfo`. Memory: one block of text and its rows,
    plus what ``sink`` keeps."""
    scanner = TraceScanner(block_chars=block_chars)
    for chunk in chunks:
        rows = scanner.feed(chunk)
        if rows:
            sink(rows)
    rows = scanner.close()
    if rows:
        sink(rows)
    return scanner.info(trace_clock=trace_clock, source=source)


def file_chunks(path: Path, chunk_bytes: int = DEFAULT_BLOCK_CHARS) -> Iterator[bytes]:
    """A file's bytes in pieces, for :func:`scan_trace` (the one function here that reads a
    file; opened without blocking, UserInputError unless a regular file; OSError as raised)."""
    with open_regular(path) as f:
        while chunk := f.read(chunk_bytes):
            yield chunk


def text_chunks(text: str, chunk_chars: int = DEFAULT_BLOCK_CHARS) -> Iterator[str]:
    """A text in pieces of ``chunk_chars`` (for :func:`scan_trace` over text already in memory)."""
    for start in range(0, len(text), max(1, chunk_chars)):
        yield text[start:start + chunk_chars]


def parse_trace(text: str, *, trace_clock: str | None = None, source: str = "",
                block_chars: int | None = None) -> ParsedTrace:
    """Parse ftrace text (the ``trace`` file, or ``trace_pipe`` output, or atrace's dump),
    keeping every event row (:class:`ParsedTrace`); :func:`scan_trace` keeps none.

    ``trace_clock``: the content of the tracefs ``trace_clock`` file at capture time (or a
    bare clock name) when known. ``source`` names the input in error messages. Raises
    UserInputError when the text holds no event line and no ftrace header at all.
    ``block_chars``: parse in blocks of about this many characters (default: the whole text
    at once).
    """
    rows: list[Row] = []
    chunks = [text] if block_chars is None else text_chunks(text, block_chars)
    info = scan_trace(chunks, rows.extend, trace_clock=trace_clock, source=source,
                      block_chars=len(text) + 1 if block_chars is None else block_chars)
    return ParsedTrace(info, rows)


def check_is_trace(info: TraceInfo, source: str) -> None:
    """UserInputError (naming ``source``) when the text has neither an ftrace header nor any
    event line."""
    if info.records == 0 and info.tracer is None:
        where = f"{source}: " if source else ""
        if info.unparsed_examples:
            first = info.unparsed_examples[0][:60]
            raise UserInputError(f"{where}not an ftrace text trace (no header, no event lines; first line {first!r})")
        raise UserInputError(f"{where}empty trace (no ftrace header, no event lines)")


def _line_at(text: str, start: int) -> str:
    end = text.find("\n", start)
    return text[start:] if end < 0 else text[start:end]


def _scan_header(text: str, state: HeaderState) -> tuple[int, int]:
    """The '#' lines at the top (blank lines among them allowed): how many, and where the
    first other line starts."""
    n = pos = 0
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos:end].rstrip("\r")
        if line.startswith("#"):
            state.comment(line)
            n += 1
        elif line.strip():
            break
        pos = end + 1
    return n, min(pos, len(text))


def _scan_comments(text: str, state: HeaderState, start: int = 0) -> int:
    """Every line starting with '#' from ``start`` (the start of a line) on."""
    n = 0
    pos = start if text.startswith("#", start) else text.find("\n#", start)
    while pos >= 0:
        line_start = pos if pos == start and text.startswith("#", start) else pos + 1
        state.comment(_line_at(text, line_start).rstrip("\r"))
        n += 1
        pos = text.find("\n#", line_start)
    return n


def _scan_lost(text: str, state: HeaderState) -> int:
    """``CPU:N [LOST …]`` lines (they start a line; a 5-character needle is found faster than
    a 2-character one)."""
    n = 0
    pos = 0 if text.startswith("CPU:") else text.find("\nCPU:")
    while pos >= 0:
        start = 0 if pos == 0 and text.startswith("CPU:") else pos + 1
        if state.lost_line(_line_at(text, start).rstrip("\r")):
            n += 1
        pos = text.find("\nCPU:", start)
    return n


def _unparsed_lines(text: str) -> tuple[int, list[str]]:
    """Count the lines that are not events, comments, LOST lines or blank, and keep the first
    few (a slow scan, only when the fast counts say there are such lines)."""
    out: list[str] = []
    n = 0
    line_re = re.compile(LINE_PATTERN)
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line.strip() or line.startswith("#") or LOST_RE.match(line) or line_re.match(line):
            continue
        n += 1
        if len(out) < MAX_UNPARSED_EXAMPLES:
            out.append(line)
    return n, out
