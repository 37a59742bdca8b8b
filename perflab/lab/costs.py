"""What SR costs, glued into a run: sample a device during a series or at rest, and turn the
sampler's summary into the cell's telemetry fields with the power source and its confidence.

Power source ranking (METHOD.md): external meter on a battery-bypass supply (high) > on-device
power rails > battery counters with charging suspended (medium) > battery counters while
charging (low, flagged). On `local`, RAPL package power where the host has it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from perflab.analysis.timeline import Timeline
from perflab.devices.base import Device, DeviceKind
from perflab.errors import MeasurementError, PerflabError, RunInterrupted
from perflab.lab.lifecycle import StopController
from perflab.lab.meters import CellMeter, MeterOutcome, MeterPlan, apply_meter, conclude
from perflab.store.results import IdleRecord, WarningRecord
from perflab.telemetry.meters.recorder import MeterRecording
from perflab.telemetry.session import Sampler, open_sampler, stream_config
from perflab.telemetry.summary import Summary, process_window, summarize_window

T = TypeVar("T")

METER_TAIL_S = 0.2  # a meter keeps recording this long after the call (samples still in its buffers)


def _summarize(device: Device, tl: Timeline, *, whole_span: bool) -> Summary:
    win = process_window(tl)
    if whole_span or win is None:
        span = tl.span_s
        s = summarize_window(tl, stream_config(device), span)
        if win is None and not whole_span:
            s.missing.setdefault("window", "the measured process was not seen by the sampler; the window is the "
                                           "whole sampling span")
        return s
    return summarize_window(tl, stream_config(device), win)


def sample_during(device: Device, workdir: Path, raw_path: Path, interval_s: float,
                  fn: Callable[[], T]) -> tuple[T, Summary | None, str | None]:
    """Run ``fn`` with the device's sampler around it. A sampler that fails never fails the
    cell: the result comes back with no summary and the reason."""
    try:
        sampler = open_sampler(device, interval_s=interval_s, raw_path=raw_path, workdir=workdir)
        sampler.start()
    except MeasurementError as exc:
        return fn(), None, str(exc)
    tl: Timeline | None = None
    why: str | None = None
    try:
        result = fn()
    finally:
        try:
            tl = sampler.stop()
        except MeasurementError as exc:
            why = str(exc)
    if tl is None:
        return result, None, why
    return result, _summarize(device, tl, whole_span=False), None


def measure_during(device: Device, workdir: Path, raw_path: Path, interval_s: float, fn: Callable[[], T], *,
                   meter: MeterPlan | None = None, meter_raw: tuple[Path, str] | None = None,
                   whole_span: bool = False) -> tuple[T, Summary | None, str | None, MeterOutcome | None]:
    """``sample_during`` with the device's external meter (when one is named) recorded around the
    same call: (result, summary, why no summary, the meter's outcome). Neither the sampler nor
    the meter can fail the cell. The meter keeps recording for a short tail after the call, so
    samples still in its buffers (a PPK2's stream) cover the end of the window."""
    cm = CellMeter(meter) if meter is not None else None
    sampler: Sampler | None = None
    why: str | None = None
    try:
        sampler = open_sampler(device, interval_s=interval_s, raw_path=raw_path, workdir=workdir)
        sampler.start()
    except MeasurementError as exc:
        sampler, why = None, str(exc)
    if cm is not None:
        cm.start()
    h0 = time.monotonic()
    recording: MeterRecording | None = None
    tl: Timeline | None = None
    try:
        result = fn()
    finally:
        h1 = time.monotonic()
        if cm is not None:
            recording = cm.stop(tail_s=METER_TAIL_S)
        if sampler is not None:
            try:
                tl = sampler.stop()
            except MeasurementError as exc:
                why = str(exc)
    summary = _summarize(device, tl, whole_span=whole_span) if tl is not None else None
    outcome: MeterOutcome | None = None
    if meter is not None and cm is not None:
        # at rest the host bracket is the window; in a cell, the process's lifetime on the device
        dev_win = None if tl is None or whole_span else process_window(tl)
        outcome = conclude(meter, cm, recording, device=device, tl=tl, device_window=dev_win, host_bracket=(h0, h1),
                           raw_path=meter_raw[0] if meter_raw else None, raw_rel=meter_raw[1] if meter_raw else None)
    return result, summary, why, outcome


def idle_baseline(device: Device, workdir: Path, raw_path: Path, rel: str, interval_s: float, duration_s: float,
                  stop: StopController, *, meter: MeterPlan | None = None) -> IdleRecord:
    """The device at rest for ``duration_s`` (interrupted by a stop request). With a meter,
    current and power at rest come from it (the same source as the cells')."""
    def rest() -> None:
        with contextlib.suppress(RunInterrupted):
            stop.sleep(duration_s)

    if meter is None:
        try:
            sampler = open_sampler(device, interval_s=interval_s, raw_path=raw_path, workdir=workdir / "idle")
            sampler.start()
        except MeasurementError as exc:
            return IdleRecord(serial=device.serial, missing={"all": str(exc)})
        try:
            rest()
        finally:
            try:
                tl = sampler.stop()
            except MeasurementError as exc:
                return IdleRecord(serial=device.serial, missing={"all": str(exc)})
        return _idle_record(device, _summarize(device, tl, whole_span=True), rel, None)
    _, s, why, outcome = measure_during(device, workdir / "idle", raw_path, interval_s, rest, meter=meter,
                                        whole_span=True)
    return _idle_record(device, s, rel, outcome, why)


def _emulated(device: Device) -> bool:
    try:
        return device.info().kind is DeviceKind.EMULATED
    except PerflabError:
        return False


def _idle_record(device: Device, s: Summary | None, rel: str, outcome: MeterOutcome | None,
                 why: str | None = None) -> IdleRecord:
    fields: dict[str, Any] = {}
    missing: dict[str, str] = {}
    if s is not None:
        fields.update(duration_s=None if s.end_s is None or s.start_s is None else s.end_s - s.start_s,
                      device_cpu_busy_pct=s.cpu_busy_pct, gpu_busy_pct=s.gpu_busy_pct,
                      mem_avail_min_mb=s.mem_avail_min_mb, temp_c=s.temp_end_c, current_ma=s.current_ma,
                      power_mw=s.power_mw, timeline_file=rel)
        if s.current_ma is not None:
            fields["power_source"] = ("emulated " if _emulated(device) else "") + "battery counters"
        missing.update({k: v for k, v in s.missing.items() if k not in ("rss_peak_mb", "window")})
    else:
        missing["sampler"] = why or "not sampled"
    if outcome is not None:
        if outcome.energy is not None:
            e = outcome.energy
            fields.update(current_ma=e.mean_ma, power_mw=e.mean_mw,
                          power_source=("emulated " if _emulated(device) else "") + outcome.plan.label)
            if fields.get("duration_s") is None:
                fields["duration_s"] = e.duration_s
            for k in ("current_ma", "power_mw"):
                missing.pop(k, None)
        else:
            missing["meter"] = outcome.why or outcome.energy_why or "no meter reading"
    if not fields:
        return IdleRecord(serial=device.serial, missing={"all": missing.get("sampler") or "nothing measured"})
    return IdleRecord(serial=device.serial, missing=missing, **fields)


def telemetry_fields(s: Summary | None, why: str | None, *, emulated: bool, fps: float | None,
                     latency_mean_ms: float | None, interval_ms: float, timeline_rel: str,
                     meter: MeterOutcome | None = None) -> tuple[dict[str, Any], dict[str, str], list[WarningRecord]]:
    """(TelemetryRecord fields, their missing reasons, warnings) from a window summary, with
    power and energy from the external meter when one measured the window (lab.meters)."""
    fields, missing, warnings = _sampler_fields(s, why, emulated=emulated, fps=fps, latency_mean_ms=latency_mean_ms,
                                                interval_ms=interval_ms, timeline_rel=timeline_rel)
    if meter is not None:
        apply_meter(fields, missing, warnings, meter, emulated=emulated, fps=fps, latency_mean_ms=latency_mean_ms)
    return fields, missing, warnings


def _sampler_fields(s: Summary | None, why: str | None, *, emulated: bool, fps: float | None,
                    latency_mean_ms: float | None, interval_ms: float,
                    timeline_rel: str) -> tuple[dict[str, Any], dict[str, str], list[WarningRecord]]:
    if s is None:
        reason = why or "telemetry was not sampled"
        return {}, {"sampler": reason, "power_source": reason}, []
    fields: dict[str, Any] = {
        "device_cpu_busy_pct": s.cpu_busy_pct, "cpu_core_busy_pct": s.cpu_core_busy_pct,
        "cpu_freq_mhz": s.cpu_freq_mhz, "gpu_busy_pct": s.gpu_busy_pct, "gpu_freq_mhz": s.gpu_freq_mhz,
        "rss_peak_mb": s.rss_peak_mb, "mem_avail_min_mb": s.mem_avail_min_mb, "temp_zone": s.temp_zone,
        "temp_end_c": s.temp_end_c, "temp_max_c": s.temp_max_c, "current_ma": s.current_ma,
        "voltage_v": s.voltage_v, "power_mw": s.power_mw, "charging": s.charging,
        "current_convention": s.current_how, "host_package_mw": s.host_package_mw,
        "sampler_cpu_pct": s.sampler_cpu_pct, "sample_interval_ms": interval_ms, "timeline_file": timeline_rel,
        "window_s": None if s.start_s is None or s.end_s is None else s.end_s - s.start_s,
    }
    missing = dict(s.missing)
    warnings: list[WarningRecord] = []
    if s.energy is not None:
        fields["energy_mj"], fields["energy_mah"] = s.energy.mj, s.energy.mah
        if s.energy.covered_fraction < 0.9:
            warnings.append(WarningRecord(code="telemetry_gaps", message=(
                f"battery samples cover {100 * s.energy.covered_fraction:.0f}% of the window; energy is "
                "interpolated across the gaps")))
    if s.power_mw is not None:
        if fps:
            fields["mj_per_frame"] = s.power_mw / fps
        elif latency_mean_ms is not None:
            fields["mj_per_frame"] = s.power_mw * latency_mean_ms / 1000.0
    if s.current_ma is not None:
        fields["mah_per_hour"] = s.current_ma  # a mean current sustained for one hour at this pacing
        label = "emulated battery counters" if emulated else "battery counters"
        if s.charging:
            fields["power_source"], fields["power_confidence"] = f"{label} while charging", "low"
            warnings.append(WarningRecord(code="charging", message=(
                "the battery was charging during the cell: current_now is net of the charger, not what the phone "
                "drew. Suspend charging (tuning.suspend_charging, rooted phones), use adb over Wi-Fi, or a meter "
                "on a battery-bypass supply.")))
        else:
            fields["power_source"], fields["power_confidence"] = f"{label} (not charging)", "medium"
    elif s.host_package_mw is not None:
        fields["power_source"], fields["power_confidence"] = "RAPL package energy (host CPU package only)", "medium"
        fields["power_mw"] = s.host_package_mw
    else:
        missing.setdefault("power_source", missing.get("current_ma") or "no battery counters, rails or meter")
    for key in ("mj_per_frame", "mah_per_hour", "energy_mj"):
        if fields.get(key) is None:
            missing.setdefault(key, missing.get("power_mw") or missing.get("current_ma") or "no power measurement")
    return fields, missing, warnings
