"""The Workload protocol: running a TFLite model on one device, as the runner sees it.

A workload drives a device (perflab.devices): ``benchmark_model`` on a phone
(perflab.workloads.phone), the host interpreter in a worker process on ``local``
(perflab.workloads.local). ``perflab.workloads.workload_for(device, workdir)`` picks one.

Lifecycle, per device and run: ``check_ready()`` once before the device's first cell (raises
DeviceNotReadyError when no cell can run, e.g. a phone without benchmark_model), then any
number of ``run_timing`` / ``run_outputs`` / ``run_profile`` calls. ``cancel()`` may be
called from any thread (a signal handler's): it kills what is running and makes the call in
flight — and every later call — raise RunInterrupted. Every file a workload writes on the host
lies under its ``workdir`` (inside the run folder).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from perflab.core.types import ModelArtifact, ProfileMissing, ProfileResult, TimingRequest, TimingResult


@runtime_checkable
class Workload(Protocol):
    def check_ready(self) -> None:
        """Raise DeviceNotReadyError (naming what to configure, and where) when this device
        cannot run any cell; called once, before the device's first cell."""
        ...

    def run_timing(self, model: ModelArtifact, request: TimingRequest) -> TimingResult:
        """One timed series (paced or back-to-back) of ``model`` on the device."""
        ...

    def run_outputs(
        self, model: ModelArtifact, lr_frames: list[np.ndarray], threads: int, delegate: str, timeout_s: float
    ) -> list[np.ndarray]:
        """Run the model on each LR frame (float32 RGB in [0,1], H×W×3) *on the device*;
        return the device's outputs as float32 RGB in [0,1] (H·s × W·s × 3), one per frame."""
        ...

    def run_profile(
        self, model: ModelArtifact, threads: int, delegate: str, timeout_s: float, *,
        lr_width: int = 0, lr_height: int = 0,
    ) -> ProfileResult | ProfileMissing:
        """Per-layer timing in its own pass (never the timed one), or why there is none, on an
        LR input of ``lr_width`` × ``lr_height`` (0: the geometry of this model's last timing run,
        else the model's own input shape)."""
        ...

    def cancel(self) -> None:
        """Thread-safe: kill what runs now; the call in flight raises RunInterrupted."""
        ...

    def reconnected(self) -> None:
        """The device dropped and came back: forget what this workload knew was on it (it may
        have been wiped, reflashed or rebooted); the next call checks again and pushes what is
        missing or different."""
        ...
