"""Standard streams of an emulated command."""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from perflab.emulator.shell.errors import Unsupported

Writer = Callable[[bytes], None]
#: a read waiting on a FIFO looks for data at least this often (signals end the wait at once)
_FIFO_POLL_S = 0.25


class Input:
    """A command's standard input with a read position, so ``read`` takes one line at a time.

    The source is read once, on first use (for ``adb shell`` that waits for the host to close
    stdin); ``rest()`` hands out what is left, ``line()`` the next line.
    """

    def __init__(self, source: Callable[[], bytes]) -> None:
        self._source = source
        self._data: bytes | None = None
        self._pos = 0

    @classmethod
    def of(cls, data: bytes) -> Input:
        """Input whose bytes are already here (``< file``: the file read whole at open)."""
        inp = cls(_no_source)
        inp._data = data
        return inp

    def _load(self) -> bytes:
        if self._data is None:
            self._data = self._source()
        return self._data

    def rest(self) -> bytes:
        data = self._load()
        out = data[self._pos:]
        self._pos = len(data)
        return out

    def line(self) -> bytes | None:
        """The next line with its newline (without one at the end of input); None at EOF."""
        return self.until(b"\n")

    def until(self, delim: bytes, timeout_s: float | None = None) -> bytes | None:
        """The bytes up to and including ``delim`` (what is left, at the end of input); None at
        EOF. Data in memory is there at once, so ``timeout_s`` never matters here."""
        del timeout_s
        data = self._load()
        if self._pos >= len(data):
            return None
        end = data.find(delim, self._pos)
        end = len(data) if end < 0 else end + 1
        out = data[self._pos:end]
        self._pos = end
        return out


class ReadTimedOut(Exception):
    """``read -t`` ran out of time; ``partial`` is what had arrived."""

    def __init__(self, partial: bytes) -> None:
        self.partial = partial


class ReadInterrupted(Exception):
    """A signal arrived while ``read`` waited (mksh: the read ends with 128+signal)."""

    def __init__(self, signo: int) -> None:
        self.signo = signo


class FifoInput(Input):
    """Standard input from a FIFO opened read-write (``<> fifo``): ``read`` waits for data like
    the kernel would, until its ``-t`` timeout or a signal. A FIFO this shell holds open for
    writing never reaches EOF, so a ``read -t`` on one nobody writes to is mksh's fork-free
    sleep. The wait is on the process's wake event (a signal ends it at once); data written
    meanwhile is seen within ``_FIFO_POLL_S``."""

    def __init__(self, fd: int, pending_signal: Callable[[], int | None], wake: threading.Event) -> None:
        super().__init__(lambda: b"")
        self._fd = fd
        self._buf = bytearray()
        self._pending_signal = pending_signal  # may raise to cancel the whole shell
        self._wake = wake

    def rest(self) -> bytes:
        raise Unsupported("reading a FIFO to its end (it has no end while this shell holds it open)")

    def until(self, delim: bytes, timeout_s: float | None = None) -> bytes | None:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            i = self._buf.find(delim)
            if i >= 0:
                out = bytes(self._buf[:i + 1])
                del self._buf[:i + 1]
                return out
            if select.select([self._fd], [], [], 0)[0]:
                with contextlib.suppress(BlockingIOError):  # another reader took it first
                    self._buf += os.read(self._fd, 65536)
                continue
            remaining = _FIFO_POLL_S if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                partial = bytes(self._buf)
                self._buf.clear()
                raise ReadTimedOut(partial)
            self._wake.clear()
            signo = self._pending_signal()
            if signo is not None:
                raise ReadInterrupted(signo)
            self._wake.wait(min(remaining, _FIFO_POLL_S))


@dataclass
class IO:
    out: Writer
    err: Writer
    stdin: Callable[[], bytes]
    #: the standard input with its read position; made from ``stdin`` unless given
    inp: Input | None = None

    def __post_init__(self) -> None:
        if self.inp is None:
            self.inp = Input(self.stdin)
        self.stdin = self.inp.rest

    @property
    def input(self) -> Input:
        assert self.inp is not None  # set by __post_init__
        return self.inp

    @classmethod
    def reading(cls, out: Writer, err: Writer, inp: Input) -> IO:
        """Streams whose standard input is ``inp`` (a redirection's file or FIFO)."""
        return cls(out, err, inp.rest, inp)

    def with_output(self, out: Writer, err: Writer) -> IO:
        """The same standard input (and read position), other outputs."""
        return IO(out, err, self.stdin, self.inp)


def _no_source() -> bytes:
    return b""


def const_input(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def discard(data: bytes) -> None:
    del data


def safe_writer(writer: Writer) -> Writer:
    """A writer that stops writing (silently) once its reader has gone, as a background job's output does."""
    broken = False

    def write(data: bytes) -> None:
        nonlocal broken
        if broken:
            return
        try:
            writer(data)
        except Exception:  # noqa: BLE001 - the adb stream closed under a background job
            broken = True

    return write
