"""What a workload hands back after running a model: raw timings, memory, CPU, outputs, layers.

Plain values shared by every layer (zoo, workloads, lab) and every device kind (local,
android, emulated), so the rest of perflab never needs to know where a number came from —
except through the fields that say so. This module imports nothing from perflab.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class SeriesMode(StrEnum):
    PACED = "paced"  # one inference per frame interval (scenario fps)
    BACK_TO_BACK = "back_to_back"


@dataclass(frozen=True)
class ModelArtifact:
    """A concrete .tflite file ready to push/run."""

    name: str  # e.g. espcn_x2
    family: str  # e.g. espcn, bicubic, user
    variant: str  # fp32 / fp16 / dynamic_int8 / int8 / uint8
    scale: int
    path: Path
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class SummaryStats:
    """What a tool reports when it does not give raw samples (benchmark_model's count= line)."""

    count: int
    first_ms: float | None
    mean_ms: float
    std_ms: float | None
    min_ms: float | None
    max_ms: float | None


@dataclass(frozen=True)
class TimingRequest:
    mode: SeriesMode
    fps: float | None
    warmup: int
    iterations: int
    threads: int
    delegate: str
    timeout_s: float
    lr_width: int = 0  # input size to resize the model to; 0 = the model's own shape
    lr_height: int = 0
    input_frame: Any = None  # float32 RGB [0,1] H×W×3 numpy array; None = deterministic noise


@dataclass
class TimingResult:
    """One timed series. ``samples_ms`` are raw per-iteration latencies when the tool gives them."""

    mode: SeriesMode
    init_ms: float | None
    first_ms: float | None
    warmup_ms: list[float] = field(default_factory=list)
    warmup_mean_ms: float | None = None  # when the tool gives only the warm-up average
    samples_ms: list[float] | None = None
    summary: SummaryStats | None = None  # the tool's own summary: without samples_ms, or beside samples from a trace
    samples_source: str | None = None  # where samples_ms came from when not the tool (a kernel trace of the run)
    mem_peak_mb: float | None = None
    mem_source: str | None = None  # e.g. "/proc/<pid>/status VmHWM", "benchmark_model overall delta"
    cpu_load_pct: float | None = None  # process CPU time / wall time × 100 (100 = one core busy)
    wall_s: float | None = None
    tool_log: str = ""
    missing: dict[str, str] = field(default_factory=dict)  # metric -> why it could not be measured
    delegate_info: list[str] = field(default_factory=list)  # delegate application lines
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LayerTiming:
    """One row of an op profile (Run Order table)."""

    index: int
    node_type: str
    name: str
    avg_ms: float
    first_ms: float | None
    pct: float | None
    times_called: int | None


@dataclass
class ProfileResult:
    layers: list[LayerTiming]
    source: str  # "tflite op profiling" / "emulated …"
    total_ms: float | None = None
    tool_log: str = ""


@dataclass(frozen=True)
class ProfileMissing:
    """Per-layer timing that could not be measured, with the reason (shown in the report)."""

    reason: str
