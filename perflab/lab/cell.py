"""One cell as a list of passes: cooldown → timing (one series per pacing mode) → telemetry →
sustained → outputs + quality → per-layer. Each pass returns a frozen Part
(perflab.lab.parts); :func:`measure_cell` runs them in order and merges their parts once. The
runner (perflab.lab.runner) decides what a cell's failure means; a pass only measures.

What a number means is decided below: a series' record by perflab.rules.latency, power and its
confidence by perflab.rules.power (through lab.costs and lab.meters), throttling by
perflab.rules.sustained, the quality record by perflab.rules.quality, the per-layer rules by
perflab.rules.layers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

from perflab.analysis.stats import (
    StabilityThresholds,
    SummaryOnly,
    stability_warnings,
    summary_stability_warnings,
)
from perflab.core.types import ModelArtifact, SeriesMode, TimingRequest, TimingResult
from perflab.devices.base import Device
from perflab.devices.capabilities import HostDevice
from perflab.errors import DeviceGoneError, MeasurementError, PerflabError, RunInterrupted
from perflab.lab.compat import model_compat
from perflab.lab.costs import measure_during, sustained_applies, sustained_run, telemetry_part
from perflab.lab.inputs import Inputs, frame_chunks
from perflab.lab.lifecycle import StopController
from perflab.lab.meters import MeterOutcome, MeterPlan
from perflab.lab.parts import Part, merge
from perflab.lab.phone_timing import TimingTrace, traced, with_trace_samples
from perflab.lab.progress import Phase
from perflab.lab.video import StreamKeeper, cell_vmaf
from perflab.quality.frames import Frame, quantize_8bit, resize_bicubic
from perflab.quality.metrics import default_threads
from perflab.quality.temporal import TemporalTracker
from perflab.rules.device import is_emulated
from perflab.rules.latency import latency_record
from perflab.rules.memory import memory_fields
from perflab.rules.quality import no_reference_frame, quality_record, with_vmaf
from perflab.scenario.plan import CellSpec
from perflab.scenario.schema import Scenario
from perflab.store.results import (
    CompatRecord,
    DelegateRecord,
    DeviceRecord,
    FrameQuality,
    LatencyRecord,
    QualityRecord,
    WarningRecord,
)
from perflab.store.runfolder import RunFolder
from perflab.telemetry.summary import Summary
from perflab.workloads import Workload

_T = TypeVar("_T")



@dataclass(frozen=True)
class CellContext:
    """What every pass of one cell shares."""

    scenario: Scenario
    device: Device
    workload: Workload
    info: DeviceRecord
    cell: CellSpec
    art: ModelArtifact
    key: str  # the cell's artifact_key
    folder: RunFolder
    inputs: Inputs
    stop: StopController
    meter: MeterPlan | None  # the external meter wired to this device, if any
    phase: Callable[[str], None] = lambda _phase: None  # progress: the pass now running

    @property
    def emulated(self) -> bool:
        return is_emulated(self.info)

    def request(self, mode: SeriesMode, fps: float | None, *, warmup: int, iterations: int) -> TimingRequest:
        s, g = self.scenario, self.scenario.geometry
        return TimingRequest(mode=mode, fps=fps, warmup=warmup, iterations=iterations, threads=s.threads,
                             delegate=self.cell.delegate.value, timeout_s=s.runs.timeout_s, lr_width=g.lr_width,
                             lr_height=g.lr_height, input_frame=self.inputs.timing_frame)


@dataclass(frozen=True)
class Measured:
    """A measured cell: its merged part and the model's compatibility report."""

    part: Part
    compat: CompatRecord | None
    compat_why: str | None


# --------------------------------------------------------------------------- cooldown


def cooldown_pass(ctx: CellContext) -> Part:
    """Wait (bounded) for the device to cool below the scenario's start temperature."""
    cd = ctx.scenario.cooldown
    deadline = time.monotonic() + cd.wait_timeout_s
    reading = ctx.device.temperature()
    while reading.temp_c is not None and reading.temp_c > cd.max_start_temp_c and time.monotonic() < deadline:
        ctx.stop.sleep(min(5.0, max(0.1, deadline - time.monotonic())))
        reading = ctx.device.temperature()
    missing: dict[str, str] = {}
    warnings: list[WarningRecord] = []
    if reading.temp_c is None:
        missing["start_temp_c"] = reading.missing_reason or "no temperature source"
    elif reading.temp_c > cd.max_start_temp_c:
        warnings.append(WarningRecord(code="hot_start", message=(
            f"started at {reading.temp_c:.1f} °C, above the {cd.max_start_temp_c:g} °C threshold, after waiting "
            f"{cd.wait_timeout_s:g} s; results may be throttled. Raise cooldown.wait_timeout_s.")))
    return Part(telemetry={"start_temp_c": reading.temp_c, "temp_source": reading.source}, missing=missing,
                warnings=tuple(warnings))


# --------------------------------------------------------------------------- timing


def delegate_records(lines: Sequence[str]) -> list[DelegateRecord]:
    """The device tool's delegate lines as structured records (parsed once, at run time)."""
    from perflab.formats.benchmark_output import Coverage, parse_output

    out: list[DelegateRecord] = []
    for line in lines:
        if line.startswith("ops: "):
            out.append(DelegateRecord(kind="ops", line=line, ops=line[5:].split()))
            continue
        parsed = parse_output(line)
        if parsed.replacements:
            r = parsed.replacements[0]
            out.append(DelegateRecord(kind="replaced", line=line, delegate=r.delegate_node, replaced=r.replaced,
                                      total=r.total, partitions=r.partitions))
        elif parsed.delegates:
            d = parsed.delegates[0]
            out.append(DelegateRecord(kind="not_applied" if d.coverage is Coverage.NONE else "applied", line=line,
                                      delegate=d.delegate, coverage=d.coverage.value,
                                      delegate_kernels=d.delegate_kernels))
        else:
            out.append(DelegateRecord(kind="line", line=line))
    return out



def modes(s: Scenario) -> list[tuple[SeriesMode, float | None]]:
    """The series a cell times, the headline (paced when the scenario paces) first."""
    out: list[tuple[SeriesMode, float | None]] = []
    if s.pacing.fps:
        out.append((SeriesMode.PACED, s.pacing.fps))
    if not s.pacing.fps or s.pacing.also_back_to_back:
        out.append((SeriesMode.BACK_TO_BACK, None))
    return out


@dataclass(frozen=True)
class Sampled:
    """What the sampler (and meter) saw during the headline series."""

    summary: Summary | None
    why: str | None
    meter: MeterOutcome | None
    timeline_rel: str


@dataclass
class _Series:
    """One series' part and what later passes need from it."""

    part: Part
    record: LatencyRecord
    delegate_info: list[str] = field(default_factory=list)
    log: str = ""
    sampled: Sampled | None = None


def _series(ctx: CellContext, mode: SeriesMode, fps: float | None, headline: bool) -> _Series:
    s = ctx.scenario
    req = ctx.request(mode, fps, warmup=s.runs.warmup, iterations=s.runs.iterations)
    timing_trace = ctx.folder.timing_trace(ctx.key, mode.value)

    def timed(fn: Callable[[], _T]) -> tuple[_T, TimingTrace | None]:
        # a phone's tool gives no per-run samples: its timed run is traced for them (perflab.lab.phone_timing)
        if isinstance(ctx.device, HostDevice):
            return fn(), None
        return traced(ctx.device, timing_trace.path, timing_trace.rel, fn)

    sampled: Sampled | None = None
    if headline and s.telemetry.enabled:
        timeline, raw = ctx.folder.timeline(ctx.key), ctx.folder.meter_raw(ctx.key)
        (t, summary, why, meter), tt = timed(lambda: measure_during(
            ctx.device, ctx.folder.work_dir(ctx.device.serial), timeline.path, s.telemetry.sample_interval_ms / 1000.0,
            lambda: ctx.workload.run_timing(ctx.art, req), meter=ctx.meter, meter_raw=(raw.path, raw.rel)))
        sampled = Sampled(summary, why, meter, timeline.rel)
    else:
        t, tt = timed(lambda: ctx.workload.run_timing(ctx.art, req))
    if tt is not None:
        t = with_trace_samples(t, tt)
    warnings: list[WarningRecord] = []
    thresholds = StabilityThresholds(max_cv_pct=s.stability.max_cv_pct, max_drift_pct=s.stability.max_drift_pct)
    if t.samples_ms:
        ctx.folder.append_samples(ctx.key, mode.value, t.samples_ms)
        warnings += [WarningRecord(code=w.code, message=f"{mode.value}: {w.message}")
                     for w in stability_warnings(t.samples_ms, thresholds)]
    elif t.summary is not None:
        sm = t.summary
        summary_only = SummaryOnly(n=sm.count, mean_ms=sm.mean_ms, std_ms=sm.std_ms, min_ms=sm.min_ms,
                                   max_ms=sm.max_ms, missing={"std": t.missing["std"]} if "std" in t.missing else {})
        warnings += [WarningRecord(code=w.code, message=f"{mode.value}: {w.message}")
                     for w in summary_stability_warnings(summary_only, thresholds)]
    warnings += [WarningRecord(code="tool", message=f"{mode.value}: {w_text}") for w_text in t.warnings]
    tel = {"cpu_load_pct": t.cpu_load_pct, "tool_mem_mb": t.mem_peak_mb, "tool_mem_source": t.mem_source} \
        if headline else {}
    # the tool's memory figure is tool_mem_mb; mem_peak_mb is the sampler's (telemetry_pass, rules.memory)
    missing = {("tool_mem_mb" if k == "mem_peak_mb" else k): v for k, v in t.missing.items()}
    return _Series(part=Part(telemetry=tel, missing=missing, warnings=tuple(warnings)),
                   record=latency_record(t, fps), delegate_info=list(t.delegate_info),
                   log=f"== {mode.value} ==\n" + "\n".join(t.delegate_info) + "\n" + t.tool_log, sampled=sampled)


@dataclass(frozen=True)
class Timing:
    """The timing pass: its part (``series``, ``latency_ms``, ``delegates``), the tool's log and
    what the sampler saw."""

    part: Part
    headline: LatencyRecord
    log: str
    sampled: Sampled | None


def timing_pass(ctx: CellContext) -> Timing:
    """Every series of the cell, the headline first; raw samples go to samples.csv."""
    runs: list[_Series] = []
    series_modes = modes(ctx.scenario)
    for mode, fps in series_modes:
        ctx.stop.check()
        ctx.phase(f"{Phase.TIMING} ({mode.value})")
        runs.append(_series(ctx, mode, fps, headline=not runs))
    lines: list[str] = []
    for r in runs:
        lines.extend(x for x in r.delegate_info if x not in lines)
    merged = merge(r.part for r in runs)
    defaults: dict[str, str] = {}
    if merged.telemetry.get("cpu_load_pct") is None:
        defaults["cpu_load_pct"] = "the device did not report CPU time for the run"
    if merged.telemetry.get("tool_mem_mb") is None:
        defaults["tool_mem_mb"] = merged.missing.get("mem_peak_mb") or "the device did not report memory for the run"
    headline = runs[0].record
    series = {mode.value: r.record for (mode, _), r in zip(series_modes, runs, strict=True)}
    part = merge([merged, Part(fields={"latency_ms": headline, "series": series,
                                       "delegates": delegate_records(lines)}, missing=defaults)])
    return Timing(part=part, headline=headline, log="\n".join(r.log for r in runs), sampled=runs[0].sampled)


# --------------------------------------------------------------------------- telemetry


def telemetry_pass(ctx: CellContext, timing: Timing) -> Part:
    """The headline series' window summarised into telemetry fields (lab.costs, lab.meters)."""
    s = ctx.scenario
    sampled = timing.sampled
    summary = sampled.summary if sampled and s.telemetry.enabled else None
    tool = timing.part.telemetry
    mem, mem_missing = memory_fields(
        sampler_rss_peak_mb=summary.rss_peak_mb if summary is not None else None,
        tool_mem_mb=tool.get("tool_mem_mb"), tool_mem_source=tool.get("tool_mem_source"),
        sampler_why=("telemetry.enabled is off in the scenario" if not s.telemetry.enabled
                     else summary.missing.get("rss_peak_mb") if summary is not None
                     else sampled.why if sampled else None))
    memory = Part(telemetry=mem, missing=mem_missing)
    if not s.telemetry.enabled:
        return merge([memory, Part(missing={"power_source": "telemetry.enabled is off in the scenario"})])
    return merge([memory, telemetry_part(
        summary, sampled.why if sampled else None, emulated=ctx.emulated,
        fps=s.pacing.fps, latency_mean_ms=timing.headline.mean, interval_ms=s.telemetry.sample_interval_ms,
        timeline_rel=sampled.timeline_rel if sampled else "", meter=sampled.meter if sampled else None)])


# --------------------------------------------------------------------------- sustained


def sustained_pass(ctx: CellContext, burst_mean_ms: float | None, burst_power_mw: float | None) -> Part:
    """The scenario's sustained paced run for this cell (perflab.lab.costs.sustained_run); an
    empty part where the scenario asks for none."""
    s, cfg = ctx.scenario, ctx.scenario.sustained
    if cfg is None or not sustained_applies(cfg, ctx.cell):
        return Part()
    ctx.stop.check()
    ctx.phase("sustained run")
    fps = cfg.fps or s.pacing.fps

    def run_part(n: int) -> TimingResult:
        return ctx.workload.run_timing(ctx.art, ctx.request(SeriesMode.PACED if fps else SeriesMode.BACK_TO_BACK,
                                                            fps, warmup=0, iterations=n))

    rec, warnings = sustained_run(
        ctx.device, cfg, run_part, fps=fps, burst_latency_mean_ms=burst_mean_ms, burst_power_mw=burst_power_mw,
        workdir=ctx.folder.work_dir(ctx.device.serial),
        timeline_path=lambda i: ctx.folder.sustained_timeline(ctx.key, i).path,
        interval_s=s.telemetry.sample_interval_ms / 1000.0, meter=ctx.meter if s.telemetry.enabled else None,
        stop=ctx.stop, emulated=ctx.emulated, sample=s.telemetry.enabled)
    return Part(fields={"sustained": rec}, warnings=tuple(warnings))


# --------------------------------------------------------------------------- outputs + quality


def frame_quality(f: Frame, out: np.ndarray, scale: int, temporal: TemporalTracker | None = None, *,
                  lr_from: str | None = None) -> FrameQuality:
    """One output frame's scores: against its HR where the input has one, else (an LR-only input)
    by the no-reference measures alone, PSNR/SSIM marked as having no reference. With ``temporal``
    (the cell's tracker, frames in order) also its temporal stability against the previous frame
    of its sequence (an LR-only frame's against its LR input upscaled, having no HR)."""
    from perflab.quality.metrics import psnr_rgb_db, psnr_ssim_y
    from perflab.quality.piqe import piqe_score

    if f.hr is None:
        assert f.lr is not None
        want = (f.lr.shape[0] * scale, f.lr.shape[1] * scale, f.lr.shape[2])
        if out.shape != want:
            raise MeasurementError(f"output {out.shape} is not ×{scale} the LR {f.lr.shape} for frame {f.name}")
    elif f.hr.shape != out.shape:
        raise MeasurementError(f"output {out.shape} does not match HR {f.hr.shape} for frame {f.name}")
    # one convention (docs/quality.md): outputs are scored as displayed and saved — clipped and
    # rounded to 8 bits — so the saved PNGs give the same numbers, as `perflab models evaluate` does
    out = quantize_8bit(np.clip(out, 0.0, 1.0))
    piqe: float | None = None
    missing: dict[str, str] = {}
    try:
        piqe = piqe_score(out)
    except MeasurementError as exc:
        missing["piqe"] = str(exc)
    t_err: float | None = None
    if temporal is not None:
        # no HR: the LR input itself, upscaled bicubically, is what the output's change is held
        # against (the flicker the model adds beyond the input's own; docs/quality.md)
        ref = f.hr
        if ref is None:
            assert f.lr is not None
            ref = quantize_8bit(np.clip(resize_bicubic(f.lr, out.shape[1], out.shape[0]), 0.0, 1.0))
        t = temporal.step(f.sequence, ref, out)
        t_err = t.value
        if t.missing is not None:
            missing["temporal_err_y"] = t.missing
    if f.hr is None:
        return no_reference_frame(f.name, piqe, missing, lr_from or "lr_only", temporal_err_y=t_err)
    y = psnr_ssim_y(out, f.hr, scale)
    return FrameQuality(frame=f.name, psnr_y_db=y.psnr_y_db, ssim_y=y.ssim_y, psnr_rgb_db=psnr_rgb_db(out, f.hr, scale),
                        piqe=piqe, temporal_err_y=t_err, missing=missing, lr_from=lr_from)


def _quality(ctx: CellContext) -> QualityRecord:
    s = ctx.scenario
    per: list[FrameQuality] = []
    temporal = TemporalTracker(border_px=s.geometry.scale)
    group = ctx.folder.frame_group(ctx.key)
    video = StreamKeeper(ctx.folder, group, max_frames=s.outputs.video_frames, fps=s.pacing.fps)
    degraded = False
    # the kept video follows the kept reference frame for frame (VMAF compares the two): an
    # LR-only input's outputs, which have no reference frame, join it only in a run with no reference
    ref = ctx.inputs.reference_video
    video_all = ref is None or ref.frames == 0
    frames = ctx.inputs.frames()
    try:
        for chunk in frame_chunks(frames, s.geometry.scale):  # bounded by frames and bytes
            ctx.stop.check()
            try:
                outs = ctx.workload.run_outputs(ctx.art, [lr for _, _, lr in chunk], s.threads,
                                                ctx.cell.delegate.value, s.runs.timeout_s)
            except (DeviceGoneError, RunInterrupted):
                raise
            except PerflabError as exc:
                video.abort()
                why = f"outputs could not be computed on the device: {exc}"
                return QualityRecord(missing={"psnr_y_db": why, "ssim_y": why, "vmaf": why})
            if len(outs) != len(chunk):
                raise MeasurementError(f"the device returned {len(outs)} outputs for {len(chunk)} frames")
            for (i, f, _), out in zip(chunk, outs, strict=True):
                per.append(frame_quality(f, out, s.geometry.scale, temporal, lr_from=ctx.inputs.lr_from(f)))
                degraded = degraded or f.lr is None
                if i < s.outputs.png_frames:
                    ctx.folder.save_frame(group, f.name, out)
                if f.hr is not None or video_all:  # kept as scored: clipped, rounded to 8 bits
                    video.add(f.name, np.clip(out, 0.0, 1.0), f.sequence)
    except BaseException:
        video.abort()
        raise
    finally:
        frames.close()
    # the kernel is recorded when perflab made an LR frame with it (an HR-only input)
    q = quality_record(per, f"{ctx.info.kind} device outputs ({ctx.info.serial})",
                       downscale=ctx.inputs.downscale if degraded else None)
    kept = video.finish()
    if not s.outputs.vmaf:
        return with_vmaf(q, {}, model=None, why="outputs.vmaf is off in the scenario", video=kept)
    ctx.stop.check()
    v = cell_vmaf(ctx.folder, ctx.inputs.reference_video, kept, threads=default_threads(),
                  timeout_s=s.runs.timeout_s)
    return with_vmaf(q, v.scores, model=v.model, why=v.why, video=kept)


def quality_pass(ctx: CellContext) -> Part:
    """Run the model on every frame *on the device*, in chunks (bounded memory), and score the
    device's outputs against the HR frames."""
    ctx.stop.check()
    ctx.phase(Phase.OUTPUTS)
    return Part(fields={"quality": _quality(ctx)})


# --------------------------------------------------------------------------- per layer


def layers_pass(ctx: CellContext, compat: CompatRecord | None, delegates: Sequence[DelegateRecord],
                series: dict[str, LatencyRecord]) -> Part:
    """The per-layer passes the scenario's ``profiling:`` block asks for (perflab.lab.layers)."""
    prof = ctx.scenario.profiling
    if not (prof.op_profiling or prof.trace or prof.differential):
        return Part()
    from perflab.lab.layers import cell_layers

    ctx.stop.check()
    ctx.phase(Phase.PROFILE)
    s = ctx.scenario
    layers = cell_layers(
        ctx.workload, ctx.art, profiling=prof, delegate=ctx.cell.delegate.value, threads=s.threads,
        timeout_s=s.runs.timeout_s, lr_width=s.geometry.lr_width, lr_height=s.geometry.lr_height,
        input_frame=ctx.inputs.timing_frame, check_stop=ctx.stop.check, trace=ctx.folder.trace(ctx.key),
        trace_log=ctx.folder.trace_log(ctx.key),
        local=isinstance(ctx.device, HostDevice), delegates=delegates, compat=compat, series=series,
        device=ctx.device)
    return Part(fields={"layers": layers})


# --------------------------------------------------------------------------- the cell


def measure_cell(ctx: CellContext) -> Measured:
    """Every pass of the cell in order; their parts merged once."""
    compat, why = model_compat(ctx.art)
    ctx.stop.check()
    ctx.phase(Phase.COOLDOWN)
    cooled = cooldown_pass(ctx)
    timing = timing_pass(ctx)
    tel = telemetry_pass(ctx, timing)
    sustained = sustained_pass(ctx, timing.headline.mean, tel.telemetry.get("power_mw"))
    ctx.folder.write_log(ctx.folder.cell_log(ctx.key), timing.log)
    quality = quality_pass(ctx)
    layers = layers_pass(ctx, compat, timing.part.fields["delegates"], timing.part.fields["series"])
    return Measured(merge([cooled, timing.part, tel, sustained, quality, layers]), compat, why)
