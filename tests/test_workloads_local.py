"""The local workload: real LiteRT in a real worker process, stopped by cancel(), by its
parent's death, and deaf to a terminal's Ctrl-C. Every wait here is for an event (a process
appears, a signal disposition is set, a pidfd becomes readable), never a guessed delay; the
test timeout is the only clock."""

from __future__ import annotations

import hashlib
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from support.waiting import wait_until

from perflab.core.types import ModelArtifact, ProfileMissing, SeriesMode, TimingRequest
from perflab.devices.local import LocalDevice
from perflab.errors import RunInterrupted
from perflab.workloads import Workload, workload_for
from perflab.workloads.local import LOCAL_PROFILE_MISSING, LocalWorkload

pytestmark = pytest.mark.timeout(300)

WEIGHTS = Path(__file__).resolve().parents[1] / "perflab" / "zoo" / "weights"


def artifact() -> ModelArtifact:
    path = WEIGHTS / "bicubic_x2_fp32.tflite"
    data = path.read_bytes()
    return ModelArtifact(name="bicubic_x2", family="bicubic", variant="fp32", scale=2, path=path,
                         sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def long_request() -> TimingRequest:
    """A paced series that would run for ~100 minutes: only a kill ends it."""
    return TimingRequest(mode=SeriesMode.PACED, fps=1.0, warmup=0, iterations=6000, threads=1, delegate="cpu",
                         timeout_s=7200, lr_width=16, lr_height=16)


def wait_for(condition: Callable[[], bool]) -> None:
    """An event awaited (two minutes: a guard against a hang, not a speed check)."""
    assert wait_until(condition, timeout_s=120, poll_s=0.01)


def wait_exit(pid: int, timeout_s: float = 120.0) -> None:
    """Block until process ``pid`` (not necessarily our child) has terminated."""
    fd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([fd], [], [], timeout_s)
        assert ready, f"process {pid} still runs after {timeout_s} s"
    finally:
        os.close(fd)


def ignores_sigint(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


def test_workload_for_local_and_its_profile_reason(tmp_path: Path) -> None:
    w = workload_for(LocalDevice(), tmp_path / "work")
    assert isinstance(w, LocalWorkload) and isinstance(w, Workload)
    w.check_ready()
    prof = w.run_profile(artifact(), 1, "cpu", 60)
    assert prof == ProfileMissing(LOCAL_PROFILE_MISSING)


def test_timing_leaves_no_file_outside_its_workdir(tmp_path: Path) -> None:
    work = tmp_path / "run" / "work" / "local"
    w = LocalWorkload(LocalDevice(), work)
    req = TimingRequest(mode=SeriesMode.BACK_TO_BACK, fps=None, warmup=1, iterations=3, threads=1,
                        delegate="cpu", timeout_s=120, lr_width=16, lr_height=16)
    r = w.run_timing(artifact(), req)
    assert r.samples_ms is not None and len(r.samples_ms) == 3
    assert work.is_dir() and list(work.iterdir()) == []  # job folders removed after each job


def test_cancel_kills_the_worker_and_interrupts_the_call(tmp_path: Path) -> None:
    w = LocalWorkload(LocalDevice(), tmp_path / "work")
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            w.run_timing(artifact(), long_request())
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    t = threading.Thread(target=run)
    t.start()
    wait_for(lambda: w._proc is not None)
    proc = w._proc
    assert proc is not None
    # its own process group and session: a terminal's Ctrl-C does not reach it
    assert os.getpgid(proc.pid) == proc.pid != os.getpgid(0)
    w.cancel()
    t.join()
    assert len(outcome) == 1 and isinstance(outcome[0], RunInterrupted)
    assert proc.poll() is not None  # killed and reaped: no orphan
    with pytest.raises(RunInterrupted):  # a cancelled workload starts nothing new
        w.run_timing(artifact(), long_request())
    assert list((tmp_path / "work").iterdir()) == []


def test_sigint_to_the_worker_group_does_not_crash_it(tmp_path: Path) -> None:
    w = LocalWorkload(LocalDevice(), tmp_path / "work")
    req = TimingRequest(mode=SeriesMode.PACED, fps=50.0, warmup=0, iterations=25, threads=1, delegate="cpu",
                        timeout_s=120, lr_width=16, lr_height=16)
    results: list[object] = []
    t = threading.Thread(target=lambda: results.append(w.run_timing(artifact(), req)))
    t.start()
    wait_for(lambda: w._proc is not None)
    proc = w._proc
    assert proc is not None
    # the worker ignores SIGINT before it loads the model; the paced series then runs >= 0.48 s
    wait_for(lambda: proc.poll() is not None or ignores_sigint(proc.pid))
    assert proc.poll() is None, "the worker never ignored SIGINT"
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C would send, had it reached the group
    t.join()
    assert len(results) == 1  # the series finished: no "worker crashed … Traceback"


_PARENT = """
import sys, threading, time
from pathlib import Path
from perflab.devices.local import LocalDevice
from perflab.workloads.local import LocalWorkload
sys.path.insert(0, {tests!r})
from test_workloads_local import artifact, long_request
w = LocalWorkload(LocalDevice(), Path({work!r}))
threading.Thread(target=lambda: w.run_timing(artifact(), long_request()), daemon=True).start()
while w._proc is None:
    time.sleep(0.01)
print(w._proc.pid, flush=True)
time.sleep(3600)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_worker_dies_with_its_parent(tmp_path: Path) -> None:
    script = _PARENT.format(tests=str(Path(__file__).parent), work=str(tmp_path / "work"))
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker_pid = int(parent.stdout.readline())
    # PR_SET_PDEATHSIG is set by the worker itself right after start-up; wait until it runs
    wait_for(lambda: not Path(f"/proc/{worker_pid}").exists() or ignores_sigint(worker_pid))
    parent.kill()
    parent.wait()
    wait_exit(worker_pid)  # returns only once the worker is gone
    assert not Path(f"/proc/{worker_pid}/cmdline").exists() or Path(f"/proc/{worker_pid}/cmdline").read_bytes() == b""
