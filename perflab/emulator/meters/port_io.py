"""What the pty and the TCP port share: writing a whole reply to a client that reads slowly."""

from __future__ import annotations

import select
import socket
from collections.abc import Callable


def write_all(write: Callable[[bytes], int], target: Callable[[], int | socket.socket | None],
              data: bytes, timeout_s: float) -> int:
    """Write ``data`` through ``write`` (which takes what fits now, 0 when full), waiting up to
    ``timeout_s`` for room each time it takes nothing. ``target()`` is what to wait on, None once
    the port is closed or has no client. Returns the bytes written."""
    done = 0
    while done < len(data):
        waiting_on = target()
        if waiting_on is None:
            break
        n = write(data[done:])
        done += n
        if n == 0:
            _, ready, _ = select.select([], [waiting_on], [], timeout_s)
            if not ready:
                break
    return done
