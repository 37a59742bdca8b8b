"""Kernel trace capture on local as root: a private ftrace instance, restored on every exit.

Root only (skipped otherwise): tracefs is mounted when it is not, an instance
``perflab-<pid>`` is made and removed, the saved trace starts with ``# trace_clock:``, and a
RunInterrupted inside the capture (what Ctrl-C raises in the runner) still saves the trace and
removes the instance and the mount."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from perflab.errors import RunInterrupted
from perflab.tracing.attribution import attribute
from perflab.tracing.capture import (
    TRACEFS_PATHS,
    LocalTraceCapture,
    local_trace_missing,
    stale_instances,
)
from perflab.tracing.ftrace import parse_trace


def _mounted_tracefs() -> set[str]:
    return {line.split()[1] for line in Path("/proc/mounts").read_text().splitlines() if line.split()[2] == "tracefs"}


def _instances() -> set[str]:
    out: set[str] = set()
    for p in TRACEFS_PATHS:
        if (p / "instances").is_dir():
            out |= {q.name for q in (p / "instances").iterdir() if q.name.startswith("perflab-")}
    return out


needs_root = pytest.mark.skipif(local_trace_missing() is not None, reason=str(local_trace_missing()))


@needs_root
def test_capture_writes_clock_header_markers_and_restores(tmp_path: Path) -> None:
    mounts_before, inst_before = _mounted_tracefs(), _instances()
    out = tmp_path / "traces" / "cell.trace"
    pid = os.getpid()
    with LocalTraceCapture(out, buffer_kb=512) as cap, cap.segment("timing"):
        assert cap.instance is not None and cap.instance.name == f"perflab-{pid}"
        for _ in range(3):
            cap.mark(f"B|{pid}|perflab:invoke")
            sum(range(20000))
            cap.mark(f"E|{pid}")
    assert _mounted_tracefs() == mounts_before and _instances() == inst_before
    text = out.read_text()
    assert text.startswith("# trace_clock: ") and "[mono]" in text.splitlines()[0]
    parsed = parse_trace(text)
    assert parsed.info.clock == "mono"
    a = attribute(parsed, us_per_tick=1.0, segment="timing")
    assert len(a.inferences) == 3 and all(i.name == "perflab:invoke" for i in a.inferences)
    assert cap.result is not None and cap.result.bytes_written > 0


@needs_root
def test_the_benchmarks_threads_are_its_process_not_every_thread_of_its_name(tmp_path: Path) -> None:
    # a process with this one's name runs throughout; the tgid column keeps it out
    out = tmp_path / "cell.trace"
    pid = os.getpid()
    comm = Path("/proc/self/comm").read_text().strip()
    spin = (f"open('/proc/self/comm', 'w').write({comm!r})\n"  # the twin takes this process's name
            "import time\nend = time.time() + 30\nwhile time.time() < end: time.sleep(0.002)")
    twin = subprocess.Popen([sys.executable, "-c", spin])  # switched in and out all the time
    deadline = time.monotonic() + 30  # a guard against a hang only
    while Path(f"/proc/{twin.pid}/comm").read_text().strip() != comm:
        assert time.monotonic() < deadline and twin.poll() is None
        time.sleep(0.01)
    try:
        with LocalTraceCapture(out, buffer_kb=1024) as cap:
            for _ in range(5):
                cap.mark(f"B|{pid}|perflab:invoke")
                t_end = time.monotonic() + 0.05
                while time.monotonic() < t_end:
                    pass
                cap.mark(f"E|{pid}")
    finally:
        twin.kill()
        twin.wait()
    parsed = parse_trace(out.read_text())
    assert parsed.info.has_tgid  # options/record-tgid in perflab's instance
    assert twin.pid in parsed.tids_named(comm)  # the twin ran under the same name
    a = attribute(parsed, us_per_tick=1.0)
    # the threads whose CPU time counts (a spinning thread may never be switched out inside
    # the capture, so the busy time itself may be zero; which threads count is the point)
    assert pid in a.busy_tids and twin.pid not in a.busy_tids
    assert set(a.busy_tids) <= parsed.tids_of(pid)
    assert a.busy is not None and twin.pid not in a.busy.per_thread_us


@needs_root
def test_ctrl_c_inside_the_capture_still_saves_and_restores(tmp_path: Path) -> None:
    mounts_before, inst_before = _mounted_tracefs(), _instances()
    out = tmp_path / "t.trace"
    with pytest.raises(RunInterrupted), LocalTraceCapture(out) as cap, cap.worker_markers():
        assert os.environ["PERFLAB_TRACE_MARKER"].endswith("/trace_marker")
        cap.mark("perflab:segment:x:begin")
        raise RunInterrupted("stopped by SIGINT")
    assert "PERFLAB_TRACE_MARKER" not in os.environ
    assert _mounted_tracefs() == mounts_before and _instances() == inst_before
    assert "perflab:segment:x:begin" in out.read_text()


def test_stale_instances_are_those_of_dead_perflab_processes() -> None:
    names = ["perflab-100", "perflab-200-1", "perflab-300", "other", "perflab-x"]
    assert stale_instances(names, {100: False, 200: False, 300: True}) == ["perflab-100", "perflab-200-1"]
