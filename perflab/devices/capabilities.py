"""What a device can do, as runtime-checkable protocols: callers find a driver by capability.

As in labgrid, where a driver binds to the protocol a resource offers, perflab's drivers ask a
device what it offers, never which class it is:

- :class:`ConfiguredDevice`: a device config describes it (sysfs nodes, battery convention,
  thermal zone, workdir, its power meter). The telemetry stream config and the meter plan use it.
- :class:`ShellDevice`: reached through a shell with push/pull (``dev``, the adb transport), a
  configured device. The phone workload, the phone sampler, the phone trace capture and the
  device clock offset drive it.
- :class:`HostDevice`: this machine; models run in worker processes of the host interpreter and
  the local sampler reads its processes. The local workload and the local sampler drive it.

``isinstance(device, ShellDevice)`` must never talk to the device (it runs where no error is
caught, e.g. when the runner picks a workload). On Python 3.11 it reads every member the protocol
names at runtime, so members that may load the device config over adb (``config``,
``loaded_config``, ``benchmark_remote_path``) are declared for the type checker only; at runtime a
configured device is recognised by its ``load_config`` method, which is called by no check.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from perflab.devices.base import Device

if TYPE_CHECKING:
    from perflab.devices.adb import AdbDevice, ShellResult
    from perflab.devices.android import ZoneReading
    from perflab.devices.config import DeviceConfig, LoadedDeviceConfig
    from perflab.devices.journal import Change, Journal

__all__ = ["ConfiguredDevice", "HostDevice", "ShellDevice"]


@runtime_checkable
class ConfiguredDevice(Device, Protocol):
    """A device a device config describes."""

    def load_config(self) -> LoadedDeviceConfig:
        """The device config (found from the device's properties on first use: may talk to the device)."""
        ...

    if TYPE_CHECKING:  # for the type checker only: reading these loads the config (see the module docstring)
        @property
        def config(self) -> DeviceConfig: ...

        @property
        def loaded_config(self) -> LoadedDeviceConfig: ...


@runtime_checkable
class ShellDevice(ConfiguredDevice, Protocol):
    """A configured device reached through a shell with push/pull (``dev``: the transport)."""

    dev: AdbDevice
    timeout_s: float
    journal: Journal

    def sh(self, argv: list[str], *, timeout_s: float | None = None, check: bool = True,
           root: bool = False) -> ShellResult: ...

    def read_file(self, path: str, *, root: bool = False) -> str | None: ...

    def write_file(self, path: str, value: str, *, root: bool) -> None: ...

    def is_rooted(self) -> bool: ...

    def thermal_zones(self) -> list[ZoneReading]: ...

    def benchmark_host_path(self) -> Path | None: ...

    def journal_process(self, pid_file: str, marker: str, what: str) -> Change: ...

    def process_ended(self, change: Change) -> None: ...

    def stop_process(self, pid_file: str, marker: str) -> None: ...

    if TYPE_CHECKING:  # for the type checker only: reading it loads the config
        @property
        def benchmark_remote_path(self) -> str: ...


@runtime_checkable
class HostDevice(Device, Protocol):
    """This machine: models run in worker processes of the host interpreter."""

    @property
    def interpreter(self) -> str:
        """The host interpreter that runs the model workers (``sys.executable``)."""
        ...
