"""The Device protocol: what every kind of device (local, android, emulated) offers a run."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

import numpy as np

from perflab.core.types import ModelArtifact, ProfileResult, TimingRequest, TimingResult


class DeviceKind(StrEnum):
    LOCAL = "local"
    ANDROID = "android"
    EMULATED = "emulated"


@dataclass(frozen=True)
class DeviceInfo:
    serial: str
    kind: DeviceKind
    model: str
    soc: str | None
    abi: str | None = None
    sdk: int | None = None
    fingerprint: str | None = None
    rooted: bool | None = None
    tflite_version: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ThermalReading:
    temp_c: float | None
    source: str | None
    missing_reason: str | None = None


@runtime_checkable
class Device(Protocol):
    """One device. Methods raise DeviceError (or a subclass) with full context on failure."""

    @property
    def serial(self) -> str: ...

    def info(self) -> DeviceInfo: ...

    def temperature(self) -> ThermalReading:
        """Current skin/SoC temperature, or a reading that says why there is none."""
        ...

    def prepare(self, run_id: str) -> None:
        """Tune the device for measurement (journaled); must be undone by ``restore``."""
        ...

    def restore(self) -> None: ...

    def run_timing(self, model: ModelArtifact, request: TimingRequest) -> TimingResult: ...

    def run_outputs(
        self, model: ModelArtifact, lr_frames: list[np.ndarray], threads: int, delegate: str, timeout_s: float
    ) -> list[np.ndarray]:
        """Run the model on each LR frame (float32 RGB in [0,1], HxWx3) *on the device*;
        return the device's outputs as float32 RGB in [0,1] (H·s × W·s × 3)."""
        ...

    def run_profile(
        self, model: ModelArtifact, threads: int, delegate: str, timeout_s: float
    ) -> ProfileResult | None:
        """Per-layer timing in a separate pass, or None if the device cannot profile."""
        ...
