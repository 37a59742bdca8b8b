"""The kernel trace of the emulated benchmark_model on a traced phone: ATrace sections,
GPU irqs, and the binder and fastrpc round trips an accelerator delegate makes, written into
the phone's trace buffer as the real kernel would format them (see :class:`TraceWriter`)."""

from __future__ import annotations

import os
import re
import threading
from typing import Any

from perflab.emulator.benchmark_model.delays import delays_from_env, op_delays_s
from perflab.emulator.benchmark_model.delegates import DELEGATE_NODE
from perflab.emulator.benchmark_model.handover import Placement
from perflab.emulator.benchmark_model.model import OpInfo, builtin_ops, cost_shares
from perflab.zoo.tflite_graph import op_tensor_names

#: the emulated NN HAL service: its pid and the binder thread that serves the benchmark
NN_HAL_PID = 1190
NN_HAL_TID = 1204
NN_HAL_NODE = 40421  # the debug id of the HAL's IPreparedModel binder node
CDSP_CID = 3  # fastrpc's domain id of the compute DSP (a profile's npu.cid may say otherwise)
KGSL_CTX = 7  # the GPU delegate's kgsl context


def _profile_gpu(name: str) -> tuple[bool, str, int]:
    """(Qualcomm, the GPU's irq name, its irq number) of a profile. A Qualcomm phone (Adreno,
    kgsl; its irq ``kgsl-3d0``) has the dsp-kernel's fastrpc events and runs its NN HAL on the
    Hexagon DSP; Mali's kbase names its irqs after the GPU's device node (``28000000.mali``)."""
    if not name:
        return False, "kgsl-3d0", 300
    from perflab.emulator.profiles import load_profile

    gpu = load_profile(name).gpu
    if gpu.kind == "kgsl":
        return True, "kgsl-3d0", 300
    m = re.search(r"/([0-9a-f]+\.mali)(?:/|$)", gpu.busy_path)
    return False, m.group(1) if m else "13000000.mali", 282


class TraceWriter:
    """While the phone traces (``PERFLAB_EMU_TRACE_FILE`` set by the emulated shell), writes
    what a kernel trace of the real tool would hold: with ``debug.tflite.trace`` = 1 at start,
    ATrace sections ``Invoke`` and per operator ``<OP>@<node>/0`` (a delegate is one node
    ``TfLiteGpuDelegateV2@0/0``); and the kernel's events of an accelerator delegate's
    hand-overs at the moments the run stamped them while it spent them (:mod:`.handover`): the
    GPU's submission (``kgsl_issueibcmds``, Adreno) and completion irq (``kgsl-3d0`` on Adreno,
    the device node's name such as ``28000000.mali`` on Mali); NNAPI's binder call to the NN HAL
    service and its reply (``binder_transaction`` / ``binder_transaction_received``); a fastrpc
    round trip to the DSP (``fastrpc_transport_send`` / ``fastrpc_transport_response``, the
    HAL's for NNAPI, the tool's own for Hexagon) with, on a phone whose profile has an NPU, the
    DSP's irqs (it took the message; its answer). The kernel events are written whatever is
    enabled: the phone's tracefs keeps those its trace arrays had enabled at that moment.
    Operators' spans are their measured segments (the model is run op by op, :mod:`.segments`;
    an injected layer delay and the op's cost on its processor are spent inside it, so the trace
    measures them); only a model that cannot be cut has the invoke's time apportioned by op
    cost. Timestamps are the phone's boot clock."""

    def __init__(self, interp: Any, ops: list[OpInfo], place: Placement | None, profile: str = "") -> None:
        self.path = os.environ.get("PERFLAB_EMU_TRACE_FILE", "")
        self.offset_s = float(os.environ.get("PERFLAB_EMU_TRACE_OFFSET_S", "0") or 0)
        self.atrace = os.environ.get("PERFLAB_EMU_ATRACE") == "1"
        qualcomm, self.gpu_irq, self.gpu_irq_no = _profile_gpu(profile) if self.path else (False, "", 0)
        self.place = place
        applied = place.applied if place is not None else None
        self.binder = applied == "nnapi"
        # the dsp-kernel's events exist on Qualcomm kernels only
        self.fastrpc = qualcomm and applied in ("nnapi", "hexagon")
        self.kgsl = qualcomm and applied == "gpu"
        npu = place.npu if place is not None else None
        self.cid = npu.cid if npu is not None else CDSP_CID
        self.dsp_irq = (npu.irq_name, npu.irq) if npu is not None else ("", 0)
        self.pid, self.tid = os.getpid(), threading.get_native_id()
        self._tx = 700_000 + (self.pid % 1000) * 100  # binder transaction debug ids
        self._ctx = 0
        self._ts = 0
        builtin = builtin_ops(ops)
        self.op_names = [f"{o.name}@{o.index}/0" for o in builtin]
        self.node = f"{DELEGATE_NODE[applied]}@0/0" if applied in DELEGATE_NODE else None
        self.shares = cost_shares(builtin)
        names = op_tensor_names(interp)
        self.extra_s = op_delays_s([names.get(o.index, "") for o in builtin], delays_from_env())

    @property
    def active(self) -> bool:
        return bool(self.path)

    def _line(self, ts_s: float, text: str) -> str:
        return self._event(ts_s, "tracing_mark_write", text)

    def _event(self, ts_s: float, event: str, payload: str, *, comm: str = "benchmark_model",
               tid: int | None = None, cpu: int = 1, flags: str = ".....") -> str:
        who = f"{comm:>16}-{self.tid if tid is None else tid:<7}"  # the kernel's "%16s-%-7d"
        return f"{who} [{cpu:03d}] {flags}  {ts_s - self.offset_s:.6f}: {event}: {payload}\n"

    def _irq(self, ts_s: float, entry: bool, irq: int, name: str) -> str:
        if entry:
            return self._event(ts_s, "irq_handler_entry", f"irq={irq} name={name}", comm="<idle>", tid=0, cpu=0,
                               flags="d.h1.")
        return self._event(ts_s, "irq_handler_exit", f"irq={irq} ret=handled", comm="<idle>", tid=0, cpu=0,
                           flags="d.h1.")

    def _handover(self, moments: list[tuple[float, str]]) -> list[str]:
        """The kernel's events of one invoke's hand-overs (dsp-kernel's, binder's, kgsl's and
        the irq TP_printk formats), at the moments the run stamped."""
        hal = f"binder:{NN_HAL_PID}_2"
        caller = (hal, NN_HAL_TID, 2) if self.binder else ("benchmark_model", self.tid, 1)
        lines: list[str] = []
        self._tx += 2
        call, reply = self._tx, self._tx + 1
        self._ctx += 1
        ctx = (self._ctx % 4096) << 4 | 0x1
        smq = 0xFFFFFF8012340000 + (self._ctx % 256) * 0x100
        dsp_name, dsp_no = self.dsp_irq
        for ts, what in moments:
            if what == "binder_call":
                lines.append(self._event(ts, "binder_transaction",
                                         f"transaction={call} dest_node={NN_HAL_NODE} dest_proc={NN_HAL_PID} "
                                         f"dest_thread=0 reply=0 flags=0x10 code=0x2"))
            elif what == "binder_got":
                lines.append(self._event(ts, "binder_transaction_received", f"transaction={call}", comm=hal,
                                         tid=NN_HAL_TID, cpu=2))
            elif what == "binder_reply":
                lines.append(self._event(ts, "binder_transaction",
                                         f"transaction={reply} dest_node=0 dest_proc={self.pid} "
                                         f"dest_thread={self.tid} reply=1 flags=0x0 code=0x0", comm=hal,
                                         tid=NN_HAL_TID, cpu=2))
            elif what == "binder_reply_got":
                lines.append(self._event(ts, "binder_transaction_received", f"transaction={reply}"))
            elif what == "rpc_send" and self.fastrpc:
                lines.append(self._event(ts, "fastrpc_transport_send",
                                         f"to cid {self.cid}: smq_ctx 0x{smq:x}, ctx 0x{ctx:x}, handle 0x1, "
                                         f"sc 0x2020200, addr 0xb4000075a8e1c000, size 4096",
                                         comm=caller[0], tid=caller[1], cpu=caller[2]))
            elif what == "rpc_response" and self.fastrpc:
                lines.append(self._event(ts, "fastrpc_transport_response",
                                         f"from cid {self.cid}: ctx 0x{ctx:x}, retval 0x0, rsp_flags 0, "
                                         f"early_wake_time 0", comm="<idle>", tid=0, cpu=0, flags="d.h1."))
            elif what in ("dsp_irq", "dsp_irq_end") and dsp_name:
                lines.append(self._irq(ts, what == "dsp_irq", dsp_no, dsp_name))
            elif what == "gpu_submit" and self.kgsl:
                self._ts += 1
                lines.append(self._event(ts, "kgsl_issueibcmds",
                                         f"d_name=kgsl-3d0 ctx={KGSL_CTX} ib=0x0 numibs=1 ts={self._ts} flags=0x0 "
                                         f"result=0 type=0x0"))
            elif what in ("gpu_irq", "gpu_irq_end"):
                lines.append(self._irq(ts, what == "gpu_irq", self.gpu_irq_no, self.gpu_irq))
        return lines

    def invoke_whole(self, begin_s: float, invoke_end_s: float, end_s: float,
                     moments: list[tuple[float, str]] | None = None) -> None:
        """One invoke of a model that could not be cut into timed segments (several subgraphs):
        the interpreter's time apportioned by op cost, each op's injected delay inside it."""
        spans: list[tuple[float, float]] = []
        t = begin_s
        for share, extra in zip(self.shares, self.extra_s, strict=True):
            end = t + (invoke_end_s - begin_s) * share + extra
            spans.append((t, end))
            t = end
        self.invoke(spans, moments[0][0] if moments else begin_s, max(t, end_s), moments)

    def invoke(self, op_spans: list[tuple[float, float]], begin_s: float | None = None,
               end_s: float | None = None, moments: list[tuple[float, str]] | None = None) -> None:
        """One invoke: each op's measured (begin, end) on the host's monotonic clock (s), in
        execution order (:class:`.segments.SegmentedModel`), and the hand-overs' moments
        (:class:`.handover.Moments`, on the same clock); a delegate's node spans them all."""
        if not op_spans:
            return
        begin = op_spans[0][0] if begin_s is None else begin_s
        finish = op_spans[-1][1] if end_s is None else end_s
        marks = moments or []
        lines: list[str] = []
        if self.atrace:
            lines.append(self._line(begin, f"B|{self.pid}|Invoke"))
        if self.node is not None:
            node_b = next((ts for ts, w in marks if w == "node_begin"), op_spans[0][0])
            node_e = next((ts for ts, w in marks if w == "node_end"), op_spans[-1][1])
            if self.atrace:
                lines.append(self._line(node_b, f"B|{self.pid}|{self.node}"))
            lines += self._handover(marks)
            if self.atrace:
                lines.append(self._line(node_e, f"E|{self.pid}"))
        elif self.atrace:
            for name, (t, end) in zip(self.op_names, op_spans, strict=True):
                lines.append(self._line(t, f"B|{self.pid}|{name}"))
                lines.append(self._line(end, f"E|{self.pid}"))
        if self.atrace:
            lines.append(self._line(finish, f"E|{self.pid}"))
        if lines:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write("".join(lines))
