"""Drivers find a device by what it offers (perflab.devices.capabilities), and asking never talks to it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from perflab.devices.adb import Adb
from perflab.devices.android import AndroidDevice
from perflab.devices.capabilities import ConfiguredDevice, HostDevice, ShellDevice
from perflab.devices.local import LocalDevice
from perflab.errors import DeviceError
from perflab.telemetry.session import stream_config
from perflab.telemetry.summary import StreamConfig
from perflab.workloads import workload_for
from perflab.workloads.local import LocalWorkload
from perflab.workloads.phone import PhoneWorkload


@pytest.fixture
def unreachable_phone() -> AndroidDevice:
    """A phone behind an adb server port where nothing listens: any device I/O fails."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return AndroidDevice(Adb(port=port, timeout_s=2.0), "capability-test", timeout_s=2.0)


def test_a_phone_offers_a_shell_and_a_config_and_asking_does_no_io(unreachable_phone: AndroidDevice,
                                                                    tmp_path: Path) -> None:
    with pytest.raises(DeviceError):  # the premise: reading its config talks to the phone
        _ = unreachable_phone.config
    assert isinstance(unreachable_phone, ShellDevice)
    assert isinstance(unreachable_phone, ConfiguredDevice)
    assert not isinstance(unreachable_phone, HostDevice)
    # the runner picks the workload where no device error is caught: picking must not touch the phone
    assert isinstance(workload_for(unreachable_phone, tmp_path), PhoneWorkload)


def test_this_machine_runs_the_host_interpreter(tmp_path: Path) -> None:
    local = LocalDevice()
    assert isinstance(local, HostDevice)
    assert not isinstance(local, ShellDevice)
    assert not isinstance(local, ConfiguredDevice)
    assert isinstance(workload_for(local, tmp_path), LocalWorkload)
    assert stream_config(local) == StreamConfig()  # no device config: the defaults
