"""The phone workload's shell forms, checked with this machine's real POSIX shell (the same
``sh -c`` semantics as Android's mksh/toybox): the benchmark runs under the PID it wrote, so a
cancel kills exactly that process. The workload against emulated phones is in test_android.py."""

from __future__ import annotations

import shlex
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from perflab.devices.adb import quote_argv
from perflab.workloads.phone import _PID_PROBE, decode_output, pid_wrapped, raw_tensor_bytes


def test_pid_probe_prints_the_same_pid_twice_where_exec_keeps_it() -> None:
    out = subprocess.run(["sh", "-c", _PID_PROBE], capture_output=True, text=True, check=True).stdout.split()
    assert len(out) == 2 and out[0] == out[1] and out[0].isdigit()


def test_the_wrapped_command_runs_under_the_pid_it_wrote(tmp_path: Path) -> None:
    pid_file = tmp_path / "bench mark's.pid"  # quoted: spaces and a quote reach the file name literally
    ready = tmp_path / "ready"
    cmd = pid_wrapped(quote_argv(["sh", "-c", f"touch {shlex.quote(str(ready))}; exec sleep 60"]), str(pid_file))
    proc = subprocess.Popen(["sh", "-c", cmd])
    try:
        # the PID file is written before exec, so it is there once the command runs
        deadline = time.monotonic() + 60  # a guard against a hang only
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        assert int(pid_file.read_text()) == proc.pid
        subprocess.run(["kill", "-9", pid_file.read_text().strip()], check=True)
        assert proc.wait() == -9
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("dtype,scale", [(np.uint8, 1 / 255.0), (np.float32, 0.0)])
def test_tensor_bytes_round_trip(dtype: type, scale: float) -> None:
    frame = np.linspace(0.0, 1.0, 2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    raw = raw_tensor_bytes(frame, np.dtype(dtype), scale, 0)
    back = decode_output(raw, (1, 2, 3, 3), np.dtype(dtype), scale, 0)
    assert back.shape == (2, 3, 3) and back.dtype == np.float32
    assert float(np.abs(back - frame).max()) <= (0.5 / 255.0 + 1e-6 if scale else 0.0)
