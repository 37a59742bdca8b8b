"""Probe: does an op that runs right after a spun delay run slower, and only when the thread was
switched out or moved to another core during the spin?

In-process, the emulated benchmark_model's own segments (espcn ×2 fp32, 48×32 input, one thread,
reference kernels as ``--use_xnnpack=false``) on the phone's clock (perflab.emulator
.benchmark_model.clock), the delays split over the ops as the tool splits them
(``op_delays_s``: c1=15 → 7.5 ms in each of c1's conv and tanh). Invokes alternate delayed and
undelayed, so both kinds see the same load. Per op it records its segment time on the phone's
clock, whether the thread was switched out during the segment before it (schedstat's third
field: the times the thread was put on a CPU) and whether the op began on another CPU than the
one the op before it did its own work on (``sched_getcpu``).

Usage: python benchmarks/probe_after_spin.py [--invokes 200] [--busy 2] [--delays c1=15,c2=5,c3=5]
       [--spend spin|work|spin,work] [--block 1] [--pin none|spin|thread] [--processes N]
``--processes N``: instead, N fresh processes each for the undelayed and the delayed model, alternating,
each building the segments and timing 3 + 7 invokes as one tool run does (no phone, adb or trace).
``--block N``: N invokes of one kind in a row (1: every invoke alternates), so an op's own data has
gone untouched for the delayed model's whole invoke, not for an undelayed one's.
``--pin spin``: each delay is spun with the thread held to the CPU it is on (released after);
``--pin thread``: the thread held to one CPU throughout.
``--spend work``: each delay spent by the op computing again while more than twice its time is left,
the rest spun (a candidate change, not adopted: docs/methodology.md, fourth round).
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import os
import re
import statistics
import subprocess
import sys
import time
from typing import Any

from perflab.emulator.benchmark_model import clock
from perflab.emulator.benchmark_model.delays import op_delays_s, parse_layer_delays
from perflab.emulator.benchmark_model.model import interpreter_options
from perflab.emulator.benchmark_model.segments import SegmentedModel
from perflab.zoo.registry import get_artifact
from perflab.zoo.tflite_graph import op_tensor_names

_libc = ctypes.CDLL(None, use_errno=True)


def _cpu() -> int:
    return int(_libc.sched_getcpu())


def _pcount(fd: int) -> int:
    return int(os.pread(fd, 128, 0).split()[2])


def _migrations() -> int:
    with open("/proc/thread-self/sched", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("se.nr_migrations"):
                return int(line.split(":")[1])
    return -1


def _build() -> tuple[SegmentedModel, list[str]]:
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter

    art = get_artifact("espcn", 2, "fp32")
    it = Interpreter(model_path=str(art.path), **interpreter_options(1, False))
    d = it.get_input_details()[0]
    it.resize_tensor_input(d["index"], [1, 32, 48, int(d["shape"][-1])], strict=False)
    it.allocate_tensors()
    d = it.get_input_details()[0]
    it.set_tensor(d["index"], np.random.default_rng(0).uniform(-0.5, 0.5, size=d["shape"]).astype(np.float32))
    seg = SegmentedModel.build(art.path.read_bytes(), it, 1)
    assert seg is not None
    names = op_tensor_names(it)
    ops = [op for op in it._get_ops_details() if op["op_name"] != "DELEGATE"]
    return seg, [names.get(int(op["index"]), "") for op in ops]


def _spend_working(delay_s: float, work_s: float, redo: Any) -> None:
    """The delay spent by the op computing again while more than twice its longest run is left,
    the rest spun (``--spend work``)."""
    deadline = clock.now_s() + delay_s
    longest_s = work_s
    while True:
        t0 = clock.now_s()
        if deadline - t0 <= 2 * longest_s:
            break
        redo()
        longest_s = max(longest_s, clock.now_s() - t0)
    clock.spend_until(deadline)


def _invoke(seg: SegmentedModel, delays_s: list[float], fd: int, pin_spin: bool = False,
            working: bool = False) -> list[dict[str, Any]]:
    """SegmentedModel.invoke for the CPU (no floors), with the probe's readings around each
    segment (outside its timed span)."""
    values = {i: seg._main.get_tensor(i) for i in seg._inputs}
    out: list[dict[str, Any]] = []
    for s, delay_s in zip(seg._segments, delays_s, strict=True):
        pc0, cpu0 = _pcount(fd), _cpu()
        begin = clock.now_s()
        it = s.interp
        for a, w in s.inputs:
            it.set_tensor(a, values[w])
        it.invoke()
        work_end = clock.now_s()
        pc_work = _pcount(fd)
        if delay_s > 0 and working:
            _spend_working(delay_s, work_end - begin, it.invoke)
        elif delay_s > 0:
            if pin_spin:
                allowed = os.sched_getaffinity(0)
                os.sched_setaffinity(0, {_cpu()})
                clock.spend(delay_s)
                os.sched_setaffinity(0, allowed)
            else:
                clock.spend(delay_s)
        for a, w in s.outputs:  # after the delay: the interpreter runs again only while no view of it is held
            values[w] = it.tensor(a)()
        end = clock.now_s()
        out.append({"ms": (end - begin) * 1000.0, "work_ms": (work_end - begin) * 1000.0,
                    "delay_ms": delay_s * 1000.0, "switched": _pcount(fd) > pc0, "own_sw": pc_work > pc0, "cpu0": cpu0, "cpu1": _cpu()})
    return out


def _med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def _one_run(delayed: bool, delays: str) -> None:
    """One fresh process's run: 3 warm-up and 7 timed invokes; per op its median work (ms), and
    the median of each delayed layer's segments (ms), as one line."""
    seg, names = _build()
    fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    layer_delays = parse_layer_delays(delays)
    d = op_delays_s(names, layer_delays) if delayed else [0.0] * seg.n_ops
    for _ in range(3):
        _invoke(seg, d, fd)
    rs = [_invoke(seg, d, fd) for _ in range(7)]
    work = [round(_med([r[k]["work_ms"] for r in rs]), 3) for k in range(seg.n_ops)]
    layers = {layer: round(_med([sum(r[k]["ms"] for k in range(seg.n_ops)
                                     if (m := re.search(r"/(c\d)_\d+/", names[k])) and m.group(1) == layer)
                                 for r in rs]), 3) for layer in layer_delays}
    print(f"{'delayed' if delayed else 'undelayed'} work per op {work} layers {layers}", flush=True)


def _processes(n: int, busy: int, delays: str) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        for _ in range(n):
            for kind in ("undelayed", "delayed"):
                subprocess.run([sys.executable, __file__, "--one-run", kind, "--delays", delays], check=True)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--invokes", type=int, default=200)
    ap.add_argument("--busy", type=int, default=2)
    ap.add_argument("--delays", default="c1=15,c2=5,c3=5")
    ap.add_argument("--spend", default="spin", help="spin, work or spin,work (alternating)")
    ap.add_argument("--block", type=int, default=1, help="invokes of one kind in a row before the next kind")
    ap.add_argument("--processes", type=int, default=0)
    ap.add_argument("--one-run", choices=["undelayed", "delayed"], help=argparse.SUPPRESS)
    ap.add_argument("--pin", choices=["none", "spin", "thread"], default="none")
    args = ap.parse_args()
    if args.one_run:
        _one_run(args.one_run == "delayed", args.delays)
        return
    if args.processes:
        _processes(args.processes, args.busy, args.delays)
        return
    seg, names = _build()
    fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    layer_delays = parse_layer_delays(args.delays)
    delays = op_delays_s(names, layer_delays)
    zero = [0.0] * seg.n_ops
    if args.pin == "thread":
        os.sched_setaffinity(0, {_cpu()})
    pin_spin = args.pin == "spin"
    mig0 = _migrations()
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        time.sleep(0.5)
        for _ in range(10):
            _invoke(seg, zero, fd)
        rows: list[tuple[bool, list[dict[str, Any]]]] = []
        kinds = ["none", *args.spend.split(",")]
        by_kind: dict[str, list[list[dict[str, Any]]]] = {k: [] for k in kinds}
        for n in range(args.invokes):
            kind = kinds[(n // args.block) % len(kinds)]
            r = _invoke(seg, zero if kind == "none" else delays, fd, pin_spin, kind == "work")
            by_kind[kind].append(r)
            if kind in ("none", kinds[1]):
                rows.append((kind != "none", r))
        load = os.getloadavg()
        mig = _migrations() - mig0
    finally:
        for p in procs:
            p.kill()
            p.wait()
    _report(args, seg, names, rows, by_kind, layer_delays, load, mig)


def _report(args: argparse.Namespace, seg: SegmentedModel, names: list[str],
            rows: list[tuple[bool, list[dict[str, Any]]]], by_kind: dict[str, list[list[dict[str, Any]]]],
            layer_delays: dict[str, float], load: tuple[float, float, float], mig: int) -> None:
    und = [r for d, r in rows if not d]
    dly = [r for d, r in rows if d]
    print(f"spend={args.spend} pin={args.pin} busy={args.busy} delays {args.delays}, {args.invokes} invokes, the kind changing every {args.block}, load at end {load[0]:.1f}; "
          f"{mig} migrations; ops begun per CPU {dict(collections.Counter(o['cpu0'] for _, r in rows for o in r))}")
    print("op  delay  undelayed work  | delayed work: all, after a switch-out in the op before, after none, "
          "after a CPU change | share switched / moved")
    for k in range(1, seg.n_ops):
        u = _med([r[k]["work_ms"] for r in und])
        a = [r[k]["work_ms"] for r in dly]
        sw = [r[k]["work_ms"] for r in dly if r[k - 1]["switched"]]
        ns = [r[k]["work_ms"] for r in dly if not r[k - 1]["switched"]]
        mv = [r[k]["work_ms"] for r in dly if r[k]["cpu0"] != r[k - 1]["cpu0"]]
        print(f"{k}  {dly[0][k - 1]['delay_ms']:5.2f} before  {u:.3f}  | {_med(a):.3f} ({_med(a) - u:+.3f})  "
              f"{_med(sw):.3f} (n={len(sw)})  {_med(ns):.3f} (n={len(ns)})  {_med(mv):.3f} (n={len(mv)})")
        usw = [r[k]["work_ms"] for r in und if r[k - 1]["switched"]]
        uns = [r[k]["work_ms"] for r in und if not r[k - 1]["switched"]]
        print(f"   undelayed: after a switch-out {_med(usw):.3f} (n={len(usw)}), after none {_med(uns):.3f} (n={len(uns)})")
    print("per kind: op 2 (c2's conv) work median | share switched out during its own work | median when not")
    for kind, rs in by_kind.items():
        w = [r[2]["work_ms"] for r in rs]
        w_ns = [r[2]["work_ms"] for r in rs if not r[2]["own_sw"]]
        print(f"  {kind:5s} n={len(rs)} {_med(w):.3f} ms | {sum(r[2]['own_sw'] for r in rs) / len(rs):.2f} | "
              f"{_med(w_ns):.3f} ms; all ops' work {_med([sum(o['work_ms'] for o in r) for r in rs]):.3f} ms")
        for layer, want in layer_delays.items():
            ks = [k for k, nm in enumerate(names) if (m := re.search(r"/(c\d)_\d+/", nm)) and m.group(1) == layer]
            if kind != "none":
                got = _med([sum(r[k]["ms"] for k in ks) for r in rs]) - \
                    _med([sum(r[k]["ms"] for k in ks) for r in by_kind["none"]])
                print(f"    {layer}: recovered {got:.3f} ms for {want} ({100 * (got - want) / want:+.1f}%)")
    for layer, want in layer_delays.items():
        ks = [k for k, nm in enumerate(names) if (m := re.search(r"/(c\d)_\d+/", nm)) and m.group(1) == layer]
        got = _med([sum(r[k]["ms"] for k in ks) for r in dly]) - _med([sum(r[k]["ms"] for k in ks) for r in und])
        print(f"{layer} ops {ks}: recovered {got:.3f} ms for {want} ({100 * (got - want) / want:+.1f}%)")


if __name__ == "__main__":
    main()
