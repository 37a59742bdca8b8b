"""The parsers on this machine's real kernel trace (root only; skipped otherwise), and the
emulated phone's tracefs held against the real kernel's instance rules.

The test mounts tracefs at a private folder, makes its own ftrace *instance* (its own ring
buffer, events, trace_marker and clock, so the global buffer that other tools may use is
untouched), records sched_switch and irq events while this process writes TFLite-style ATrace
sections and perflab segment markers, reads the instance's ``trace`` file, and removes the
instance and the mount again."""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from perflab.tracing.attribution import attribute
from perflab.tracing.ftrace import TsUnit, parse_trace
from perflab.tracing.reference import parse_trace_reference


@pytest.fixture
def tracefs() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount tracefs")
    mnt = Path(tempfile.mkdtemp(prefix="perflab-tracefs-"))
    proc = subprocess.run(["mount", "-t", "tracefs", "nodev", str(mnt)], capture_output=True, text=True,
                          check=False, timeout=30)
    if proc.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount tracefs: {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False, timeout=30)
        mnt.rmdir()


@pytest.fixture
def instance(tracefs: Path) -> Iterator[Path]:
    inst = tracefs / "instances" / f"perflab-test-{os.getpid()}"
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


# ---- the emulated tracefs against the real kernel's rules --------------------------------


class Ops:
    """mkdir/rmdir/read/write on a tracefs, each write or dir call answering an errno (0 = ok)."""

    def __init__(self, read: Callable[[str], str], write: Callable[[str, str], None],
                 mkdir: Callable[[str], None], rmdir: Callable[[str], None]) -> None:
        self.read, self._write, self._mkdir, self._rmdir = read, write, mkdir, rmdir

    @staticmethod
    def _errno(fn: Callable[[], None]) -> int:
        from perflab.emulator.fs import FsError

        try:
            fn()
        except FsError as exc:
            return exc.errno_
        except OSError as exc:
            return exc.errno or -1
        return 0

    def write(self, path: str, text: str) -> int:
        return self._errno(lambda: self._write(path, text))

    def mkdir(self, path: str) -> int:
        return self._errno(lambda: self._mkdir(path))

    def rmdir(self, path: str) -> int:
        return self._errno(lambda: self._rmdir(path))

    def lines(self, path: str) -> list[str]:
        return [ln.split(": ", 1)[1] for ln in self.read(path).splitlines() if ln and not ln.startswith("#")]


def _real(mnt: Path) -> Ops:
    def write(p: str, text: str) -> None:
        with open(mnt / p, "w") as fh:  # one write(2), as a shell's echo does
            fh.write(text)

    return Ops(lambda p: (mnt / p).read_text(), write, lambda p: (mnt / p).mkdir(), lambda p: (mnt / p).rmdir())


def _emulated(tmp: Path) -> Ops:
    from perflab.emulator.profiles import load_profile
    from perflab.emulator.runtime import PhoneRuntime
    from perflab.emulator.tracefs import TRACEFS, TracefsPhoneFS

    rt = PhoneRuntime.create(load_profile("pixel7"), tmp)
    assert rt.trace is not None and isinstance(rt.fs, TracefsPhoneFS)
    rt.trace.copy_trace_marker_supported = True  # as this machine's kernel, when it has the option
    fs = rt.fs
    return Ops(lambda p: fs.read_bytes(f"{TRACEFS}/{p}", 0).decode(),
               lambda p, t: fs.write_bytes(f"{TRACEFS}/{p}", t.encode(), 0),
               lambda p: fs.mkdir(f"{TRACEFS}/{p}", 0), lambda p: fs.rmdir(f"{TRACEFS}/{p}", 0))


def _instance_rules(t: Ops, name: str, top_marker: bool, copy_option: bool) -> None:
    i = f"instances/{name}"
    assert t.mkdir(i) == 0
    try:
        assert t.mkdir(i) == errno.EEXIST
        assert t.mkdir("events/perflab-x") == errno.EPERM  # only instances/ makes directories
        # a new instance: tracing on, its events off, the local clock, an empty buffer
        assert t.read(f"{i}/tracing_on").strip() == "1"
        assert t.read(f"{i}/events/sched/sched_switch/enable").strip() == "0"
        assert "[local]" in t.read(f"{i}/trace_clock")
        assert t.lines(f"{i}/trace") == []
        # booleans: tracing_on takes any unsigned number, an event enable only 0 or 1
        assert t.write(f"{i}/tracing_on", "2") == 0 and t.read(f"{i}/tracing_on").strip() == "1"
        assert t.write(f"{i}/tracing_on", "on") == errno.EINVAL
        assert t.write(f"{i}/events/irq/irq_handler_entry/enable", "2") == errno.EINVAL
        assert t.write(f"{i}/events/irq/irq_handler_entry/enable", "1") == 0
        assert t.read(f"{i}/events/irq/enable").strip() == "X"  # the group is mixed
        assert t.write(f"{i}/events/irq/enable", "0") == 0
        assert t.write(f"{i}/trace_clock", "nonsense") == errno.EINVAL
        # its own trace_marker lands in it
        assert t.write(f"{i}/trace_marker", "perflab-own") == 0
        assert t.lines(f"{i}/trace") == ["tracing_mark_write: perflab-own"]
        # a clock change resets its buffer
        assert t.write(f"{i}/trace_clock", "mono") == 0
        assert "[mono]" in t.read(f"{i}/trace_clock") and t.lines(f"{i}/trace") == []
        if top_marker:  # the top-level trace_marker reaches an instance only with copy_trace_marker
            assert t.write("trace_marker", "perflab-top-1") == 0
            assert t.lines(f"{i}/trace") == []
            if copy_option:
                assert t.write(f"{i}/options/copy_trace_marker", "1") == 0
                assert t.write("trace_marker", "perflab-top-2") == 0
                assert t.lines(f"{i}/trace") == ["tracing_mark_write: perflab-top-2"]
                assert t.write(f"{i}/options/copy_trace_marker", "0") == 0
        # a write to trace clears it
        assert t.write(f"{i}/trace_marker", "x") == 0 and t.write(f"{i}/trace", "") == 0
        assert t.lines(f"{i}/trace") == []
    finally:
        assert t.rmdir(i) == 0
    assert t.rmdir(i) == errno.ENOENT


def test_the_emulated_instances_follow_this_kernels_rules(tracefs: Path, tmp_path: Path) -> None:
    """The same sequence on this machine's kernel and on the emulated phone's tracefs."""
    name = f"perflab-rules-{os.getpid()}"
    # the top level's marker: only when the top level is not recording (its buffer stays untouched)
    top_marker = (tracefs / "tracing_on").read_text().strip() == "0"
    real = _real(tracefs)
    copy_option = (tracefs / "options" / "copy_trace_marker").exists()  # Linux >= 6.16
    _instance_rules(real, name, top_marker, copy_option)
    assert not (tracefs / "instances" / name).exists()
    _instance_rules(_emulated(tmp_path), name, top_marker=True, copy_option=True)
