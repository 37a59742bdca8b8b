"""SCPI battery-bypass supplies (meters.md §4): identity → command profile, number and array
parsing, IEEE 488.2 definite-length blocks and N6705 ELOG records. Pure functions.

Profiles: Keysight/Agilent 66319B/D family (single output, RS-232), Keysight N6705 with N678x
SMUs (channel ``(@n)``, ELOG), Rigol DP800 (``CHn``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt


class ScpiParseError(ValueError):
    """An instrument reply is not what the command returns."""


class ScpiFamily(StrEnum):
    KEYSIGHT_66319 = "keysight-66319"
    KEYSIGHT_N6705 = "keysight-n6705"
    RIGOL_DP800 = "rigol-dp800"


@dataclass(frozen=True)
class ScpiIdentity:
    manufacturer: str
    model: str
    serial: str
    firmware: str


@dataclass(frozen=True)
class ScpiProfile:
    family: ScpiFamily
    measure_current: str
    measure_voltage: str
    setup: tuple[str, ...]
    supports_elog: bool


_66319_MODELS = ("66311", "66319", "66321", "66309", "66332")


def parse_idn(line: str) -> ScpiIdentity:
    """``*IDN?`` → four comma-separated fields (manufacturer, model, serial, firmware)."""
    parts = [p.strip() for p in line.strip().split(",")]
    if len(parts) != 4 or not parts[0] or not parts[1] or not all(p.isprintable() for p in parts):
        raise ScpiParseError(f"not an *IDN? reply: {line[:60]!r}")
    return ScpiIdentity(*parts)


def profile_for(identity: ScpiIdentity, channel: int = 1) -> ScpiProfile | None:
    """The command profile for an instrument, or None when perflab does not know it."""
    model = identity.model.upper()
    if model.startswith(_66319_MODELS):
        return ScpiProfile(ScpiFamily.KEYSIGHT_66319, "MEAS:CURR?", "MEAS:VOLT?", ("SYST:REM",), False)
    if model.startswith(("N6705", "N6700", "N6715")):
        ch = f"(@{channel})"
        return ScpiProfile(ScpiFamily.KEYSIGHT_N6705, f"MEAS:CURR? {ch}", f"MEAS:VOLT? {ch}", (), True)
    if model.startswith("DP8"):
        ch = f"CH{channel}"
        return ScpiProfile(ScpiFamily.RIGOL_DP800, f":MEAS:CURR? {ch}", f":MEAS:VOLT? {ch}", (), False)
    return None


def parse_number(line: str) -> float:
    """One numeric reply (``+1.234560E-01``)."""
    text = line.strip()
    try:
        value = float(text)
    except ValueError:
        raise ScpiParseError(f"not a number: {text[:40]!r}") from None
    if not np.isfinite(value) or abs(value) >= 9.9e37:  # 9.91E37 is SCPI's NaN
        raise ScpiParseError(f"instrument returned no value ({text!r})")
    return value


def parse_numbers(line: str) -> list[float]:
    """A comma-separated ASCII array (``MEAS:ARR:CURR?``, ``FETC:ELOG?`` in ASCII form)."""
    text = line.strip()
    if not text:
        return []
    return [parse_number(p) for p in text.split(",")]


def parse_block(data: bytes) -> tuple[bytes, int] | None:
    """An IEEE 488.2 definite-length block ``#<n><len><payload>`` at the start of ``data``.
    Returns (payload, bytes consumed incl. a trailing newline) or None while incomplete."""
    if not data:
        return None
    if data[0:1] != b"#":
        raise ScpiParseError(f"not a block: {data[:8]!r}")
    if len(data) < 2:
        return None
    ndigits = data[1] - 0x30
    if not 1 <= ndigits <= 9:
        raise ScpiParseError(f"bad block header {data[:2]!r} (indefinite blocks are not supported)")
    if len(data) < 2 + ndigits:
        return None
    length_text = data[2:2 + ndigits]
    if not length_text.isdigit():
        raise ScpiParseError(f"bad block length {length_text!r}")
    start = 2 + ndigits
    end = start + int(length_text)
    if len(data) < end:
        return None
    consumed = end
    if data[end:end + 1] == b"\n":
        consumed += 1
    elif len(data) == end:
        return None  # the terminator may still be on its way
    return data[start:end], consumed


def decode_real_block(payload: bytes, *, swapped: bool = False) -> npt.NDArray[np.float64]:
    """``FORM REAL`` payload: float32, big-endian (``FORM:BORD NORM``) or little (``SWAP``)."""
    if len(payload) % 4:
        raise ScpiParseError(f"REAL block of {len(payload)} bytes is not a whole number of float32")
    return np.frombuffer(payload, dtype="<f4" if swapped else ">f4").astype(np.float64)


class ElogField(StrEnum):
    CURR_AVG = "curr_avg_amps"
    CURR_MIN = "curr_min_amps"
    CURR_MAX = "curr_max_amps"
    VOLT_AVG = "volt_avg_volts"
    VOLT_MIN = "volt_min_volts"
    VOLT_MAX = "volt_max_volts"


ELOG_ORDER = tuple(ElogField)


@dataclass(frozen=True)
class ElogRecord:
    """One ELOG integration period: averages over the whole period (already integrated)."""

    index: int
    values: dict[ElogField, float]

    @property
    def amps(self) -> float:
        return self.values[ElogField.CURR_AVG]

    @property
    def volts(self) -> float | None:
        return self.values.get(ElogField.VOLT_AVG)


def elog_fields(current: bool, voltage: bool, minmax: bool) -> tuple[ElogField, ...]:
    """Fields of each record in the instrument's order for the enabled functions."""
    wanted: list[ElogField] = []
    if current:
        wanted += [ElogField.CURR_AVG] + ([ElogField.CURR_MIN, ElogField.CURR_MAX] if minmax else [])
    if voltage:
        wanted += [ElogField.VOLT_AVG] + ([ElogField.VOLT_MIN, ElogField.VOLT_MAX] if minmax else [])
    return tuple(f for f in ELOG_ORDER if f in wanted)


def parse_elog(values: npt.ArrayLike, fields: tuple[ElogField, ...], first_index: int = 0) -> list[ElogRecord]:
    """Values of a ``FETC:ELOG?`` reply → records of ``len(fields)`` values each."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if not fields:
        raise ScpiParseError("no ELOG fields enabled")
    if flat.shape[0] % len(fields):
        raise ScpiParseError(f"{flat.shape[0]} ELOG values are not whole records of {len(fields)}")
    rows = flat.reshape(-1, len(fields))
    return [ElogRecord(first_index + n, dict(zip(fields, map(float, row), strict=True)))
            for n, row in enumerate(rows)]
