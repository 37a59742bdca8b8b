"""A meter port: ``serial.serial_for_url`` (device path, pty path, ``socket://host:port``) with a
dedicated reader thread, so a 400 kB/s stream never overflows a ~20 KB pty/USB buffer while
the caller decodes. Failures become MeterErrors; modem-line ioctls are never used (they fail
on ptys and RFCOMM)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

import serial

from perflab.telemetry.meters.errors import MeterError, MeterGoneError, MeterPortError

_READ_POLL_S = 0.05


class MeterPort:
    def __init__(self, url: str, *, baud: int = 9600) -> None:
        self.url = url
        try:
            self._ser = serial.serial_for_url(url, baudrate=baud, timeout=_READ_POLL_S, write_timeout=2.0)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise MeterPortError(url, f"cannot open port: {_reason(exc)}") from exc
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._error: MeterError | None = None
        self._closing = False
        self.bytes_read = 0
        self._thread = threading.Thread(target=self._reader, name=f"meter-reader {url}", daemon=True)
        self._thread.start()

    def _reader(self) -> None:
        while not self._closing:
            try:
                data = self._ser.read(1)
                if data:
                    waiting = self._ser.in_waiting
                    if waiting:
                        data += self._ser.read(waiting)
            except Exception as exc:  # noqa: BLE001 - pyserial raises SerialException, OSError, TypeError on close
                if not self._closing:
                    with self._cond:
                        self._error = MeterGoneError(self.url, f"port went away: {_reason(exc)}")
                        self._cond.notify_all()
                return
            if data:
                with self._cond:
                    self._buf += data
                    self.bytes_read += len(data)
                    self._cond.notify_all()

    def _raise_if_gone(self) -> None:
        if self._error is not None and not self._buf:
            raise self._error

    @property
    def gone(self) -> bool:
        return self._error is not None

    def write(self, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        try:
            self._ser.write(data)
            self._ser.flush()
        except Exception as exc:  # SerialException, OSError, SerialTimeoutException
            raise MeterGoneError(self.url, f"write failed: {_reason(exc)}") from exc

    def drain(self) -> bytes:
        """Everything received so far (raises MeterGoneError once the port is gone and empty)."""
        with self._cond:
            self._raise_if_gone()
            data = bytes(self._buf)
            self._buf.clear()
            return data

    def discard(self) -> int:
        with self._cond:
            n = len(self._buf)
            self._buf.clear()
            return n

    def take(self, complete: Callable[[bytes], int | None], timeout_s: float) -> bytes | None:
        """Wait until ``complete(buffer)`` returns how many leading bytes form a whole reply;
        remove and return them. None on timeout (the buffer is kept)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                n = complete(bytes(self._buf)) if self._buf else None
                if n is not None:
                    data = bytes(self._buf[:n])
                    del self._buf[:n]
                    return data
                self._raise_if_gone()
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def peek(self) -> bytes:
        with self._cond:
            return bytes(self._buf)

    def read_until(self, terminator: bytes, timeout_s: float) -> bytes | None:
        def complete(buf: bytes) -> int | None:
            i = buf.find(terminator)
            return None if i < 0 else i + len(terminator)

        return self.take(complete, timeout_s)

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(Exception):  # not every URL handler can cancel a read
            self._ser.cancel_read()
        self._thread.join(timeout=1.0)
        with contextlib.suppress(Exception):  # closing a port that vanished
            self._ser.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
