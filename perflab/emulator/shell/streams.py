"""Standard streams of an emulated command."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

Writer = Callable[[bytes], None]


class Input:
    """A command's standard input with a read position, so ``read`` takes one line at a time.

    The source is read once, on first use (for ``adb shell`` that waits for the host to close
    stdin); ``rest()`` hands out what is left, ``line()`` the next line.
    """

    def __init__(self, source: Callable[[], bytes]) -> None:
        self._source = source
        self._data: bytes | None = None
        self._pos = 0

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
        data = self._load()
        if self._pos >= len(data):
            return None
        end = data.find(b"\n", self._pos)
        end = len(data) if end < 0 else end + 1
        out = data[self._pos:end]
        self._pos = end
        return out


@dataclass
class IO:
    out: Writer
    err: Writer
    stdin: Callable[[], bytes]
    inp: Input = field(init=False)

    def __post_init__(self) -> None:
        self.inp = Input(self.stdin)
        self.stdin = self.inp.rest

    def with_output(self, out: Writer, err: Writer) -> IO:
        """The same standard input (and read position), other outputs."""
        io = IO(out, err, self.stdin)
        io.inp = self.inp
        io.stdin = self.inp.rest
        return io


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
