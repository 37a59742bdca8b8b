"""External power meters over serial: pure decoders (one module per meter) and drivers.

Decoders (``um``, ``ppk2``, ``scpi``) turn bytes into typed readings and never do I/O.
Drivers (``drivers``) open ports with ``serial.serial_for_url`` (a device path, a pty path or
``socket://host:port``) and raise the errors in ``errors``.
"""

from perflab.telemetry.meters.errors import (
    MeterError,
    MeterGarbageError,
    MeterGoneError,
    MeterNotAnsweringError,
    MeterPortError,
    WrongMeterError,
)

__all__ = [
    "MeterError",
    "MeterGarbageError",
    "MeterGoneError",
    "MeterNotAnsweringError",
    "MeterPortError",
    "WrongMeterError",
]
