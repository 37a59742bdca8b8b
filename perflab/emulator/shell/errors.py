"""The emulated shell's own exceptions (control flow and refusals)."""

from __future__ import annotations

from perflab.errors import PerflabError

SH = "/system/bin/sh"


class ShellSyntaxError(PerflabError):
    """The script does not parse (mksh: exit 2)."""


class Unsupported(PerflabError):
    """A construct the emulated phone refuses to run (exit 127, never executed)."""

    def __init__(self, thing: str) -> None:
        self.thing = thing
        super().__init__(f"sh: {thing}: not supported by the emulated phone")


class ShellError(PerflabError):
    """An error that ends a non-interactive mksh script (bad arithmetic, ...), with its status."""

    def __init__(self, message: str, status: int = 1) -> None:
        self.status = status
        super().__init__(message)


class ExitShell(Exception):
    """``exit N`` (or ``exec``) unwinds to the shell's entry point."""

    def __init__(self, code: int) -> None:
        self.code = code


class LoopControl(Exception):
    """``break N`` / ``continue N``: unwinds to the N-th enclosing loop."""

    def __init__(self, levels: int, *, again: bool) -> None:
        self.levels = levels
        self.again = again  # continue (True) or break (False)


class Cancelled(Exception):
    """The adb stream went away: stop now."""


class Killed(Exception):
    """The shell process got a fatal signal."""

    def __init__(self, signo: int) -> None:
        self.signo = signo


class WriteError(Exception):
    """Writing to a redirected file failed."""

    def __init__(self, path: str, errno_: int) -> None:
        self.path = path
        self.errno_ = errno_
