"""Standard streams of an emulated command."""

from __future__ import annotations

import contextlib
import os
import select
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

    def close(self) -> None:
        """Release what this input holds (nothing, for bytes in memory)."""

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
        EOF; a ``TimedOut`` (what had arrived) when ``timeout_s`` ran out first. Data in memory
        is there at once, so ``timeout_s`` never matters here."""
        del timeout_s
        data = self._load()
        if self._pos >= len(data):
            return None
        end = data.find(delim, self._pos)
        end = len(data) if end < 0 else end + 1
        out = data[self._pos:end]
        self._pos = end
        return out


class TimedOut(bytes):
    """What ``until`` returns when ``read -t`` ran out of time: the bytes that had arrived. A
    value, not an exception: a sampler's wait times out every tick, and raising costs."""


class ReadInterrupted(Exception):
    """A signal arrived while ``read`` waited (mksh: the read ends with 128+signal)."""

    def __init__(self, signo: int) -> None:
        self.signo = signo


class FifoInput(Input):
    """Standard input from a FIFO opened read-write (``<> fifo``): ``read`` waits for data like
    the kernel would, until its ``-t`` timeout or a signal. A FIFO this shell holds open for
    writing never reaches EOF, so a ``read -t`` on one nobody writes to is mksh's fork-free
    sleep. The wait is one ``poll`` on the FIFO and on a pipe the process's signals write to
    (``waker``: register and unregister its write end), so data or a signal ends it at once;
    it also looks at ``pending_signal`` (which may raise to cancel the shell) every
    ``_FIFO_POLL_S``. ``close`` closes the FIFO and the pipe."""

    def __init__(self, fd: int, pending_signal: Callable[[], int | None],
                 waker: tuple[Callable[[int], None], Callable[[int], None]]) -> None:
        super().__init__(_no_source)
        self._fd = fd
        self._buf = bytearray()
        self._pending_signal = pending_signal
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poll = select.poll()  # no FD_SETSIZE limit, both descriptors registered once
        self._poll.register(self._fd, select.POLLIN)
        self._poll.register(self._wake_r, select.POLLIN)
        self._unregister = waker[1]
        self._closed = False
        waker[0](self._wake_w)

    def close(self) -> None:
        """Close the FIFO and the wake pipe, once (a second call does nothing: the numbers may
        belong to someone else by then)."""
        if self._closed:
            return
        self._closed = True
        self._unregister(self._wake_w)  # no signal writes to the pipe after this
        for fd in (self._wake_w, self._wake_r, self._fd):
            with contextlib.suppress(OSError):
                os.close(fd)

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
            signo = self._pending_signal()
            if signo is not None:
                raise ReadInterrupted(signo)
            remaining = _FIFO_POLL_S if deadline is None else max(0.0, deadline - time.monotonic())
            wait_s = min(remaining, _FIFO_POLL_S)
            ready = self._poll.poll(wait_s * 1000.0)
            if ready:
                for fd, _ in ready:
                    with contextlib.suppress(BlockingIOError):  # (the FIFO: another reader took it)
                        data = os.read(fd, 65536)
                        if fd == self._fd:
                            self._buf += data
                continue
            if deadline is not None and wait_s >= remaining:  # waited all that was left
                partial = TimedOut(self._buf)
                self._buf.clear()
                return partial


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
