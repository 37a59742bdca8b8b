"""``EmulatedPhone``: one emulated Android phone behind the real adb server."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from perflab.emulator.adbd import AdbdServer, Faults
from perflab.emulator.profiles import load_profile
from perflab.emulator.provision import provision
from perflab.emulator.runtime import PhoneRuntime
from perflab.errors import DeviceError, UserInputError

if TYPE_CHECKING:
    import adbutils

#: The adb server scans these ports for emulators; a phone there would be listed twice.
ADB_EMULATOR_PORTS = range(5554, 5586)
DEFAULT_ADB_PORT = 5037


def _free_port() -> int:
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in ADB_EMULATOR_PORTS:
            return port
    raise DeviceError("emulator", "could not find a free TCP port outside 5554-5585")


class EmulatedPhone:
    """An emulated phone: profile, sandboxed filesystem, physics and an adbd on 127.0.0.1.

    Use ``EmulatedPhone.start(...)`` (or as a context manager), then
    ``connect_to_adb_server(phone)`` so the real adb server lists it as ``127.0.0.1:PORT``.
    """

    def __init__(self, rt: PhoneRuntime, port: int, faults: Faults, owns_state_dir: bool) -> None:
        self.rt = rt
        self.port = port
        self.faults = faults
        self._owns_state_dir = owns_state_dir
        self.adbd = AdbdServer(rt, port, faults, on_reboot=self._after_reboot)
        self.reboots = 0
        self._booted = threading.Condition()
        rt.request_reboot = self.reboot

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def start(cls, profile: str = "pixel7", port: int | None = None, state_dir: Path | None = None,
              faults: Faults | None = None, *, provisioned: bool = True) -> EmulatedPhone:
        """``provisioned``: the emulated benchmark_model is already at the lab's path (see ``provision``)."""
        if port is not None and port in ADB_EMULATOR_PORTS:
            raise UserInputError(f"port {port} is in 5554-5585, which the adb server scans for emulators "
                                 "(the phone would be listed twice); pick another")
        prof = load_profile(profile)
        owns = state_dir is None
        sd = Path(tempfile.mkdtemp(prefix=f"perflab-phone-{prof.name}-")) if state_dir is None else state_dir
        sd.mkdir(parents=True, exist_ok=True)
        rt = PhoneRuntime.create(prof, sd)
        if provisioned:
            provision(rt)
        faults = faults or Faults()
        for node in faults.missing_nodes:
            rt.fs.hide(node)
        phone = cls(rt, port if port is not None else _free_port(), faults, owns)
        rt.physics.start()
        phone.adbd.start()
        return phone

    @property
    def serial(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return self.serial

    @property
    def state_dir(self) -> Path:
        return self.rt.state_dir

    def connect(self, adb: adbutils.AdbClient | None = None, timeout_s: float = 15.0) -> EmulatedPhone:
        connect_to_adb_server(self, adb, timeout_s=timeout_s)
        return self

    def stop(self) -> None:
        self.adbd.stop()
        self.rt.procs.kill_all()
        self.rt.physics.stop()
        if self._owns_state_dir:
            shutil.rmtree(self.rt.state_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ faults
    def reboot(self, delay_s: float = 0.0, down_s: float | None = None) -> None:
        """Power-cycle: off the bus now (after ``delay_s``), back after ``down_s``. Files and settings
        are kept; processes, battery overrides and run-time properties (all but ``persist.*``) are not."""
        if delay_s > 0:
            time.sleep(delay_s)
        self.adbd.go_down(self.faults.reboot_down_s if down_s is None else down_s, reboot=True)

    def drop(self, down_s: float = 0.0) -> None:
        """Drop the adb connection (as a cable pull would); reachable again after ``down_s``."""
        self.adbd.go_down(down_s)

    def _after_reboot(self, down_s: float) -> None:
        self.rt.boot_mono_s = time.monotonic()
        with self._booted:
            self.reboots += 1
            self._booted.notify_all()
        del down_s

    def wait_for_reboots(self, count: int, timeout_s: float) -> bool:
        """Block until this phone has booted ``count`` times after a reboot; False on timeout."""
        with self._booted:
            return self._booted.wait_for(lambda: self.reboots >= count, timeout=timeout_s)


# ---------------------------------------------------------------------- adb server


def adb_executable() -> str:
    """The ``adb`` the server runs from: the one on PATH (Debian's), else adbutils' bundled one."""
    found = shutil.which("adb")
    if found:
        return found
    import adbutils

    return str(adbutils.adb_path())


def ensure_adb_server(port: int | None = None, timeout_s: float = 30.0) -> adbutils.AdbClient:
    """Start the real adb server on ``port`` (default: $ANDROID_ADB_SERVER_PORT or 5037) if needed."""
    import adbutils

    port = port if port is not None else int(os.environ.get("ANDROID_ADB_SERVER_PORT", DEFAULT_ADB_PORT))
    client = adbutils.AdbClient(host="127.0.0.1", port=port, socket_timeout=timeout_s)
    # Probe with a plain socket: adbutils, on a refused connection, would start a server on
    # the *default* port instead of this one.
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0):
            pass
        return client
    except OSError:
        pass
    try:
        subprocess.run([adb_executable(), "-P", str(port), "start-server"], check=True, timeout=timeout_s,
                       capture_output=True)
    except (subprocess.SubprocessError, OSError) as exc:
        raise DeviceError("adb", f"could not start the adb server on port {port}: {exc}") from exc
    client.server_version()
    return client


def connect_to_adb_server(phone: EmulatedPhone, adb: adbutils.AdbClient | None = None,
                          timeout_s: float = 15.0) -> None:
    """``adb connect 127.0.0.1:PORT`` and wait until the server lists the phone as ``device``."""
    client = adb if adb is not None else ensure_adb_server()
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            last = client.connect(phone.serial, timeout=max(1.0, deadline - time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last = str(exc)
        for _ in range(20):
            states = {d.serial: d.state for d in client.list()}
            if states.get(phone.serial) == "device":
                return
            time.sleep(0.1)
    raise DeviceError(phone.serial, f"emulated phone did not come online in the adb server: {last}")


def disconnect_from_adb_server(phone: EmulatedPhone, adb: adbutils.AdbClient | None = None) -> None:
    client = adb if adb is not None else ensure_adb_server()
    with contextlib.suppress(Exception):  # already gone
        client.disconnect(phone.serial)
