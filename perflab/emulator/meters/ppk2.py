"""Emulated Nordic PPK2 (meters.md §2): opcodes with no acknowledgement, metadata text on
``0x19``, and after ``0x06`` a 100 kHz stream of 4-byte little-endian words written in chunks
(1000 words every 10 ms by default), paced by the emulator's clock.

Currents come from the source and are encoded by inverting Nordic's calibration formula with
the metadata the emulator announces, choosing the most sensitive range that holds the value.
When the pty is full (nobody reading) whole words are dropped and the counter still advances,
as USB loss looks on the real device; ``drop_samples(n)`` drops on purpose.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from perflab.emulator.meters.base import EmulatedMeter
from perflab.emulator.meters.source import LoadSource

SAMPLE_RATE_HZ = 100_000
_K = 1.8 / 163840.0
_LENGTHS = {0x19: 1, 0x11: 2, 0x0D: 3, 0x0C: 2, 0x06: 1, 0x07: 1, 0x25: 6, 0x20: 1, 0x15: 1, 0x16: 1}

# the example metadata of meters.md §2.3 (a real PPK2's reply)
EXAMPLE_METADATA: dict[str, tuple[float, ...]] = {
    "R": (1003.3506, 101.5865, 10.3027, 0.9636, 0.0564),
    "GS": (0.0, 112.7890, 18.0115, 2.4217, 0.0729),
    "GI": (1.0, 0.9695, 0.9609, 0.9519, 0.9582),
    "O": (112.9420, 75.4627, 64.6020, 50.4983, 87.2177),
    "S": (0.000000048, 0.000000596, 0.000005281, 0.000062577, 0.002940743),
    "I": (-0.000000104, -0.000001443, 0.000036439, -0.000374119, -0.009388455),
    "UG": (1.0, 1.0, 1.0, 1.0, 1.0),
}
_FORMATS = {"R": "{:.4f}", "GS": "{:.4f}", "GI": "{:.4f}", "O": "{:.4f}", "S": "{:.9f}", "I": "{:.9f}",
            "UG": "{:.2f}"}


def metadata_text(vdd_mv: int, mode: int) -> bytes:
    lines = ["Calibrated: 0"]
    for key in ("R", "GS", "GI", "O"):
        lines += [f"{key}{n}: {_FORMATS[key].format(v)}" for n, v in enumerate(EXAMPLE_METADATA[key])]
    lines += [f"VDD: {vdd_mv}", "HW: 9173", f"mode: {mode}"]
    for key in ("S", "I", "UG"):
        lines += [f"{key}{n}: {_FORMATS[key].format(v)}" for n, v in enumerate(EXAMPLE_METADATA[key])]
    lines += ["IA: 56", "perflab-emulated: 1", "END", ""]  # a real PPK2 sends no such line
    return "\n".join(lines).encode()


def _effective(key: str) -> npt.NDArray[np.float64]:
    """Values as a reader following Nordic's app uses them: a 0 keeps the default."""
    default = {"R": 1.0, "GS": 1.0, "GI": 1.0, "UG": 1.0}.get(key, 0.0)
    return np.array([v if v != 0.0 else default for v in EXAMPLE_METADATA[key]], dtype=np.float64)


_R, _GS, _GI, _O, _S, _I, _UG = (_effective(k) for k in ("R", "GS", "GI", "O", "S", "I", "UG"))


def encode_words(amps: npt.NDArray[np.float64], counter0: int, vdd_mv: float,
                 logic: npt.NDArray[np.uint8] | None = None) -> npt.NDArray[np.uint32]:
    """Currents → stream words (most sensitive range with the ADC below 16000)."""
    a = np.asarray(amps, dtype=np.float64)[None, :]
    c = (_S * vdd_mv / 1000.0 + _I)[:, None] - a / _UG[:, None]
    gs, gi = _GS[:, None], _GI[:, None]
    x = (-gi + np.sqrt(np.maximum(gi * gi - 4 * gs * c, 0.0))) / (2 * gs)
    adc14 = np.rint((x * _R[:, None] / _K + _O[:, None]) / 4.0)
    fits = (adc14 >= 0) & (adc14 <= 16000)
    fits[4] = True
    rng = np.argmax(fits, axis=0)
    cols = np.arange(a.shape[1])
    adc = np.clip(adc14[rng, cols], 0, 0x3FFF).astype(np.uint32)
    counters = ((counter0 + np.arange(a.shape[1], dtype=np.uint32)) & 63).astype(np.uint32)
    words = adc | (rng.astype(np.uint32) << 14) | (counters << 18)
    if logic is not None:
        words |= logic.astype(np.uint32) << 24
    return np.asarray(words, dtype=np.uint32)


class Ppk2Emulator(EmulatedMeter):
    kind = "ppk2"

    def __init__(self, source: LoadSource, chunk_words: int = 1000, *, block_when_full: bool = False,
                 transport: str = "pty") -> None:
        super().__init__(source, transport=transport)
        self.chunk_words = chunk_words
        # True: wait for the reader instead of dropping (deterministic ground-truth tests on a
        # loaded machine); False: drop whole words like the hardware
        self.block_when_full = block_when_full
        self.vdd_mv = 3700
        self.mode = 1
        self.dut_on = False
        self.streaming = False
        self.stream_t0_s = 0.0
        self.next_index = 0
        self.samples_sent = 0
        self.samples_dropped = 0
        self.samples_overflowed = 0
        self._drop_pending = 0
        self._pending = bytearray()
        self.metadata_requests = 0

    def on_bytes(self, data: bytes) -> None:
        self._pending += data
        while self._pending:
            op = self._pending[0]
            need = _LENGTHS.get(op, 1)
            if len(self._pending) < need:
                return
            cmd = bytes(self._pending[:need])
            del self._pending[:need]
            self._command(cmd)

    def _command(self, cmd: bytes) -> None:
        op = cmd[0]
        if op == 0x19:
            self.metadata_requests += 1
            self.port.write_all(metadata_text(self.vdd_mv, self.mode))
        elif op == 0x11:
            self.mode = cmd[1]
        elif op == 0x0D:
            self.vdd_mv = max(800, min(5000, (cmd[1] << 8) | cmd[2]))
        elif op == 0x0C:
            self.dut_on = cmd[1] == 1
        elif op == 0x06:
            self.streaming = True
            self.stream_t0_s = self.now_s()
            self.next_index = 0
        elif op == 0x07:
            self.streaming = False

    def sample_time_s(self, index: int | npt.NDArray[np.int64]) -> float | npt.NDArray[np.float64]:
        """Emulator time of stream sample ``index``."""
        return self.stream_t0_s + np.asarray(index) / SAMPLE_RATE_HZ if isinstance(index, np.ndarray) \
            else self.stream_t0_s + index / SAMPLE_RATE_HZ

    def drop_samples(self, n: int) -> None:
        """The next ``n`` samples are generated (counter advances) but never sent."""
        with self._lock:
            self._drop_pending += n

    def tick(self, now_s: float) -> None:
        if not self.streaming:
            return
        settle = getattr(self.source, "settle", None)
        if callable(settle):  # send only what the source knows by now (see physics_load)
            now_s = min(now_s, float(settle(now_s)))
        due = int((now_s - self.stream_t0_s) * SAMPLE_RATE_HZ) - self.next_index
        while due >= self.chunk_words:
            self._send_chunk(self.chunk_words)
            due -= self.chunk_words

    def _send_chunk(self, n: int) -> None:
        idx = self.next_index + np.arange(n, dtype=np.int64)
        t = self.stream_t0_s + idx / SAMPLE_RATE_HZ
        amps = self.source.amps(t) if self.dut_on or self.mode == 1 else np.zeros(n)
        words = encode_words(amps, self.next_index & 63, self.vdd_mv, self.source.logic(t))
        self.next_index += n
        if self._drop_pending:
            k = min(self._drop_pending, n)
            self._drop_pending -= k
            self.samples_dropped += k
            words = words[k:]
        data = words.astype("<u4").tobytes()
        written = self.port.write_all(data) if self.block_when_full else self.port.write(data)
        if written % 4:
            written += self.port.write_all(data[written:written + 4 - written % 4])
        self.samples_sent += written // 4
        self.samples_overflowed += (len(data) - written) // 4
