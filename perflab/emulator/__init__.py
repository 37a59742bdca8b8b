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
