"""RDTech UM24C / UM25C / UM34C: the 130-byte status frame (meters.md §1), pure decoding.

All fields are big-endian. The host polls with one byte ``0xF0``; the meter answers with one
frame. UM24C/UM25C end with the trailer ``FF F1``; the UM34C's last byte is an XOR checksum.
``UmStreamDecoder`` finds frames in a byte stream and resynchronises on the model ID when
bytes are lost or garbage arrives, counting what it skipped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum

FRAME_LEN = 130
POLL = b"\xf0"
TRAILER = b"\xff\xf1"


class UmModel(StrEnum):
    UM24C = "um24c"
    UM25C = "um25c"
    UM34C = "um34c"


MODEL_IDS: dict[int, UmModel] = {0x0963: UmModel.UM24C, 0x09C9: UmModel.UM25C, 0x0D4C: UmModel.UM34C}
MODEL_ID_OF: dict[UmModel, int] = {m: i for i, m in MODEL_IDS.items()}

UM34C_CHECKSUM_POSITIONS: tuple[int, ...] = (
    1, 3, 7, 9, 15, 17, 19, 23, 31, 39, 41, 45, 49, 53, 55, 57, 59, 63, 67, 69, 73, 79, 83, 89,
    97, 99, 109, 111, 113, 119, 121, 127,
)

CHARGING_MODES: dict[int, str] = {
    0: "unknown", 1: "QC2.0", 2: "QC3.0", 3: "Apple 2.4A", 4: "Apple 2.1A", 5: "Apple 1.0A",
    6: "Apple 0.5A", 7: "DCP 1.5A", 8: "Samsung", 65535: "unknown",
}


class UmFrameError(ValueError):
    """A 130-byte block is not a valid UM frame (pure-decoder error; drivers wrap it)."""


@dataclass(frozen=True)
class UmGroup:
    charge_mah: int
    energy_mwh: int


@dataclass(frozen=True)
class UmReading:
    """One decoded frame. Volts/amps/watts are the meter's own scaled values."""

    model: UmModel
    volts: float
    amps: float
    watts: float
    temperature_c: int
    temperature_f: int
    selected_group: int
    groups: tuple[UmGroup, ...]
    usb_data_plus_volts: float
    usb_data_minus_volts: float
    charging_mode: str
    record_charge_mah: int
    record_energy_mwh: int
    record_threshold_amps: float
    record_duration_s: int
    recording_flag: int
    screen_timeout_min: int
    brightness: int
    load_resistance_ohm: float
    screen_index: int

    def as_dict(self) -> dict[str, object]:
        return {
            "meter": self.model.value, "volts": self.volts, "amps": self.amps, "watts": self.watts,
            "temperature_c": self.temperature_c, "temperature_f": self.temperature_f,
            "selected_group": self.selected_group,
            "groups": [{"charge_mah": g.charge_mah, "energy_mwh": g.energy_mwh} for g in self.groups],
            "usb_data_plus_volts": self.usb_data_plus_volts,
            "usb_data_minus_volts": self.usb_data_minus_volts,
            "charging_mode": self.charging_mode, "record_charge_mah": self.record_charge_mah,
            "record_energy_mwh": self.record_energy_mwh,
            "record_threshold_amps": self.record_threshold_amps,
            "record_duration_s": self.record_duration_s, "recording_flag": self.recording_flag,
            "screen_timeout_min": self.screen_timeout_min, "brightness": self.brightness,
            "load_resistance_ohm": self.load_resistance_ohm, "screen_index": self.screen_index,
        }


def um34c_checksum(frame: bytes) -> int:
    """XOR of the 32 odd positions sigrok checks (byte 129 of a UM34C frame)."""
    x = 0
    for p in UM34C_CHECKSUM_POSITIONS:
        x ^= frame[p]
    return x


def frame_model(frame: bytes) -> UmModel | None:
    """The model a 130-byte block is a valid frame of, or None (ID, then trailer/checksum)."""
    if len(frame) != FRAME_LEN:
        return None
    model = MODEL_IDS.get(int.from_bytes(frame[0:2], "big"))
    if model is None:
        return None
    if model is UmModel.UM34C:
        return model if um34c_checksum(frame) == frame[129] else None
    return model if frame[128:130] == TRAILER else None


def decode_frame(frame: bytes) -> UmReading:
    """Decode one 130-byte frame; raises UmFrameError if it is not a valid frame."""
    model = frame_model(frame)
    if model is None:
        raise UmFrameError(f"not a UM frame: {frame[:4].hex()}… ({len(frame)} bytes)")

    def u16(off: int) -> int:
        return int(struct.unpack_from(">H", frame, off)[0])

    def u32(off: int) -> int:
        return int(struct.unpack_from(">I", frame, off)[0])

    fine = model is UmModel.UM25C
    volts = u16(2) / (1000.0 if fine else 100.0)
    amps = u16(4) / (10000.0 if fine else 1000.0)
    groups = tuple(UmGroup(charge_mah=u32(16 + 8 * g), energy_mwh=u32(20 + 8 * g)) for g in range(10))
    mode = u16(100)
    return UmReading(
        model=model, volts=volts, amps=amps, watts=u32(6) / 1000.0,
        temperature_c=u16(10), temperature_f=u16(12), selected_group=u16(14), groups=groups,
        usb_data_plus_volts=u16(96) / 100.0, usb_data_minus_volts=u16(98) / 100.0,
        charging_mode=CHARGING_MODES.get(mode, f"code {mode}"),
        record_charge_mah=u32(102), record_energy_mwh=u32(106), record_threshold_amps=u16(110) / 100.0,
        record_duration_s=u32(112), recording_flag=u16(116), screen_timeout_min=u16(118),
        brightness=u16(120), load_resistance_ohm=u32(122) / 10.0, screen_index=u16(126),
    )


class UmStreamDecoder:
    """Find frames in a byte stream. Bytes that are not part of a valid frame are skipped one
    at a time until a model ID starts a valid frame again (sigrok's resync), and counted."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.garbage_bytes = 0
        self.frames = 0

    def feed(self, data: bytes) -> list[UmReading]:
        self._buf += data
        out: list[UmReading] = []
        i = 0
        buf = self._buf
        while len(buf) - i >= FRAME_LEN:
            if frame_model(bytes(buf[i:i + FRAME_LEN])) is not None:
                out.append(decode_frame(bytes(buf[i:i + FRAME_LEN])))
                i += FRAME_LEN
                continue
            i += 1
            self.garbage_bytes += 1
        # keep a possible frame start; drop leading bytes that cannot start one
        rest = buf[i:]
        while len(rest) >= 2 and int.from_bytes(rest[0:2], "big") not in MODEL_IDS:
            rest = rest[1:]
            self.garbage_bytes += 1
        self._buf = bytearray(rest)
        self.frames += len(out)
        return out

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)
