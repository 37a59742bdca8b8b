"""What attribution keeps of a trace, taken in one block of rows at a time
(:class:`TraceFacts`, a :func:`~perflab.tracing.ftrace.scan_trace` sink), so that a kernel
trace never has to be held whole. Its results are those of the per-record functions of
:mod:`perflab.tracing.sections` and :mod:`perflab.tracing.kernel_events` (tested against
:mod:`perflab.tracing.reference`).
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Callable, Collection
from itertools import compress, repeat
from operator import itemgetter
from typing import cast

import numpy as np

from perflab.tracing.ftrace import (
    ParsedTrace,
    Row,
    TraceInfo,
    TraceRecord,
    fields_cached,
    record_of,
    ts_from_text,
    typed_field_columns,
)
from perflab.tracing.kernel_events import (
    FASTRPC_RESP_RE,
    FASTRPC_SEND_EVENTS,
    FASTRPC_SEND_RE,
    SUBMIT_EVENTS,
    CpuBusy,
    IrqInterval,
    IrqSummary,
    RoundTrip,
    RunInterval,
)
from perflab.tracing.sections import (
    MARKER_EVENTS,
    MarkerReader,
    Markers,
)

_COMM, _TID, _CPU, _TS, _EVENT, _PAYLOAD = (itemgetter(i) for i in (0, 1, 3, 5, 6, 7))
_THREAD = itemgetter(0, 1, 2)
DEFAULT_BLOCK_ROWS = 1 << 15  # rows of a parsed trace handed to TraceFacts at a time
CACHE_ENTRIES = 1 << 14  # payloads remembered per kind (then forgotten and learnt again: memory stays bounded)
_PRINT_PREFIX = "tracing_mark_write: "
KEPT_EVENTS = frozenset({"cpu_frequency"})  # rare events kept as records (the export's counters)
_BINDER_EVENTS = frozenset({"binder_transaction", "binder_transaction_received"})
_IRQ_EVENTS = frozenset({"irq_handler_entry", "irq_handler_exit"})
_FASTRPC_EVENTS = frozenset({*FASTRPC_SEND_EVENTS, "fastrpc_transport_response"})
_SUBMIT_EVENTS = frozenset(SUBMIT_EVENTS)


def _select(rows: list[Row], wanted: frozenset[str]) -> list[Row]:
    return list(compress(rows, map(wanted.__contains__, map(_EVENT, rows))))


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


def _scaled_array(ticks: array[int], us_per_tick: float) -> np.ndarray:
    """Each ``tick * us_per_tick`` as Python computes it (the int made a float, then multiplied)."""
    return np.frombuffer(ticks, dtype=np.uint64) * us_per_tick


def _scaled(ticks: array[int], us_per_tick: float) -> list[float]:
    return _scaled_array(ticks, us_per_tick).tolist() if ticks else []  # type: ignore[no-any-return]


_INT64_DIGITS = 18  # a timestamp of at most this many digits fits an int64


def _tick_array(rows: list[Row]) -> np.ndarray | None:
    """The rows' timestamps as integers (``ts_from_text``), read by numpy from the joined text
    (the grammar admits only digits and one dot); None when one may not fit an int64."""
    texts = list(map(_TS, rows))
    if texts and max(map(len, texts)) <= _INT64_DIGITS:  # a dot is one of those characters at most
        ticks = np.fromstring(" ".join(texts).replace(".", ""), dtype=np.int64, sep=" ")
        if len(ticks) == len(texts):
            return ticks
    return None


def _ticks(rows: list[Row]) -> list[int]:
    ticks = _tick_array(rows)
    if ticks is None:  # one by one, Python's ints (of any size)
        return list(map(int, map(str.replace, map(_TS, rows), repeat("."), repeat(""))))
    return ticks.tolist()  # type: ignore[no-any-return]


class TraceFacts:
    """What the attribution needs of a trace, taken in one block of rows at a time (a
    :func:`~perflab.tracing.ftrace.scan_trace` sink) so that a trace never has to be held
    whole: event counts; thread names; which thread ids went with which comm and tgid;
    ATrace sections, counters and markers; irq intervals; every sched_switch as four numbers
    in compact arrays (whose threads count is known only at the end); binder and fastrpc
    round trips; submission times; and the records of :data:`KEPT_EVENTS`. Times are kept
    in trace units and turned into µs when its methods are given ``us_per_tick``: its
    results are those of the per-record functions of :mod:`perflab.tracing.sections` and
    :mod:`perflab.tracing.kernel_events` (tested against :mod:`perflab.tracing.reference`)."""

    def __init__(self) -> None:
        self._info: TraceInfo | None = None  # set once the whole trace was taken in
        self._counts: Counter[str] = Counter()
        self._names: dict[str, str] = {}  # tid as printed -> its last comm
        self._threads: set[tuple[str, str, str]] = set()  # (comm, tid, tgid) as printed
        self._marker_comms: set[tuple[int, str]] = set()
        self._switch_pids: dict[str, int] = {}  # payload -> its slot in the two pid tables, bounded
        self._switch_prev = array("q")  # prev_pid and next_pid of each payload seen, by slot
        self._switch_next = array("q")
        self._irq_fields: tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]] = ({}, {})  # entry, exit
        self._words: dict[str, str] = {}  # section names and binder peers, each kept once
        self._markers = MarkerReader(self._words)
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
        block = Counter(map(_EVENT, rows))
        self._counts.update(block)
        self._names.update(zip(map(_TID, rows), map(_COMM, rows), strict=True))
        self._threads.update(map(_THREAD, rows))
        markers: list[Row] = []
        switches: list[Row] = []
        irqs: list[Row] = []
        binder: list[Row] = []
        route: dict[str, Callable[[Row], None]] = dict.fromkeys(MARKER_EVENTS, markers.append)
        route["sched_switch"] = switches.append
        route.update(dict.fromkeys(_IRQ_EVENTS, irqs.append))
        route.update(dict.fromkeys(_BINDER_EVENTS, binder.append))
        take = route.get
        for row in rows:  # one pass puts the common events' rows in their kinds, in file order
            put = take(row[6])
            if put is not None:
                put(row)
        if markers:
            self._add_markers(markers)
        if switches:
            self._add_switches(switches)
        if irqs:
            self._add_irqs(irqs)
        if binder:
            self._add_binder(binder)
        present = block.keys()  # the rare ones
        if present & _FASTRPC_EVENTS:
            self._add_fastrpc(_select(rows, _FASTRPC_EVENTS))
        if present & _SUBMIT_EVENTS:
            self._submits.extend(_ticks(_select(rows, _SUBMIT_EVENTS)))
        if present & KEPT_EVENTS:
            self._kept.extend(map(record_of, _select(rows, KEPT_EVENTS)))

    def _add_markers(self, rows: list[Row]) -> None:
        """As :func:`parse_markers`, in trace units."""
        add = self._markers.add
        tids = list(map(_INTS.__getitem__, map(_TID, rows)))
        self._marker_comms.update(zip(tids, map(_COMM, rows), strict=True))
        for event, text, tid, ts in zip(map(_EVENT, rows), map(str.rstrip, map(_PAYLOAD, rows)), tids, _ticks(rows),
                                        strict=True):
            if event == "print" and text.startswith(_PRINT_PREFIX):
                text = text[len(_PRINT_PREFIX):]
            add(text, tid, ts)

    def _add_switches(self, rows: list[Row]) -> None:
        """prev_pid and next_pid of every switch, as its fields give them; a payload seen
        before (kernel traces repeat them: switches between the same threads) is looked up."""
        payloads = list(map(_PAYLOAD, rows))
        known, table_prev, table_next = self._switch_pids, self._switch_prev, self._switch_next
        if len(known) > CACHE_ENTRIES:
            known.clear()
            del table_prev[:], table_next[:]
        new = list(dict.fromkeys(payloads).keys() - known.keys())
        if new:
            cols = typed_field_columns("sched_switch", [p.rstrip() for p in new], ("prev_pid", "next_pid"))
            prevs, nexts = cast(tuple[tuple[str, ...], tuple[str, ...]], tuple(zip(*cols, strict=True)))
            try:  # the usual case: every pid a number, converted at C speed (None: TypeError)
                prev_pids, next_pids = list(map(int, prevs)), list(map(int, nexts))
            except (TypeError, ValueError):  # a pid missing or no number counts as none: cpu_busy stopped there
                prev_pids, next_pids = [_pid(t or "-1") for t in prevs], [_pid(t or "-1") for t in nexts]
            known.update(zip(new, range(len(table_prev), len(table_prev) + len(new)), strict=True))
            table_prev.extend(prev_pids)
            table_next.extend(next_pids)
        slots = np.fromiter(map(known.__getitem__, payloads), dtype=np.intp, count=len(payloads))
        self._sw_prev.frombytes(np.frombuffer(table_prev, dtype=np.int64)[slots].tobytes())
        self._sw_next.frombytes(np.frombuffer(table_next, dtype=np.int64)[slots].tobytes())
        self._sw_cpu.extend(map(_INTS.__getitem__, map(_CPU, rows)))
        ticks = _tick_array(rows)
        if ticks is None:
            self._sw_ts.extend(_ticks(rows))
        else:
            self._sw_ts.frombytes(ticks.astype(np.uint64).tobytes())

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
                m = FASTRPC_SEND_RE.search(payload)
                if m:
                    self._rpc_open[(m.group("cid"), m.group("ctx"))] = (int(r[1]), f"cid {m.group('cid')}",
                                                                        ts_from_text(r[5]))
            else:
                m = FASTRPC_RESP_RE.search(payload)
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
        return self._markers.markers(us_per_tick)

    def busy(self, tids: Collection[int], us_per_tick: float) -> CpuBusy:
        """As :func:`cpu_busy` over the kept switches. A wanted thread ran from a switch that
        put it on a CPU to the next switch on that CPU when that one switches it out: the
        pairs of consecutive switches per CPU are found with numpy, and only those runs are
        summed, in trace order (the same sums as the record by record loop)."""
        per_thread: dict[int, float] = {}
        per_cpu: dict[int, float] = {}
        intervals: tuple[RunInterval, ...] = ()
        if len(self._sw_cpu) > 1 and tids:
            cpu = np.frombuffer(self._sw_cpu, dtype=np.intc)
            nxt_all = np.frombuffer(self._sw_next, dtype=np.int64)
            prev_all = np.frombuffer(self._sw_prev, dtype=np.int64)
            wanted = np.fromiter(tids, dtype=np.int64, count=len(tids))
            ends: list[np.ndarray] = [np.zeros(0, dtype=np.intp)]
            begins: list[np.ndarray] = [np.zeros(0, dtype=np.intp)]
            for c in np.unique(cpu).tolist():  # one CPU at a time: small temporaries
                at_cpu = np.flatnonzero(cpu == c)  # its switches, in trace order
                before, at = at_cpu[:-1], at_cpu[1:]
                nxt = nxt_all[before]
                hit = np.isin(nxt, wanted) & (prev_all[at] == nxt)
                ends.append(at[hit])
                begins.append(before[hit])
            k_end = np.concatenate(ends)
            order = np.argsort(k_end, kind="stable")  # the runs in trace order (of their ends)
            k_end, k_begin = k_end[order], np.concatenate(begins)[order]
            ts = np.frombuffer(self._sw_ts, dtype=np.uint64)
            begin_us, end_us = ts[k_begin] * us_per_tick, ts[k_end] * us_per_tick  # as int * float in Python
            ran = end_us > begin_us
            k_end = k_end[ran]
            ints: dict[int, int] = {}  # one int object per thread id, not one per run
            run_tids = prev_all[k_end].tolist()
            run_tids = list(map(ints.setdefault, run_tids, run_tids))
            run_cpus = cpu[k_end].tolist()
            begin_list, end_list = begin_us[ran].tolist(), end_us[ran].tolist()
            for tid, c, d in zip(run_tids, run_cpus, (end_us[ran] - begin_us[ran]).tolist(), strict=True):
                per_thread[tid] = per_thread.get(tid, 0.0) + d  # summed in trace order, as run by run
                per_cpu[c] = per_cpu.get(c, 0.0) + d
            intervals = tuple(map(RunInterval, run_cpus, run_tids, begin_list, end_list))
        return CpuBusy(per_thread, per_cpu, intervals)

    def irq_intervals(self, us_per_tick: float) -> tuple[list[IrqInterval], int]:
        """As :func:`~perflab.tracing.kernel_events.irq_intervals`: the intervals and the
        entries or exits without a partner."""
        names = list(self._irq_names)
        col_irq, col_name, col_cpu, col_begin, col_end = self._irq_cols
        ints: dict[int, int] = {}  # one int object per irq number, not one per interval
        irq_numbers = col_irq.tolist()
        irqs = list(map(IrqInterval, map(ints.setdefault, irq_numbers, irq_numbers), map(names.__getitem__, col_name),
                        col_cpu.tolist(), _scaled(col_begin, us_per_tick), _scaled(col_end, us_per_tick)))
        return irqs, self._irq_unmatched + sum(len(s) for s in self._irq_open.values())

    def irq_summaries(self, us_per_tick: float) -> list[IrqSummary]:
        """As :func:`~perflab.tracing.kernel_events.irq_summary` of :meth:`irq_intervals`,
        from the interval columns: per name, the durations summed in interval order
        (``np.add.at`` adds one at a time, in order) and the longest (at least 0)."""
        col_irq, col_name, _, col_begin, col_end = self._irq_cols
        if not col_name:
            return []
        names = list(self._irq_names)
        by_name = np.frombuffer(col_name, dtype=np.intc)
        durations = _scaled_array(col_end, us_per_tick) - _scaled_array(col_begin, us_per_tick)
        totals = np.zeros(len(names))
        np.add.at(totals, by_name, durations)
        longest = np.zeros(len(names))
        np.maximum.at(longest, by_name, durations)
        counts = np.bincount(by_name, minlength=len(names)).tolist()
        irqs: dict[int, set[int]] = {}
        for irq, k in set(zip(col_irq, col_name, strict=True)):
            irqs.setdefault(k, set()).add(irq)
        out = [IrqSummary(name, tuple(sorted(irqs[k])), n, total, most)
               for k, (name, n, total, most) in enumerate(zip(names, counts, totals.tolist(), longest.tolist(),
                                                               strict=True)) if n]
        out.sort(key=lambda s: (-s.count, s.name))
        return out

    def binder_round_trips(self, us_per_tick: float) -> tuple[list[RoundTrip], int]:
        """As :func:`~perflab.tracing.kernel_events.binder_round_trips`."""
        upt = us_per_tick
        binder = [RoundTrip("binder", tid, peer, b * upt, e * upt) for tid, peer, b, e in self._binder]
        pending = {k: list(v) for k, v in self._pending.items()}
        for caller, sent in self._reply_to.values():  # reply sent, its receipt not traced
            if pending.get(caller):
                begin, peer = pending[caller].pop()
                binder.append(RoundTrip("binder", caller, peer, begin * upt, sent * upt))
        binder.sort(key=lambda t: t.begin_us)
        return binder, sum(len(v) for v in pending.values())

    def fastrpc_round_trips(self, us_per_tick: float) -> tuple[list[RoundTrip], int]:
        """As :func:`~perflab.tracing.kernel_events.fastrpc_round_trips`."""
        return ([RoundTrip("fastrpc", tid, peer, b * us_per_tick, e * us_per_tick) for tid, peer, b, e in self._rpc],
                len(self._rpc_open))

    def submits_us(self, us_per_tick: float) -> list[float]:
        return [ts * us_per_tick for ts in self._submits]

    def marker_comms_of(self, tids: Collection[int]) -> set[str]:
        """The comms of these threads on the lines that wrote markers."""
        return {c for t, c in self._marker_comms if t in tids}
