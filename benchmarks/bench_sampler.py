"""The device sampler's own CPU cost at 10 Hz on an emulated phone (issue 9: ≤ 1% of one core).

Runs the very script perflab pushes (perflab.telemetry.session.sampler_script, the pixel7
device config) on an emulated phone for ``--seconds`` and reports the CPU the sampler process
used, as the phone itself reports it (/proc/<pid>/stat, the emulator's real thread time), per
tick and as % of one core at the asked rate. Run on demand:

    .venv/bin/python benchmarks/bench_sampler.py --seconds 10
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from perflab.analysis.timeline import parse_sampler_output
from perflab.devices.adb import Adb
from perflab.devices.android import AndroidDevice
from perflab.emulator.phone import EmulatedPhone, connect_to_adb_server
from perflab.emulator.testing import private_adb_server
from perflab.telemetry.session import PhoneSampler


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--interval-s", type=float, default=0.1)
    ap.add_argument("--state", type=Path, default=Path("/tmp/perflab-bench-sampler"))
    args = ap.parse_args()
    with private_adb_server() as client:
        adb = Adb(port=client.port, timeout_s=20.0, backoff_s=0.2)
        with EmulatedPhone.start(profile="pixel7") as phone:
            connect_to_adb_server(phone, client)
            dev = AndroidDevice(adb, phone.serial, state_dir=args.state)
            sampler = PhoneSampler(dev, args.interval_s, "/data/local/tmp/perflab/benchmark_model.pid",
                                   args.state / "raw.txt")
            sampler.start()
            time.sleep(args.seconds)
            tl = sampler.stop()
    lines = (args.state / "raw.txt").read_text().splitlines()
    tl = parse_sampler_output(lines)
    (t0, c0), (t1, c1) = tl.self_cpu_s[0], tl.self_cpu_s[-1]
    ticks = len(tl.ticks)
    rate_hz = (ticks - 1) / (tl.ticks[-1] - tl.ticks[0])
    print(f"ticks {ticks} over {tl.ticks[-1] - tl.ticks[0]:.1f} s ({rate_hz:.1f} Hz achieved, "
          f"{1 / args.interval_s:.0f} Hz asked); {len(lines)} lines, {tl.garbage_lines} not understood")
    print(f"sampler CPU: {(c1 - c0) / (t1 - t0) * 100:.2f}% of one core; "
          f"{(c1 - c0) / max(1, ticks - 1) * 1000:.2f} ms per tick")


if __name__ == "__main__":
    main()
