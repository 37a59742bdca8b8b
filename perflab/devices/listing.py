"""The phones the adb server knows, one row each (``perflab devices list``)."""

from __future__ import annotations

from perflab.devices.adb import Adb
from perflab.errors import PerflabError


def running_adb() -> Adb:
    """The adb server, started first when it is not running."""
    from perflab.devices.android import adb_server_running, start_adb_server

    if not adb_server_running():
        start_adb_server()
    return Adb()


def device_rows(adb: Adb) -> list[dict[str, object]]:
    """One row per device the adb server knows (ready or not): serial, state, model, SoC, SDK,
    fingerprint, rooted, kind; a ready phone that cannot be read has its ``error``."""
    from perflab.devices.android import AndroidDevice

    rows: list[dict[str, object]] = []
    for e in adb.devices():
        row: dict[str, object] = {"serial": e.serial, "state": e.state, "model": e.tags.get("model"),
                                  "soc": None, "sdk": None, "fingerprint": None, "rooted": None, "kind": None}
        if e.state == "device":
            try:
                info = AndroidDevice(adb, e.serial).info()
                row.update(model=info.model, soc=info.soc, sdk=info.sdk, fingerprint=info.fingerprint,
                           rooted=info.rooted, kind=info.kind.value)
            except PerflabError as exc:
                row["error"] = str(exc)
        rows.append(row)
    return rows
