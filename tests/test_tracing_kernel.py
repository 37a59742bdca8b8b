"""The parsers on this machine's real kernel trace (root only; skipped otherwise).

The test mounts tracefs at a private folder, makes its own ftrace *instance* (its own ring
buffer, events, trace_marker and clock, so the global buffer that other tools may use is
untouched), records sched_switch and irq events while this process writes TFLite-style ATrace
sections and perflab segment markers, reads the instance's ``trace`` file, and removes the
instance and the mount again."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from perflab.tracing.attribution import attribute
from perflab.tracing.ftrace import TsUnit, parse_trace
from perflab.tracing.reference import parse_trace_reference


@pytest.fixture
def instance() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount tracefs")
    mnt = Path(tempfile.mkdtemp(prefix="perflab-tracefs-"))
    proc = subprocess.run(["mount", "-t", "tracefs", "nodev", str(mnt)], capture_output=True, text=True,
                          check=False, timeout=30)
    if proc.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount tracefs: {proc.stderr.strip()}")
    inst = mnt / "instances" / f"perflab-test-{os.getpid()}"
    try:
        inst.mkdir()
        yield inst
    finally:
        for ev in ("sched/sched_switch", "irq"):
            p = inst / "events" / ev / "enable"
            if p.exists():
                p.write_text("0")
        if inst.exists():
            inst.rmdir()
        subprocess.run(["umount", str(mnt)], check=False, timeout=30)
        mnt.rmdir()


def test_real_kernel_trace_parses_identically_and_attributes(instance: Path) -> None:
    (instance / "buffer_size_kb").write_text("1024")
    (instance / "trace_clock").write_text("mono")
    (instance / "events" / "sched" / "sched_switch" / "enable").write_text("1")
    (instance / "events" / "irq" / "enable").write_text("1")
    pid = os.getpid()
    with open(instance / "trace_marker", "w", buffering=1) as marker:
        marker.write("perflab:segment:kernel-test:begin\n")
        for _ in range(3):
            marker.write(f"B|{pid}|Invoke\n")
            marker.write(f"B|{pid}|CONV_2D@0/0\n")
            time.sleep(0.002)  # gives the scheduler something to record
            marker.write(f"E|{pid}\n")
            marker.write(f"E|{pid}\n")
        marker.write("perflab:segment:kernel-test:end\n")
    (instance / "tracing_on").write_text("0")
    text = (instance / "trace").read_text()
    clock = (instance / "trace_clock").read_text()

    fast = parse_trace(text, trace_clock=clock)
    ref = parse_trace_reference(text, trace_clock=clock)
    assert fast.info == ref.info
    assert fast.records() == ref.records
    info = fast.info
    assert info.unparsed_lines == 0, info.unparsed_examples
    assert info.tracer == "nop" and info.clock == "mono" and info.ts_unit is TsUnit.US
    assert info.flags_width in (4, 5)
    assert fast.count("sched_switch") > 0

    a = attribute(fast, us_per_tick=1.0)
    assert len(a.inferences) == 3
    assert all(i.tid == pid and [o.name for o in i.ops] == ["CONV_2D@0/0"] for i in a.inferences)
    assert all(i.ops[0].duration_us >= 2000 for i in a.inferences)  # the sleep is inside the op
    assert [s.name for s in a.segments] == ["kernel-test"]
    assert a.markers.unmatched_ends == 0 and a.markers.unclosed == 0
    # the process slept inside every op: its thread was switched out at least once per op
    switches_out = [r for r in fast.records(["sched_switch"]) if r.fields["prev_pid"] == str(pid)]
    assert len(switches_out) >= 3
