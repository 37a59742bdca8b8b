"""What SR costs, glued into a run: sample a device during a series or at rest, and turn the
sampler's summary into the cell's telemetry fields. The power source, its confidence and the
energy per frame are perflab.rules.power's; throttling is perflab.rules.sustained's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from perflab.analysis.timeline import Timeline, process_window
from perflab.core.types import TimingResult
from perflab.core.units import frame_budget_ms, period_ms_to_hz, s_to_ms
from perflab.devices.base import Device
from perflab.devices.capabilities import ConfiguredDevice
from perflab.errors import MeasurementError, RunInterrupted
from perflab.lab.lifecycle import StopController
from perflab.lab.meters import CellMeter, MeterOutcome, MeterPlan, conclude, meter_part
from perflab.lab.parts import Part, merge
from perflab.rules.device import emulated_label
from perflab.rules.power import BATTERY_COUNTERS, battery_source, mj_per_frame, rapl_source, usb_meter_refusal
from perflab.rules.sustained import throttle_analysis
from perflab.scenario.plan import CellSpec
from perflab.scenario.schema import Sustained
from perflab.store.results import (
    CurrentConventionRecord,
    IdleRecord,
    SustainedPart,
    SustainedRecord,
    WarningRecord,
)
from perflab.telemetry.battery import CurrentConvention
from perflab.telemetry.meters.recorder import MeterRecording
from perflab.telemetry.session import Sampler, open_sampler, stream_config
from perflab.telemetry.summary import StreamConfig, Summary, summarize_window

T = TypeVar("T")

METER_TAIL_S = 0.2  # a meter keeps recording this long after the call (samples still in its buffers)
SAMPLER_RATE_MIN_FRACTION = 0.8  # an achieved sampling rate below this share of the asked one is warned about
SAMPLER_GAP_MAX_INTERVALS = 5.0  # … and so is a gap longer than this many sampling intervals


def battery_stream_config(device: Device) -> StreamConfig:
    """The device's stream config with only the battery convention its config states *explicitly* as an override
    (unit, sign, voltage unit): the shipped ``generic`` config's kernel-ABI values and pydantic defaults are
    defaults, not knowledge, so there the data decides (perflab.telemetry.battery)."""
    cfg = stream_config(device)
    if not isinstance(device, ConfiguredDevice):
        return cfg
    dc = device.config
    stated = set() if dc.name == "generic" else dc.battery.model_fields_set
    return dataclasses.replace(
        cfg, current_unit=cfg.current_unit if "current_unit" in stated else None,
        discharge_sign=cfg.discharge_sign if "discharge_sign" in stated else None,
        voltage_unit=cfg.voltage_unit if "voltage_unit" in stated else None)


def convention_record(conv: CurrentConvention) -> CurrentConventionRecord:
    """The stored form of a battery convention: the numbers readers apply, how each was decided, the evidence."""
    c, ld = conv.counter, conv.load
    return CurrentConventionRecord(
        ua_per_unit=conv.ua_per_unit, discharge_sign=conv.discharge_sign, uv_per_unit=conv.uv_per_unit,
        unit_source=str(conv.unit_source), sign_source=str(conv.sign_source), voltage_source=str(conv.voltage_source),
        n=conv.n, median_abs_raw=conv.median_abs_raw,
        counter_slope_ua=c.slope_ua if c else None, counter_r=c.r if c else None, counter_n=c.n if c else None,
        counter_span_uah=c.span_uah if c else None, load_r=ld.r if ld else None, load_n=ld.n if ld else None,
        disagreements=list(conv.disagreements), how=conv.how)


def _summarize(device: Device, tl: Timeline, *, whole_span: bool) -> Summary:
    win = process_window(tl)
    if whole_span or win is None:
        span = tl.span_s
        s = summarize_window(tl, battery_stream_config(device), span)
        if win is None and not whole_span:
            s.missing.setdefault("window", "the measured process was not seen by the sampler; the window is the "
                                           "whole sampling span")
        return s
    return summarize_window(tl, battery_stream_config(device), win)


def measure_during(device: Device, workdir: Path, raw_path: Path, interval_s: float, fn: Callable[[], T], *,
                   meter: MeterPlan | None = None, meter_raw: tuple[Path, str] | None = None,
                   whole_span: bool = False) -> tuple[T, Summary | None, str | None, MeterOutcome | None]:
    """Run ``fn`` with the device's sampler, and its external meter when one is named, recorded
    around the same call: (result, summary, why no summary, the meter's outcome). Neither the sampler nor
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
                  stop: StopController, *, emulated: bool, meter: MeterPlan | None = None) -> IdleRecord:
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
        return _idle_record(device, _summarize(device, tl, whole_span=True), rel, None, emulated=emulated)
    _, s, why, outcome = measure_during(device, workdir / "idle", raw_path, interval_s, rest, meter=meter,
                                        whole_span=True)
    return _idle_record(device, s, rel, outcome, why, emulated=emulated)


def _idle_record(device: Device, s: Summary | None, rel: str, outcome: MeterOutcome | None,
                 why: str | None = None, *, emulated: bool) -> IdleRecord:
    fields: dict[str, Any] = {}
    missing: dict[str, str] = {}
    if s is not None:
        fields.update(duration_s=None if s.end_s is None or s.start_s is None else s.end_s - s.start_s,
                      device_cpu_busy_pct=s.cpu_busy_pct, gpu_busy_pct=s.gpu_busy_pct,
                      mem_avail_min_mb=s.mem_avail_min_mb, temp_c=s.temp_end_c, current_ma=s.current_ma,
                      power_mw=s.power_mw, timeline_file=rel,
                      convention=convention_record(s.convention) if s.convention is not None else None)
        if s.current_ma is not None:
            fields["power_source"] = emulated_label(BATTERY_COUNTERS, emulated=emulated)
        missing.update({k: v for k, v in s.missing.items() if k not in ("rss_peak_mb", "window")})
    else:
        missing["sampler"] = why or "not sampled"
    if outcome is not None:
        refused = None
        if outcome.energy is not None and outcome.plan.placement == "usb" and s is not None:
            refused = usb_meter_refusal(charging=s.charging, battery_current_ma=s.current_ma)
        if refused is not None:
            missing["meter"] = f"the USB inline meter is not the phone's consumption here: {refused}"
        elif outcome.energy is not None:
            e = outcome.energy
            fields.update(current_ma=e.mean_ma, power_mw=e.mean_mw,
                          power_source=emulated_label(outcome.plan.label, emulated=emulated))
            if fields.get("duration_s") is None:
                fields["duration_s"] = e.duration_s
            for k in ("current_ma", "power_mw"):
                missing.pop(k, None)
        else:
            missing["meter"] = outcome.why or outcome.energy_why or "no meter reading"
    if not fields:
        return IdleRecord(serial=device.serial, missing={"all": missing.get("sampler") or "nothing measured"})
    return IdleRecord(serial=device.serial, missing=missing, **fields)


def telemetry_part(s: Summary | None, why: str | None, *, emulated: bool, fps: float | None,
                   latency_mean_ms: float | None, interval_ms: float, timeline_rel: str,
                   meter: MeterOutcome | None = None) -> Part:
    """The telemetry pass of a cell: its fields from the window's summary (:func:`sampler_part`),
    with power and energy from the external meter when one measured the window
    (lab.meters.meter_part)."""
    sampled = sampler_part(s, why, emulated=emulated, fps=fps, latency_mean_ms=latency_mean_ms,
                           interval_ms=interval_ms, timeline_rel=timeline_rel)
    if meter is None:
        return sampled
    return merge([sampled, meter_part(sampled, meter, emulated=emulated, fps=fps, latency_mean_ms=latency_mean_ms)])


def sampler_part(s: Summary | None, why: str | None, *, emulated: bool, fps: float | None,
                 latency_mean_ms: float | None, interval_ms: float, timeline_rel: str) -> Part:
    """TelemetryRecord fields from the sampler's window summary, with the battery's (or RAPL's)
    power source and confidence and the energy per frame (perflab.rules.power)."""
    if s is None:
        reason = why or "telemetry was not sampled"
        return Part(missing={"sampler": reason, "power_source": reason})
    fields: dict[str, Any] = {
        "device_cpu_busy_pct": s.cpu_busy_pct, "cpu_core_busy_pct": s.cpu_core_busy_pct,
        "cpu_freq_mhz": s.cpu_freq_mhz, "gpu_busy_pct": s.gpu_busy_pct, "gpu_freq_mhz": s.gpu_freq_mhz,
        "rss_peak_mb": s.rss_peak_mb, "mem_avail_min_mb": s.mem_avail_min_mb, "temp_zone": s.temp_zone,
        "temp_end_c": s.temp_end_c, "temp_max_c": s.temp_max_c, "skin_zone": s.skin_zone,
        "skin_end_c": s.skin_end_c, "skin_max_c": s.skin_max_c, "current_ma": s.current_ma,
        "voltage_v": s.voltage_v, "power_mw": s.power_mw, "charging": s.charging,
        "current_convention": s.current_how, "host_package_mw": s.host_package_mw,
        "convention": convention_record(s.convention) if s.convention is not None else None,
        "sampler_cpu_pct": s.sampler_cpu_pct, "sample_interval_ms": interval_ms, "timeline_file": timeline_rel,
        "sample_rate_hz": s.sample_rate_hz, "sample_max_gap_ms": s.sample_max_gap_ms,
        "window_s": None if s.start_s is None or s.end_s is None else s.end_s - s.start_s,
    }
    missing = dict(s.missing)
    warnings = sampler_rate_warnings(s.sample_rate_hz, s.sample_max_gap_ms, interval_ms) + \
        convention_warnings(s.convention)
    if s.energy is not None:
        fields["energy_mj"], fields["energy_mah"] = s.energy.mj, s.energy.mah
        if s.energy.covered_fraction < 0.9:
            warnings.append(WarningRecord(code="telemetry_gaps", message=(
                f"battery samples cover {100 * s.energy.covered_fraction:.0f}% of the window; energy is "
                "interpolated across the gaps")))
    if (mj := mj_per_frame(s.power_mw, fps=fps, latency_mean_ms=latency_mean_ms)) is not None:
        fields["mj_per_frame"] = mj
    if s.current_ma is not None:
        fields["mah_per_hour"] = s.current_ma  # a mean current sustained for one hour at this pacing
        src = battery_source(emulated=emulated, charging=s.charging)
        fields["power_source"], fields["power_confidence"] = src.source, src.confidence
        if s.charging:
            warnings.append(WarningRecord(code="charging", message=(
                "the battery was charging during the cell: current_now is net of the charger, not what the phone "
                "drew. Suspend charging (tuning.suspend_charging, rooted phones), use adb over Wi-Fi, or a meter "
                "on a battery-bypass supply.")))
    elif s.host_package_mw is not None:
        src = rapl_source()
        fields["power_source"], fields["power_confidence"] = src.source, src.confidence
        fields["power_mw"] = s.host_package_mw
    else:
        missing.setdefault("power_source", missing.get("current_ma") or "no battery counters, rails or meter")
    for key in ("mj_per_frame", "mah_per_hour", "energy_mj"):
        if fields.get(key) is None:
            missing.setdefault(key, missing.get("power_mw") or missing.get("current_ma") or "no power measurement")
    return Part(telemetry=fields, missing=missing, warnings=tuple(warnings))


def convention_warnings(conv: CurrentConvention | None) -> list[WarningRecord]:
    """The device config's battery convention contradicted by the data (the config's value was used)."""
    return [WarningRecord(code="battery_convention", message=(
        f"{d}; the config's value was used (battery.current_unit / discharge_sign in the device config): check it"))
        for d in (conv.disagreements if conv is not None else ())]


def sampler_rate_warnings(rate_hz: float | None, max_gap_ms: float | None,
                          interval_ms: float) -> list[WarningRecord]:
    """A sampler that fell behind its asked rate, or stalled for a while during the window (pure)."""
    if interval_ms <= 0:
        return []
    asked_hz = period_ms_to_hz(interval_ms)
    out: list[WarningRecord] = []
    if rate_hz is not None and rate_hz < SAMPLER_RATE_MIN_FRACTION * asked_hz:
        out.append(WarningRecord(code="sampler_rate", message=(
            f"the sampler achieved {rate_hz:.2f} Hz over the window, asked {asked_hz:g} Hz "
            f"({100 * rate_hz / asked_hz:.0f}%, below {100 * SAMPLER_RATE_MIN_FRACTION:.0f}%): time series are "
            "coarser than asked; on a busy device raise telemetry.sample_interval_ms")))
    if max_gap_ms is not None and max_gap_ms > SAMPLER_GAP_MAX_INTERVALS * interval_ms:
        out.append(WarningRecord(code="sampler_stall", message=(
            f"the sampler stalled during the window: its longest gap was {max_gap_ms:.0f} ms, "
            f"{max_gap_ms / interval_ms:.1f}× the {interval_ms:g} ms interval (more than "
            f"{SAMPLER_GAP_MAX_INTERVALS:g}×); what happened in the gap is interpolated or not seen")))
    return out


# -- sustained runs and heat -----------------------------------------------------------------


def sustained_applies(cfg: Sustained, cell: CellSpec) -> bool:
    """Every cell when ``models`` is empty; else the named models, and always the baseline
    (bicubic through the same path, so a sustained SR cell has its sustained reference)."""
    if not cfg.models or cell.baseline:
        return True
    return any(name in (cell.model_name, cell.zoo) for name in cfg.models)


def _mean_latency_ms(t: TimingResult) -> float | None:
    if t.samples_ms:
        return float(np.mean(t.samples_ms))
    return t.summary.mean_ms if t.summary is not None else None


def _mean_freq(s: Summary | None) -> float | None:
    return float(np.mean(list(s.cpu_freq_mhz.values()))) if s is not None and s.cpu_freq_mhz else None


def sustained_run(device: Device, cfg: Sustained, run_part: Callable[[int], TimingResult], *, fps: float | None,
                  burst_latency_mean_ms: float | None, burst_power_mw: float | None, workdir: Path,
                  timeline_path: Callable[[int], Path], interval_s: float, meter: MeterPlan | None,
                  stop: StopController, emulated: bool, sample: bool = True) -> tuple[SustainedRecord, list[WarningRecord]]:
    """``cfg.chunks`` consecutive parts of a paced run lasting ``cfg.duration_s`` in all (each
    part ``run_part(iterations)``), each sampled (and metered) like the headline series, with
    the device's temperature read after each: the timeline throttling is judged on. With
    ``sample`` off (telemetry disabled) only latency and temperature make the timeline."""
    # one sensor for the whole run: the sampler's SoC/CPU zone where the first part's sampler read one (its zone
    # then fixed), else the device's own reading (the cool-down gate's zone); never one part from each
    start_reading = device.temperature()
    start_temp, temp_zone, from_sampler = start_reading.temp_c, start_reading.source, False
    per_frame_ms = frame_budget_ms(fps) or (burst_latency_mean_ms or 0.0)
    if per_frame_ms <= 0:
        return SustainedRecord(duration_s=cfg.duration_s, fps=fps, missing={
            "all": "back-to-back sustained run with no burst latency to size it"}), []
    total_iter = max(cfg.chunks, round(s_to_ms(cfg.duration_s) / per_frame_ms))
    per_part = max(1, total_iter // cfg.chunks)
    parts: list[SustainedPart] = []
    warnings: list[WarningRecord] = []
    energy_mj = 0.0
    energy_ok = True
    source: str | None = None
    t_start = time.monotonic()
    for i in range(cfg.chunks):
        stop.check()
        p0 = time.monotonic() - t_start
        if sample:
            t, s, _, mo = measure_during(device, workdir, timeline_path(i), interval_s, lambda: run_part(per_part),
                                         meter=meter)
        else:  # telemetry off: latency and temperature only
            t, s, mo = run_part(per_part), None, None
        p1 = time.monotonic() - t_start
        if i == 0 and s is not None and s.temp_zone is not None:
            start_temp, temp_zone, from_sampler = s.temp_start_c, s.temp_zone, True
        if from_sampler:
            temp = s.temp_end_c if s is not None and s.temp_zone == temp_zone else None
        else:
            temp = device.temperature().temp_c
        power_mw: float | None = None
        src: str | None = None
        usb_refused = (mo is not None and mo.plan.placement == "usb" and s is not None and usb_meter_refusal(
            charging=s.charging, battery_current_ma=s.current_ma) is not None)
        if mo is not None and mo.energy is not None and not usb_refused:
            power_mw, src = mo.energy.mean_mw, emulated_label(mo.plan.label, emulated=emulated)
            energy_mj += mo.energy.mj
        elif s is not None and s.energy is not None:
            power_mw, src = s.energy.mean_mw, emulated_label(BATTERY_COUNTERS, emulated=emulated)
            energy_mj += s.energy.mj
        else:
            energy_ok = False
        source = source or src
        parts.append(SustainedPart(
            index=i, start_s=p0, end_s=p1, latency_mean_ms=_mean_latency_ms(t),
            temp_c=temp,
            cpu_freq_mhz=_mean_freq(s), gpu_freq_mhz=s.gpu_freq_mhz if s is not None else None,
            device_cpu_busy_pct=s.cpu_busy_pct if s is not None else None,
            gpu_busy_pct=s.gpu_busy_pct if s is not None else None, power_mw=power_mw, power_source=src))
    verdict, missing, w = throttle_analysis(parts, cfg)
    warnings += w
    powers = [p.power_mw for p in parts if p.power_mw is not None]
    if not energy_ok:
        missing["energy_mj"] = "some parts have no power measurement (no meter and no battery counters)"
    rec = SustainedRecord(
        duration_s=parts[-1].end_s if parts else 0.0, fps=fps, iterations=per_part * len(parts), parts=parts,
        temp_start_c=start_temp, temp_zone=temp_zone, burst_latency_mean_ms=burst_latency_mean_ms, burst_power_mw=burst_power_mw,
        power_mw=float(np.mean(powers)) if powers else None, energy_mj=energy_mj if energy_ok else None,
        power_source=source, missing=missing, **verdict)
    return rec, warnings


def sustained_warnings(cfg: Sustained | None, cells: Sequence[CellSpec]) -> list[WarningRecord]:
    """A sustained run for a model the scenario does not have runs nothing: said once per run."""
    if cfg is None:
        return []
    known = {n for c in cells for n in (c.model_name, c.zoo) if n}
    return [WarningRecord(code="sustained_unknown_model", message=(
        f"sustained.models names {name!r}, which is not among the scenario's models ({', '.join(sorted(known))}): "
        "no sustained run for it")) for name in cfg.models if name not in known]
