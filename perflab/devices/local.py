"""The ``local`` device: this machine, measured for real through LiteRT.

Each series and each quality pass runs in a fresh worker process
(perflab.workloads.host_worker) so that its peak RSS and CPU time, read from /proc, belong to
that run alone. There is nothing to tune or restore on this machine; temperature, battery,
GPU and cpufreq are reported missing with the reason when the machine has none.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from perflab.core.types import ModelArtifact, ProfileResult, TimingRequest, TimingResult
from perflab.devices.base import DeviceInfo, DeviceKind, ThermalReading
from perflab.errors import DeviceError, ModelError, UnsupportedError
from perflab.telemetry.proc import busy_pct, parse_cpu_model, read_cpu_times
from perflab.workloads.host import HOST_DELEGATES

LOCAL_SERIAL = "local"
THERMAL_ROOT = Path("/sys/class/thermal")


def _litert_version() -> str | None:
    try:
        from importlib.metadata import version

        return f"ai-edge-litert {version('ai-edge-litert')}"
    except Exception:  # noqa: BLE001 - metadata lookup is best effort
        return None


class LocalDevice:
    """This machine. Implements perflab.devices.base.Device."""

    def __init__(self, workdir: Path | None = None) -> None:
        self._workdir = workdir

    @property
    def serial(self) -> str:
        return LOCAL_SERIAL

    def info(self) -> DeviceInfo:
        try:
            cpu = parse_cpu_model(Path("/proc/cpuinfo").read_text())
        except OSError:
            cpu = None
        return DeviceInfo(
            serial=LOCAL_SERIAL,
            kind=DeviceKind.LOCAL,
            model=f"{platform.node()} ({platform.system()} {platform.machine()}, {os.cpu_count()} CPUs)",
            soc=cpu,
            abi=platform.machine(),
            tflite_version=_litert_version(),
            extra={"python": platform.python_version(), "kernel": platform.release()},
        )

    def temperature(self) -> ThermalReading:
        zones = sorted(THERMAL_ROOT.glob("thermal_zone*/temp")) if THERMAL_ROOT.exists() else []
        temps: list[tuple[float, str]] = []
        for z in zones:
            try:
                temps.append((int(z.read_text().strip()) / 1000.0, z.parent.name))
            except (OSError, ValueError):
                continue
        if not temps:
            return ThermalReading(None, None, "this machine exposes no thermal zones (/sys/class/thermal)")
        t, name = max(temps)
        return ThermalReading(t, f"{THERMAL_ROOT}/{name} (hottest zone)")

    def prepare(self, run_id: str) -> None:
        """Nothing is changed on this machine (no governor or charging control here)."""

    def restore(self) -> None:
        """Nothing to undo."""

    # -- workloads -----------------------------------------------------------------------

    def _run_worker(self, job: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="perflab-job-", dir=self._workdir) as tmp:
            job_path = Path(tmp) / "job.json"
            job_path.write_text(json.dumps(job))
            cmd = [sys.executable, "-m", "perflab.workloads.host_worker", str(job_path)]
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
            except subprocess.TimeoutExpired as exc:
                raise DeviceError(LOCAL_SERIAL, f"worker timed out after {timeout_s:g} s", command=" ".join(cmd)) from exc
            last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
            try:
                result: dict[str, Any] = json.loads(last)
            except json.JSONDecodeError:
                raise DeviceError(
                    LOCAL_SERIAL, "worker crashed", command=" ".join(cmd), exit_code=proc.returncode,
                    stdout=proc.stdout, stderr=proc.stderr,
                ) from None
            if not result.get("ok"):
                raise ModelError(str(result.get("error")))
            result["_stderr"] = proc.stderr
            return result

    def run_timing(self, model: ModelArtifact, request: TimingRequest) -> TimingResult:
        if request.delegate not in HOST_DELEGATES:
            raise UnsupportedError(f"delegate {request.delegate} is not available on the local device")
        with tempfile.TemporaryDirectory(prefix="perflab-in-", dir=self._workdir) as tmp:
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
        wall_s = float(r["wall_s"])
        cpu_pct = 100.0 * float(r["cpu_s"]) / wall_s if wall_s > 0 else None
        warnings: list[str] = []
        if request.fps and r["late_starts"]:
            warnings.append(
                f"{r['late_starts']} of {request.iterations} paced runs started late: inference does not fit "
                f"the {1000 / request.fps:.1f} ms frame budget"
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
            tool_log=r.get("_stderr", "")[-4000:],
            warnings=warnings,
            delegate_info=[f"ops: {' '.join(r.get('ops', []))}"] if r.get("ops") else [],
            missing={} if system_pct is not None else {"system_cpu_pct": "/proc/stat did not advance"},
        )

    def run_outputs(
        self, model: ModelArtifact, lr_frames: list[np.ndarray], threads: int, delegate: str, timeout_s: float
    ) -> list[np.ndarray]:
        with tempfile.TemporaryDirectory(prefix="perflab-q-", dir=self._workdir) as tmp:
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
        self, model: ModelArtifact, threads: int, delegate: str, timeout_s: float
    ) -> ProfileResult | None:
        """LiteRT's Python interpreter exposes no per-op profiler: none on this device."""
        return None


LOCAL_PROFILE_MISSING = "LiteRT's Python interpreter exposes no per-op profiler (benchmark_model is not available here)"
