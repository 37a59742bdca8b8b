"""The table of commands the emulated phone knows, and the ones it refuses by name."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from perflab.emulator.fs import FsError
from perflab.emulator.shell.streams import IO

if TYPE_CHECKING:
    from perflab.emulator.shell.interp import Shell

Cmd = Callable[["Shell", list[str], IO], int]
COMMANDS: dict[str, Cmd] = {}
#: Real Android commands that the emulated phone does not run: refused loudly (exit 127).
REFUSED = {"logcat", "am", "pm", "top", "atrace", "perfetto", "simpleperf", "dmesg", "mount", "find", "sed",
           "awk", "xargs", "eval", "source", ".", "nohup", "timeout", "nice",
           "taskset", "dd", "base64", "tar", "ln", "screencap", "screenrecord", "monkey", "wm",
           "service", "toybox", "busybox", "setenforce", "reboot-bootloader", "printenv", "env"}
#: Builtins that ``which`` does not list as files.
SPECIAL_BUILTINS = {"exit", "cd", "export", "unset", "readonly", "local", ":", "exec", "trap", "wait", "read"}


def command(*names: str) -> Callable[[Cmd], Cmd]:
    def deco(fn: Cmd) -> Cmd:
        for n in names:
            COMMANDS[n] = fn
        return fn
    return deco


def err(io: IO, msg: str) -> None:
    io.err((msg + "\n").encode())


def fs_msg(exc: FsError) -> str:
    return f"{exc.path}: {os.strerror(exc.errno_)}"


def each_or_fail(io: IO, items: Iterable[str], op: Callable[[str], None],
                 message: Callable[[str, FsError], str]) -> int:
    """Apply ``op`` to every item as toybox does: a failing one prints ``message(item, error)``
    to stderr and the rest still run. Returns the exit status (1 if any failed)."""
    status = 0
    for item in items:
        try:
            op(item)
        except FsError as exc:
            err(io, message(item, exc))
            status = 1
    return status
