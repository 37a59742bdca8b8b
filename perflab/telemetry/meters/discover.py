"""Which serial ports may be meters: a guess from USB IDs and names (no bytes are sent).

- PPK2: VID:PID 1915:C00A with product "PPK2"; since firmware 1.2.4 it has two CDC ports and
  the measurement one is the interface whose location ends in "1" (meters.md §2.1).
- UM24C/25C/34C: Bluetooth SPP, bound with ``rfcomm bind`` → ``/dev/rfcomm*``.
- SCPI supplies on RS-232 behind a USB adapter are indistinguishable from any other adapter:
  listed as "serial adapter" (probe with ``perflab meter read PORT --type scpi --once``).
"""

from __future__ import annotations

from dataclasses import dataclass

NORDIC_VID = 0x1915
PPK2_PID = 0xC00A


@dataclass(frozen=True)
class PortInfo:
    device: str
    vid: int | None = None
    pid: int | None = None
    location: str | None = None
    product: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class PortGuess:
    port: PortInfo
    meter: str | None  # "ppk2", "um (bluetooth)", "serial adapter", or None
    note: str


def guess(port: PortInfo) -> PortGuess:
    if port.vid == NORDIC_VID and port.pid == PPK2_PID:
        named = (port.product or port.description or "").upper()
        if named and "PPK2" not in named:
            return PortGuess(port, None, f"Nordic CDC device ({named.strip()}), not a PPK2")
        if port.location and not port.location.endswith("1"):
            return PortGuess(port, None, "PPK2 debug shell port (the measurement port's location ends in 1)")
        return PortGuess(port, "ppk2", "Nordic PPK2 measurement port")
    if port.device.startswith("/dev/rfcomm"):
        return PortGuess(port, "um (bluetooth)", "Bluetooth SPP: an RDTech UM meter if that is what is bound")
    if port.vid is not None:
        return PortGuess(port, "serial adapter", "USB serial: an RS-232 supply (scpi) may be behind it")
    return PortGuess(port, None, "no USB identity (a built-in UART)")


def list_ports() -> list[PortGuess]:
    """Every serial port the OS lists, with a guess. ptys are not listed (pass their path)."""
    from serial.tools import list_ports as lp

    out = []
    for p in lp.comports():
        out.append(guess(PortInfo(device=p.device, vid=p.vid, pid=p.pid, location=p.location,
                                  product=p.product, description=p.description)))
    return sorted(out, key=lambda g: (g.meter is None, g.port.device))
