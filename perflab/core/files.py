"""Opening a file the user named, without ever blocking on it.

``open(path)`` on a named pipe with no writer waits forever, on a terminal or a device node it
may wait or read without end. Every file perflab reads because a user named it (a scenario, a
rack, a device config, a trace, a log, a model, a run's results.json) is opened here: with
``O_NONBLOCK`` (opening a FIFO returns at once), then refused unless it is a regular file,
then read as usual. Problems are one-line :class:`~perflab.errors.UserInputError` naming the
file.

Imports nothing from perflab above it (only perflab.errors).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import stat
from pathlib import Path
from typing import BinaryIO

from perflab.errors import SourceLocation, UserInputError

_KINDS = (
    (stat.S_ISREG, "a file"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str:
    """Words for what a file of this ``st_mode`` is (``a file``, ``a named pipe``, ``a folder``, …)."""
    for test, words in _KINDS:
        if test(mode):
            return words
    return "neither a file nor a folder"


def open_regular(path: str | Path, *, field: str | None = None) -> BinaryIO:
    """``path`` opened for reading in binary, if it is a regular file; never blocks on the open.

    UserInputError (naming the file, and ``field`` when given) when it is missing, not a regular
    file (a folder, a named pipe, a device, a socket) or cannot be opened."""
    where = SourceLocation(str(path), None, field)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise UserInputError("file not found", where) from None
    except IsADirectoryError:
        raise UserInputError("is a folder, not a file", where) from None
    except OSError as exc:
        raise UserInputError(f"cannot read: {exc.strerror or exc}", where) from None
    except ValueError as exc:  # an embedded NUL in the path
        raise UserInputError(f"not a usable path: {exc}", where) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UserInputError(f"is {file_kind(mode)}, not a regular file", where)
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_bytes(path: str | Path, *, max_bytes: int | None = None, field: str | None = None) -> bytes:
    """The bytes of a regular file (see :func:`open_regular`); with ``max_bytes``, a
    UserInputError when it is larger (never more than ``max_bytes + 1`` bytes are read)."""
    with open_regular(path, field=field) as f:
        try:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
        except OSError as exc:
            raise UserInputError(f"cannot read: {exc.strerror or exc}",
                                 SourceLocation(str(path), None, field)) from None
    if max_bytes is not None and len(data) > max_bytes:
        raise UserInputError(f"file is larger than {max_bytes} bytes", SourceLocation(str(path), None, field))
    return data


def regular_file_problem(path: str | Path) -> str | None:
    """None when ``path`` is a regular file that can be opened for reading (checked without
    blocking and closed again), else why not, in words."""
    try:
        with open_regular(path):
            return None
    except UserInputError as exc:
        return exc.message


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes, hex, read 1 MiB at a time (models, clips, wheels)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
