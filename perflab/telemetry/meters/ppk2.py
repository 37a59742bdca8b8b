"""Nordic PPK2: metadata, the calibration formula and the 100 kHz sample stream (meters.md §2),
pure decoding with numpy.

The stream is 4-byte little-endian words with no framing: ADC (bits 0-13), range (14-16),
a 6-bit counter (18-23) that advances by one per sample, and the logic port D0-D7 (24-31).
``Ppk2StreamDecoder`` checks the counter: a jump followed by a consistent run is a loss
(``(counter - expected) & 63`` samples, as Nordic's app counts it — a loss of 64 or more is
seen modulo 64); an inconsistent run is garbage, skipped byte by byte until
``LOCK_WORDS`` consecutive counters lock the alignment again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

SAMPLE_RATE_HZ = 100_000
SAMPLE_PERIOD_S = 1.0 / SAMPLE_RATE_HZ
WORD_BYTES = 4
LOCK_WORDS = 8

# opcodes (host → PPK2); no acknowledgement except the metadata text
GET_META_DATA = 0x19
SET_POWER_MODE = 0x11
REGULATOR_SET = 0x0D
DEVICE_RUNNING_SET = 0x0C
AVERAGE_START = 0x06
AVERAGE_STOP = 0x07
SET_USER_GAINS = 0x25
RESET = 0x20
POWER_MODE_AMPERE = 1
POWER_MODE_SOURCE = 2
VDD_MIN_MV = 800
VDD_MAX_MV = 5000

_DEFAULTS: dict[str, tuple[float, ...]] = {
    "r": (1031.64, 101.65, 10.15, 0.94, 0.043),
    "gs": (1.0,) * 5, "gi": (1.0,) * 5, "o": (0.0,) * 5, "s": (0.0,) * 5, "i": (0.0,) * 5,
    "ug": (1.0,) * 5,
}

FloatArray = npt.NDArray[np.float64]
U8Array = npt.NDArray[np.uint8]


class Ppk2MetadataError(ValueError):
    """The metadata text is not what a PPK2 sends."""


def regulator_command(vdd_mv: int) -> bytes:
    """``0D hi lo``: VDD in mV, big-endian, clamped to 800-5000 as the firmware does."""
    vdd_mv = max(VDD_MIN_MV, min(VDD_MAX_MV, int(vdd_mv)))
    return bytes([REGULATOR_SET, vdd_mv >> 8, vdd_mv & 0xFF])


@dataclass(frozen=True)
class Ppk2Calibration:
    """Per-range modifiers (index = range 0..4) and the metadata's own fields."""

    r: tuple[float, ...] = _DEFAULTS["r"]
    gs: tuple[float, ...] = _DEFAULTS["gs"]
    gi: tuple[float, ...] = _DEFAULTS["gi"]
    o: tuple[float, ...] = _DEFAULTS["o"]
    s: tuple[float, ...] = _DEFAULTS["s"]
    i: tuple[float, ...] = _DEFAULTS["i"]
    ug: tuple[float, ...] = _DEFAULTS["ug"]
    calibrated: bool = False
    metadata_vdd_mv: int | None = None
    hw: int | None = None
    mode: int | None = None
    ia: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


def parse_metadata(text: str) -> Ppk2Calibration:
    """Parse the ``Key: value`` lines up to ``END``. Like Nordic's app, keys are case-folded,
    ``-nan`` and values of 0 keep the default (so ``R0: 0`` cannot divide by zero)."""
    if "END" not in text:
        raise Ppk2MetadataError("metadata has no END line")
    body = text[: text.index("END")]
    values: dict[str, list[float]] = {k: list(v) for k, v in _DEFAULTS.items()}
    scalars: dict[str, str] = {}
    seen = 0
    for raw in body.splitlines():
        line = raw.strip()
        if not line:
            continue
        if ":" not in line:
            raise Ppk2MetadataError(f"metadata line without ':': {line[:40]!r}")
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        seen += 1
        prefix, digits = key.rstrip("0123456789"), key[len(key.rstrip("0123456789")):]
        if prefix in values and digits and int(digits) < 5:
            try:
                number = float(value)
            except ValueError:
                continue  # '-nan' and the like keep the default
            if number != 0.0 and np.isfinite(number):
                values[prefix][int(digits)] = number
        else:
            scalars[key] = value
    if seen == 0:
        raise Ppk2MetadataError("metadata is empty")

    def _int(key: str) -> int | None:
        try:
            return int(float(scalars[key]))
        except (KeyError, ValueError):
            return None

    known = {"calibrated", "vdd", "hw", "mode", "ia"}
    return Ppk2Calibration(
        **{k: tuple(v) for k, v in values.items()},  # type: ignore[arg-type]
        calibrated=_int("calibrated") == 1, metadata_vdd_mv=_int("vdd"), hw=_int("hw"),
        mode=_int("mode"), ia=_int("ia"), extra={k: v for k, v in scalars.items() if k not in known},
    )


def words_to_current_ua(words: npt.NDArray[np.uint32], cal: Ppk2Calibration, vdd_mv: float) -> FloatArray:
    """Nordic's formula (meters.md §2.5), vectorised; returns microamperes."""
    rng = np.minimum((words >> 14) & 7, 4).astype(np.intp)
    adc = (words & 0x3FFF).astype(np.float64) * 4.0
    r = np.asarray(cal.r)[rng]
    r_wg = (adc - np.asarray(cal.o)[rng]) * ((1.8 / 163840.0) / r)
    amps = np.asarray(cal.ug)[rng] * (
        r_wg * (np.asarray(cal.gs)[rng] * r_wg + np.asarray(cal.gi)[rng])
        + (np.asarray(cal.s)[rng] * (vdd_mv / 1000.0) + np.asarray(cal.i)[rng])
    )
    return np.asarray(amps * 1e6, dtype=np.float64)


@dataclass(frozen=True)
class Ppk2Chunk:
    """Consecutive samples: sample ``first_index + k`` is at ``(first_index + k) * 10 µs`` of
    the meter's own clock (lost samples keep their index, so time stays true across gaps)."""

    first_index: int
    current_ua: FloatArray
    range_index: U8Array
    logic: U8Array

    def __len__(self) -> int:
        return int(self.current_ua.shape[0])


@dataclass(frozen=True)
class Ppk2Gap:
    first_index: int
    lost_samples: int


def current_table_ua(cal: Ppk2Calibration, vdd_mv: float) -> FloatArray:
    """Current in µA for every value of a word's low 17 bits (ADC and range): the formula
    evaluated once, so decoding a word is one table look-up."""
    low = np.arange(1 << 17, dtype=np.uint32)
    return words_to_current_ua(low, cal, vdd_mv)


_RANGE_OF = np.array([0, 1, 2, 3, 4, 4, 4, 4], dtype=np.uint8)
_RAMP = (np.arange(1 << 16) & 0xFF).astype(np.uint8)


class Ppk2StreamDecoder:
    """Bytes of the sample stream → chunks of calibrated samples, with loss and garbage counts."""

    def __init__(self, cal: Ppk2Calibration, vdd_mv: float) -> None:
        self.cal = cal
        self.vdd_mv = vdd_mv
        self._table = current_table_ua(cal, vdd_mv)
        self._buf = bytearray()
        self._expected: int | None = None
        self.next_index = 0
        self.samples_decoded = 0
        self.samples_lost = 0
        self.garbage_bytes = 0
        self.gaps: list[Ppk2Gap] = []

    def _emit(self, words: npt.NDArray[np.uint32], out: list[Ppk2Chunk]) -> None:
        if words.shape[0] == 0:
            return
        out.append(Ppk2Chunk(
            first_index=self.next_index,
            current_ua=self._table[words & 0x1FFFF],
            range_index=_RANGE_OF[(words >> 14) & 7],
            logic=(words >> 24).astype(np.uint8),
        ))
        n = int(words.shape[0])
        self.next_index += n
        self.samples_decoded += n
        self._expected = (int(words[-1] >> 18) + 1) & 63

    def feed(self, data: bytes) -> list[Ppk2Chunk]:
        buf = bytes(self._buf + data) if self._buf else bytes(data)
        out: list[Ppk2Chunk] = []
        pos = 0
        while True:
            n = (len(buf) - pos) // WORD_BYTES
            if n == 0:
                break
            words = np.frombuffer(buf, dtype="<u4", count=n, offset=pos)
            if self._expected is None:
                counters = ((words[:LOCK_WORDS] >> 18) & 63).astype(np.int64)
                if n < LOCK_WORDS:
                    break
                if _consecutive(counters[:LOCK_WORDS]):
                    self._expected = int(counters[0])
                else:
                    pos += 1
                    self.garbage_bytes += 1
                continue
            diff = (((words >> 18).astype(np.uint8) - _ramp(self._expected, n)) & 63)
            if not diff.any():
                self._emit(words, out)
                pos += n * WORD_BYTES
                break
            k = int(np.argmax(diff != 0))
            self._emit(words[:k], out)
            pos += k * WORD_BYTES
            if n - k < LOCK_WORDS:
                break  # wait for enough words to tell a loss from garbage
            head = ((words[k:k + LOCK_WORDS] >> 18) & 63).astype(np.int64)
            if _consecutive(head):
                lost = (int(head[0]) - self._expected) & 63
                if lost:
                    self.gaps.append(Ppk2Gap(self.next_index, lost))
                    self.samples_lost += lost
                    self.next_index += lost
                self._expected = int(head[0])
            else:
                pos += 1
                self.garbage_bytes += 1
        self._buf = bytearray(buf[pos:])
        return out


def _ramp(start: int, n: int) -> npt.NDArray[np.uint8]:
    """``(start + i) & 0xFF`` for i < n, as uint8 (compared mod 64 after subtraction)."""
    if n <= _RAMP.shape[0] - 256:
        return _RAMP[start:start + n]
    return ((start + np.arange(n)) & 0xFF).astype(np.uint8)


def _consecutive(counters: npt.NDArray[np.int64]) -> bool:
    return bool(np.all(((counters[1:] - counters[:-1]) & 63) == 1))


def chunks_to_series(chunks: list[Ppk2Chunk]) -> tuple[FloatArray, FloatArray]:
    """(t_s on the meter's clock, amps) of decoded chunks; lost samples leave gaps in t_s."""
    if not chunks:
        return np.empty(0), np.empty(0)
    idx = np.concatenate([c.first_index + np.arange(len(c), dtype=np.int64) for c in chunks])
    amps = np.concatenate([c.current_ua for c in chunks]) / 1e6
    return np.asarray(idx * SAMPLE_PERIOD_S, dtype=np.float64), np.asarray(amps, dtype=np.float64)


class SpikeFilter:
    """Nordic's host-side spike filter, for parity with the Power Profiler app (meters.md §2.5).
    perflab's own numbers use raw samples; this is offered beside them, never instead.

    Two exponential averages of the current run over the stream (alpha 0.18, and 0.06 for
    range 4). At a range change and for the 2 samples after it the output is the average
    instead of the sample (the range-4 average on range 4); on range 4, the change sample and
    the next one do not update the averages. Vectorised: the averages are linear filters over
    the samples that update them, so only the bookkeeping is per range change. State carries
    across chunks; a new stream needs a new filter (Nordic resets at AVERAGE_START).
    """

    ALPHA = 0.18
    ALPHA4 = 0.06
    SAMPLES = 3

    def __init__(self) -> None:
        self._avg: float | None = None
        self._avg4: float | None = None
        self._prev_range: int | None = None
        self._since_change = SpikeFilter.SAMPLES  # samples since the last change, capped

    def apply(self, current_ua: FloatArray, range_index: U8Array) -> FloatArray:
        from scipy.signal import lfilter

        i_ua = np.asarray(current_ua, dtype=np.float64)
        rng = np.asarray(range_index, dtype=np.int64)
        n = i_ua.shape[0]
        if n == 0:
            return i_ua.copy()
        prev = np.concatenate(([rng[0] if self._prev_range is None else self._prev_range], rng[:-1]))
        change = rng != prev
        idx = np.arange(n)
        last_change = np.maximum.accumulate(np.where(change, idx, -(1 << 40)))
        since = np.where(last_change >= 0, idx - last_change, self._since_change + idx)
        affected = since < self.SAMPLES
        frozen = affected & (rng == 4) & (since < 2)  # averages keep their previous value
        keep = ~frozen
        kept = i_ua[keep]
        avg_k = self._ema(kept, self.ALPHA, self._avg, lfilter)
        avg4_k = self._ema(kept, self.ALPHA4, self._avg4, lfilter)
        pos = np.cumsum(keep) - 1  # index into kept of the last update at or before each sample
        before = pos < 0
        avg = np.where(before, np.nan if self._avg is None else self._avg, avg_k[np.maximum(pos, 0)] if kept.size else 0.0)
        avg4 = np.where(before, np.nan if self._avg4 is None else self._avg4,
                        avg4_k[np.maximum(pos, 0)] if kept.size else 0.0)
        out = np.where(affected, np.where(rng == 4, avg4, avg), i_ua)
        if kept.size:
            self._avg, self._avg4 = float(avg_k[-1]), float(avg4_k[-1])
        self._prev_range = int(rng[-1])
        self._since_change = int(min(since[-1] + 1, self.SAMPLES))
        return np.asarray(out, dtype=np.float64)

    @staticmethod
    def _ema(x: FloatArray, alpha: float, state: float | None, lfilter: object) -> FloatArray:
        if x.size == 0:
            return x
        start = float(x[0]) if state is None else state
        zi = np.array([(1 - alpha) * start])
        y, _ = lfilter([alpha], [1.0, -(1 - alpha)], x, zi=zi)  # type: ignore[operator]
        if state is None:
            y[0] = x[0]  # the first sample initialises the average
            if x.size > 1:
                y[1:], _ = lfilter([alpha], [1.0, -(1 - alpha)], x[1:], zi=np.array([(1 - alpha) * x[0]]))  # type: ignore[operator]
        return np.asarray(y, dtype=np.float64)
