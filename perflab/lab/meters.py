"""External power meters in a run: which meter measures which device, recording it around a
cell's headline series, clock alignment, energy over the inference window, and the
cell's telemetry fields from it (docs/meters.md).

Ranking (METHOD.md, perflab.rules.power): a meter on a battery-bypass supply is the best power
source there is (confidence high); a USB inline meter measures the charger path — the phone's
draw plus what goes into its battery, minus what the battery gives — so it is used (medium)
only while the battery current says the battery was neither charging nor discharging; else the
battery counters stay the source and the meter's reading is kept beside, with a warning. The
battery-counter figures stay beside a used meter's in the record, and a disagreement beyond the
sources' stated errors is said.

A meter that cannot be opened or fails mid-cell never fails the cell: the meter's stream is
missing with its reason and the cell's other measurements stand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from perflab.analysis.timeline import Timeline
from perflab.devices.base import Device
from perflab.devices.capabilities import ConfiguredDevice, ShellDevice
from perflab.errors import DeviceError, MeasurementError
from perflab.lab.parts import Part
from perflab.rules.power import (
    BATTERY_COUNTER_ERROR,
    meter_error,
    meter_source,
    mj_per_frame,
    sources_disagree,
    usb_meter_refusal,
)
from perflab.scenario.schema import MeterSpec
from perflab.store.results import MeterRecord, WarningRecord
from perflab.telemetry.clock import (
    Alignment,
    ClockOffset,
    RoundTrip,
    align_by_correlation,
    offset_from_round_trips,
)
from perflab.telemetry.energy import EnergyWindow
from perflab.telemetry.meters.drivers import MeterType, Ppk2Meter, ScpiMeter, UmMeter, open_meter
from perflab.telemetry.meters.errors import MeterError
from perflab.telemetry.meters.recorder import MeterRecorder, MeterRecording

log = logging.getLogger("perflab.meters")

UM_TYPES = ("um34c", "um25c", "um24c")
ROUND_TRIPS = 5
UPTIME_RESOLUTION_S = 0.005  # /proc/uptime has 10 ms steps: ± half of one
OPEN_TIMEOUT_S = 2.0
MAX_LAG_S = 1.0
MIN_COVERED = 0.9  # below this share of the window, a meter's energy is not kept (mostly interpolated)


@dataclass(frozen=True)
class MeterPlan:
    """The meter wired to one device, from the scenario or the device config."""

    type: str
    port: str
    placement: str  # "bypass" | "usb"
    interval_s: float
    vdd_mv: int | None
    named_by: str

    @property
    def label(self) -> str:
        where = "bypass supply" if self.placement == "bypass" else "USB inline"
        return f"external meter ({self.type}, {where})"


def _placement(kind: str, placement: str | None) -> str:
    return placement or ("usb" if kind in UM_TYPES else "bypass")


def meter_plan(device: Device, specs: Sequence[MeterSpec], n_devices: int) -> MeterPlan | None:
    """The scenario's meter for this device (by serial; an unnamed one when it is the run's only
    device), else the device config's ``meter:``."""
    for s in specs:
        if s.device == device.serial or (s.device is None and n_devices == 1):
            return MeterPlan(s.type, s.port, _placement(s.type, s.placement), s.interval_ms / 1000.0, s.vdd_mv,
                             "scenario telemetry.meter")
    if isinstance(device, ConfiguredDevice) and device.config.meter is not None:
        m = device.config.meter
        return MeterPlan(m.type, m.port, _placement(m.type, m.placement), m.interval_ms / 1000.0, m.vdd_mv,
                         f"device config {device.config.name}")
    return None


def unmatched_meter_warnings(specs: Sequence[MeterSpec], serials: Sequence[str]) -> list[WarningRecord]:
    """Meters the scenario names that no device of this run will use, said once per run."""
    out: list[WarningRecord] = []
    for s in specs:
        if s.device is None and len(serials) != 1:
            out.append(WarningRecord(code="meter_unused", message=(
                f"telemetry.meter on {s.port} names no device and the run has {len(serials)} devices: it is not "
                "used. Set telemetry.meter.device to the serial of the phone it measures.")))
        elif s.device is not None and s.device not in serials:
            out.append(WarningRecord(code="meter_unused", message=(
                f"telemetry.meter on {s.port} is for device {s.device}, which is not in this run")))
    return out


class CellMeter:
    """Open the meter and record it (``start``), ``stop`` → the recording. Never raises a
    meter problem: it is kept in ``why`` and the recording (if any) says what it lost."""

    def __init__(self, plan: MeterPlan) -> None:
        self.plan = plan
        self.why: str | None = None
        self._meter: UmMeter | Ppk2Meter | ScpiMeter | None = None
        self._recorder: MeterRecorder | None = None

    def start(self) -> None:
        p = self.plan
        try:
            meter = open_meter(p.port, MeterType(p.type), timeout_s=OPEN_TIMEOUT_S)
            if not isinstance(meter, (UmMeter, Ppk2Meter, ScpiMeter)):
                raise MeterError(p.port, f"no recorder for {type(meter).__name__}")
            self._meter = meter
            rec = MeterRecorder(meter, interval_s=p.interval_s, vdd_mv=p.vdd_mv or 3700)
            rec.start()
            self._recorder = rec
        except MeterError as exc:
            self.why = f"{p.type} meter on {p.port} ({p.named_by}): {exc}"
            self._close()

    def _close(self) -> None:
        if self._meter is not None:
            try:
                self._meter.close()
            except (MeterError, OSError) as exc:
                log.debug("closing meter %s: %s", self.plan.port, exc)
            self._meter = None

    def stop(self, tail_s: float = 0.0) -> MeterRecording | None:
        """Stop after ``tail_s`` more seconds of recording (samples still in the meter's buffers)."""
        if self._recorder is None:
            return None
        if tail_s > 0:
            self._recorder.ended.wait(tail_s)  # returns at once when the stream already ended
        try:
            return self._recorder.stop()
        finally:
            self._recorder = None
            self._close()


def device_clock_offset(device: Device, n: int = ROUND_TRIPS) -> ClockOffset:
    """device clock − host monotonic, from ``cat /proc/uptime`` round trips (the sampler's clock
    on phones). On ``local`` the sampler stamps with the host's monotonic clock: 0 ± 0."""
    if not isinstance(device, ShellDevice):
        return ClockOffset(offset_s=0.0, uncertainty_s=0.0, rtt_s=0.0, n_round_trips=0)
    trips: list[RoundTrip] = []
    for _ in range(n):
        h0 = time.monotonic()
        try:
            out = device.dev.shell("cat /proc/uptime", timeout_s=device.timeout_s, check=True).stdout
        except DeviceError as exc:
            raise MeasurementError(f"[{device.serial}] device clock not readable: {exc}") from exc
        h1 = time.monotonic()
        try:
            trips.append(RoundTrip(h0, float(out.split()[0]), h1))
        except (ValueError, IndexError) as exc:
            raise MeasurementError(f"[{device.serial}] /proc/uptime said {out.strip()[:80]!r}") from exc
    off = offset_from_round_trips(trips)
    return replace(off, uncertainty_s=off.uncertainty_s + UPTIME_RESOLUTION_S)


def _load_signal(tl: Timeline) -> tuple[np.ndarray, np.ndarray] | None:
    """The device's load per sampler tick (busy fraction of all cores, plus GPU busy): the
    reference a meter's current should follow."""
    ticks = tl.cpu_ticks.get("cpu")
    if not ticks or len(ticks) < 4:
        return None
    t = np.asarray([x[0] for x in ticks], dtype=np.float64)
    busy = np.asarray([x[1][0] for x in ticks], dtype=np.float64)
    total = np.asarray([x[1][1] for x in ticks], dtype=np.float64)
    dt = np.diff(total)
    frac = np.where(dt > 0, np.diff(busy) / np.where(dt > 0, dt, 1.0), 0.0)
    mid = (t[1:] + t[:-1]) / 2
    if tl.gpu_busy_pct:
        g_t = np.asarray([x[0] for x in tl.gpu_busy_pct])
        g_v = np.asarray([x[1] for x in tl.gpu_busy_pct]) / 100.0
        frac = frac + np.interp(mid, g_t, g_v)
    return mid, frac


@dataclass(frozen=True)
class MeterOutcome:
    """What one cell's meter gave, before it becomes fields."""

    plan: MeterPlan
    recording: MeterRecording | None
    why: str | None  # the meter could not be opened
    window: tuple[float, float] | None  # host monotonic
    window_source: str
    offset: ClockOffset | None = None
    offset_why: str | None = None
    alignment: Alignment | None = None
    alignment_why: str | None = None
    energy: EnergyWindow | None = None
    energy_why: str | None = None
    raw_file: str | None = None


def conclude(plan: MeterPlan, cm: CellMeter, recording: MeterRecording | None, *, device: Device,
             tl: Timeline | None, device_window: tuple[float, float] | None, host_bracket: tuple[float, float],
             raw_path: Path | None, raw_rel: str | None) -> MeterOutcome:
    """Map the inference window onto the host clock, integrate the meter over it and check the
    meter's clock against the device's load."""
    if recording is None:
        return MeterOutcome(plan, None, cm.why or "the meter was not recorded", None, "none")
    offset: ClockOffset | None = None
    offset_why: str | None = None
    try:
        offset = device_clock_offset(device)
    except MeasurementError as exc:
        offset_why = str(exc)
    if device_window is not None and not device_window[1] > device_window[0]:
        device_window = None  # one tick: no window to map
    if device_window is not None and offset is not None:
        window = (offset.device_to_host_s(device_window[0]), offset.device_to_host_s(device_window[1]))
        source = "the measured process's lifetime seen by the device sampler, mapped to the host clock"
    else:
        window = host_bracket
        source = ("host-side bracket of the timed run (includes the launch over adb): "
                  + ("the device sampler saw no process window" if device_window is None else
                     f"the device clock is unknown ({offset_why})"))
    alignment: Alignment | None = None
    alignment_why: str | None = None
    ref = _load_signal(tl) if tl is not None else None
    if ref is None or offset is None:
        alignment_why = "no device load timeline to align the meter with"
    elif recording.t_s.size >= 3:
        try:
            step = max(0.01, float(np.median(np.diff(ref[0]))) / 4)
            alignment = align_by_correlation(ref[0] - offset.offset_s, ref[1], recording.t_s, recording.amps,
                                             max_lag_s=MAX_LAG_S, resolution_s=step)
        except MeasurementError as exc:
            alignment_why = str(exc)
    energy: EnergyWindow | None = None
    energy_why: str | None = None
    try:
        energy = recording.energy(*window)
    except MeasurementError as exc:
        energy_why = f"{plan.type} meter: {exc}"
    if energy is not None and energy.covered_fraction < MIN_COVERED:
        energy_why = (f"the meter's samples cover only {100 * energy.covered_fraction:.0f}% of the window"
                      + (f": {recording.missing_reason}" if recording.missing_reason else ""))
        energy = None
    if raw_path is not None and recording.t_s.size:
        raw_path.parent.mkdir(parents=True, exist_ok=True)
        np.savetxt(raw_path, np.column_stack([recording.t_s, recording.amps, recording.volts]),
                   fmt="%.6f", header="t_s(host monotonic) amps volts", comments="# ")
    return MeterOutcome(plan, recording, None, window, source, offset, offset_why, alignment, alignment_why, energy,
                        energy_why, raw_rel if raw_path is not None and recording.t_s.size else None)


def meter_record(o: MeterOutcome, *, emulated: bool) -> MeterRecord:
    p = o.plan
    missing: dict[str, str] = {}
    r = o.recording
    fields: dict[str, Any] = {}
    if r is None:
        missing["meter"] = o.why or "not recorded"
    else:
        fields.update(clock=r.clock, n_samples=int(r.t_s.size), samples_lost=r.samples_lost,
                      garbage_bytes=r.garbage_bytes, notes=list(r.notes))
        if r.missing_reason is not None:
            missing["stream"] = r.missing_reason
    if o.window is not None:
        fields.update(window_source=o.window_source, window_start_s=o.window[0], window_end_s=o.window[1])
    e = o.energy
    if e is not None:
        fields.update(covered_fraction=e.covered_fraction, current_ma=e.mean_ma, power_mw=e.mean_mw,
                      energy_mj=e.mj, energy_mah=e.mah,
                      voltage_v=e.mean_mw / e.mean_ma if e.mean_ma > 0 else None)
    elif r is not None:
        missing["energy_mj"] = o.energy_why or "no energy"
    if o.offset is not None:
        fields.update(clock_offset_s=o.offset.offset_s, clock_uncertainty_s=o.offset.uncertainty_s)
    elif r is not None:
        missing["clock_offset_s"] = o.offset_why or "not measured"
    if o.alignment is not None:
        a = o.alignment
        fields.update(lag_s=a.lag_s, lag_correlation=a.correlation, lag_residual_fraction=a.residual_fraction)
    elif r is not None:
        missing["lag_s"] = o.alignment_why or "not aligned"
    if p.placement == "usb":
        fields.setdefault("notes", []).append(
            "USB inline meter: it measures the charger path (the phone's draw plus what goes into the battery), "
            "not the phone's consumption")
    return MeterRecord(type=p.type, port=p.port, placement=p.placement, emulated=emulated, raw_file=o.raw_file,
                       missing=missing, **fields)


def meter_part(sampled: Part, o: MeterOutcome, *, emulated: bool, fps: float | None,
               latency_mean_ms: float | None) -> Part:
    """The meter's part of a cell's telemetry, after the sampler's (``sampled``): power and
    energy from the meter when it measured the window, the battery-counter figures moved beside
    them (``battery_*``), and the battery's missing reasons it answers settled. Without a meter
    reading, the sampler's figures stay and the meter's reason is recorded."""
    rec = meter_record(o, emulated=emulated)
    before, had_missing = sampled.telemetry, sampled.missing
    e = o.energy
    if e is None:
        why = had_missing.get("meter") or rec.missing.get("meter") or rec.missing.get("energy_mj") or "no meter reading"
        return Part(telemetry={"meter": rec}, missing={"meter": why}, warnings=(WarningRecord(code="meter_missing", message=(
            f"the {o.plan.type} meter gave no energy for this cell ({why}); power comes from "
            f"{before.get('power_source') or 'nowhere'}")),))
    if o.plan.placement == "usb" and (refused := usb_meter_refusal(
            charging=before.get("charging"), battery_current_ma=before.get("current_ma"))) is not None:
        # the meter's figures stay in its record, beside; the battery counters stay the source
        return Part(telemetry={"meter": rec}, warnings=(WarningRecord(code="meter_not_consumption", message=(
            f"the {o.plan.type} USB inline meter read {e.mean_mw:.0f} mW ({e.mean_ma:.0f} mA) but is not used as the "
            f"phone's consumption: {refused}. Power comes from {before.get('power_source') or 'nowhere'}"
            + (f" ({before['power_mw']:.0f} mW)" if before.get("power_mw") is not None else "")
            + ". Suspend charging and use a bench supply in place of the battery, or a full battery on USB")),))
    fields: dict[str, Any] = {
        "meter": rec, "battery_current_ma": before.get("current_ma"), "battery_power_mw": before.get("power_mw"),
        "battery_energy_mj": before.get("energy_mj"), "battery_power_source": before.get("power_source")}
    src = meter_source(o.plan.label, o.plan.placement, emulated=emulated,
                       checked=before.get("current_ma") is not None or before.get("charging") is not None)
    fields.update(current_ma=e.mean_ma, power_mw=e.mean_mw, energy_mj=e.mj, energy_mah=e.mah,
                  voltage_v=rec.voltage_v, power_source=src.source, power_confidence=src.confidence,
                  mah_per_hour=e.mean_ma)
    if (mj := mj_per_frame(e.mean_mw, fps=fps, latency_mean_ms=latency_mean_ms)) is not None:
        fields["mj_per_frame"] = mj
    missing: dict[str, str] = {}
    for k in ("current_ma", "power_mw", "energy_mj", "power_source"):  # why the battery had no figure
        if k in had_missing and fields.get(f"battery_{k}") is None:
            missing[f"battery_{k}"] = had_missing[k]
    settles = frozenset(k for k in ("current_ma", "power_mw", "energy_mj", "energy_mah", "mj_per_frame",
                                    "mah_per_hour", "power_source", "voltage_v")
                        if (fields[k] if k in fields else before.get(k)) is not None)
    warnings: list[WarningRecord] = []
    if e.covered_fraction < 0.99:
        warnings.append(WarningRecord(code="meter_gaps", message=(
            f"the meter's samples cover {100 * e.covered_fraction:.0f}% of the window"
            + (f" ({rec.missing['stream']})" if "stream" in rec.missing else "")
            + "; energy is interpolated across the gaps")))
    battery_mw = before.get("power_mw")
    if (o.plan.placement == "bypass" and battery_mw is not None and not before.get("charging")
            and sources_disagree(e.mean_mw, meter_error("bypass"), battery_mw, BATTERY_COUNTER_ERROR)):
        warnings.append(WarningRecord(code="power_sources_disagree", message=(
            f"two power sources disagree beyond their stated errors: {src.source} {e.mean_mw:.0f} mW, "
            f"{before.get('power_source') or 'battery counters'} {battery_mw:.0f} mW (battery_power_mw); the meter "
            "ranks first and is used, both are shown")))
    if o.plan.placement == "usb":
        warnings.append(WarningRecord(code="meter_usb", message=(
            "power from a USB inline meter: it measures the charger path (the phone's draw plus what goes into "
            "the battery), so it is medium confidence; a battery-bypass supply measures the phone alone")))
    return Part(telemetry=fields, missing=missing, warnings=tuple(warnings), settles=settles)
