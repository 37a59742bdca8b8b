"""Worker process for the local device: one model, one job, JSON result on stdout.

Runs in its own process so that peak RSS (VmHWM) and CPU time read from /proc belong to the
measured run alone. Invoked as ``python -m perflab.workloads.host_worker JOB.json``.

It never outlives perflab: it asks the kernel for SIGKILL when its parent goes
(PR_SET_PDEATHSIG; the parent is the thread that started it) and exits at once if that parent
is already gone. It ignores SIGINT: a Ctrl-C is perflab's to handle (perflab kills the worker's
process group when it cancels), so the worker never prints a KeyboardInterrupt traceback.

Job kinds:
  timing  — load, resize, first run, warm-up, timed series (paced or back-to-back)
  outputs — run every LR frame in an .npz and write the float outputs to another .npz
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from perflab.core.proc import parse_status_kb
from perflab.errors import PerflabError

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_PID_ENV = "PERFLAB_PARENT_PID"  # same name as perflab.workloads.local.PARENT_PID_ENV
TRACE_MARKER_ENV = "PERFLAB_TRACE_MARKER"  # same name as perflab.tracing.capture.MARKER_ENV


def die_with_parent(expected_parent: int | None) -> bool:
    """Ask for SIGKILL when the parent goes (Linux); False if the parent is already gone
    (reparented before the request took effect), in which case the caller exits."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl: the parent still kills the process group on cancel
    return expected_parent is None or os.getppid() == expected_parent


def _proc_self_cpu_s() -> float:
    """utime + stime of this process (all threads) from /proc/self/stat, in seconds."""
    text = Path("/proc/self/stat").read_text()
    fields = text[text.rindex(")") + 2:].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # fields 14 and 15 of stat(5)


def _proc_self_status_kb(key: str) -> int | None:
    return parse_status_kb(Path("/proc/self/status").read_text(), key)


def _trace_invokes(model: Any) -> None:
    """While perflab traces this machine (it sets $PERFLAB_TRACE_MARKER to its ftrace
    instance's trace_marker), write ``B|<pid>|perflab:invoke`` / ``E|<pid>`` around each
    invoke; a no-op otherwise (docs/tracing.md)."""
    path = os.environ.get(TRACE_MARKER_ENV)
    if not path:
        return
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError:
        return  # the trace ended or is not ours: run untraced
    inner = model.invoke
    begin, end = f"B|{os.getpid()}|perflab:invoke".encode(), f"E|{os.getpid()}".encode()

    def invoke() -> None:
        os.write(fd, begin)
        try:
            inner()
        finally:
            os.write(fd, end)

    model.invoke = invoke


def _timing(job: dict[str, Any]) -> dict[str, Any]:
    from perflab.workloads.host import HostModel, float_to_tensor, timed_loop

    rss_before_kb = _proc_self_status_kb("VmRSS")
    t0 = time.perf_counter_ns()
    model = HostModel(Path(job["model"]), int(job["threads"]), str(job["delegate"]))
    _trace_invokes(model)
    h, w = int(job["lr_height"]), int(job["lr_width"])
    if h and w:
        model.resize(h, w)
    detail = model.input_detail()
    if job.get("input_npy"):
        frame = np.load(job["input_npy"])
    else:
        rng = np.random.default_rng(0)
        frame = rng.random(detail.shape[1:], dtype=np.float32)
    model.set_tensor(float_to_tensor(frame, detail))
    init_ms = (time.perf_counter_ns() - t0) / 1e6
    cpu0, wall0 = _proc_self_cpu_s(), time.perf_counter()
    loop = timed_loop(model, int(job["warmup"]), int(job["iterations"]), job.get("fps"))
    cpu1, wall1 = _proc_self_cpu_s(), time.perf_counter()
    return {
        "init_ms": init_ms,
        "first_ms": loop.first_ms,
        "warmup_ms": loop.warmup_ms,
        "samples_ms": loop.samples_ms,
        "series_wall_s": loop.wall_s,
        "late_starts": loop.late_starts,
        "cpu_s": cpu1 - cpu0,
        "wall_s": wall1 - wall0,
        "vm_hwm_kb": _proc_self_status_kb("VmHWM"),
        "rss_before_load_kb": rss_before_kb,
        "input_shape": list(detail.shape),
        "ops": model.ops(),
    }


def _outputs(job: dict[str, Any]) -> dict[str, Any]:
    from perflab.workloads.host import HostModel

    model = HostModel(Path(job["model"]), int(job["threads"]), str(job["delegate"]))
    with np.load(job["frames_npz"]) as data:
        names = list(data.files)
        outs = {name: model.upscale(data[name]) for name in names}
    np.savez(job["out_npz"], **outs)  # type: ignore[arg-type]
    return {"frames": names}


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.environ.get(PARENT_PID_ENV, "")
    if not die_with_parent(int(parent) if parent.isdigit() else None):
        return 4  # perflab is gone: nothing to report to
    job = json.loads(Path(argv[1]).read_text())
    try:
        result = _timing(job) if job["kind"] == "timing" else _outputs(job)
        print(json.dumps({"ok": True, **result}))
        return 0
    except PerflabError as exc:
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv))
