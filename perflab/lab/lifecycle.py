"""Stopping a run: the first SIGINT/SIGTERM asks the run to stop, the second exits at once.

The first signal sets a stop flag that every device thread checks before each cell and each
phase, and cancels what is running right now (each workload registers its ``cancel``): the
host worker or the benchmark process on the phone is killed by PID, and the call in flight
raises RunInterrupted. The runner then records the cell as ``interrupted``, marks the cells that
never ran, restores every device and writes the final results and report.

A second signal restores the devices from their journals (short deadline each) and exits at
once with 128 + the signal number.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from perflab.errors import RunInterrupted

log = logging.getLogger("perflab.run")

EXIT_SIGINT = 128 + signal.SIGINT  # 130
EXIT_SIGTERM = 128 + signal.SIGTERM  # 143


class StopController:
    """Thread-safe stop flag with cancel callbacks and emergency restores."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._cancels: dict[int, Callable[[], None]] = {}
        self._restores: dict[int, Callable[[], None]] = {}
        self._next = 0
        self.signal_name: str | None = None
        self.reason: str | None = None

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def request(self, reason: str, signal_name: str | None = None) -> None:
        """Ask the run to stop; cancel everything in flight. Idempotent."""
        with self._lock:
            if self._event.is_set():
                return
            self.signal_name = signal_name
            self.reason = reason
            self._event.set()
            cancels = list(self._cancels.values())
        for cancel in cancels:
            try:
                cancel()
            except Exception as exc:  # noqa: BLE001 - one failing cancel must not stop the others
                log.warning("cancel failed: %s: %s", type(exc).__name__, exc)

    def check(self) -> None:
        """Raise RunInterrupted when a stop was asked for."""
        if self._event.is_set():
            raise RunInterrupted(self.reason or "the run was stopped")

    def sleep(self, seconds: float) -> None:
        """Sleep that a stop interrupts (raises RunInterrupted)."""
        if seconds > 0 and self._event.wait(seconds):
            self.check()
        self.check()

    def _add(self, table: dict[int, Callable[[], None]], fn: Callable[[], None]) -> int:
        with self._lock:
            self._next += 1
            table[self._next] = fn
            return self._next

    @contextmanager
    def cancelling(self, cancel: Callable[[], None]) -> Iterator[None]:
        """While inside, a stop request calls ``cancel`` (and at once if a stop already came)."""
        key = self._add(self._cancels, cancel)
        try:
            if self._event.is_set():
                cancel()
            yield
        finally:
            with self._lock:
                self._cancels.pop(key, None)

    @contextmanager
    def restoring(self, restore: Callable[[], None]) -> Iterator[None]:
        """While inside, a second signal calls ``restore`` before exiting."""
        key = self._add(self._restores, restore)
        try:
            yield
        finally:
            with self._lock:
                self._restores.pop(key, None)

    def emergency_restore(self) -> None:
        with self._lock:
            restores = list(self._restores.values())
        for restore in restores:
            try:
                restore()
            except Exception as exc:  # noqa: BLE001 - restore every device we can, whatever fails
                log.error("restore after a second signal failed: %s: %s", type(exc).__name__, exc)


@contextmanager
def signals_stop(stop: StopController, *, on_first: Callable[[str], None] | None = None,
                 on_second: Callable[[], None] | None = None) -> Iterator[None]:
    """Install SIGINT/SIGTERM handlers for the duration (main thread only): first signal →
    ``stop.request``; second → emergency restore, ``on_second`` (what must still be on disk:
    the INCOMPLETE page), then ``os._exit(128 + signum)``; a third exits at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    exiting = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if exiting.is_set():
            os._exit(128 + signum)
        if stop.stopped:
            exiting.set()
            os.write(2, f"perflab: {name} again: restoring devices and exiting now\n".encode())
            stop.emergency_restore()
            if on_second is not None:
                try:
                    on_second()
                except Exception as exc:  # noqa: BLE001 - nothing may keep the process from exiting now
                    os.write(2, f"perflab: {type(exc).__name__}: {exc}\n".encode())
            os._exit(128 + signum)
        if on_first is not None:
            on_first(name)
        stop.request(f"stopped by {name}", name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
