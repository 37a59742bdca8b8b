"""RPC events in kernel traces: binder (NNAPI → NN HAL service) and fastrpc (Hexagon / the
Qualcomm NN HAL → cDSP) round trips and the processor switch latency measured from them,
parsed from fixtures written from the real line formats; the merge of top-level ATrace lines
into an instance's trace; and the emulated tracefs's instance semantics (Linux's rules).

Formats (formats.md §6.3 and the dsp-kernel's fastrpc_trace.h TP_printk strings):
``binder_transaction: transaction=%d dest_node=%d dest_proc=%d dest_thread=%d reply=%d
flags=0x%x code=0x%x``, ``binder_transaction_received: transaction=%d``,
``fastrpc_transport_send: to cid %d: smq_ctx 0x%llx, ctx 0x%llx, handle 0x%x, sc 0x%x, addr
0x%llx, size %llu`` (``fastrpc_transport_send_ipcmsg`` adds ``type %d,`` and ``, priority
%u``), ``fastrpc_transport_response: from cid %d: ctx 0x%llx, retval 0x%x, rsp_flags %u,
early_wake_time %u``."""

from __future__ import annotations

from pathlib import Path

import pytest

from perflab.emulator.profiles import load_profile
from perflab.emulator.runtime import PhoneRuntime
from perflab.emulator.shell import IO, Shell
from perflab.tracing.attribution import attribute
from perflab.tracing.ftrace import parse_trace
from perflab.tracing.kernel_events import round_trips_per_inference
from perflab.tracing.phone_capture import merge_top_level_markers

HEADER_TGID = """\
# tracer: nop
#
# entries-in-buffer/entries-written: 24/24   #P:8
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     TGID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |        |   |||||     |         |
"""

# A Snapdragon phone running benchmark_model --use_nnapi=true: the NNAPI delegate's node calls
# the NN HAL over binder, the HAL's binder thread calls the cDSP over fastrpc. Inference 2 uses
# the newest dsp-kernel's send_ipcmsg event. Between them: a one-way binder call and a
# two-way call of other processes (not inside any inference).
QCOM_NNAPI = HEADER_TGID + """\
 benchmark_model-7311    (   7311) [004] .....  8120.500000: tracing_mark_write: B|7311|Invoke
 benchmark_model-7311    (   7311) [004] .....  8120.500010: tracing_mark_write: B|7311|TfLiteNnapiDelegate@0/0
 benchmark_model-7311    (   7311) [004] .....  8120.500055: binder_transaction: transaction=915001 dest_node=40421 \
dest_proc=1190 dest_thread=0 reply=0 flags=0x10 code=0x2
   binder:1190_2-1204    (   1190) [006] .....  8120.500073: binder_transaction_received: transaction=915001
   binder:1190_2-1204    (   1190) [006] .....  8120.500103: fastrpc_transport_send: to cid 3: smq_ctx \
0xffffff8012340100, ctx 0x11, handle 0x1, sc 0x2020200, addr 0xb4000075a8e1c000, size 4096
          <idle>-0       (-------) [000] d.h1.  8120.501000: irq_handler_entry: irq=11 name=arch_timer
          <idle>-0       (-------) [000] d.h1.  8120.501004: irq_handler_exit: irq=11 ret=handled
          <idle>-0       (-------) [000] d.h1.  8120.503103: fastrpc_transport_response: from cid 3: ctx 0x11, \
retval 0x0, rsp_flags 0, early_wake_time 0
   binder:1190_2-1204    (   1190) [006] .....  8120.503128: binder_transaction: transaction=915002 dest_node=0 \
dest_proc=7311 dest_thread=7311 reply=1 flags=0x0 code=0x0
 benchmark_model-7311    (   7311) [004] .....  8120.503146: binder_transaction_received: transaction=915002
 benchmark_model-7311    (   7311) [004] .....  8120.503181: tracing_mark_write: E|7311
 benchmark_model-7311    (   7311) [004] .....  8120.503190: tracing_mark_write: E|7311
  surfaceflinger-642     (    642) [002] .....  8120.505000: binder_transaction: transaction=915003 dest_node=1201 \
dest_proc=1500 dest_thread=0 reply=0 flags=0x11 code=0x5
   system_server-1500    (   1500) [003] .....  8120.505040: binder_transaction_received: transaction=915003
   system_server-1500    (   1500) [003] .....  8120.506000: binder_transaction: transaction=915004 dest_node=77 \
dest_proc=642 dest_thread=0 reply=0 flags=0x10 code=0x1
  surfaceflinger-650     (    642) [002] .....  8120.506020: binder_transaction_received: transaction=915004
  surfaceflinger-650     (    642) [002] .....  8120.506300: binder_transaction: transaction=915005 dest_node=0 \
dest_proc=1500 dest_thread=1500 reply=1 flags=0x0 code=0x0
   system_server-1500    (   1500) [003] .....  8120.506320: binder_transaction_received: transaction=915005
 benchmark_model-7311    (   7311) [004] .....  8120.510000: tracing_mark_write: B|7311|Invoke
 benchmark_model-7311    (   7311) [004] .....  8120.510008: tracing_mark_write: B|7311|TfLiteNnapiDelegate@0/0
 benchmark_model-7311    (   7311) [004] .....  8120.510053: binder_transaction: transaction=915006 dest_node=40421 \
dest_proc=1190 dest_thread=0 reply=0 flags=0x10 code=0x2
   binder:1190_2-1204    (   1190) [006] .....  8120.510071: binder_transaction_received: transaction=915006
   binder:1190_2-1204    (   1190) [006] .....  8120.510101: fastrpc_transport_send_ipcmsg: to cid 3: type 0, \
smq_ctx 0xffffff8012340200, ctx 0x21, handle 0x1, sc 0x2020200, addr 0xb4000075a8e1c000, size 4096, priority 0
          <idle>-0       (-------) [000] d.h1.  8120.512601: fastrpc_transport_response: from cid 3: ctx 0x21, \
retval 0x0, rsp_flags 0, early_wake_time 0
   binder:1190_2-1204    (   1190) [006] .....  8120.512626: binder_transaction: transaction=915007 dest_node=0 \
dest_proc=7311 dest_thread=7311 reply=1 flags=0x0 code=0x0
 benchmark_model-7311    (   7311) [004] .....  8120.512644: binder_transaction_received: transaction=915007
 benchmark_model-7311    (   7311) [004] .....  8120.512679: tracing_mark_write: E|7311
 benchmark_model-7311    (   7311) [004] .....  8120.512688: tracing_mark_write: E|7311
"""

# A Tensor phone (no fastrpc in its kernel), no tgid column: NNAPI's round trip is the binder
# call to the NN HAL and its reply; a CPU op after the delegate node.
TENSOR_NNAPI = """\
# tracer: nop
#
# entries-in-buffer/entries-written: 9/9   #P:8
#
 benchmark_model-5120  [005] .....  3301.200000: tracing_mark_write: B|5120|Invoke
 benchmark_model-5120  [005] .....  3301.200010: tracing_mark_write: B|5120|TfLiteNnapiDelegate@0/0
 benchmark_model-5120  [005] .....  3301.200055: binder_transaction: transaction=3301 dest_node=911 dest_proc=870 \
dest_thread=0 reply=0 flags=0x10 code=0x2
   binder:870_3-884    [001] .....  3301.200071: binder_transaction_received: transaction=3301
   binder:870_3-884    [001] .....  3301.204000: binder_transaction: transaction=3302 dest_node=0 dest_proc=5120 \
dest_thread=5120 reply=1 flags=0x0 code=0x0
 benchmark_model-5120  [005] .....  3301.204020: binder_transaction_received: transaction=3302
 benchmark_model-5120  [005] .....  3301.204050: tracing_mark_write: E|5120
 benchmark_model-5120  [005] .....  3301.204090: tracing_mark_write: B|5120|DEPTH_TO_SPACE@1/0
 benchmark_model-5120  [005] .....  3301.204500: tracing_mark_write: E|5120
 benchmark_model-5120  [005] .....  3301.204510: tracing_mark_write: E|5120
"""


def test_qualcomm_nnapi_binder_and_fastrpc_round_trips_and_switch_latency() -> None:
    trace = parse_trace(QCOM_NNAPI)
    assert trace.info.unparsed_lines == 0 and trace.info.has_tgid
    a = attribute(trace, us_per_tick=1.0)
    assert len(a.inferences) == 2
    # binder: the two NNAPI calls (3091 µs each) and system_server's two-way call; the one-way is none
    assert [(t.tid, t.peer, t.duration_us) for t in a.binder] == [
        (7311, "proc 1190", 3091), (1500, "proc 642", 320), (7311, "proc 1190", 2591)]
    assert a.binder_unanswered == 0
    # fastrpc: sent by the HAL's binder thread, answered in irq context; matched by ctx
    assert [(t.tid, t.peer, t.duration_us) for t in a.fastrpc] == [(1204, "cid 3", 3000), (1204, "cid 3", 2500)]
    assert a.fastrpc_unanswered == 0
    assert round_trips_per_inference(a.inferences, a.binder) == [1, 1]
    assert round_trips_per_inference(a.inferences, a.fastrpc) == [1, 1]
    # the hand-over to the DSP: node begin → fastrpc send (93 µs), response → node end (78 µs)
    assert [(s.op, s.via, s.irq_name, s.irqs, s.cpu_to_accel_us, s.accel_to_cpu_us, s.resumed)
            for s in a.switches] == [
        ("TfLiteNnapiDelegate@0/0", "fastrpc", "fastrpc cid 3", 1, 93, 78, "node end"),
        ("TfLiteNnapiDelegate@0/0", "fastrpc", "fastrpc cid 3", 1, 93, 78, "node end")]


def test_tensor_nnapi_switch_latency_from_binder_alone() -> None:
    a = attribute(parse_trace(TENSOR_NNAPI), us_per_tick=1.0)
    assert [(t.tid, t.peer, t.duration_us) for t in a.binder] == [(5120, "proc 870", 3965)]
    assert a.fastrpc == []
    # call 45 µs after the node began; the next CPU op began 70 µs after the reply arrived
    assert [(s.via, s.irq_name, s.cpu_to_accel_us, s.accel_to_cpu_us, s.resumed) for s in a.switches] == [
        ("binder", "binder proc 870", 45, 70, "next op")]


def _with_irqs(*irqs: tuple[str, str, str, int]) -> str:
    """QCOM_NNAPI with irqs (begin, end, name, number) inserted inside the first node's fastrpc
    call (send 8120.500103, response 8120.503103)."""
    lines = QCOM_NNAPI.splitlines(keepends=True)
    at = next(i for i, ln in enumerate(lines) if "8120.503103" in ln)
    extra = [f"          <idle>-0       (-------) [000] d.h1.  {b}: irq_handler_entry: irq={n} name={name}\n"
             f"          <idle>-0       (-------) [000] d.h1.  {e}: irq_handler_exit: irq={n} ret=handled\n"
             for b, e, name, n in irqs]
    return "".join([*lines[:at], *extra, *lines[at:]])


def test_an_accelerator_irq_inside_the_node_still_wins_over_rpc() -> None:
    for name, n, processor in (("kgsl-3d0", 300, "gpu"), ("ipcc_0", 45, "npu")):
        a = attribute(parse_trace(_with_irqs(("8120.503050", "8120.503060", name, n))), us_per_tick=1.0)
        # one irq and the fastrpc send: the irq path (via "submit") for the first node (a single
        # DSP irq is its answer: it does not bound the hand-over to the DSP)
        assert [(s.via, s.cpu_to_accel_us, s.accel_to_cpu_us, s.processor) for s in a.switches] == [
            ("submit", 93, 131, processor), ("fastrpc", 93, 78, "npu")]


def test_the_dsp_irqs_inside_the_fastrpc_call_measure_the_switch_at_the_dsp() -> None:
    """Two DSP irqs between the send (8120.500103) and the response (8120.503103): the first is
    the DSP taking the message, the last its answer. CPU→NPU send → first irq (297 µs), NPU→CPU
    answer → node end (131 µs), the NPU's own time between the irqs (2650 µs)."""
    a = attribute(parse_trace(_with_irqs(("8120.500400", "8120.500405", "ipcc_0", 45),
                                         ("8120.503050", "8120.503060", "ipcc_0", 45))), us_per_tick=1.0)
    assert [(s.via, s.irq_name, s.irqs, s.cpu_to_accel_us, s.accel_to_cpu_us, s.accel_us, s.processor)
            for s in a.switches] == [
        ("fastrpc+irq", "ipcc_0", 2, 297, 131, 2650, "npu"),
        ("fastrpc", "fastrpc cid 3", 1, 93, 78, None, "npu")]


def _line(comm_tid: str, ts: str, event: str, payload: str) -> str:
    return f"{comm_tid:>22} [001] .....  {ts}: {event}: {payload}"


def test_top_level_atrace_lines_merge_into_the_instance_trace_by_time() -> None:
    head = "# tracer: nop\n#\n# entries-in-buffer/entries-written: 5/5   #P:8\n#\n"
    inst = head + "\n".join([
        _line("sh-900", "100.000100", "tracing_mark_write", "perflab:capture:begin"),
        _line("sh-900", "100.000200", "tracing_mark_write", "perflab:segment:trace:begin"),
        _line("benchmark_model-77", "100.000400", "binder_transaction",
              "transaction=5 dest_node=9 dest_proc=80 dest_thread=0 reply=0 flags=0x10 code=0x2"),
        "CPU:1 [LOST 3 EVENTS]",
        _line("sh-900", "100.000900", "tracing_mark_write", "perflab:segment:trace:end"),
        _line("sh-900", "100.001000", "tracing_mark_write", "perflab:capture:end"),
    ]) + "\n"
    top = "# tracer: nop\n#\n# entries-in-buffer/entries-written: 4/7   #P:8\n#\n" + "\n".join([
        _line("benchmark_model-77", "100.000050", "tracing_mark_write", "B|77|Invoke"),  # before the capture
        _line("benchmark_model-77", "100.000300", "tracing_mark_write", "B|77|Invoke"),
        _line("kworker/0:1-12", "100.000350", "sched_switch",  # someone else's event in the top level
              "prev_comm=a prev_pid=1 prev_prio=120 prev_state=S ==> next_comm=b next_pid=2 next_prio=120"),
        _line("benchmark_model-77", "100.000800", "tracing_mark_write", "E|77"),
        _line("benchmark_model-77", "100.002000", "tracing_mark_write", "B|77|Invoke"),  # after it
    ]) + "\n"
    merged, taken = merge_top_level_markers(inst, top)
    assert taken == 2
    t = parse_trace(merged)
    assert [(r.ts, r.event, r.payload.split(" ")[0]) for r in t.records()] == [
        (100_000100, "tracing_mark_write", "perflab:capture:begin"),
        (100_000200, "tracing_mark_write", "perflab:segment:trace:begin"),
        (100_000300, "tracing_mark_write", "B|77|Invoke"),
        (100_000400, "binder_transaction", "transaction=5"),
        (100_000800, "tracing_mark_write", "E|77"),
        (100_000900, "tracing_mark_write", "perflab:segment:trace:end"),
        (100_001000, "tracing_mark_write", "perflab:capture:end")]
    assert t.info.lost_events == {1: 3}  # the instance's own loss line kept its place
    assert "# perflab: 2 trace_marker lines (ATrace) merged from the top-level buffer (its " \
           "entries-in-buffer/entries-written: 4/7)" in merged
    a = attribute(t, us_per_tick=1.0)
    assert [(i.begin_us, i.end_us) for i in a.inferences] == [(100_000300, 100_000800)]


# ---- the emulated tracefs: instances with Linux's semantics ---------------------------------

T = "/sys/kernel/tracing"


class Phone:
    def __init__(self, tmp: Path, profile: str) -> None:
        self.rt = PhoneRuntime.create(load_profile(profile), tmp)

    def sh(self, script: str, uid: int = 0) -> tuple[int, str, str]:
        out, err = bytearray(), bytearray()
        rc = Shell(self.rt, uid=uid).run(script, IO(out.extend, err.extend, lambda: b""))
        return rc, out.decode(), err.decode()

    def kernel_event(self, event: str, payload: str) -> None:
        """What the kernel fires now (as the emulated benchmark_model writes it)."""
        tr = self.rt.trace
        assert tr is not None
        tr.append(f" benchmark_model-77    [001] .....  {tr.boot_s():.6f}: {event}: {payload}\n")

    def events(self, path: str) -> list[str]:
        rc, out, err = self.sh(f"cat {path}")
        assert rc == 0, err
        return [ln.split(": ", 1)[1] for ln in out.splitlines() if ln and not ln.startswith("#")]


BINDER = "transaction=1 dest_node=2 dest_proc=3 dest_thread=0 reply=0 flags=0x10 code=0x1"


def test_instances_are_made_and_removed_by_root_only_inside_instances(tmp_path: Path) -> None:
    p = Phone(tmp_path, "pixel7")
    assert p.sh(f"ls {T}/instances") == (0, "", "")
    rc, _, err = p.sh(f"mkdir {T}/instances/perflab", uid=2000)
    assert rc == 1 and "Permission denied" in err
    assert p.sh(f"mkdir {T}/instances/perflab")[0] == 0
    rc, _, err = p.sh(f"mkdir {T}/instances/perflab")
    assert rc == 1 and "File exists" in err
    rc, _, err = p.sh(f"mkdir {T}/events/mine")
    assert rc == 1 and "Operation not permitted" in err
    assert p.sh(f"ls {T}/instances")[1].split() == ["perflab"]
    rc, out, _ = p.sh(f"ls {T}/instances/perflab")
    assert {"tracing_on", "buffer_size_kb", "trace_clock", "trace", "trace_marker", "events"} <= set(out.split())
    # a new instance: tracing on, every event off, the local clock; this kernel has no fastrpc or kgsl
    assert p.sh(f"cat {T}/instances/perflab/tracing_on")[1] == "1\n"
    assert p.sh(f"cat {T}/instances/perflab/events/binder/enable")[1] == "0\n"
    assert "[local]" in p.sh(f"cat {T}/instances/perflab/trace_clock")[1]
    assert set(p.sh(f"ls {T}/instances/perflab/events")[1].split()) == {"binder", "irq", "sched"}
    rc, _, err = p.sh(f"rmdir {T}/instances/perflab", uid=2000)
    assert rc == 1 and "Permission denied" in err
    rc, _, err = p.sh(f"rmdir {T}/events")
    assert rc == 1 and "Operation not permitted" in err
    assert p.sh(f"rmdir {T}/instances/perflab")[0] == 0
    assert p.sh(f"ls {T}/instances") == (0, "", "")
    rc, _, err = p.sh(f"cat {T}/instances/perflab/tracing_on")
    assert rc == 1 and "No such file" in err
    rc, _, err = p.sh(f"rmdir {T}/instances/perflab")
    assert rc == 1 and "No such file" in err
    assert p.sh(f"echo 2 > {T}/tracing_on; cat {T}/tracing_on")[1] == "1\n"  # any non-zero number is on
    assert p.sh(f"echo on > {T}/tracing_on")[0] == 1  # not a number: EINVAL, as the kernel answers
    assert p.sh(f"echo 2 > {T}/events/irq/enable")[0] == 1  # event enables take only 0 or 1


def test_each_trace_array_records_its_own_events_and_markers(tmp_path: Path) -> None:
    p = Phone(tmp_path, "galaxy_s23")
    i = f"{T}/instances/perflab"
    assert set(p.sh(f"ls {T}/events")[1].split()) == {"binder", "fastrpc", "irq", "kgsl", "sched"}
    p.sh(f"mkdir {i}; echo 1 > {i}/events/binder/enable; echo 0 > {i}/events/binder/binder_transaction_received/"
         f"enable; echo 1 > {T}/tracing_on; echo 1 > {T}/events/fastrpc/enable")
    assert p.sh(f"cat {i}/events/binder/enable")[1] == "X\n"  # mixed, as the kernel shows it
    p.kernel_event("binder_transaction", BINDER)
    p.kernel_event("binder_transaction_received", "transaction=1")
    p.kernel_event("fastrpc_transport_response",
                   "from cid 3: ctx 0x11, retval 0x0, rsp_flags 0, early_wake_time 0")
    p.sh(f"echo perflab-mark > {i}/trace_marker; echo 'B|77|Invoke' > {T}/trace_marker")
    assert p.events(f"{i}/trace") == [f"binder_transaction: {BINDER}", "tracing_mark_write: perflab-mark"]
    assert p.events(f"{T}/trace") == [
        "fastrpc_transport_response: from cid 3: ctx 0x11, retval 0x0, rsp_flags 0, early_wake_time 0",
        "tracing_mark_write: B|77|Invoke"]
    # tracing off in the instance: what fires now is not recorded there
    p.sh(f"echo 0 > {i}/tracing_on")
    p.kernel_event("binder_transaction", BINDER)
    p.sh(f"echo late > {i}/trace_marker")
    assert len(p.events(f"{i}/trace")) == 2
    # a clock change resets that buffer only; a write to trace clears it
    p.sh(f"echo boot > {i}/trace_clock")
    assert p.events(f"{i}/trace") == [] and len(p.events(f"{T}/trace")) == 2
    p.sh(f"echo > {T}/trace")
    assert p.events(f"{T}/trace") == []
    # this 5.10 kernel has no copy_trace_marker option
    rc, _, _ = p.sh(f"echo 1 > {i}/options/copy_trace_marker")
    assert rc != 0
    assert p.sh(f"rmdir {i}")[0] == 0


def test_copy_trace_marker_on_a_newer_kernel_and_a_reboot_clears_instances(tmp_path: Path) -> None:
    p = Phone(tmp_path, "pixel7")
    assert p.rt.trace is not None
    p.rt.trace.copy_trace_marker_supported = True  # as a Linux 6.16 kernel
    i = f"{T}/instances/perflab"
    p.sh(f"mkdir {i}")
    assert p.sh(f"cat {i}/options/copy_trace_marker")[1] == "0\n"
    p.sh(f"echo 'B|77|Invoke' > {T}/trace_marker")
    p.sh(f"echo 1 > {i}/options/copy_trace_marker")
    p.sh(f"echo 'E|77' > {T}/trace_marker")  # the top level is off: only the instance records it
    assert p.events(f"{i}/trace") == ["tracing_mark_write: E|77"]
    assert p.events(f"{T}/trace") == []
    p.rt.power_off()
    assert p.sh(f"ls {T}/instances") == (0, "", "")


@pytest.mark.parametrize("clock,stamp", [("counter", r"^\d+$"), ("uptime", r"^\d+$"), ("mono", r"^\d+\.\d{6}$")])
def test_clocks_print_as_the_kernel_prints_them(tmp_path: Path, clock: str, stamp: str) -> None:
    import re

    p = Phone(tmp_path, "pixel7")
    p.sh(f"echo {clock} > {T}/trace_clock; echo 1 > {T}/tracing_on; echo one > {T}/trace_marker")
    rc, out, _ = p.sh(f"cat {T}/trace")
    lines = [ln for ln in out.splitlines() if ln and not ln.startswith("#")]
    assert rc == 0 and len(lines) == 1
    assert re.match(stamp, lines[0].split("]", 1)[1].split()[1].rstrip(":"))
    assert parse_trace(out, trace_clock=clock).info.records == 1


def test_lines_no_trace_array_can_show_are_dropped_when_an_instance_goes(tmp_path: Path) -> None:
    p = Phone(tmp_path, "pixel7")
    tr = p.rt.trace
    assert tr is not None
    i = f"{T}/instances/perflab"
    p.sh(f"echo 1 > {T}/tracing_on; echo kept > {T}/trace_marker; echo 0 > {T}/tracing_on")
    p.sh(f"mkdir {i}; echo 1 > {i}/events/binder/enable")
    p.kernel_event("binder_transaction", BINDER)
    p.sh(f"echo dropped > {T}/trace_marker")  # the top level is off: nobody records it
    assert len(tr.buffer.read_text().splitlines()) == 3
    assert p.sh(f"rmdir {i}")[0] == 0
    assert p.events(f"{T}/trace") == ["tracing_mark_write: kept"]
    assert len(tr.buffer.read_text().splitlines()) == 1


def test_fastrpc_contexts_are_matched_per_channel() -> None:
    """The same ctx id on the aDSP (cid 0) and the cDSP (cid 3) at once: two round trips."""
    text = "# tracer: nop\n#\n" + "\n".join([
        _line("audio_hal-900", "50.000100", "fastrpc_transport_send", "to cid 0: smq_ctx 0xffffff8000001000, "
              "ctx 0x41, handle 0x3, sc 0x1010000, addr 0x0, size 64"),
        _line("benchmark_model-77", "50.000200", "fastrpc_transport_send", "to cid 3: smq_ctx 0xffffff8000002000, "
              "ctx 0x41, handle 0x1, sc 0x2020200, addr 0x0, size 4096"),
        _line("<idle>-0", "50.000700", "fastrpc_transport_response",
              "from cid 3: ctx 0x41, retval 0x0, rsp_flags 0, early_wake_time 0"),
        _line("<idle>-0", "50.000900", "fastrpc_transport_response",
              "from cid 0: ctx 0x41, retval 0x0, rsp_flags 0, early_wake_time 0"),
    ]) + "\n"
    a = attribute(parse_trace(text), us_per_tick=1.0)
    assert sorted((t.tid, t.peer, t.duration_us) for t in a.fastrpc) == [(77, "cid 3", 500), (900, "cid 0", 800)]
    assert a.fastrpc_unanswered == 0


def test_the_trace_summary_names_the_processor_and_its_own_time() -> None:
    from perflab.tracing.summary import render_summary, trace_summary

    doc = trace_summary(parse_trace(_with_irqs(("8120.500400", "8120.500405", "ipcc_0", 45),
                                               ("8120.503050", "8120.503060", "ipcc_0", 45))), source="t")
    sw = doc["switch_latency"]
    assert isinstance(sw, dict) and sw["processors"] == ["npu"] and sw["via"] == ["fastrpc", "fastrpc+irq"]
    assert isinstance(sw["accel_ms"], dict) and sw["accel_ms"]["median_ms"] == pytest.approx(2.65)
    text = render_summary(doc)
    assert "(to npu)" in text and "the accelerator's own time per node: median 2.650 ms" in text


def test_an_npu_over_fastrpc_is_refused_on_a_kernel_without_fastrpc(tmp_path: Path) -> None:
    """Only a Qualcomm kernel (kgsl) has the dsp-kernel's fastrpc events, so a profile that gives
    a Mali phone an NPU over fastrpc is bad input, named in one line; the shipped Snapdragon
    profile has one, the others none."""
    from perflab.core.paths import ConfigKind, config_file
    from perflab.errors import UserInputError

    assert load_profile("galaxy_s23").npu is not None
    assert load_profile("pixel7").npu is None and load_profile("redmi_note12pro").npu is None
    pixel = config_file(ConfigKind.EMULATOR_PROFILES, "pixel7")
    assert pixel is not None
    bad = tmp_path / "pixel_npu.yaml"
    bad.write_text(pixel.read_text(encoding="utf-8")
                   + "npu: {costs: {op_us: 10}, switch_to_us: 100, switch_back_us: 50}\n", encoding="utf-8")
    with pytest.raises(UserInputError, match="needs a Qualcomm kernel"):
        load_profile(bad)
