"""Seeded synthetic ftrace text shaped like a phone running benchmark_model with
``debug.tflite.trace=1``: ATrace sections (Invoke, per-operator, a GPU delegate node),
kgsl irqs inside the GPU windows, timer irqs, sched_switch/sched_wakeup traffic, binder
transactions, comm names with spaces and dashes. For the parser benchmark and for tests
that need known ground truth (every inference's window is returned beside the text).
Pure: the same arguments give the same text.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

BENCH_PID = 4321
WORKER_TIDS = (4330, 4331)
OPS = ("CONV_2D@0/0", "CONV_2D@1/0", "TfLiteGpuDelegateV2@2/0", "DEPTH_TO_SPACE@3/0")
GPU_OP = "TfLiteGpuDelegateV2@2/0"
_OTHERS = (
    ("surfaceflinger", 812, 812),
    ("Jit thread pool", 2211, 2200),
    ("gpu-worker-7", 2230, 2200),
    ("binder:2200_3", 2240, 2200),
    ("kworker/u16:3", 155, 155),
    ("HwBinder:911_1", 915, 911),
)


@dataclass
class SyntheticTrace:
    text: str
    inferences_us: list[tuple[int, int]] = field(default_factory=list)  # (begin, end) ts in µs
    op_durations_us: dict[str, list[int]] = field(default_factory=dict)
    gpu_irqs: int = 0


class _Writer:
    def __init__(self, *, tgid: bool, flags_width: int) -> None:
        self.lines: list[str] = []
        self.size = 0
        self.records = 0
        self.tgid = tgid
        self.flags_width = flags_width

    def emit(self, ts_us: int, cpu: int, comm: str, tid: int, tgid: int, flags: str, event: str, payload: str) -> None:
        flags = flags[: self.flags_width].ljust(self.flags_width, ".")
        tg = f" ({tgid:>7})" if self.tgid else ""
        line = (f"{comm:>16}-{tid:<7}{tg} [{cpu:03d}] {flags} {ts_us // 1_000_000:5d}.{ts_us % 1_000_000:06d}: "
                f"{event}: {payload}")
        self.lines.append(line)
        self.size += len(line) + 1
        self.records += 1


def synthetic_trace(target_bytes: int, *, seed: int = 0, tgid: bool = True, flags_width: int = 5,
                    start_s: int = 1200, lost_every: int = 0) -> SyntheticTrace:
    """About ``target_bytes`` of trace text (whole inferences, so slightly more).
    ``lost_every`` > 0 inserts a ``CPU:N [LOST M EVENTS]`` line every that many inferences."""
    rng = random.Random(seed)
    w = _Writer(tgid=tgid, flags_width=flags_width)
    out = SyntheticTrace(text="", op_durations_us={op: [] for op in OPS})
    ts = start_s * 1_000_000 + rng.randrange(1_000_000)
    bench_cpu = 4
    n = 0
    binder_txn = 90_000
    while w.size < target_bytes:
        n += 1
        # background: a few switches, wakeups and timer ticks between inferences
        for _ in range(rng.randrange(3, 8)):
            comm, tid, tg = rng.choice(_OTHERS)
            cpu = rng.randrange(0, 4)
            ts += rng.randrange(20, 400)
            w.emit(ts, cpu, "<idle>", 0, 0, "d..2.", "sched_switch",
                   f"prev_comm=swapper/{cpu} prev_pid=0 prev_prio=120 prev_state=R ==> "
                   f"next_comm={comm} next_pid={tid} next_prio=120")
            ts += rng.randrange(5, 60)
            w.emit(ts, cpu, comm, tid, tg, "d.h1.", "irq_handler_entry", "irq=11 name=arch_timer")
            ts += rng.randrange(2, 9)
            w.emit(ts, cpu, comm, tid, tg, "d.h1.", "irq_handler_exit", "irq=11 ret=handled")
            ts += rng.randrange(5, 80)
            w.emit(ts, cpu, comm, tid, tg, "d..3.", "sched_wakeup",
                   f"comm=benchmark_model pid={BENCH_PID} prio=120 target_cpu={bench_cpu:03d}")
            ts += rng.randrange(5, 200)
            state = rng.choice(("S", "R+", "D", "D|K"))
            w.emit(ts, cpu, comm, tid, tg, "d..2.", "sched_switch",
                   f"prev_comm={comm} prev_pid={tid} prev_prio=120 prev_state={state} ==> "
                   f"next_comm=swapper/{cpu} next_pid=0 next_prio=120")
        if rng.random() < 0.3:  # a binder round trip from the benchmark to a service
            binder_txn += 7
            ts += 15
            w.emit(ts, bench_cpu, "benchmark_model", BENCH_PID, BENCH_PID, "....1", "binder_transaction",
                   f"transaction={binder_txn} dest_node={binder_txn - 5} dest_proc=2200 dest_thread=0 "
                   f"reply=0 flags=0x10 code=0x3")
            ts += rng.randrange(20, 90)
            w.emit(ts, 1, "binder:2200_3", 2240, 2200, "....1", "binder_transaction_received",
                   f"transaction={binder_txn}")
            ts += rng.randrange(30, 300)
            w.emit(ts, 1, "binder:2200_3", 2240, 2200, "....1", "binder_transaction",
                   f"transaction={binder_txn + 2} dest_node=0 dest_proc={BENCH_PID} dest_thread={BENCH_PID} "
                   f"reply=1 flags=0x0 code=0x0")
            ts += rng.randrange(20, 90)
            w.emit(ts, bench_cpu, "benchmark_model", BENCH_PID, BENCH_PID, "....1",
                   "binder_transaction_received", f"transaction={binder_txn + 2}")
        if lost_every and n % lost_every == 0:
            w.lines.append(f"CPU:{rng.randrange(4)} [LOST {rng.randrange(1, 500)} EVENTS]")
        # one inference
        ts += rng.randrange(50, 500)
        begin = ts
        w.emit(ts, bench_cpu, "benchmark_model", BENCH_PID, BENCH_PID, "....1", "tracing_mark_write",
               f"B|{BENCH_PID}|Invoke")
        for op in OPS:
            ts += rng.randrange(2, 8)
            op_begin = ts
            w.emit(ts, bench_cpu, "benchmark_model", BENCH_PID, BENCH_PID, "....1", "tracing_mark_write",
                   f"B|{BENCH_PID}|{op}")
            if op == GPU_OP:
                for _ in range(rng.randrange(1, 4)):
                    ts += rng.randrange(300, 1500)
                    w.emit(ts, 0, "<idle>", 0, 0, "d.h1.", "irq_handler_entry", "irq=293 name=kgsl-3d0")
                    ts += rng.randrange(3, 15)
                    w.emit(ts, 0, "<idle>", 0, 0, "d.h1.", "irq_handler_exit", "irq=293 ret=handled")
                    out.gpu_irqs += 1
                ts += rng.randrange(20, 80)
            else:
                for tid in WORKER_TIDS:  # XNNPACK workers wake, run, sleep
                    ts += rng.randrange(3, 20)
                    cpu = 5 + WORKER_TIDS.index(tid)
                    w.emit(ts, cpu, "<idle>", 0, 0, "d..2.", "sched_switch",
                           f"prev_comm=swapper/{cpu} prev_pid=0 prev_prio=120 prev_state=R ==> "
                           f"next_comm=benchmark_model next_pid={tid} next_prio=120")
                ts += rng.randrange(400, 3000)
                for tid in WORKER_TIDS:
                    ts += rng.randrange(3, 20)
                    cpu = 5 + WORKER_TIDS.index(tid)
                    w.emit(ts, cpu, "benchmark_model", tid, BENCH_PID, "d..2.", "sched_switch",
                           f"prev_comm=benchmark_model prev_pid={tid} prev_prio=120 prev_state=S ==> "
                           f"next_comm=swapper/{cpu} next_pid=0 next_prio=120")
            ts += rng.randrange(2, 8)
            w.emit(ts, bench_cpu, "benchmark_model", BENCH_PID, BENCH_PID, "....1", "tracing_mark_write",
                   f"E|{BENCH_PID}")
            out.op_durations_us[op].append(ts - op_begin)
        ts += rng.randrange(2, 8)
        w.emit(ts, bench_cpu, "benchmark_model", BENCH_PID, BENCH_PID, "....1", "tracing_mark_write",
               f"E|{BENCH_PID}")
        out.inferences_us.append((begin, ts))
    out.text = _header(tgid=tgid, flags_width=flags_width, records=w.records) + "\n".join(w.lines) + "\n"
    return out


def _header(*, tgid: bool, flags_width: int, records: int) -> str:
    bars = "|" * flags_width
    tg = "    TGID   " if tgid else ""
    return (
        f"# tracer: nop\n#\n# entries-in-buffer/entries-written: {records}/{records}   #P:8\n#\n"
        f"#           TASK-PID  {tg}   CPU#  {bars}  TIMESTAMP  FUNCTION\n"
        f"#              | |    {'    |      ' if tgid else ''}   |   {bars}     |         |\n"
    )
