"""A pseudo-terminal whose slave a driver opens like /dev/ttyACM0 (meters.md §7).

The slave is set raw immediately (a fresh pty is cooked: 0x03 would be eaten as ^C, 0x0D turned
into 0x0A, and echo would feed the emulator its own writes). The emulator keeps a slave fd open
so clients can reconnect; ``unplug`` closes both ends so the path disappears and the client's
reads fail with EIO, as a USB meter pulled mid-run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import tty

from perflab.emulator.meters.port_io import write_all


class PtyPort:
    def __init__(self) -> None:
        self.master_fd, self._slave_fd = os.openpty()
        tty.setraw(self._slave_fd)
        tty.setraw(self.master_fd)
        os.set_blocking(self.master_fd, False)
        self.path = os.ttyname(self._slave_fd)
        self.closed = False

    def read(self, timeout_s: float) -> bytes:
        """Bytes the client wrote (b"" if none within the timeout or the port is closed)."""
        if self.closed:
            return b""
        ready, _, _ = select.select([self.master_fd], [], [], timeout_s)
        if not ready:
            return b""
        try:
            return os.read(self.master_fd, 65536)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EIO:
                return b""
            raise

    def write(self, data: bytes) -> int:
        """Write what the pty buffer takes now; returns bytes written (0 when full: EAGAIN)."""
        if self.closed or not data:
            return 0
        try:
            return os.write(self.master_fd, data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EAGAIN):
                return 0
            raise

    def write_all(self, data: bytes, timeout_s: float = 1.0) -> int:
        """Write everything (waiting for the client to read) up to ``timeout_s``."""
        return write_all(self.write, lambda: None if self.closed else self.master_fd, data, timeout_s)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for fd in (self.master_fd, self._slave_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
