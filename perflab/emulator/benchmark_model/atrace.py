"""The kernel trace of the emulated benchmark_model on a traced phone: ATrace sections,
GPU irqs, and the binder and fastrpc round trips an accelerator delegate makes, written into
the phone's trace buffer as the real kernel would format them (see :class:`TraceWriter`)."""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from typing import Any

from perflab.emulator.benchmark_model.delays import delays_from_env, op_delays_s
from perflab.emulator.benchmark_model.delegates import DELEGATE_NODE
from perflab.emulator.benchmark_model.model import OpInfo, builtin_ops, cost_shares
from perflab.zoo.tflite_graph import op_tensor_names


@dataclass(frozen=True)
class RpcTiming:
    """How long the hand-overs inside an accelerator delegate's node take in the emulated
    kernel trace (µs): the ground truth a test expects the attribution to recover.

    NNAPI: the delegate prepares the request (``nnapi_prep_us``), calls the NN HAL service over
    binder (``binder_wake_us`` until its binder thread has it); on a Qualcomm phone the HAL
    hands the work to the DSP over fastrpc after ``hal_to_dsp_us`` and replies ``dsp_to_hal_us``
    after the DSP's response; the reply reaches the caller ``binder_wake_us`` later and the node
    ends ``return_us`` after that. Hexagon: the delegate calls the cDSP over fastrpc directly
    (``hexagon_prep_us`` after the node's begin; the node ends ``hexagon_return_us`` after the
    response)."""

    nnapi_prep_us: float = 45.0
    binder_wake_us: float = 18.0
    hal_to_dsp_us: float = 30.0
    dsp_to_hal_us: float = 25.0
    return_us: float = 35.0
    hexagon_prep_us: float = 40.0
    hexagon_return_us: float = 30.0

    def nnapi_fixed_us(self, dsp: bool) -> float:
        return self.nnapi_prep_us + 2 * self.binder_wake_us + self.return_us + (
            self.hal_to_dsp_us + self.dsp_to_hal_us if dsp else 0.0)


RPC_TIMING = RpcTiming()
#: the emulated NN HAL service: its pid and the binder thread that serves the benchmark
NN_HAL_PID = 1190
NN_HAL_TID = 1204
NN_HAL_NODE = 40421  # the debug id of the HAL's IPreparedModel binder node
CDSP_CID = 3  # fastrpc's domain id of the compute DSP


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
    ``TfLiteGpuDelegateV2@0/0``); with irq events on and the GPU delegate, a GPU irq at the
    end of each GPU window (``kgsl-3d0`` on Adreno, the device node's name such as
    ``28000000.mali`` on Mali); with the NNAPI delegate, the binder call to the NN HAL
    service and its reply (``binder_transaction`` / ``binder_transaction_received``), and on a
    Qualcomm phone the HAL's fastrpc round trip to the cDSP inside it; with the Hexagon
    delegate, the tool's own fastrpc round trip (``fastrpc_transport_send`` /
    ``fastrpc_transport_response``). Hand-over times are :data:`RPC_TIMING`. The kernel events
    are written whatever is enabled: the phone's tracefs keeps those its trace arrays had
    enabled at that moment. Operators' spans are their measured segments (the model is run op by
    op, :mod:`.segments`; an injected layer delay is spent inside its ops, so the trace measures
    it); only a model that cannot be cut has the invoke's time apportioned by op cost.
    Timestamps are the phone's boot clock."""

    def __init__(self, interp: Any, ops: list[OpInfo], applied: str | None, profile: str = "") -> None:
        self.path = os.environ.get("PERFLAB_EMU_TRACE_FILE", "")
        self.offset_s = float(os.environ.get("PERFLAB_EMU_TRACE_OFFSET_S", "0") or 0)
        self.atrace = os.environ.get("PERFLAB_EMU_ATRACE") == "1"
        self.irq = os.environ.get("PERFLAB_EMU_TRACE_IRQ") == "1" and applied == "gpu"
        qualcomm, self.gpu_irq, self.gpu_irq_no = _profile_gpu(profile) if self.path else (False, "", 0)
        self.binder = bool(self.path) and applied == "nnapi"
        # the dsp-kernel's events exist on Qualcomm kernels only
        self.fastrpc = qualcomm and applied in ("nnapi", "hexagon")
        self.applied = applied
        self.pid, self.tid = os.getpid(), threading.get_native_id()
        self._tx = 700_000 + (self.pid % 1000) * 100  # binder transaction debug ids
        self._ctx = 0
        builtin = builtin_ops(ops)
        self.op_names = [f"{o.name}@{o.index}/0" for o in builtin]
        self.node = f"{DELEGATE_NODE[applied]}@0/0" if applied in DELEGATE_NODE else None
        self.shares = cost_shares(builtin)
        names = op_tensor_names(interp)
        self.extra_s = op_delays_s([names.get(o.index, "") for o in builtin], delays_from_env())

    @property
    def active(self) -> bool:
        return bool(self.path) and (self.atrace or self.irq or self.binder or self.fastrpc)

    def _line(self, ts_s: float, text: str) -> str:
        return self._event(ts_s, "tracing_mark_write", text)

    def _event(self, ts_s: float, event: str, payload: str, *, comm: str = "benchmark_model",
               tid: int | None = None, cpu: int = 1, flags: str = ".....") -> str:
        who = f"{comm:>16}-{self.tid if tid is None else tid:<7}"  # the kernel's "%16s-%-7d"
        return f"{who} [{cpu:03d}] {flags}  {ts_s - self.offset_s:.6f}: {event}: {payload}\n"

    def _fastrpc(self, send_s: float, resp_s: float, *, comm: str, tid: int, cpu: int) -> list[str]:
        """One fastrpc round trip to the cDSP (dsp-kernel's TP_printk formats)."""
        self._ctx += 1
        ctx = (self._ctx % 4096) << 4 | 0x1
        smq = 0xFFFFFF8012340000 + (self._ctx % 256) * 0x100
        send = (f"to cid {CDSP_CID}: smq_ctx 0x{smq:x}, ctx 0x{ctx:x}, handle 0x1, sc 0x2020200, "
                f"addr 0xb4000075a8e1c000, size 4096")
        resp = f"from cid {CDSP_CID}: ctx 0x{ctx:x}, retval 0x0, rsp_flags 0, early_wake_time 0"
        return [self._event(send_s, "fastrpc_transport_send", send, comm=comm, tid=tid, cpu=cpu),
                self._event(resp_s, "fastrpc_transport_response", resp, comm="<idle>", tid=0, cpu=0, flags="d.h1.")]

    def _rpc(self, begin_s: float, end_s: float) -> list[str]:
        """The kernel's RPC events inside one delegate node [begin_s, end_s]."""
        t = RPC_TIMING
        if self.applied == "hexagon":
            if not self.fastrpc:
                return []
            scale = min(1.0, 0.8 * (end_s - begin_s) / ((t.hexagon_prep_us + t.hexagon_return_us) * 1e-6))
            return self._fastrpc(begin_s + t.hexagon_prep_us * 1e-6 * scale,
                                 end_s - t.hexagon_return_us * 1e-6 * scale, comm="benchmark_model", tid=self.tid,
                                 cpu=1)
        if not self.binder:
            return []
        scale = min(1.0, 0.8 * (end_s - begin_s) / (t.nnapi_fixed_us(self.fastrpc) * 1e-6))
        us = 1e-6 * scale
        call_s = begin_s + t.nnapi_prep_us * us
        got_s = call_s + t.binder_wake_us * us
        reply_got_s = end_s - t.return_us * us
        reply_s = reply_got_s - t.binder_wake_us * us
        hal = f"binder:{NN_HAL_PID}_2"
        self._tx += 2
        call, reply = self._tx, self._tx + 1
        lines = [
            self._event(call_s, "binder_transaction",
                        f"transaction={call} dest_node={NN_HAL_NODE} dest_proc={NN_HAL_PID} dest_thread=0 "
                        f"reply=0 flags=0x10 code=0x2"),
            self._event(got_s, "binder_transaction_received", f"transaction={call}", comm=hal, tid=NN_HAL_TID,
                        cpu=2),
        ]
        if self.fastrpc:
            lines += self._fastrpc(got_s + t.hal_to_dsp_us * us, reply_s - t.dsp_to_hal_us * us, comm=hal,
                                   tid=NN_HAL_TID, cpu=2)
        lines += [
            self._event(reply_s, "binder_transaction",
                        f"transaction={reply} dest_node=0 dest_proc={self.pid} dest_thread={self.tid} reply=1 "
                        f"flags=0x0 code=0x0", comm=hal, tid=NN_HAL_TID, cpu=2),
            self._event(reply_got_s, "binder_transaction_received", f"transaction={reply}"),
        ]
        return lines

    def invoke_whole(self, begin_s: float, invoke_end_s: float, end_s: float) -> None:
        """One invoke of a model that could not be cut into timed segments (several subgraphs):
        the interpreter's time apportioned by op cost, each op's injected delay inside it."""
        spans: list[tuple[float, float]] = []
        t = begin_s
        for share, extra in zip(self.shares, self.extra_s, strict=True):
            end = t + (invoke_end_s - begin_s) * share + extra
            spans.append((t, end))
            t = end
        self.invoke(spans, begin_s, max(t, end_s))  # (begin_s: the invoke's start, the first op's)

    def invoke(self, op_spans: list[tuple[float, float]], begin_s: float | None = None,
               end_s: float | None = None) -> None:
        """One invoke: each op's measured (begin, end) on the host's monotonic clock (s), in
        execution order (:class:`.segments.SegmentedModel`); a delegate's node spans them all."""
        if not op_spans:
            return
        begin = op_spans[0][0] if begin_s is None else begin_s
        finish = op_spans[-1][1] if end_s is None else end_s
        if self.node is not None:
            sections = [(self.node, op_spans[0][0], op_spans[-1][1])]
        else:
            sections = [(name, b, e) for name, (b, e) in zip(self.op_names, op_spans, strict=True)]
        lines: list[str] = []
        if self.atrace:
            lines.append(self._line(begin, f"B|{self.pid}|Invoke"))
        for name, t, end in sections:
            if self.atrace:
                lines.append(self._line(t, f"B|{self.pid}|{name}"))
            if self.irq:
                off = self.offset_s
                irq_t = max(t, end - 60e-6)
                lines.append(f"          <idle>-0       [000] d.h1.  {irq_t - off:.6f}: irq_handler_entry: "
                             f"irq={self.gpu_irq_no} name={self.gpu_irq}\n")
                lines.append(f"          <idle>-0       [000] d.h1.  {irq_t + 10e-6 - off:.6f}: irq_handler_exit: "
                             f"irq={self.gpu_irq_no} ret=handled\n")
            lines += self._rpc(t, end)
            if self.atrace:
                lines.append(self._line(end, f"E|{self.pid}"))
        if self.atrace:
            lines.append(self._line(finish, f"E|{self.pid}"))
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write("".join(lines))
