"""Meter errors. Callers decide by type: every one is a MeasurementError (the meter's stream is
marked missing with the message as its reason; the cell's other measurements are kept)."""

from __future__ import annotations

from perflab.errors import MeasurementError


class MeterError(MeasurementError):
    """A meter could not be read. Carries the port it was read on."""

    def __init__(self, port: str, message: str) -> None:
        self.port = port
        self.message = message
        super().__init__(f"[{port}] {message}")


class MeterPortError(MeterError):
    """The port cannot be opened (no such device or path, no permission, bad URL)."""


class MeterNotAnsweringError(MeterError):
    """Nothing came back to a probe within its timeout (off, unplugged, wrong port or baud)."""


class WrongMeterError(MeterError):
    """Something answered, but not the meter type the port was configured as."""

    def __init__(self, port: str, message: str, *, found: str | None = None) -> None:
        self.found = found
        super().__init__(port, message)


class MeterGarbageError(MeterError):
    """The byte stream could not be decoded (too many bytes skipped to resynchronise)."""


class MeterGoneError(MeterError):
    """The port disappeared while in use (meter unplugged, Bluetooth link dropped)."""
