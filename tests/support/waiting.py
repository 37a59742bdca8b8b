"""Polling with a deadline: every wait in the tests ends, with a result the test asserts on."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], object], timeout_s: float, poll_s: float = 0.2) -> bool:
    """Poll until ``predicate()`` is true (an event to wait for, with a generous safety limit).

    Returns False when ``timeout_s`` passed first; the caller asserts, so a wait that never ends
    is a failure naming what was awaited, never a hang until pytest-timeout kills the session.
    """
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            return bool(predicate())
        time.sleep(poll_s)
    return True
