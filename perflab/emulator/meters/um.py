"""Emulated RDTech UM24C/UM25C/UM34C over Bluetooth SPP (meters.md §1): silent until polled with
``0xF0``, then one 130-byte big-endian frame after a Bluetooth-like delay. The group and record
counters integrate the source's V·I, so device-side energy can be checked too."""

from __future__ import annotations

import struct

import numpy as np

from perflab.emulator.meters.base import ModelledMeter
from perflab.emulator.meters.source import LoadSource

MODEL_IDS = {"um24c": 0x0963, "um25c": 0x09C9, "um34c": 0x0D4C}
_UM34C_XOR = (1, 3, 7, 9, 15, 17, 19, 23, 31, 39, 41, 45, 49, 53, 55, 57, 59, 63, 67, 69, 73, 79, 83,
              89, 97, 99, 109, 111, 113, 119, 121, 127)


def encode_frame(model: str, *, volts: float, amps: float, group: int, group_mah: list[float],
                 group_mwh: list[float], record_mah: float, record_mwh: float, record_s: float,
                 threshold_a: float, temperature_c: float, brightness: int, timeout_min: int,
                 screen: int) -> bytes:
    """One frame as the meter sends it (independent of perflab's decoder, on purpose)."""
    fine = model == "um25c"
    frame = bytearray(130)
    watts = volts * amps
    load_ohm = min(volts / amps, 9999.9) if amps > 1e-9 else 9999.9
    struct.pack_into(">HHHI", frame, 0, MODEL_IDS[model], round(volts * (1000 if fine else 100)),
                     round(amps * (10000 if fine else 1000)), round(watts * 1000))
    struct.pack_into(">HHH", frame, 10, round(temperature_c), round(temperature_c * 9 / 5 + 32), group)
    for g in range(10):
        struct.pack_into(">II", frame, 16 + 8 * g, int(group_mah[g]), int(group_mwh[g]))
    struct.pack_into(">HHH", frame, 96, 0, 0, 0)
    struct.pack_into(">IIHIH", frame, 102, int(record_mah), int(record_mwh), round(threshold_a * 100),
                     int(record_s), 1)
    struct.pack_into(">HHIH", frame, 118, timeout_min, brightness, round(load_ohm * 10), screen)
    if model == "um34c":
        frame[128] = 0x80
        x = 0
        for p in _UM34C_XOR:
            x ^= frame[p]
        frame[129] = x
    else:
        frame[128:130] = b"\xff\xf1"
    return bytes(frame)


class UmEmulator(ModelledMeter):
    kind = "um"
    models = MODEL_IDS

    def __init__(self, source: LoadSource, model: str = "um34c", reply_delay_s: float = 0.02,
                 *, transport: str = "pty") -> None:
        super().__init__(source, model, reply_delay_s, transport=transport)
        self.group = 0
        self.group_mah = [0.0] * 10
        self.group_mwh = [0.0] * 10
        self.record_mah = 0.0
        self.record_mwh = 0.0
        self.record_s = 0.0
        self.threshold_a = 0.10
        self.brightness = 4
        self.timeout_min = 2
        self.screen = 0
        self._due: list[float] = []
        self._last_integrated_s = 0.0
        self.polls = 0
        self.replies = 0  # frames written back (one per poll, once its reply delay has passed)
        self.garbage_before_reply = b""
        self.reply_garbage: bytes | None = None  # fault: answer every poll with this instead
        self.eat_within_s = 0.0  # fault: ignore commands closer than this to the previous one
        self.eat_next = 0  # fault: ignore the next n command bytes
        self.eaten = 0
        self._last_command_s = float("-inf")

    def on_bytes(self, data: bytes) -> None:
        now = self.now_s()
        for b in data:
            if self.eat_next or (self.eat_within_s and now - self._last_command_s < self.eat_within_s):
                self.eat_next = max(0, self.eat_next - 1)
                self.eaten += 1  # fault: the meter ignores a command too soon after the last
                continue
            self._last_command_s = now
            if b == 0xF0:
                self.polls += 1
                self._due.append(now + self.reply_delay_s)
            elif 0xA0 <= b <= 0xA9:
                self.group = b - 0xA0
            elif 0xB0 <= b <= 0xCE:
                self.threshold_a = (b - 0xB0) / 100
            elif 0xD0 <= b <= 0xD5:
                self.brightness = b - 0xD0
            elif 0xE0 <= b <= 0xE9:
                self.timeout_min = b - 0xE0
            elif b == 0xF1:
                self.screen = (self.screen + 1) % 6
            elif b == 0xF3:
                self.screen = (self.screen - 1) % 6
            elif b == 0xF4:
                self.group_mah[self.group] = 0.0
                self.group_mwh[self.group] = 0.0
            # everything else: ignored, as the meter does

    def _integrate(self, now_s: float) -> None:
        t0 = self._last_integrated_s
        if now_s <= t0:
            return
        n = max(2, int((now_s - t0) / 0.001) + 1)
        t = np.linspace(t0, now_s, n)
        amps = self.source.amps(t)
        watts = amps * self.source.volts(t)
        mah = float(np.trapezoid(amps, t)) / 3.6
        mwh = float(np.trapezoid(watts, t)) / 3.6
        self.group_mah[self.group] += mah
        self.group_mwh[self.group] += mwh
        if float(amps[-1]) >= self.threshold_a:
            self.record_mah += mah
            self.record_mwh += mwh
            self.record_s += now_s - t0
        self._last_integrated_s = now_s

    def tick(self, now_s: float) -> None:
        self._integrate(now_s)
        while self._due and self._due[0] <= now_s:
            self._due.pop(0)
            t = np.array([now_s])
            frame = encode_frame(
                self.model, volts=float(self.source.volts(t)[0]), amps=float(self.source.amps(t)[0]),
                group=self.group, group_mah=self.group_mah, group_mwh=self.group_mwh,
                record_mah=self.record_mah, record_mwh=self.record_mwh, record_s=self.record_s,
                threshold_a=self.threshold_a, temperature_c=25.0, brightness=self.brightness,
                timeout_min=self.timeout_min, screen=self.screen)
            if self.reply_garbage is not None:
                frame = self.reply_garbage
            self.port.write_all(self.garbage_before_reply + frame)
            self.garbage_before_reply = b""
            self.replies += 1
