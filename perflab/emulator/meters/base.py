"""The loop every emulated meter shares: read the client's bytes, let the protocol react, tick."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import ClassVar, Self

from perflab.emulator.meters.pty import PtyPort
from perflab.emulator.meters.source import LoadSource
from perflab.emulator.meters.tcp import TcpPort

TICK_S = 0.002


class EmulatedMeter:
    """Base: a pty, a thread and a clock. ``now_s()`` is emulator time (0 at ``start``);
    sources are evaluated on it. Subclasses implement ``on_bytes`` and ``tick``."""

    kind = "meter"

    def __init__(self, source: LoadSource, *, transport: str = "pty") -> None:
        """``transport``: "pty" (a /dev/pts path) or "tcp" (a ``socket://127.0.0.1:PORT`` URL)."""
        if transport not in ("pty", "tcp"):
            raise ValueError(f"unknown transport {transport!r}")
        self.source = source
        self.port: PtyPort | TcpPort = PtyPort() if transport == "pty" else TcpPort()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self.bytes_received = 0
        self.unplugged = threading.Event()
        self.error: BaseException | None = None

    @property
    def path(self) -> str:
        return self.port.path

    def now_s(self) -> float:
        return time.monotonic() - self._t0

    def start(self) -> Self:
        self._t0 = time.monotonic()
        bind = getattr(self.source, "bind_origin", None)
        if callable(bind):  # a source on the host's clock (the emulated phone's physics)
            bind(self._t0)
        self._thread = threading.Thread(target=self._loop, name=f"emulated-{self.kind}", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        try:
            while not self._stop.is_set() and not self.port.closed:
                data = self.port.read(TICK_S)
                with self._lock:
                    if data:
                        self.bytes_received += len(data)
                        self.on_bytes(data)
                    if not self.port.closed:
                        self.tick(self.now_s())
        except BaseException as exc:  # noqa: BLE001 - kept for the test that started us
            self.error = exc

    def on_bytes(self, data: bytes) -> None:
        raise NotImplementedError

    def tick(self, now_s: float) -> None:
        """Called every few ms with the emulator's clock; write what is due."""

    # faults -------------------------------------------------------------------------------
    def inject_garbage(self, data: bytes) -> None:
        """Write bytes that are not protocol (line noise, a wrong baud rate's view)."""
        with self._lock:
            self.port.write_all(data)

    def unplug(self) -> None:
        """Pull the cable: both pty ends close, the path disappears, client reads fail."""
        with self._lock:
            self.port.close()
        self.unplugged.set()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.port.close()

    def __enter__(self) -> Self:
        return self.start() if self._thread is None else self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class ModelledMeter(EmulatedMeter):
    """A meter that comes as one of several models (the keys of ``models``) and answers a poll
    ``reply_delay_s`` after it."""

    models: ClassVar[Mapping[str, object]] = {}

    def __init__(self, source: LoadSource, model: str, reply_delay_s: float, *, transport: str) -> None:
        if model not in self.models:
            raise ValueError(f"unknown {self.kind.upper()} model {model!r}")
        super().__init__(source, transport=transport)
        self.model = model
        self.reply_delay_s = reply_delay_s
