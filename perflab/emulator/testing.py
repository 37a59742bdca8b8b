"""Helpers for tests: a private real adb server on its own port, so parallel runs never clash."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from perflab.emulator.phone import _free_port, adb_executable, ensure_adb_server

if TYPE_CHECKING:
    import adbutils


@contextmanager
def private_adb_server(port: int | None = None) -> Iterator[adbutils.AdbClient]:
    """Start a real adb server on a free port (not 5037); kill exactly that server afterwards.

    ``ANDROID_ADB_SERVER_PORT`` is *not* changed for the process; pass ``adb_env(client)`` to
    subprocesses that run the ``adb`` CLI.
    """
    port = port if port is not None else _free_port()
    client = ensure_adb_server(port)
    try:
        yield client
    finally:
        subprocess.run([adb_executable(), "-P", str(port), "kill-server"], capture_output=True, timeout=20,
                       check=False)


def adb_env(client: adbutils.AdbClient) -> dict[str, str]:
    env = dict(os.environ)
    env["ANDROID_ADB_SERVER_PORT"] = str(client.port)
    return env
