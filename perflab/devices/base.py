"""The Device protocol: what every kind of device (local, android, emulated) offers a run.

A device owns its identity (``info``), its transport (shell, push/pull, file read/write on
the concrete classes), tuning with the journal (``prepare``/``restore``), thermal readings, and
whether it is reachable (``wait_online``). It does not know how to run a benchmark: that is
``perflab.workloads`` (``workload_for(device, workdir)``), which drives a device. Nothing in
``perflab.devices`` imports ``perflab.workloads``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


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

    def restore(self) -> None:
        """Undo every journaled change, newest first. Raises DeviceGoneError when the device
        is not there (the changes stay journaled for a later restore)."""
        ...

    def wait_online(self, timeout_s: float) -> bool:
        """After a DeviceGoneError: wait up to ``timeout_s`` for the device to be back and ready
        (for a network serial ``host:port``, ask the adb server to connect it again). True when
        it is ready; False when the time ran out. The runner calls this before it fails the
        remaining cells of a device that dropped."""
        ...
