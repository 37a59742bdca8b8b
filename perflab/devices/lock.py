"""Per-device lock: one perflab process per phone.

A lock file per serial under ``<state dir>/locks/``, held with ``fcntl.flock`` (released by
the kernel when the process dies, so a crash never leaves a stale lock) and holding the
holder's pid so the error can say who has the phone.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType
from typing import Self

from perflab.core.names import serial_filename
from perflab.errors import DeviceBusyError


def state_dir() -> Path:
    """``$PERFLAB_STATE_DIR`` or ``~/.perflab``: where journals and locks live (host side)."""
    env = os.environ.get("PERFLAB_STATE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".perflab"


class DeviceLock:
    """``with DeviceLock(serial): ...`` — raises DeviceBusyError if another holder has it.

    Locks are per open file, so two DeviceLock objects on one serial conflict even inside
    one process (the runner must not give one phone to two workers either).
    """

    def __init__(self, serial: str, directory: Path | None = None) -> None:
        self.serial = serial
        self.path = (directory or state_dir() / "locks") / f"{serial_filename(serial)}.lock"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            who = f"perflab process {holder}" if holder else "another perflab process"
            raise DeviceBusyError(self.serial, f"device is in use by {who} (lock {self.path})") from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_holder(fd: int) -> str | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return f"pid {text}" if text.isdigit() else None
