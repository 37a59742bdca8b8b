"""The emulated-phone factory behind the ``phones`` and ``module_phones`` fixtures.

Every phone it starts is connected to the session's private adb server (unless asked not to) and,
at teardown, disconnected from it and stopped — also when the test failed — so the next test
sees a server without this test's phones. Tests that count devices still filter by their own
serials: the server is shared by the whole session.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Self

from perflab.emulator.adbd import Faults
from perflab.emulator.phone import EmulatedPhone, connect_to_adb_server, disconnect_from_adb_server

if TYPE_CHECKING:
    import adbutils

    from perflab.devices.adb import Adb
    from perflab.devices.android import AndroidDevice


class PhoneFactory:
    """Starts emulated phones for one test (or one module) and stops them all at the end."""

    def __init__(self, server: adbutils.AdbClient) -> None:
        self.server = server
        self._started: list[EmulatedPhone] = []
        self._stopped: set[int] = set()

    def start(self, profile: str = "pixel7", *, state_dir: Path | None = None, faults: Faults | None = None,
              provisioned: bool = True, connect: bool = True, connect_timeout_s: float = 15.0) -> EmulatedPhone:
        """A started phone, listed as ``device`` by the session's adb server when ``connect``."""
        phone = EmulatedPhone.start(profile, state_dir=state_dir, faults=faults, provisioned=provisioned)
        self._started.append(phone)
        if connect:
            connect_to_adb_server(phone, self.server, timeout_s=connect_timeout_s)
        return phone

    def connect(self, phone: EmulatedPhone, timeout_s: float = 15.0) -> EmulatedPhone:
        connect_to_adb_server(phone, self.server, timeout_s=timeout_s)
        return phone

    def stop(self, phone: EmulatedPhone) -> None:
        """Disconnect and stop one phone now (a test that needs it gone before its end)."""
        if id(phone) in self._stopped:
            return
        self._stopped.add(id(phone))
        disconnect_from_adb_server(phone, self.server)
        phone.stop()

    def close(self) -> None:
        """Every phone still running: disconnected, then stopped; the first error is raised after all."""
        errors: list[BaseException] = []
        for phone in reversed(self._started):
            try:
                self.stop(phone)
            except Exception as exc:  # noqa: BLE001 - stop the others first, then report it
                errors.append(exc)
        self._started.clear()
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def placeholder_binary(folder: Path) -> Path:
    """The user-supplied benchmark_model: a placeholder the emulated phones run their own tool for."""
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "benchmark_model"
    p.write_text("#!/system/bin/sh\n# placeholder for the user's benchmark_model binary\n")
    return p


@contextmanager
def android_device(factory: PhoneFactory, adb: Adb, profile: str, folder: Path
                   ) -> Iterator[tuple[EmulatedPhone, AndroidDevice]]:
    """A started phone of ``profile`` and perflab's AndroidDevice on it (a placeholder benchmark_model,
    state under ``folder``); the device is closed at the end, the phone stopped by its factory."""
    from perflab.devices.android import AndroidDevice

    phone = factory.start(profile)
    d = AndroidDevice(adb, phone.serial, benchmark_binary=placeholder_binary(folder), state_dir=folder / "state")
    try:
        yield phone, d
    finally:
        d.close()
