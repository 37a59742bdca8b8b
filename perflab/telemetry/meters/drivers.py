"""Meter drivers over ``MeterPort``: UM24C/25C/34C (poll), PPK2 (stream), SCPI supplies (poll
and N6705 ELOG). Every failure is a MeterError subclass:

- MeterPortError: the port cannot be opened;
- MeterNotAnsweringError: nothing came back and no other known meter answers either;
- WrongMeterError: another meter type answers on the port (``found`` names it);
- MeterGarbageError: bytes arrive but do not decode;
- MeterGoneError: the port disappeared mid-run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Protocol, Self

import numpy as np

from perflab.telemetry.meters import ppk2, scpi, um
from perflab.telemetry.meters.errors import (
    MeterGarbageError,
    MeterNotAnsweringError,
    WrongMeterError,
)
from perflab.telemetry.meters.port import MeterPort

_SNIFF_TIMEOUT_S = 0.5
_GARBAGE_LIMIT_BYTES = 4096
UM_REPOLL_S = 0.6  # poll again once if nothing came back by then (rdserialtool spaces commands 0.5 s)


class MeterType(StrEnum):
    SCPI = "scpi"
    PPK2 = "ppk2"
    UM34C = "um34c"
    UM25C = "um25c"
    UM24C = "um24c"


class Meter(Protocol):
    port: MeterPort

    def read_once(self) -> dict[str, object]: ...

    def close(self) -> None: ...


# --- what else answers on a port --------------------------------------------------------------
def _um_frame_at_start(buf: bytes) -> int | None:
    for i in range(max(0, len(buf) - um.FRAME_LEN) + 1):
        if um.frame_model(buf[i:i + um.FRAME_LEN]) is not None:
            return i + um.FRAME_LEN
    return None


def sniff(port: MeterPort, skip: MeterType | None = None, timeout_s: float = _SNIFF_TIMEOUT_S) -> str | None:
    """Which known meter answers on ``port`` ("ppk2", "um34c", "scpi:<model>"), or None.
    Probes are chosen so that each is ignored by the other meters."""
    port.discard()
    if skip is not MeterType.PPK2:
        port.write(bytes([ppk2.GET_META_DATA]))
        text = port.read_until(b"END\n", timeout_s)
        if text is not None:
            try:
                ppk2.parse_metadata(text.decode("ascii", errors="replace"))
                return "ppk2"
            except ppk2.Ppk2MetadataError:
                pass
    if skip not in (MeterType.UM24C, MeterType.UM25C, MeterType.UM34C):
        port.discard()
        port.write(um.POLL)
        frame = port.take(_um_frame_at_start, timeout_s)
        if frame is not None:
            model = um.frame_model(frame[-um.FRAME_LEN:])
            return model.value if model else None
    if skip is not MeterType.SCPI:
        port.discard()
        port.write(b"\n*IDN?\n")
        line = port.read_until(b"\n", timeout_s)
        if line is not None:
            try:
                return f"scpi:{scpi.parse_idn(line.decode('ascii', errors='replace')).model}"
            except scpi.ScpiParseError:
                pass
    return None


def _silent(port: MeterPort, expected: MeterType, what: str, stray_bytes: int = 0) -> Exception:
    """The error for a probe that got no valid reply: wrong meter, garbage, or silence."""
    stray = port.peek()
    stray_bytes += len(stray)
    found = sniff(port, skip=expected)
    if found is not None:
        return WrongMeterError(port.url, f"configured as {expected.value} but a {found} answers here",
                               found=found)
    if stray_bytes:
        return MeterGarbageError(port.url, f"no valid reply to {what}; got {stray_bytes} undecodable bytes")
    return MeterNotAnsweringError(port.url, f"no reply to {what} (is the meter on, and this its port?)")


class _ClosedOnExit:
    """``with meter:`` closes the meter on the way out, however the block ends."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


# --- RDTech UM ---------------------------------------------------------------------------------
class UmMeter(_ClosedOnExit):
    """Polled: one ``0xF0``, one 130-byte frame. Resynchronises on garbage (counted)."""

    def __init__(self, url: str, model: MeterType, *, timeout_s: float = 1.0, connect_delay_s: float = 0.0) -> None:
        if model not in (MeterType.UM24C, MeterType.UM25C, MeterType.UM34C):
            raise ValueError(f"{model} is not a UM meter")
        self.model = model
        self.timeout_s = timeout_s
        self.port = MeterPort(url)
        self.decoder = um.UmStreamDecoder()
        self.repolls = 0
        if connect_delay_s:
            time.sleep(connect_delay_s)  # RFCOMM connects on first open (meters.md §7.3)

    def read(self) -> um.UmReading:
        self.port.discard()
        self.port.write(um.POLL)
        start = time.monotonic()
        deadline = start + self.timeout_s
        retry_at: float | None = start + min(UM_REPOLL_S, self.timeout_s / 2)
        seen = 0
        while True:
            until = deadline if retry_at is None else retry_at
            data = self.port.take(lambda buf: len(buf), max(0.0, until - time.monotonic()))
            if retry_at is not None and not seen and not data and time.monotonic() >= retry_at:
                # the meter sometimes eats a command sent soon after another (meters.md §1.1)
                self.repolls += 1
                self.port.write(um.POLL)
                retry_at = None
                continue
            if data:
                seen += len(data)
                readings = self.decoder.feed(data)
                if readings:
                    got = readings[-1]
                    if got.model.value != self.model.value:
                        raise WrongMeterError(self.port.url, f"configured as {self.model.value} but a "
                                              f"{got.model.value} answers here", found=got.model.value)
                    return got
                if self.decoder.garbage_bytes > _GARBAGE_LIMIT_BYTES:
                    raise MeterGarbageError(self.port.url, f"{self.decoder.garbage_bytes} bytes without a UM frame")
            if time.monotonic() >= deadline:
                raise _silent(self.port, self.model, f"the {self.model.value} poll (0xF0)", stray_bytes=seen)

    def read_once(self) -> dict[str, object]:
        r = self.read()
        return {**r.as_dict(), "garbage_bytes": self.decoder.garbage_bytes}

    def close(self) -> None:
        self.port.close()


# --- Nordic PPK2 -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ppk2Summary:
    """Stream statistics over what has been decoded so far."""

    samples_decoded: int
    samples_lost: int
    garbage_bytes: int


class Ppk2Meter(_ClosedOnExit):
    """Metadata on open; ``start`` sets VDD and mode and starts the 100 kHz stream, which the
    port's reader thread buffers; ``poll`` decodes everything received so far."""

    def __init__(self, url: str, *, timeout_s: float = 1.0) -> None:
        self.timeout_s = timeout_s
        self.stale_bytes = 0
        self.port = MeterPort(url)
        self.port.discard()
        self.port.write(bytes([ppk2.AVERAGE_STOP, ppk2.GET_META_DATA]))
        text = self.port.read_until(b"END\n", timeout_s)
        if text is None:
            err = _silent(self.port, MeterType.PPK2, "the PPK2 metadata request (0x19)")
            self.port.close()
            raise err
        start = text.rfind(b"Calibrated:")  # a stream left running may precede the text
        if start > 0:
            self.stale_bytes = start
            text = text[start:]
        try:
            self.calibration = ppk2.parse_metadata(text.decode("ascii", errors="replace"))
        except ppk2.Ppk2MetadataError as exc:
            self.port.close()
            raise MeterGarbageError(url, f"PPK2 metadata unreadable: {exc}") from exc
        self.vdd_mv = self.calibration.metadata_vdd_mv or 3700
        self.decoder = ppk2.Ppk2StreamDecoder(self.calibration, self.vdd_mv)
        self.streaming = False

    def start(self, vdd_mv: int = 3700, *, source_mode: bool = True) -> None:
        self.vdd_mv = max(ppk2.VDD_MIN_MV, min(ppk2.VDD_MAX_MV, vdd_mv))
        mode = ppk2.POWER_MODE_SOURCE if source_mode else ppk2.POWER_MODE_AMPERE
        self.port.write(ppk2.regulator_command(self.vdd_mv) + bytes([ppk2.SET_POWER_MODE, mode]))
        self.port.write(bytes([ppk2.DEVICE_RUNNING_SET, 1]))
        self.port.discard()
        self.decoder = ppk2.Ppk2StreamDecoder(self.calibration, self.vdd_mv)
        self.port.write(bytes([ppk2.AVERAGE_START]))
        self.streaming = True

    def poll(self) -> list[ppk2.Ppk2Chunk]:
        chunks = self.decoder.feed(self.port.drain())
        if self.decoder.samples_decoded == 0 and self.decoder.garbage_bytes > _GARBAGE_LIMIT_BYTES:
            raise MeterGarbageError(self.port.url, f"{self.decoder.garbage_bytes} bytes without a PPK2 sample")
        return chunks

    def read_samples(self, n: int) -> list[ppk2.Ppk2Chunk]:
        """At least ``n`` samples (waits up to timeout_s plus their duration)."""
        out: list[ppk2.Ppk2Chunk] = []
        got = 0
        deadline = time.monotonic() + self.timeout_s + n / ppk2.SAMPLE_RATE_HZ
        while got < n:
            chunks = self.poll()
            out += chunks
            got += sum(len(c) for c in chunks)
            if got >= n:
                break
            if time.monotonic() > deadline:
                if self.decoder.garbage_bytes:
                    raise MeterGarbageError(self.port.url, f"{got} samples and {self.decoder.garbage_bytes} "
                                            "undecodable bytes")
                raise MeterNotAnsweringError(self.port.url, f"PPK2 stream stalled after {got} samples")
            self.port.take(lambda buf: None if len(buf) < 4000 else 0, 0.01)
        return out

    @property
    def summary(self) -> Ppk2Summary:
        return Ppk2Summary(self.decoder.samples_decoded, self.decoder.samples_lost, self.decoder.garbage_bytes)

    def stop(self) -> None:
        if self.streaming and not self.port.gone:
            self.port.write(bytes([ppk2.AVERAGE_STOP]))
        self.streaming = False

    def read_once(self, window_samples: int = 1000) -> dict[str, object]:
        """Mean, min and max over every sample since the last reading (at least
        ``window_samples``: 10 ms at 100 kHz), so live readings miss nothing in between."""
        if not self.streaming:
            self.start(self.vdd_mv)
        chunks = self.read_samples(window_samples)
        current_ua = np.concatenate([c.current_ua for c in chunks])
        logic = np.concatenate([c.logic for c in chunks])
        volts = self.vdd_mv / 1000.0
        amps = float(np.mean(current_ua)) / 1e6
        return {
            "meter": "ppk2", "volts": volts, "amps": amps, "watts": amps * volts,
            "current_ua": float(np.mean(current_ua)), "current_min_ua": float(np.min(current_ua)),
            "current_max_ua": float(np.max(current_ua)), "window_samples": int(current_ua.shape[0]),
            "logic_last": int(logic[-1]), "samples_lost": self.decoder.samples_lost,
            "garbage_bytes": self.decoder.garbage_bytes, "vdd_mv": self.vdd_mv,
            "calibrated": self.calibration.calibrated, "hw": self.calibration.hw,
            "emulated": self.calibration.extra.get("perflab-emulated") == "1",
        }

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self.port.close()


# --- SCPI supplies -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ScpiReading:
    volts: float
    amps: float
    identity: scpi.ScpiIdentity

    @property
    def watts(self) -> float:
        return self.volts * self.amps


class ScpiMeter(_ClosedOnExit):
    def __init__(self, url: str, *, channel: int = 1, timeout_s: float = 1.0, baud: int = 9600) -> None:
        self.timeout_s = timeout_s
        self.port = MeterPort(url, baud=baud)
        try:
            self.port.discard()
            self.port.write(b"*IDN?\n")
            line = self.port.read_until(b"\n", timeout_s)
            if line is None:
                raise _silent(self.port, MeterType.SCPI, "*IDN?")
            try:
                self.identity = scpi.parse_idn(line.decode("ascii", errors="replace"))
            except scpi.ScpiParseError:
                found = sniff(self.port, skip=MeterType.SCPI)
                if found is not None:
                    raise WrongMeterError(url, f"configured as scpi but a {found} answers here", found=found) from None
                raise MeterGarbageError(url, f"*IDN? answered {line[:24]!r}") from None
            profile = scpi.profile_for(self.identity, channel)
            if profile is None:
                raise WrongMeterError(url, f"{self.identity.manufacturer} {self.identity.model} is not a supported "
                                      "supply (66319B/D, N6705 + N678x, DP800)", found=f"scpi:{self.identity.model}")
            self.profile = profile
            self.channel = channel
            for cmd in profile.setup:
                self.write(cmd)
        except BaseException:
            self.port.close()
            raise
        self._elog_fields: tuple[scpi.ElogField, ...] = ()
        self._elog_real = False
        self._elog_next = 0

    def write(self, command: str) -> None:
        self.port.write(command.encode("ascii") + b"\n")

    def query(self, command: str) -> str:
        self.write(command)
        line = self.port.read_until(b"\n", self.timeout_s)
        if line is None:
            raise MeterNotAnsweringError(self.port.url, f"no reply to {command!r} within {self.timeout_s:g} s")
        return line.decode("ascii", errors="replace")

    def _number(self, command: str) -> float:
        try:
            return scpi.parse_number(self.query(command))
        except scpi.ScpiParseError as exc:
            raise MeterGarbageError(self.port.url, f"{command}: {exc}") from exc

    def read(self) -> ScpiReading:
        volts = self._number(self.profile.measure_voltage)
        amps = self._number(self.profile.measure_current)
        return ScpiReading(volts=volts, amps=amps, identity=self.identity)

    def read_once(self) -> dict[str, object]:
        r = self.read()
        return {"meter": "scpi", "volts": r.volts, "amps": r.amps, "watts": r.watts,
                "family": self.profile.family.value, "manufacturer": self.identity.manufacturer,
                "model": self.identity.model, "serial": self.identity.serial,
                "firmware": self.identity.firmware, "channel": self.channel,
                "emulated": self.identity.serial.startswith("EMULATED")}

    # ELOG (N6705 + N678x): continuous integrated averages, fetched before the ~20 s FIFO fills
    def start_elog(self, period_s: float, *, voltage: bool = True, minmax: bool = False, real: bool = True) -> None:
        if not self.profile.supports_elog:
            raise WrongMeterError(self.port.url, f"{self.identity.model} has no ELOG", found=f"scpi:{self.identity.model}")
        ch = f"(@{self.channel})"
        self._elog_fields = scpi.elog_fields(current=True, voltage=voltage, minmax=minmax)
        self._elog_real = real
        self._elog_next = 0
        for cmd in (f"SENS:ELOG:FUNC:CURR ON,{ch}", f"SENS:ELOG:FUNC:VOLT {'ON' if voltage else 'OFF'},{ch}",
                    f"SENS:ELOG:FUNC:CURR:MINM {'ON' if minmax else 'OFF'},{ch}",
                    f"SENS:ELOG:PER {period_s:.7g},{ch}", "FORM REAL" if real else "FORM ASCII",
                    "FORM:BORD NORM", f"TRIG:ELOG:SOUR BUS,{ch}", f"INIT:ELOG {ch}", f"TRIG:ELOG {ch}"):
            self.write(cmd)

    def fetch_elog(self, max_records: int = 1000) -> list[scpi.ElogRecord]:
        self.write(f"FETC:ELOG? {max_records},(@{self.channel})")
        if self._elog_real:
            def complete(buf: bytes) -> int | None:
                try:
                    got = scpi.parse_block(buf)
                except scpi.ScpiParseError as exc:
                    raise MeterGarbageError(self.port.url, f"FETC:ELOG?: {exc}") from exc
                return None if got is None else got[1]

            data = self.port.take(complete, self.timeout_s)
            if data is None:
                raise MeterNotAnsweringError(self.port.url, "no reply to FETC:ELOG?")
            block = scpi.parse_block(data)
            if block is None:  # cannot happen: take() returned a complete block
                raise MeterGarbageError(self.port.url, "FETC:ELOG?: incomplete block")
            values = scpi.decode_real_block(block[0])
        else:
            line = self.query_line_after_write()
            try:
                values = np.asarray(scpi.parse_numbers(line), dtype=np.float64)
            except scpi.ScpiParseError as exc:
                raise MeterGarbageError(self.port.url, f"FETC:ELOG?: {exc}") from exc
        try:
            records = scpi.parse_elog(values, self._elog_fields, self._elog_next)
        except scpi.ScpiParseError as exc:
            raise MeterGarbageError(self.port.url, f"FETC:ELOG?: {exc}") from exc
        self._elog_next += len(records)
        return records

    def query_line_after_write(self) -> str:
        line = self.port.read_until(b"\n", self.timeout_s)
        if line is None:
            raise MeterNotAnsweringError(self.port.url, "no reply to FETC:ELOG?")
        return line.decode("ascii", errors="replace")

    def stop_elog(self) -> None:
        if not self.port.gone:
            self.write(f"ABOR:ELOG (@{self.channel})")

    def close(self) -> None:
        self.port.close()


def open_meter(url: str, meter_type: MeterType, *, timeout_s: float = 1.0) -> Meter:
    """Open and probe a meter of the given type on ``url``."""
    if meter_type is MeterType.SCPI:
        return ScpiMeter(url, timeout_s=timeout_s)
    if meter_type is MeterType.PPK2:
        return Ppk2Meter(url, timeout_s=timeout_s)
    meter = UmMeter(url, meter_type, timeout_s=timeout_s)
    return meter
