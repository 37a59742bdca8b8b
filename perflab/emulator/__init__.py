"""Emulated Android phones that a real adb server talks to exactly as to a phone.

Public API (kept stable for the Android device code and the CLI):

* ``EmulatedPhone.start(profile="pixel7", port=None, state_dir=None, faults=None, provisioned=True)``
  (provisioned: the emulated benchmark_model is already at the lab path, see ``provision``);
  ``.serial`` ("127.0.0.1:PORT"), ``.connect(adb)``, ``.stop()``, ``.reboot()``, ``.drop()``;
  a context manager.
* ``Faults``: drop after N seconds / N commands, slow transfers, missing sysfs nodes, reboot time.
* ``ensure_adb_server(port=None)`` starts the real adb server if needed, returns an AdbClient.
* ``connect_to_adb_server(phone, adb=None)``: ``adb connect`` + wait until it is ``device``.
* ``available_profiles()``, ``load_profile(name)``.

Everything an emulated phone reports is emulated: ``getprop ro.perflab.emulated`` is ``1``
and the emulated ``benchmark_model`` says so in its first line.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perflab.emulator.adbd import Faults
    from perflab.emulator.phone import (
        EmulatedPhone,
        adb_executable,
        connect_to_adb_server,
        disconnect_from_adb_server,
        ensure_adb_server,
    )
    from perflab.emulator.profiles import Profile, available_profiles, load_profile

EMULATED_PROP = "ro.perflab.emulated"

#: where each public name lives. Loaded on first use, not with the package: every emulated
#: ``benchmark_model`` run is a fresh ``python -m perflab.emulator.benchmark_model``, which
#: imports this package first, and the phone side (adbd, physics, pydantic profiles) was half of
#: its start-up (0.22 of 0.42 s of CPU, paid for every cell's every run and every quality frame)
_HOME = {
    "Faults": "perflab.emulator.adbd",
    "EmulatedPhone": "perflab.emulator.phone",
    "adb_executable": "perflab.emulator.phone",
    "connect_to_adb_server": "perflab.emulator.phone",
    "disconnect_from_adb_server": "perflab.emulator.phone",
    "ensure_adb_server": "perflab.emulator.phone",
    "Profile": "perflab.emulator.profiles",
    "available_profiles": "perflab.emulator.profiles",
    "load_profile": "perflab.emulator.profiles",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


__all__ = [
    "EMULATED_PROP",
    "EmulatedPhone",
    "Faults",
    "Profile",
    "adb_executable",
    "available_profiles",
    "connect_to_adb_server",
    "disconnect_from_adb_server",
    "ensure_adb_server",
    "load_profile",
]
