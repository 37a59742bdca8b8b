"""One exception root for perflab.

User errors (bad scenario, config, model path, CLI usage) are caught once at the CLI and
printed as one line with exit code 2. Everything else that derives from PerflabError is a
measurement or device problem: a cell that hits one ends as ``failed`` with the message as
its reason, and the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass


class PerflabError(Exception):
    """Root of every error perflab raises on purpose."""


@dataclass(frozen=True)
class SourceLocation:
    """Where in an input file a problem is: file, 1-based line, and a dotted field path."""

    file: str
    line: int | None
    field: str | None

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return where if not self.field else f"{where}: {self.field}"


class UserInputError(PerflabError):
    """Bad input from the user: exit code 2, one line that names file, line and field."""

    def __init__(self, message: str, location: SourceLocation | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class MeasurementError(PerflabError):
    """A measurement could not be made (the cell becomes ``failed``)."""


class ModelError(MeasurementError):
    """A model failed to load, convert or run."""


class UnsupportedError(ModelError):
    """The device cannot run this cell as asked (e.g. a delegate it does not have): the cell
    is ``unsupported``, which is not a failure."""


class DeviceError(PerflabError):
    """A device command failed. Carries the device's identity and the whole command context."""

    def __init__(
        self,
        serial: str,
        message: str,
        *,
        command: str | None = None,
        exit_code: int | None = None,
        stdout: str = "",
        stderr: str = "",
    ) -> None:
        self.serial = serial
        self.message = message
        self.command = command
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        parts = [f"[{serial}] {message}"]
        if command is not None:
            parts.append(f"command={command!r}")
        if exit_code is not None:
            parts.append(f"exit_code={exit_code}")
        if stdout:
            parts.append(f"stdout={_tail(stdout)!r}")
        if stderr:
            parts.append(f"stderr={_tail(stderr)!r}")
        super().__init__(" ".join(parts))


class DeviceGoneError(DeviceError):
    """The device disconnected or went offline during an operation."""


class DeviceBusyError(DeviceError):
    """Another perflab process holds this device's lock."""


class DeviceTimeoutError(DeviceError):
    """A device command ran past its deadline (the device may still be there)."""


class DeviceNotReadyError(DeviceError):
    """The device cannot run any cell as configured (e.g. the benchmark tool is neither on the
    phone nor configured on the host). Found once, before the device's first cell."""


class RunInterrupted(PerflabError):
    """The run was asked to stop (SIGINT/SIGTERM): the operation in flight was cancelled."""


class MissingDependencyError(PerflabError):
    """An optional dependency that this command needs is not installed; names the package."""

    def __init__(self, package: str, needed_for: str) -> None:
        self.package = package
        self.needed_for = needed_for
        super().__init__(f"{needed_for} needs the Python package {package!r}, which is not installed "
                         f"(pip install {package})")


class StoreError(PerflabError):
    """A run folder or results database could not be read or written."""


def _tail(text: str, limit: int = 400) -> str:
    text = text.strip()
    return text if len(text) <= limit else "…" + text[-limit:]
