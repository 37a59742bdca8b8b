"""Record a meter beside a workload: a thread that reads until stopped and keeps every sample
on the host's monotonic clock, so the cell's energy is one ``integrate`` call away.

A meter that fails mid-run (unplugged, garbage, silent) ends the recording early: the samples
so far are kept and ``missing_reason`` says why — the cell's other measurements stand.

Clocks: polled meters (UM, SCPI) are stamped at the midpoint of request and reply. The PPK2's
samples are stamped ``host time of AVERAGE_START + index × 10 µs`` (its own clock, offset by the
command latency; refine with ``perflab.telemetry.clock`` against a marker or known load).
ELOG records are stamped at the middle of their period.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from perflab.telemetry.energy import EnergyWindow, integrate
from perflab.telemetry.meters.drivers import Ppk2Meter, ScpiMeter, UmMeter
from perflab.telemetry.meters.errors import MeterError
from perflab.telemetry.meters.ppk2 import SAMPLE_PERIOD_S

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class MeterRecording:
    meter: str
    clock: str
    t_s: FloatArray
    amps: FloatArray
    volts: FloatArray
    samples_lost: int = 0
    garbage_bytes: int = 0
    missing_reason: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def complete(self) -> bool:
        return self.missing_reason is None

    def energy(self, start_s: float | None = None, end_s: float | None = None) -> EnergyWindow:
        return integrate(self.t_s, self.amps, self.volts, start_s=start_s, end_s=end_s)


class MeterRecorder:
    """``start()``, run the workload, ``stop()`` → MeterRecording. ``interval_s`` paces polled
    meters; a PPK2 streams at 100 kHz and is drained every ``interval_s``. With ``elog_period_s``
    an N6705 is read through ELOG instead of polling."""

    def __init__(self, meter: UmMeter | Ppk2Meter | ScpiMeter, *, interval_s: float = 0.1,
                 vdd_mv: int = 3700, elog_period_s: float | None = None) -> None:
        self.meter = meter
        self.interval_s = interval_s
        self.vdd_mv = vdd_mv
        self.elog_period_s = elog_period_s
        self._stop = threading.Event()
        self._started = threading.Event()
        self.ended = threading.Event()  # set when the stream stops, by stop() or by a failure
        self._thread: threading.Thread | None = None
        self._t: list[FloatArray] = []
        self._i: list[FloatArray] = []
        self._v: list[FloatArray] = []
        self._reason: str | None = None
        self._ppk2_arrivals: list[tuple[float, float]] = []  # (host s, how far the last sample lags it)
        self._ppk2_behind_s = 0.0  # how far the stream's clock was behind stop() when draining ended

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="meter-recorder", daemon=True)
        self._thread.start()
        self._started.wait()

    def _add(self, t: FloatArray, i: FloatArray, v: FloatArray) -> None:
        self._t.append(t)
        self._i.append(i)
        self._v.append(v)

    def _run(self) -> None:
        try:
            if isinstance(self.meter, Ppk2Meter):
                self._run_ppk2(self.meter)
            elif isinstance(self.meter, ScpiMeter) and self.elog_period_s is not None:
                self._run_elog(self.meter, self.elog_period_s)
            else:
                self._run_polled(self.meter)
        except MeterError as exc:
            self._reason = str(exc)
        finally:
            self._started.set()
            self.ended.set()

    def _run_ppk2(self, m: Ppk2Meter) -> None:
        t0 = time.monotonic()
        m.start(self.vdd_mv)
        t0 = (t0 + time.monotonic()) / 2
        self._started.set()
        volts = m.vdd_mv / 1000.0
        last_s = t0
        stop_s: float | None = None
        progress_s = t0  # host time samples last arrived
        try:
            while True:
                if stop_s is None and self._stop.wait(self.interval_s):
                    stop_s = time.monotonic()
                elif stop_s is not None:
                    time.sleep(_PPK2_DRAIN_POLL_S)
                chunks = m.poll()
                now_s = time.monotonic()
                for c in chunks:
                    t = np.asarray(t0 + (c.first_index + np.arange(len(c))) * SAMPLE_PERIOD_S, dtype=np.float64)
                    self._add(t, np.asarray(c.current_ua / 1e6, dtype=np.float64), np.full(len(c), volts))
                    last_s = max(last_s, float(t[-1]))
                if chunks:
                    progress_s = now_s
                    self._ppk2_arrivals.append((now_s, now_s - last_s))
                # samples up to the stop are still in the USB (pty) buffers: drain until the
                # sample clock reaches the stop, so the window's end is covered. A stream that is
                # behind but still delivering (a loaded host catching up) is drained on; one
                # silent for _PPK2_DRAIN_S, or draining past _PPK2_DRAIN_MAX_S, is given up
                if stop_s is not None and (last_s >= stop_s or now_s - max(stop_s, progress_s) > _PPK2_DRAIN_S
                                           or now_s - stop_s > _PPK2_DRAIN_MAX_S):
                    if last_s < stop_s:
                        self._ppk2_behind_s = stop_s - last_s
                    return
        finally:
            if not m.port.gone:
                m.stop()

    def _run_elog(self, m: ScpiMeter, period_s: float) -> None:
        t0 = time.monotonic()
        m.start_elog(period_s, voltage=True)
        t0 = (t0 + time.monotonic()) / 2
        self._started.set()
        try:
            while True:
                stopping = self._stop.wait(self.interval_s)
                records = m.fetch_elog(1000)
                if records:
                    idx = np.array([r.index for r in records], dtype=np.float64)
                    self._add(np.asarray(t0 + (idx + 0.5) * period_s, dtype=np.float64), np.array([r.amps for r in records]),
                              np.array([r.volts if r.volts is not None else np.nan for r in records]))
                if stopping:
                    return
        finally:
            if not m.port.gone:
                m.stop_elog()

    def _run_polled(self, m: UmMeter | ScpiMeter) -> None:
        self._started.set()
        while True:
            before = time.monotonic()
            r = m.read()
            after = time.monotonic()
            self._add(np.array([(before + after) / 2]), np.array([r.amps]), np.array([r.volts]))
            if self._stop.wait(max(0.0, self.interval_s - (after - before))):
                return

    def stop(self) -> MeterRecording:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        m = self.meter
        lost = m.decoder.samples_lost if isinstance(m, Ppk2Meter) else 0
        garbage = m.decoder.garbage_bytes if isinstance(m, (Ppk2Meter, UmMeter)) else 0
        kind = "ppk2" if isinstance(m, Ppk2Meter) else (m.model.value if isinstance(m, UmMeter) else "scpi")
        clock = "host monotonic (PPK2 sample clock from AVERAGE_START)" if kind == "ppk2" else "host monotonic"
        notes: tuple[str, ...] = ()
        if isinstance(m, UmMeter):
            notes = ("UM meters measure USB VBUS (charger to phone), not battery drain",)
        if isinstance(m, Ppk2Meter) and self._ppk2_behind_s > 0:
            # a stream behind the host cannot tell a lag from a loss: say what is known
            notes = ((f"the stream was still {self._ppk2_behind_s:.3f} s behind the stop when draining ended: "
                      "the window's end is not covered"),)
        elif isinstance(m, Ppk2Meter):
            notes = _ppk2_clock_check(self._ppk2_arrivals)
        return MeterRecording(meter=kind, clock=clock, t_s=_cat(self._t), amps=_cat(self._i), volts=_cat(self._v),
                              samples_lost=lost, garbage_bytes=garbage, missing_reason=self._reason, notes=notes)


def _cat(parts: list[FloatArray]) -> FloatArray:
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)


def _ppk2_clock_check(arrivals: list[tuple[float, float]], window_s: float = 0.25) -> tuple[str, ...]:
    """The counter sees a loss modulo 64; the host clock sees the rest. ``arrivals`` holds, for
    every poll that delivered samples, the host time and how far the last sample's time (from
    its index) lies behind it. Buffering only ever adds to that offset, so its floor over a short
    stretch is the stream's steady lag; a floor that rises from the first stretch to the last
    means samples no index accounts for: the time axis after them is early by that much. A
    stream that is steadily behind (delayed, not lost) does not raise the floor."""
    if len(arrivals) < 2:
        return ()
    first_s, last_s = arrivals[0][0], arrivals[-1][0]
    early = min(off for t, off in arrivals if t <= first_s + window_s)
    late = min(off for t, off in arrivals if t >= last_s - window_s)
    unaccounted = int((late - early) * 1e5)
    if unaccounted > max(_PPK2_SLACK_SAMPLES, int((last_s - first_s) * 1e5) // 100):
        note = (f"about {unaccounted} samples ({unaccounted / 1e5:.3f} s) missing beyond what the "
                "counter shows (a loss of 64 or more samples is seen modulo 64, or the stream fell "
                "further behind): the time axis after it is early and energy is under-counted")
        return (note,)
    return ()


_PPK2_DRAIN_S = 1.0  # after stop(), give up on a stream silent this long
_PPK2_DRAIN_MAX_S = 10.0  # and on one still behind the stop this long after it
_PPK2_DRAIN_POLL_S = 0.01
_PPK2_SLACK_SAMPLES = 20_000  # 0.2 s: USB/pty buffering, a poll interval, a stalled host
