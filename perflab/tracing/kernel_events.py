"""What the kernel's own events say, from parsed ftrace records. Pure functions.

- **irqs**: irq_handler_entry/exit pairs per CPU → count and time by irq name.
- **CPU busy** time of given threads from sched_switch (only intervals whose switch-in and
  switch-out are both in the trace).
- **binder** round trips (transaction → reply received on the calling thread) and
  **fastrpc** round trips (transport_send → transport_response, matched by ctx).
- **Switch latency** between processors around each delegate node (inferences from
  :mod:`perflab.tracing.sections`): end of the previous CPU op → first accelerator irq in
  the node, and last accelerator irq → start of the next CPU op.

Times: records carry ``ts`` in trace units; every function here takes ``us_per_tick``
(:meth:`~perflab.tracing.ftrace.TraceInfo.us_per_tick`) and returns µs.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from perflab.tracing.ftrace import (
    TraceRecord,
)
from perflab.tracing.sections import Inference, OpInterval

# Accelerator irq names (device configs can name their own): Adreno (kgsl), Mali (kbase names
# its irqs after the device node, e.g. 13000000.mali), generic gpu; DSP/NPU mailboxes.
DEFAULT_GPU_IRQ_RE = re.compile(r"kgsl|adreno|mali|gpu", re.IGNORECASE)
DEFAULT_DSP_IRQ_RE = re.compile(r"ipcc|glink|adsprpc|fastrpc|cdsp|npu|apu", re.IGNORECASE)
FASTRPC_SEND_RE = re.compile(r"to cid (?P<cid>\d+):.*?\bctx (?P<ctx>0x[0-9a-f]+)")
FASTRPC_RESP_RE = re.compile(r"from cid (?P<cid>\d+): ctx (?P<ctx>0x[0-9a-f]+)")


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
            m = FASTRPC_SEND_RE.search(r.payload)
            if m:
                open_[(m.group("cid"), m.group("ctx"))] = (r.pid, f"cid {m.group('cid')}", r.ts * us_per_tick)
        elif r.event == "fastrpc_transport_response":
            m = FASTRPC_RESP_RE.search(r.payload)
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
    names the peer (``fastrpc cid 3``, ``binder proc 1190``) and ``irqs`` counts round trips.

    A node whose fastrpc round trip has two or more of the DSP's irqs inside it (an NPU reached
    over fastrpc that signals the application processor when it has taken the message, and
    again with its answer, after which the kernel prints ``fastrpc_transport_response``) is
    measured at the DSP itself, ``via="fastrpc+irq"``: ``cpu_to_accel_us`` from the first send
    to the first DSP irq (it ends before that call's response: the hand-over CPU→NPU),
    ``accel_to_cpu_us`` from the last DSP irq before the last response (the answer) to the next
    CPU op's begin (or the node's end), and ``accel_us`` (the NPU's own time, its layers)
    between those two irqs. A single DSP irq is the answer alone (the DSP said nothing when it
    took the message): that node is measured as below.

    ``processor`` names where the node's work went as far as the kernel shows: ``npu`` (a DSP's
    irqs or fastrpc), ``gpu`` (other accelerator irqs), ``hal`` (binder to the NN HAL only: its
    device is not in the trace). ``accel_us``: the accelerator's own time where the trace
    bounds it (``fastrpc+irq`` as above; ``submit``: the submission to the last irq); None
    otherwise."""

    inference: int
    op: str  # the delegate node
    irq_name: str
    irqs: int  # accelerator irqs inside the node
    via: str  # "fastrpc+irq", "submit", "irq", "fastrpc" or "binder"
    cpu_to_accel_us: float
    accel_to_cpu_us: float
    resumed: str  # "next op" or "node end"
    processor: str = ""  # npu | gpu | hal
    accel_us: float | None = None


def _between(sorted_ts: Sequence[float], lo: float, hi: float) -> tuple[int, int]:
    return bisect.bisect_left(sorted_ts, lo), bisect.bisect_right(sorted_ts, hi)


class _Trips:
    """Round trips sorted by begin, with what finds those inside an interval without a pass
    over them all: their begins (bisected) and, from each on, the earliest end among the
    rest (the scan stops where no later trip can end inside)."""

    def __init__(self, rpcs: Sequence[RoundTrip]) -> None:
        self.trips = sorted(rpcs, key=lambda t: t.begin_us)
        self.begins = [t.begin_us for t in self.trips]
        tail_min_end: list[float] = []
        low = math.inf
        for t in reversed(self.trips):
            low = min(low, t.end_us)
            tail_min_end.append(low)
        tail_min_end.reverse()
        self.tail_min_end = tail_min_end

    def inside(self, lo: float, hi: float) -> list[RoundTrip]:
        """The trips with ``lo <= begin`` and ``end <= hi``, in begin order."""
        trips, tail_min_end = self.trips, self.tail_min_end
        out: list[RoundTrip] = []
        for i in range(bisect.bisect_left(self.begins, lo), len(trips)):
            if tail_min_end[i] > hi:
                break
            if trips[i].end_us <= hi:
                out.append(trips[i])
        return out


def _rpc_inside(trips: _Trips, lo: float, hi: float) -> list[RoundTrip]:
    inside = trips.inside(lo, hi)
    for kind in ("fastrpc", "binder"):
        chosen = [t for t in inside if t.kind == kind]
        if chosen:
            return chosen
    return []


def _dsp_switch(inf: int, op: OpInterval, resume: float, resumed: str, trips: _Trips,
                dsp: Sequence[IrqInterval], dsp_begins: Sequence[float]) -> SwitchLatency | None:
    """The ``fastrpc+irq`` hand-over of one node (:class:`SwitchLatency`), or None when its
    fastrpc round trips have no DSP irq inside them."""
    calls = [t for t in _rpc_inside(trips, op.begin_us, op.end_us) if t.kind == "fastrpc"]
    if not calls:
        return None
    first, last_end = calls[0], max(t.end_us for t in calls)
    lo, hi = _between(dsp_begins, first.begin_us, last_end)
    inside = dsp[lo:hi]
    # the first irq is the DSP taking the message only when another (its answer's) follows
    if len(inside) < 2 or inside[0].end_us >= first.end_us:
        return None
    ack, answer = inside[0], inside[-1]
    return SwitchLatency(inf, op.name, ack.name, len(inside), "fastrpc+irq", ack.begin_us - first.begin_us,
                         resume - answer.begin_us, resumed, "npu", answer.begin_us - ack.begin_us)


def switch_latencies(infs: Sequence[Inference], irqs: Sequence[IrqInterval],
                     accel_irq_re: re.Pattern[str] = DEFAULT_GPU_IRQ_RE,
                     submits_us: Sequence[float] = (), rpcs: Sequence[RoundTrip] = (),
                     dsp_irq_re: re.Pattern[str] = DEFAULT_DSP_IRQ_RE) -> list[SwitchLatency]:
    """One :class:`SwitchLatency` per delegate node that a fastrpc call answered by the DSP's
    irqs, accelerator irqs — or, without those, RPC round trips (``rpcs``) — fall inside."""
    names = {iv.name for iv in irqs}
    is_accel = {name: accel_irq_re.search(name) is not None for name in names}  # once a name
    is_dsp = {name: dsp_irq_re.search(name) is not None for name in names}
    accel = sorted((iv for iv in irqs if is_accel[iv.name]), key=lambda iv: iv.begin_us)
    begins = [iv.begin_us for iv in accel]
    dsp = sorted((iv for iv in irqs if is_dsp[iv.name]), key=lambda iv: iv.begin_us)
    dsp_begins = [iv.begin_us for iv in dsp]
    submits = sorted(submits_us)
    trips = _Trips(rpcs)
    out: list[SwitchLatency] = []
    for inf in infs:
        top = sorted((op for op in inf.ops if op.depth == 1), key=lambda op: op.begin_us)
        for k, op in enumerate(top):
            if not op.delegate:
                continue
            prev_cpu_end = next((p.end_us for p in reversed(top[:k]) if not p.delegate), op.begin_us)
            nxt = next((p for p in top[k + 1:] if not p.delegate), None)
            resume, resumed = (nxt.begin_us, "next op") if nxt is not None else (op.end_us, "node end")
            at_dsp = _dsp_switch(inf.index, op, resume, resumed, trips, dsp, dsp_begins) \
                if dsp and trips.trips else None
            if at_dsp is not None:
                out.append(at_dsp)
                continue
            lo, hi = _between(begins, op.begin_us, op.end_us)
            inside = accel[lo:hi]
            if inside:
                s_lo, s_hi = _between(submits, op.begin_us, op.end_us)
                start, via = (submits[s_lo], "submit") if s_hi > s_lo else (inside[0].begin_us, "irq")
                out.append(SwitchLatency(inf.index, op.name, inside[0].name, len(inside), via,
                                         start - prev_cpu_end, resume - inside[-1].begin_us, resumed,
                                         "npu" if is_dsp[inside[0].name] else "gpu",
                                         inside[-1].begin_us - start if via == "submit" else None))
                continue
            rpc = _rpc_inside(trips, op.begin_us, op.end_us)
            if rpc:
                out.append(SwitchLatency(inf.index, op.name, f"{rpc[0].kind} {rpc[0].peer}", len(rpc), rpc[0].kind,
                                         rpc[0].begin_us - prev_cpu_end, resume - max(t.end_us for t in rpc),
                                         resumed, "npu" if rpc[0].kind == "fastrpc" else "hal"))
    return out


def round_trips_per_inference(infs: Sequence[Inference], trips: Sequence[RoundTrip]) -> list[int]:
    """How many of ``trips`` lie inside each inference (by index order of ``infs``)."""
    return [sum(1 for t in trips if inf.begin_us <= t.begin_us and t.end_us <= inf.end_us) for inf in infs]
