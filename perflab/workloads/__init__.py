"""Workloads: running a TFLite model on a device (see perflab.workloads.base).

``workload_for(device, workdir)`` is the one entry point the runner needs. The concrete
workloads are imported lazily so that ``python -m perflab.workloads.host_worker`` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from perflab.workloads.base import Workload

if TYPE_CHECKING:
    from perflab.devices.base import Device

__all__ = ["Workload", "workload_for"]


def workload_for(device: Device, workdir: Path) -> Workload:
    """The workload that runs models on ``device``; its host files go under ``workdir``
    (a folder inside the run folder, created when needed)."""
    from perflab.devices.capabilities import HostDevice, ShellDevice

    if isinstance(device, HostDevice):
        from perflab.workloads.local import LocalWorkload

        return LocalWorkload(device, workdir)
    if isinstance(device, ShellDevice):
        from perflab.workloads.phone import PhoneWorkload

        return PhoneWorkload(device, workdir)
    raise TypeError(f"no workload for a device of type {type(device).__name__}")
