"""The results format: ``results.json`` with ``"schema": "perflab.results/<N>"``.

History (also in docs/result_format.md):
  1 — first version: run header, devices, cells with latency (headline + series), quality,
      telemetry, layers, deltas versus the baseline, warnings.

Every change of shape bumps RESULTS_SCHEMA_VERSION and is written in docs/result_format.md.
Reports are rebuilt from this file alone (plus the samples CSV beside it).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

RESULTS_SCHEMA_VERSION = 1
RESULTS_SCHEMA = f"perflab.results/{RESULTS_SCHEMA_VERSION}"


class CellStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    UNSUPPORTED = "unsupported"
    SKIPPED = "skipped"


class _Rec(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeviceRecord(_Rec):
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


class GpuIssueRecord(_Rec):
    op_index: int
    op_name: str
    reason: str
    source: str  # "tflite analyzer" or "perflab"


class CompatRecord(_Rec):
    """TFLite's model analyzer on this file: op list and GPU-delegate compatibility."""

    source: str  # how it was obtained, e.g. "tflite analyzer (TF 2.21.0), shipped with the zoo"
    ops: list[str] = Field(default_factory=list)
    op_counts: dict[str, int] = Field(default_factory=dict)
    gpu_checked: bool = False
    gpu_compatible: bool | None = None
    gpu_issues: list[GpuIssueRecord] = Field(default_factory=list)
    runtime_version: str | None = None


class ModelRecord(_Rec):
    name: str
    family: str
    variant: str
    scale: int
    sha256: str | None = None
    size_bytes: int | None = None
    compat: CompatRecord | None = None
    missing: dict[str, str] = Field(default_factory=dict)


class LatencyRecord(_Rec):
    """Latency of one series in milliseconds. A None value has its reason in ``missing``."""

    mode: str  # paced / back_to_back
    fps_target: float | None = None
    source: str  # "raw samples" / "benchmark_model summary"
    init: float | None = None
    first: float | None = None
    warmup_mean: float | None = None
    median: float | None = None
    mean: float | None = None
    p90: float | None = None
    p95: float | None = None
    min: float | None = None
    max: float | None = None
    std: float | None = None
    mad: float | None = None
    cv_pct: float | None = None
    n: int = 0
    missing: dict[str, str] = Field(default_factory=dict)


class QualityRecord(_Rec):
    """Means over the frames; ``per_frame`` holds each frame's values (and, after the run,
    ``d_psnr_y_db``/``d_ssim_y``: the difference to bicubic on the same frame)."""

    psnr_y_db: float | None = None
    ssim_y: float | None = None
    psnr_rgb_db: float | None = None
    piqe: float | None = None  # no-reference perceptual score of the outputs (lower is better)
    mai2021_score: float | None = None  # 2^(2·PSNR-Y) / (C·median latency ms), C = 1
    psnr_y_db_min: float | None = None
    frames: int = 0
    per_frame: list[dict[str, Any]] = Field(default_factory=list)  # {"frame", "psnr_y_db", "ssim_y", …}
    computed_on: str | None = None  # "device outputs" — where the outputs were computed
    missing: dict[str, str] = Field(default_factory=dict)


class TelemetryRecord(_Rec):
    cpu_load_pct: float | None = None
    mem_peak_mb: float | None = None
    mem_source: str | None = None
    start_temp_c: float | None = None
    temp_source: str | None = None
    power_source: str | None = None
    power_confidence: str | None = None  # e.g. "none", "low", "medium", "high"
    missing: dict[str, str] = Field(default_factory=dict)


class LayerRow(_Rec):
    index: int
    node_type: str
    name: str
    avg_ms: float
    first_ms: float | None = None
    pct: float | None = None
    times_called: int | None = None


class LayersRecord(_Rec):
    source: str
    total_ms: float | None = None
    rows: list[LayerRow] = Field(default_factory=list)


class WarningRecord(_Rec):
    code: str  # e.g. high_cv, drift, bimodal, charging, emulated
    message: str


class DeltaRecord(_Rec):
    """This cell minus the baseline cell on the same device and delegate."""

    baseline_cell_id: str
    latency_median_ms: float | None = None
    latency_mean_ms: float | None = None
    psnr_y_db: float | None = None
    ssim_y: float | None = None
    mem_peak_mb: float | None = None
    cpu_load_pct: float | None = None


class CellRecord(_Rec):
    cell_id: str
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
    delegate_log: list[str] = Field(default_factory=list)  # the tool's delegate/partition lines
    deltas: DeltaRecord | None = None
    realtime: bool | None = None  # headline p90 within the frame budget
    warnings: list[WarningRecord] = Field(default_factory=list)
    started_utc: str | None = None
    duration_s: float | None = None


class ScenarioRecord(_Rec):
    name: str
    file: str
    sha256: str
    text: str
    lr_width: int
    lr_height: int
    scale: int
    fps: float | None


class RunRecord(_Rec):
    schema_: str = Field(default=RESULTS_SCHEMA, alias="schema")
    perflab_version: str
    run_id: str
    scenario: ScenarioRecord
    started_utc: str
    finished_utc: str | None = None
    host: dict[str, str] = Field(default_factory=dict)
    devices: list[DeviceRecord] = Field(default_factory=list)
    cells: list[CellRecord] = Field(default_factory=list)
    exit_code: int | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)
