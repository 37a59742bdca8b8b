"""The results format: ``results.json`` with ``"schema": "perflab.results/<N>"``.

History (also in docs/result_format.md):
  1 — first version: run header, devices, cells with latency (headline + series), quality,
      telemetry, layers, deltas versus the baseline, warnings.
  2 — records are immutable and built once; typed per-frame quality (FrameQuality); the
      real-time verdict is a record with its rule; delegate lines are structured
      (DelegateRecord) instead of raw ``delegate_log``; each cell names its ``artifact_key``;
      status ``interrupted``; the run records its planned cells, why it stopped (``stop``),
      its resumes and run-level warnings. /1 files are upgraded on reading.
  3 — a latency series may carry ``p99``, and its per-run samples may come from a kernel
      trace of the timed run (a rooted phone: ``source`` "raw samples: …" says where). /2 files
      read unchanged.
  7 — imported cells: ``provenance`` (ProvenanceRecord) on a cell read from a capture perflab
      did not measure (``perflab import``); quality says how each frame's LR was had
      (``per_frame[].lr_from``, ``quality.downscale``) and marks frames with no reference
      (LR-only inputs: ``per_frame[].reference`` false, ``quality.no_reference_frames``).
      /6 files read unchanged.

Every change of shape bumps RESULTS_SCHEMA_VERSION and is written in docs/result_format.md.
Reports are rebuilt from this file alone (plus the samples CSV beside it).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from perflab.core.units import RawBatteryScale
from perflab.store.layer_records import LayersRecord
from perflab.store.record_base import Rec

RESULTS_SCHEMA_VERSION = 7
RESULTS_SCHEMA = f"perflab.results/{RESULTS_SCHEMA_VERSION}"
READABLE_SCHEMA_VERSIONS = (1, 2, 3, 4, 5, 6, 7)  # older versions are upgraded on reading (upgrade_raw)


class CellStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    UNSUPPORTED = "unsupported"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"  # the run was stopped before this cell finished (or started)


class DeviceRecord(Rec):
    serial: str
    kind: str  # local / android / emulated
    model: str
    soc: str | None = None
    abi: str | None = None
    sdk: int | None = None
    fingerprint: str | None = None
    rooted: bool | None = None
    tflite_version: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)


class GpuIssueRecord(Rec):
    op_index: int
    op_name: str
    reason: str
    source: str  # "tflite analyzer" or "perflab"


class CompatRecord(Rec):
    """TFLite's model analyzer on this file: op list and GPU-delegate compatibility."""

    source: str  # how it was obtained, e.g. "tflite analyzer (TF 2.21.0), shipped with the zoo"
    ops: list[str] = Field(default_factory=list)
    op_counts: dict[str, int] = Field(default_factory=dict)
    gpu_checked: bool = False
    gpu_compatible: bool | None = None
    gpu_issues: list[GpuIssueRecord] = Field(default_factory=list)
    runtime_version: str | None = None


class ModelRecord(Rec):
    name: str
    family: str
    variant: str
    scale: int
    sha256: str | None = None
    size_bytes: int | None = None
    compat: CompatRecord | None = None
    missing: dict[str, str] = Field(default_factory=dict)


class LatencyRecord(Rec):
    """Latency of one series in milliseconds. A None value has its reason in ``missing``."""

    mode: str  # paced / back_to_back
    fps_target: float | None = None
    source: str  # "raw samples" (the tool's, or "raw samples: <where>", e.g. a phone's timing trace) / "tool summary"
    init: float | None = None
    first: float | None = None
    warmup_mean: float | None = None
    median: float | None = None
    mean: float | None = None
    p10: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    min: float | None = None
    max: float | None = None
    std: float | None = None
    mad: float | None = None
    cv_pct: float | None = None
    n: int = 0
    missing: dict[str, str] = Field(default_factory=dict)


class FrameQuality(Rec):
    """One frame's quality; ``d_*`` = this cell minus bicubic on the same frame (after the run)."""

    frame: str
    psnr_y_db: float | None = None
    ssim_y: float | None = None
    psnr_rgb_db: float | None = None
    piqe: float | None = None
    d_psnr_y_db: float | None = None
    d_ssim_y: float | None = None
    # temporal stability against the previous frame of its sequence, 8-bit Y levels (quality.temporal) (/7)
    temporal_err_y: float | None = None
    d_temporal_err_y: float | None = None
    vmaf: float | None = None  # libvmaf on the kept video (QualityRecord.vmaf_model); /7
    d_vmaf: float | None = None
    missing: dict[str, str] = Field(default_factory=dict)
    reference: bool = True  # False: an LR-only input, no HR to compare with (no PSNR/SSIM, by design) (/7)
    lr_from: str | None = None  # downscale:<kernel> (made from the HR), pair (given with its HR), lr_only (/7)


class VideoSegmentRecord(Rec):
    """One kept video file: consecutive frames of one size (docs/result_format.md "Kept video")."""

    file: str  # relative to the run folder, e.g. "videos/hr/000.mkv"
    first_frame: int = Field(ge=0)  # index of its first frame among the stream's frames
    frames: list[str]  # the frame names, in order (FrameQuality.frame)
    width: int = Field(gt=0)
    height: int = Field(gt=0)


class KeptVideoRecord(Rec):
    """Frames kept as lossless video in the run folder: the HR reference, or a cell's outputs."""

    format: str  # codec, pixel format, container in words
    fps: float
    frames: int = 0  # frames kept (the first ``frames`` of the stream)
    segments: list[VideoSegmentRecord] = Field(default_factory=list)
    missing: str | None = None  # why no (or not every) frame was kept


class QualityRecord(Rec):
    """Means over the frames; ``per_frame`` holds each frame's values."""

    psnr_y_db: float | None = None
    ssim_y: float | None = None
    psnr_rgb_db: float | None = None
    piqe: float | None = None  # no-reference perceptual score of the outputs (lower is better)
    mai2021_score: float | None = None  # 2^(2·PSNR-Y) / (C·median latency ms), C = 1
    psnr_y_db_min: float | None = None
    temporal_err_y: float | None = None  # mean over the frames that have one; lower is steadier (/7)
    temporal_err_y_max: float | None = None  # the worst frame's (/7)
    frames: int = 0
    per_frame: list[FrameQuality] = Field(default_factory=list)
    computed_on: str | None = None  # "device outputs" — where the outputs were computed
    # /7: VMAF of the kept video against the kept HR video (perflab.analysis.vmaf pools it)
    vmaf: float | None = None  # mean over the frames
    vmaf_harmonic_mean: float | None = None
    vmaf_p5: float | None = None  # 5th percentile of the per-frame scores
    vmaf_frames: int = 0
    vmaf_model: str | None = None  # e.g. "vmaf_v0.6.1 (libvmaf 86da14d, ffmpeg n9.0.2)"
    video: KeptVideoRecord | None = None  # the cell's outputs kept as video
    missing: dict[str, str] = Field(default_factory=dict)
    downscale: str | None = None  # the HR→LR kernel of the frames perflab degraded itself (/7)
    no_reference_frames: int = 0  # frames from LR-only inputs: in PIQE's mean, not in PSNR/SSIM's (/7)


class CurrentConventionRecord(RawBatteryScale, Rec):
    """How a sampler file's raw battery values become mA (positive = drawn from the battery) and volts, decided
    once when the run measured it (perflab.telemetry.battery): mA = raw × ua_per_unit × discharge_sign / 1000,
    V = raw × uv_per_unit / 1e6. Readers apply these numbers; they never decide again."""

    ua_per_unit: float  # 1 (current_now in µA) or 1000 (mA)
    discharge_sign: int  # sign of raw current_now while discharging (+1 / −1)
    uv_per_unit: float = 1.0  # 1 (voltage_now in µV), 1000 (mV) or 1e6 (V)
    unit_source: str  # config / charge_counter / heuristic
    sign_source: str  # config / charge_counter / load_step / heuristic
    voltage_source: str = "config"  # config / heuristic
    n: int = 0  # raw current samples the decision saw (the whole sampler file)
    median_abs_raw: float | None = None
    counter_slope_ua: float | None = None  # the charge counter's slope, µAh per hour = µA
    counter_r: float | None = None  # its Pearson correlation with time
    counter_n: int | None = None
    counter_span_uah: float | None = None
    load_r: float | None = None  # Pearson correlation of raw current with device CPU busy, per tick
    load_n: int | None = None
    disagreements: list[str] = Field(default_factory=list)  # config vs data (the config won)
    how: str = ""  # the decision in words


class TelemetryRecord(Rec):
    """What the cell cost. Process figures come from the workload (``cpu_load_pct``,
    ``mem_peak_mb``); device figures from the sampler over the headline series' window (the
    span the measured process was alive, on the device clock). Current is positive when drawn
    from the battery; ``mj_per_frame`` = mean power / fps at the scenario's pacing."""

    cpu_load_pct: float | None = None  # the measured process: CPU time / wall time × 100
    mem_peak_mb: float | None = None  # peak RSS of the benchmark process from the sampler (rules.memory)
    mem_source: str | None = None
    tool_mem_mb: float | None = None  # the tool's own memory figure, as it reports it (/4)
    tool_mem_source: str | None = None
    start_temp_c: float | None = None
    temp_source: str | None = None
    device_cpu_busy_pct: float | None = None  # all cores, 100 = every core busy
    cpu_core_busy_pct: dict[str, float] = Field(default_factory=dict)
    cpu_freq_mhz: dict[str, float] = Field(default_factory=dict)
    gpu_busy_pct: float | None = None
    gpu_freq_mhz: float | None = None
    rss_peak_mb: float | None = None  # sampled VmRSS peak of the measured process
    mem_avail_min_mb: float | None = None
    temp_zone: str | None = None  # the SoC/CPU zone Δ°C is read from (analysis.thermal_zones.soc_zone) (/6)
    temp_end_c: float | None = None
    temp_max_c: float | None = None
    skin_zone: str | None = None  # the skin sensor, its own figure, never mixed into temp_* (/6)
    skin_end_c: float | None = None
    skin_max_c: float | None = None
    current_ma: float | None = None
    voltage_v: float | None = None
    power_mw: float | None = None
    energy_mj: float | None = None
    energy_mah: float | None = None
    mj_per_frame: float | None = None
    mah_per_hour: float | None = None
    charging: bool | None = None
    current_convention: str | None = None  # how the unit and sign of current_now were decided (words)
    convention: CurrentConventionRecord | None = None  # the same as numbers (absent in files before it)
    host_package_mw: float | None = None
    power_source: str | None = None
    power_confidence: str | None = None  # high / medium / low / none
    window_s: float | None = None
    sample_interval_ms: float | None = None
    sampler_cpu_pct: float | None = None  # the sampler's own cost, % of one core
    sample_rate_hz: float | None = None  # achieved over the window (asked: 1000 / sample_interval_ms)
    sample_max_gap_ms: float | None = None  # the longest interval between sampler ticks in the window
    timeline_file: str | None = None  # raw sampler lines, relative to the run folder
    meter: MeterRecord | None = None  # the external meter, when one was named for this device
    # battery-counter figures kept beside a meter's (power_* then come from the meter)
    battery_current_ma: float | None = None
    battery_power_mw: float | None = None
    battery_energy_mj: float | None = None
    battery_power_source: str | None = None
    missing: dict[str, str] = Field(default_factory=dict)


class MeterRecord(Rec):
    """An external meter recorded around the headline series (docs/meters.md). Times are on the
    host's monotonic clock; the window is the cell's inference window mapped onto it."""

    type: str  # scpi / ppk2 / um34c / um25c / um24c
    port: str
    placement: str  # bypass (supplies the phone in place of its battery) / usb (inline, charger path)
    emulated: bool = False
    clock: str | None = None
    n_samples: int | None = None
    samples_lost: int | None = None
    garbage_bytes: int | None = None
    window_source: str | None = None  # how the inference window was found
    window_start_s: float | None = None
    window_end_s: float | None = None
    covered_fraction: float | None = None
    current_ma: float | None = None
    voltage_v: float | None = None
    power_mw: float | None = None
    energy_mj: float | None = None
    energy_mah: float | None = None
    clock_offset_s: float | None = None  # device − host, from adb round trips (min RTT)
    clock_uncertainty_s: float | None = None  # ± half the best round trip
    lag_s: float | None = None  # meter → device lag by correlation with the device's load (reported, not applied)
    lag_correlation: float | None = None
    lag_residual_fraction: float | None = None  # RMS residual after alignment / the signal's spread
    notes: list[str] = Field(default_factory=list)
    raw_file: str | None = None  # the meter's samples (t_s, amps, volts), relative to the run folder
    missing: dict[str, str] = Field(default_factory=dict)


class SustainedPart(Rec):
    """One consecutive part of a sustained run."""

    index: int
    start_s: float  # seconds since the sustained run started (host clock)
    end_s: float
    latency_mean_ms: float | None = None
    temp_c: float | None = None  # the run's one sensor (SustainedRecord.temp_zone) at the end of the part
    cpu_freq_mhz: float | None = None  # mean over cores/policies, from the sampler
    gpu_freq_mhz: float | None = None
    device_cpu_busy_pct: float | None = None
    gpu_busy_pct: float | None = None
    power_mw: float | None = None
    power_source: str | None = None


class SustainedRecord(Rec):
    """A long paced run beside the cell's burst: timelines per part and throttling verdicts."""

    duration_s: float
    fps: float | None = None
    iterations: int = 0
    parts: list[SustainedPart] = Field(default_factory=list)
    latency_early_ms: float | None = None
    latency_late_ms: float | None = None
    latency_drift_pct: float | None = None
    cpu_freq_early_mhz: float | None = None
    cpu_freq_late_mhz: float | None = None
    gpu_freq_early_mhz: float | None = None
    gpu_freq_late_mhz: float | None = None
    temp_start_c: float | None = None
    temp_end_c: float | None = None
    temp_max_c: float | None = None
    temp_zone: str | None = None  # the one sensor every part's temp_c is read from (/6)
    throttled: bool | None = None  # None: not decidable (reasons in missing)
    burst_latency_mean_ms: float | None = None  # the cell's headline series, side by side
    burst_power_mw: float | None = None
    power_mw: float | None = None
    energy_mj: float | None = None
    power_source: str | None = None
    missing: dict[str, str] = Field(default_factory=dict)


class IdleRecord(Rec):
    """A device at rest in the same session, before its first cell: the floor every cell's cost
    is compared with."""

    serial: str
    duration_s: float | None = None
    device_cpu_busy_pct: float | None = None
    gpu_busy_pct: float | None = None
    mem_avail_min_mb: float | None = None
    temp_c: float | None = None
    current_ma: float | None = None
    power_mw: float | None = None
    power_source: str | None = None  # battery counters, or the external meter (the cells' source)
    convention: CurrentConventionRecord | None = None  # how the raw battery values of timeline_file scale
    timeline_file: str | None = None
    missing: dict[str, str] = Field(default_factory=dict)


class WarningRecord(Rec):
    code: str  # e.g. high_cv, drift, bimodal, charging, emulated
    message: str


class DelegateRecord(Rec):
    """One line of the device tool about delegation, parsed when the cell ran.

    kind: ``applied`` (the delegate took the graph, fully or partly), ``not_applied`` (it was
    asked for and took nothing), ``replaced`` (N of M nodes replaced, K partitions), ``ops``
    (the host runner's op list) or ``line`` (kept verbatim, not understood)."""

    kind: str
    line: str
    delegate: str | None = None
    coverage: str | None = None  # full / partial / none
    delegate_kernels: int | None = None
    replaced: int | None = None
    total: int | None = None
    partitions: int | None = None
    ops: list[str] = Field(default_factory=list)


class RealtimeRecord(Rec):
    """Whether the headline series fits the frame budget, and the rule that decided it."""

    meets: bool | None
    statistic: str | None = None  # "p90", or "mean" where the tool gives only mean and std
    value_ms: float | None = None
    budget_ms: float | None = None
    rule: str
    missing: str | None = None


class DeltaRecord(Rec):
    """This cell minus the baseline cell on the same device and delegate (None with a reason in
    ``missing`` where either side has no value)."""

    baseline_cell_id: str
    latency_median_ms: float | None = None
    latency_mean_ms: float | None = None
    psnr_y_db: float | None = None
    ssim_y: float | None = None
    piqe: float | None = None  # lower is better: a negative delta is an improvement
    temporal_err_y: float | None = None  # lower is steadier: a negative delta is an improvement (/7)
    vmaf: float | None = None  # mean VMAF minus bicubic's over the same kept frames (/7)
    mai2021_ratio: float | None = None  # this cell's MAI score / bicubic's (>1: better trade-off)
    mem_peak_mb: float | None = None
    cpu_load_pct: float | None = None
    device_cpu_busy_pct: float | None = None
    gpu_busy_pct: float | None = None
    temp_max_c: float | None = None
    skin_max_c: float | None = None
    current_ma: float | None = None
    power_mw: float | None = None
    mj_per_frame: float | None = None
    mah_per_hour: float | None = None
    missing: dict[str, str] = Field(default_factory=dict)


class IdleDeltaRecord(Rec):
    """This cell minus its device at rest (the run's idle record for that device)."""

    device_cpu_busy_pct: float | None = None
    gpu_busy_pct: float | None = None
    current_ma: float | None = None
    power_mw: float | None = None
    missing: dict[str, str] = Field(default_factory=dict)


#: DeviceRecord.kind of a phone perflab did not measure: it appears only through imported captures
IMPORTED_DEVICE_KIND = "imported"


class ProvenanceRecord(Rec):
    """Where an imported cell's numbers come from: a capture perflab did not measure itself
    (``perflab import``; schema /7). A cell with a provenance is IMPORTED wherever it appears
    (perflab.rules.device.cell_is_imported). A value the capture does not say is None with its
    reason in ``missing``."""

    kind: str = "imported"  # the only kind so far
    source_file: str  # the capture's file name (base name, as given to perflab import)
    sha256: str  # of the capture's bytes as read
    size_bytes: int
    format: str  # benchmark_model (the tool's stdout) | logcat (the tool or the benchmark app, via logcat)
    tool: str | None = None  # what printed it, e.g. "benchmark_model", "TFLite benchmark app"
    tool_version: str | None = None  # where the capture prints it
    captured_utc: str | None = None  # where the capture dates itself with its zone (ISO 8601, UTC)
    captured_local: str | None = None  # where it dates itself without a zone: the phone's local time, as printed
    imported_utc: str  # when perflab import read it
    props_file: str | None = None  # the getprop dump that named the device (base name), if any
    props_sha256: str | None = None
    notes: list[str] = Field(default_factory=list)  # what the import decided and why, in words
    missing: dict[str, str] = Field(default_factory=dict)


class CellRecord(Rec):
    cell_id: str
    artifact_key: str  # names this cell's rows in samples.csv and its frames/ and logs/ entries
    device: DeviceRecord
    model: ModelRecord
    delegate: str
    threads: int
    status: CellStatus
    reason: str | None = None
    baseline: bool = False
    emulated: bool = False
    latency_ms: LatencyRecord | None = None  # headline series (paced when the scenario paces)
    series: dict[str, LatencyRecord] = Field(default_factory=dict)
    quality: QualityRecord = Field(default_factory=QualityRecord)
    telemetry: TelemetryRecord = Field(default_factory=TelemetryRecord)
    layers: LayersRecord | None = None
    delegates: list[DelegateRecord] = Field(default_factory=list)  # the tool's delegate/partition lines
    deltas: DeltaRecord | None = None
    vs_idle: IdleDeltaRecord | None = None
    realtime: RealtimeRecord | None = None
    sustained: SustainedRecord | None = None  # the sustained paced run, when the scenario asks for one
    warnings: list[WarningRecord] = Field(default_factory=list)
    started_utc: str | None = None
    duration_s: float | None = None
    provenance: ProvenanceRecord | None = None  # set on imported cells only (schema /7)

    @property
    def imported(self) -> bool:
        """The cell's numbers come from an imported capture, not from a perflab measurement: it has
        a provenance, or its device is one perflab knows only through imports. The one home of this
        rule, below the store's SQL and frames (perflab.rules.device.cell_is_imported reads it)."""
        return self.provenance is not None or self.device.kind == IMPORTED_DEVICE_KIND


class ScenarioRecord(Rec):
    name: str
    file: str
    sha256: str
    text: str
    lr_width: int = Field(gt=0, le=8192)  # the same bounds as the scenario schema: a damaged file
    lr_height: int = Field(gt=0, le=8192)  # is refused when read, not when a figure is drawn
    scale: int = Field(ge=2, le=4)
    fps: float | None = Field(default=None, gt=0, le=1000)


class PlannedCell(Rec):
    serial: str
    cell_id: str


class StopRecord(Rec):
    """Why a run ended before all its cells ran."""

    signal: str | None  # SIGINT / SIGTERM, or None when it stopped for another reason
    reason: str
    at_utc: str


class RunRecord(Rec):
    schema_: str = Field(default=RESULTS_SCHEMA, alias="schema")
    perflab_version: str
    run_id: str
    scenario: ScenarioRecord
    started_utc: str
    finished_utc: str | None = None
    host: dict[str, str] = Field(default_factory=dict)
    devices: list[DeviceRecord] = Field(default_factory=list)
    planned: list[PlannedCell] = Field(default_factory=list)
    cells: list[CellRecord] = Field(default_factory=list)
    warnings: list[WarningRecord] = Field(default_factory=list)  # run-level (inputs, scenario)
    idle: list[IdleRecord] = Field(default_factory=list)  # per device, measured before its first cell
    reference_video: KeptVideoRecord | None = None  # the HR frames kept as video (/7)
    stop: StopRecord | None = None
    resumed_utc: list[str] = Field(default_factory=list)
    exit_code: int | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    @property
    def complete(self) -> bool:
        """Every planned cell has a record that is not ``interrupted``, and the run finished."""
        done = {(c.device.serial, c.cell_id) for c in self.cells if c.status != CellStatus.INTERRUPTED}
        return self.stop is None and self.finished_utc is not None and all(
            (p.serial, p.cell_id) in done for p in self.planned)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)


def artifact_key(serial: str, cell_id: str, n_devices: int) -> str:
    """The one naming rule for a cell's artefacts: its ``cell_id`` when the run has one device,
    ``<serial>/<cell_id>`` when it has several (so two phones never share a row or a folder)."""
    return cell_id if n_devices <= 1 else f"{serial}/{cell_id}"


def artifact_dir(key: str) -> str:
    """A cell's artefact key as one file-system-safe name (frames/<dir>/, logs/<dir>.log)."""
    return key.replace("/", "_").replace(":", "_")


_V1_REALTIME_RULE = "recorded by perflab.results/1: p90 ≤ 1000/fps ms, or the mean where no p90 was measured"


def upgrade_raw(raw: dict[str, Any], version: int) -> dict[str, Any]:
    """A parsed results.json of an older readable version → the current shape (pure).

    /1 → /2: per-frame dicts become FrameQuality (``piqe_missing`` → ``missing.piqe``); the
    realtime bool becomes a RealtimeRecord saying it was recorded by /1; ``delegate_log`` lines
    are kept verbatim as ``line`` records; ``artifact_key`` follows /1's rule (serial-prefixed
    only when the run had several devices). /2 → /3: only additive fields, the same cells. /3 → /4: additive (``tool_mem_mb``,
    ``tool_mem_source``); a /3 file's ``mem_peak_mb`` is what its ``mem_source`` says. /4 → /5: additive (the differential's
    intervals, ``unreliable``, ``rounds``, ``stop``, ``load``; ``trace.tool_log_file``). /6 → /7: additive
    (kept video, VMAF)."""
    if version == RESULTS_SCHEMA_VERSION:
        return raw
    out = dict(raw)
    out["schema"] = RESULTS_SCHEMA
    devices = out.get("devices")
    n_devices = len(devices) if isinstance(devices, list) else 1
    cells = out.get("cells")
    if version == 1 and isinstance(cells, list):
        out["cells"] = [_upgrade_cell_v1(c, n_devices) if isinstance(c, dict) else c for c in cells]
    return out


def _upgrade_cell_v1(cell: dict[str, Any], n_devices: int) -> dict[str, Any]:
    c = dict(cell)
    raw_dev = c.get("device")
    dev: dict[str, Any] = raw_dev if isinstance(raw_dev, dict) else {}
    c.setdefault("artifact_key", artifact_key(str(dev.get("serial", "")), str(c.get("cell_id", "")), n_devices))
    lines = c.pop("delegate_log", None)
    if isinstance(lines, list):
        c["delegates"] = [{"kind": "line", "line": str(x)} for x in lines]
    rt = c.get("realtime")
    if isinstance(rt, bool):
        c["realtime"] = {"meets": rt, "rule": _V1_REALTIME_RULE}
    q = c.get("quality")
    if isinstance(q, dict) and isinstance(q.get("per_frame"), list):
        q = dict(q)
        frames = []
        for f in q["per_frame"]:
            if not isinstance(f, dict):
                frames.append(f)
                continue
            g = {k: v for k, v in f.items() if k in FrameQuality.model_fields and k != "missing"}
            g["frame"] = str(f.get("frame", ""))
            if "piqe_missing" in f:
                g["missing"] = {"piqe": str(f["piqe_missing"])}
            frames.append(g)
        q["per_frame"] = frames
        c["quality"] = q
    return c
