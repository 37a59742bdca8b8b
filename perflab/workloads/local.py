"""The host interpreter on the ``local`` device, one worker process per job.

Each series and each quality pass runs in a fresh worker process
(perflab.workloads.host_worker) so that its peak RSS and CPU time, read from /proc, belong to
that run alone. The worker:

* runs in its own session and process group, so a Ctrl-C in the terminal (SIGINT to the
  foreground process group) reaches only perflab, which decides; the worker also ignores
  SIGINT itself, so it never prints a traceback that would be recorded as its crash;
* dies with its parent (PR_SET_PDEATHSIG, set by the worker on start-up; see host_worker);
* is killed with its whole process group by ``cancel()`` or when its deadline passes.

Job files and inputs live in a temporary folder under the workload's ``workdir`` (inside the
run folder), removed after each job.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np

from perflab.core.proc import busy_pct, read_cpu_times
from perflab.core.types import ModelArtifact, ProfileMissing, ProfileResult, TimingRequest, TimingResult
from perflab.core.units import hz_to_period_ms
from perflab.devices.capabilities import HostDevice
from perflab.devices.local import LOCAL_SERIAL
from perflab.errors import DeviceError, DeviceTimeoutError, ModelError, RunInterrupted, UnsupportedError
from perflab.workloads.host import HOST_DELEGATES

LOCAL_PROFILE_MISSING = "LiteRT's Python interpreter exposes no per-op profiler (benchmark_model is not available here)"
from perflab.workloads.host_worker import PARENT_PID_ENV  # the worker exits if its parent is not this PID


class LocalWorkload:
    """Runs models on this machine through LiteRT in worker processes. Implements Workload."""

    def __init__(self, device: HostDevice, workdir: Path) -> None:
        self.device = device
        self.workdir = workdir
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._cancelled = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------

    def check_ready(self) -> None:
        """Nothing to provision here: LiteRT is a dependency of perflab itself."""
        self._raise_if_cancelled()

    def reconnected(self) -> None:
        """This machine never drops: nothing to forget."""

    def cancel(self) -> None:
        self._cancelled.set()
        with self._lock:
            proc = self._proc
        if proc is not None:
            _kill_group(proc)

    def _raise_if_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise RunInterrupted("local: cancelled")

    # -- the worker ----------------------------------------------------------------------

    def _tmpdir(self, prefix: str) -> tempfile.TemporaryDirectory[str]:
        self.workdir.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=prefix, dir=self.workdir)

    def _run_worker(self, job: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        self._raise_if_cancelled()
        with self._tmpdir("job-") as tmp:
            job_path = Path(tmp) / "job.json"
            job_path.write_text(json.dumps(job))
            cmd = [self.device.interpreter, "-m", "perflab.workloads.host_worker", str(job_path)]
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **{PARENT_PID_ENV: str(os.getpid())})
            with self._lock:
                self._raise_if_cancelled()
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
                self._proc = proc
            try:
                stdout, stderr = proc.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired as exc:
                _kill_group(proc)
                proc.communicate()
                self._raise_if_cancelled()
                raise DeviceTimeoutError(LOCAL_SERIAL, f"worker timed out after {timeout_s:g} s",
                                         command=" ".join(cmd)) from exc
            finally:
                with self._lock:
                    self._proc = None
            self._raise_if_cancelled()
            return _worker_result(cmd, proc.returncode, stdout, stderr)

    # -- Workload ------------------------------------------------------------------------

    def run_timing(self, model: ModelArtifact, request: TimingRequest) -> TimingResult:
        if request.delegate not in HOST_DELEGATES:
            raise UnsupportedError(f"delegate {request.delegate} is not available on the local device")
        with self._tmpdir("in-") as tmp:
            input_npy = None
            if request.input_frame is not None:
                input_npy = str(Path(tmp) / "input.npy")
                np.save(input_npy, np.asarray(request.input_frame, dtype=np.float32))
            job = {
                "kind": "timing", "model": str(model.path), "threads": request.threads,
                "delegate": request.delegate, "lr_height": request.lr_height, "lr_width": request.lr_width,
                "warmup": request.warmup, "iterations": request.iterations,
                "fps": request.fps, "input_npy": input_npy,
            }
            before = read_cpu_times()
            r = self._run_worker(job, request.timeout_s)
            system_pct = busy_pct(before, read_cpu_times())
        return timing_from_worker(r, request, system_cpu_measured=system_pct is not None)

    def run_outputs(
        self, model: ModelArtifact, lr_frames: list[np.ndarray], threads: int, delegate: str, timeout_s: float
    ) -> list[np.ndarray]:
        with self._tmpdir("q-") as tmp:
            frames_npz, out_npz = Path(tmp) / "frames.npz", Path(tmp) / "out.npz"
            np.savez(frames_npz, **{f"f{i:05d}": f for i, f in enumerate(lr_frames)})  # type: ignore[arg-type]
            job = {
                "kind": "outputs", "model": str(model.path), "threads": threads, "delegate": delegate,
                "frames_npz": str(frames_npz), "out_npz": str(out_npz),
            }
            self._run_worker(job, timeout_s)
            with np.load(out_npz) as data:
                return [np.array(data[f"f{i:05d}"]) for i in range(len(lr_frames))]

    def run_profile(
        self, model: ModelArtifact, threads: int, delegate: str, timeout_s: float, *,
        lr_width: int = 0, lr_height: int = 0,
    ) -> ProfileResult | ProfileMissing:
        """LiteRT's Python interpreter exposes no per-op profiler: missing, with that reason."""
        self._raise_if_cancelled()
        return ProfileMissing(LOCAL_PROFILE_MISSING)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the worker's process group (it leads its own session); it may be gone already."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def _worker_result(cmd: list[str], returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    """The worker's last stdout line as JSON; DeviceError (worker crashed) or ModelError."""
    last = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    try:
        result: dict[str, Any] = json.loads(last)
    except json.JSONDecodeError:
        raise DeviceError(
            LOCAL_SERIAL, "worker crashed", command=" ".join(cmd), exit_code=returncode,
            stdout=stdout, stderr=stderr,
        ) from None
    if not result.get("ok"):
        raise ModelError(str(result.get("error")))
    result["_stderr"] = stderr
    return result


def timing_from_worker(r: dict[str, Any], request: TimingRequest, *, system_cpu_measured: bool) -> TimingResult:
    """The worker's timing job result → TimingResult (pure)."""
    wall_s = float(r["wall_s"])
    cpu_pct = 100.0 * float(r["cpu_s"]) / wall_s if wall_s > 0 else None
    warnings: list[str] = []
    if request.fps and r["late_starts"]:
        warnings.append(
            f"{r['late_starts']} of {request.iterations} paced runs started late: inference does not fit "
            f"the {hz_to_period_ms(request.fps):.1f} ms frame budget"
        )
    return TimingResult(
        mode=request.mode,
        init_ms=float(r["init_ms"]),
        first_ms=float(r["first_ms"]),
        warmup_ms=[float(x) for x in r["warmup_ms"]],
        samples_ms=[float(x) for x in r["samples_ms"]],
        mem_peak_mb=(r["vm_hwm_kb"] / 1024.0) if r.get("vm_hwm_kb") else None,
        mem_source="/proc/<worker>/status VmHWM (peak RSS of the worker process, incl. Python + LiteRT)",
        cpu_load_pct=cpu_pct,
        wall_s=wall_s,
        tool_log=str(r.get("_stderr", ""))[-4000:],
        warnings=warnings,
        delegate_info=[f"ops: {' '.join(r.get('ops', []))}"] if r.get("ops") else [],
        missing={} if system_cpu_measured else {"system_cpu_pct": "/proc/stat did not advance"},
    )
