"""The timing trace's own cost on latency (issue 22): the same series on an emulated rooted phone,
traced (perflab.lab.phone_timing.traced: ATrace on, trace_marker only) and untraced, in
interleaved rounds (ABBA order, so a drifting machine weighs on both sides alike). Reports per
side the median over rounds of benchmark_model's own mean (the tool times each inference
itself, so this is the inference as the trace slows it, not the trace's set-up), the paired
per-round difference, and the capture's set-up + save time around the run (wall time outside
the timed inferences). Also checks that every traced round gave samples (count and mean within
the tolerance of the tool's). Run on demand:

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_timing_trace.py --rounds 6 --iterations 30

The emulated phone runs the model on the host's LiteRT and writes its ATrace sections into its
emulated tracefs from Python: its cost is the emulator's, an upper bound for a phone, where a
section is a write() to trace_marker of a few µs. Results are in docs/methodology.md ("Phone
latency from the timing trace").

Results (2-core VM shared with other work, load average 9-11):
    2026-12-06 espcn int8 240x136, 4 rounds: untraced 71.31 ms, traced 71.74 ms, per round
               +0.34 ms (+0.5%), range -4.5 ... +4.4 ms; set-up + save 0.67 s per series
    2026-12-06 espcn int8 96x64, 6 rounds: untraced 14.38 ms, traced 14.75 ms, per round
               +0.37 ms (+2.6%), range -2.0 ... +1.8 ms; set-up + save 0.78 s; samples 6 of 6
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from perflab.core.types import SeriesMode, TimingRequest, TimingResult
from perflab.devices.adb import Adb
from perflab.devices.android import AndroidDevice
from perflab.emulator.phone import EmulatedPhone, connect_to_adb_server
from perflab.emulator.testing import private_adb_server
from perflab.lab.phone_timing import traced, with_trace_samples
from perflab.workloads import workload_for
from perflab.zoo.registry import get_artifact


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--width", type=int, default=240)
    ap.add_argument("--height", type=int, default=136)
    ap.add_argument("--model", default="espcn")
    ap.add_argument("--variant", default="int8")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="perflab-bench-trace-"))
    art = get_artifact(args.model, 2, args.variant)
    req = TimingRequest(mode=SeriesMode.BACK_TO_BACK, fps=None, warmup=3, iterations=args.iterations, threads=1,
                        delegate="cpu", timeout_s=300, lr_width=args.width, lr_height=args.height)
    plain: list[float] = []
    with_trace: list[float] = []
    setup_s: list[float] = []
    bad: list[str] = []
    with private_adb_server() as client:
        adb = Adb(port=client.port, timeout_s=20.0, backoff_s=0.2)
        with EmulatedPhone.start(profile="pixel7") as phone:
            connect_to_adb_server(phone, client)
            dev = AndroidDevice(adb, phone.serial, state_dir=tmp / "state")
            wl = workload_for(dev, tmp / "work")
            wl.check_ready()
            wl.run_timing(art, req)  # model and input pushed, caches warm

            def untraced() -> None:
                t = wl.run_timing(art, req)
                assert t.summary is not None
                plain.append(t.summary.mean_ms)

            def one_traced(k: int) -> None:
                rel = f"traces/bench{k}.trace"
                box: list[float] = []

                def run() -> TimingResult:
                    t0 = time.monotonic()
                    r = wl.run_timing(art, req)
                    box.append(time.monotonic() - t0)
                    return r

                t0 = time.monotonic()
                t, tt = traced(dev, tmp / rel, rel, run)
                setup_s.append(time.monotonic() - t0 - box[0])
                assert t.summary is not None
                with_trace.append(t.summary.mean_ms)
                got = with_trace_samples(t, tt)
                if not got.samples_ms:
                    bad.append(f"round {k}: {got.missing.get('p90')}")

            for k in range(args.rounds):
                if k % 2 == 0:
                    untraced()
                    one_traced(k)
                else:
                    one_traced(k)
                    untraced()
            assert dev.journal.pending() == [], "the capture left changes pending"
    diffs = [b - a for a, b in zip(plain, with_trace, strict=True)]
    med_a, med_b = statistics.median(plain), statistics.median(with_trace)
    print(f"{args.model} {args.variant} {args.width}x{args.height}, {args.iterations} runs × {args.rounds} rounds "
          f"(interleaved); load average {os.getloadavg()[0]:.2f}")
    print(f"untraced: median of the tool's mean {med_a:.3f} ms  (rounds: {', '.join(f'{x:.3f}' for x in plain)})")
    print(f"traced:   median of the tool's mean {med_b:.3f} ms  (rounds: {', '.join(f'{x:.3f}' for x in with_trace)})")
    print(f"traced − untraced per round: median {statistics.median(diffs):+.3f} ms "
          f"({statistics.median(diffs) / med_a * 100:+.1f}%), range {min(diffs):+.3f} … {max(diffs):+.3f} ms")
    print(f"capture set-up + save outside the timed run: median {statistics.median(setup_s):.2f} s per series")
    print(f"traced rounds with samples: {args.rounds - len(bad)} of {args.rounds}" + (f" ({'; '.join(bad)})" if bad
                                                                                       else ""))


if __name__ == "__main__":
    main()
