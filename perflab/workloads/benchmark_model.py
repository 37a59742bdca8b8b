"""TensorFlow Lite ``benchmark_model``: the command line in, perflab's results out.

Two halves, both free of I/O:

* :class:`BenchmarkCommand` builds the command line from validated values. Every argument
  is passed through :func:`shlex.quote`, so a model called ``a;reboot`` or ``$(id)`` reaches
  the tool as a literal file name, never as shell syntax.
* :func:`check_output`, :func:`timing_result` and :func:`profile_result` judge a parsed run
  and turn it into perflab's result types.

Parsing the tool's output is perflab.formats.benchmark_output (below this module and
tracing, which both read it).
"""

from __future__ import annotations

import math
import shlex
from dataclasses import dataclass

from perflab.core.names import GRAPH_FORBIDDEN, VALUE_FILE_FORBIDDEN, check_command_text, check_device_path
from perflab.core.types import LayerTiming, ProfileResult, SeriesMode, SummaryStats, TimingResult
from perflab.errors import ModelError, UnsupportedError, UserInputError
from perflab.formats.benchmark_output import BenchmarkOutput, Coverage
from perflab.formats.tflite_delegates import DELEGATE_LOG_NAMES

# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------

# Delegate flags in the order the tool applies them. "cpu" is TFLite's builtin kernels with
# the default XNNPACK delegate switched off explicitly; "gpu" keeps full fp32 precision so
# quality numbers are comparable (the tool's default allows fp16).
DELEGATE_FLAGS: dict[str, tuple[str, ...]] = {
    "cpu": ("--use_xnnpack=false",),
    "xnnpack": ("--use_xnnpack=true",),
    "gpu": ("--use_gpu=true", "--gpu_precision_loss_allowed=false"),
    "nnapi": ("--use_nnapi=true",),
    "hexagon": ("--use_hexagon=true",),
}


def _check_count(value: int, what: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserInputError(f"{what} must be an integer >= {low} (got {value!r})")
    return value


def _fmt_float(value: float) -> str:
    return repr(float(value))


@dataclass(frozen=True)
class InputLayer:
    """One model input: its tensor name, shape, and optionally a raw file on the device."""

    name: str
    shape: tuple[int, ...]
    value_file: str | None = None


@dataclass(frozen=True)
class BenchmarkCommand:
    """One invocation of benchmark_model, from validated values.

    ``num_runs``/``warmup_runs`` are exact: the tool's time minimums (``--min_secs``,
    ``--warmup_min_secs``) are set to 0, otherwise it keeps running past the count.
    ``report_peak_memory`` starts a polling thread inside the tool that disturbs timing;
    use it only in a pass whose latency is not reported.
    """

    binary: str
    graph: str
    threads: int
    delegate: str
    num_runs: int
    warmup_runs: int
    run_frequency_hz: float | None = None
    run_delay_s: float | None = None
    max_secs: float | None = None
    inputs: tuple[InputLayer, ...] = ()
    output_filepath: str | None = None
    op_profiling: bool = False
    profiling_csv_file: str | None = None
    report_peak_memory: bool = False
    verbose: bool = False

    def __post_init__(self) -> None:
        check_device_path(self.binary, "benchmark_model path")
        check_device_path(self.graph, "model path", forbid=GRAPH_FORBIDDEN)
        _check_count(self.threads, "threads", 1)
        if self.delegate not in DELEGATE_FLAGS:
            raise UserInputError(
                f"unknown delegate {self.delegate!r} (known: {', '.join(DELEGATE_FLAGS)})"
            )
        _check_count(self.num_runs, "num_runs", 1)
        _check_count(self.warmup_runs, "warmup_runs", 0)
        if self.run_frequency_hz is not None and self.run_delay_s is not None:
            raise UserInputError("give run_frequency_hz or run_delay_s, not both")
        for val, what in ((self.run_frequency_hz, "run frequency"), (self.run_delay_s, "run delay"),
                          (self.max_secs, "max_secs")):
            if val is not None and not (math.isfinite(val) and val > 0):
                raise UserInputError(f"{what} must be a positive number (got {val!r})")
        for layer in self.inputs:
            # ',' separates entries in all three flags; ':' separates shapes (and is escaped
            # as '::' inside value-file names, which we do below).
            check_command_text(layer.name, "input layer name", forbid=",")
            if not layer.shape or any(_check_count(d, "input dimension", 1) != d for d in layer.shape):
                raise UserInputError(f"input {layer.name!r} needs a non-empty shape of positive ints")
            if layer.value_file is not None:
                check_device_path(layer.value_file, "input value file", forbid=VALUE_FILE_FORBIDDEN)
        if self.output_filepath is not None:
            check_device_path(self.output_filepath, "output file")
        if self.profiling_csv_file is not None:
            check_device_path(self.profiling_csv_file, "profiling CSV file")
            if not self.op_profiling:
                raise UserInputError("a profiling CSV file needs op_profiling")

    def argv(self) -> list[str]:
        """The argument vector (unquoted): binary first."""
        args = [
            self.binary,
            f"--graph={self.graph}",
            f"--num_threads={self.threads}",
            *DELEGATE_FLAGS[self.delegate],
            f"--num_runs={self.num_runs}",
            "--min_secs=0",
            f"--warmup_runs={self.warmup_runs}",
            "--warmup_min_secs=0",
        ]
        if self.max_secs is not None:
            args.append(f"--max_secs={_fmt_float(self.max_secs)}")
        if self.run_frequency_hz is not None:
            args.append(f"--run_frequency={_fmt_float(self.run_frequency_hz)}")
        elif self.run_delay_s is not None:
            args.append(f"--run_delay={_fmt_float(self.run_delay_s)}")
        if self.inputs:
            args.append("--input_layer=" + ",".join(layer.name for layer in self.inputs))
            args.append(
                "--input_layer_shape=" + ":".join(",".join(str(d) for d in layer.shape) for layer in self.inputs)
            )
            files = [
                f"{layer.name.replace(':', '::')}:{layer.value_file}"
                for layer in self.inputs
                if layer.value_file is not None
            ]
            if files:
                args.append("--input_layer_value_files=" + ",".join(files))
        if self.output_filepath is not None:
            args.append(f"--output_filepath={self.output_filepath}")
        if self.op_profiling:
            args.append("--enable_op_profiling=true")
            if self.profiling_csv_file is not None:
                args.append(f"--profiling_output_csv_file={self.profiling_csv_file}")
        if self.report_peak_memory:
            args.append("--report_peak_memory_footprint=true")
        if self.verbose:
            args.append("--verbose=true")
        return args

    def shell_command(self) -> str:
        """The command for a device shell: every argument quoted, stderr folded into stdout
        (the tool logs INFO to stdout and ERROR/runtime lines to stderr; order matters)."""
        return " ".join(shlex.quote(a) for a in self.argv()) + " 2>&1"


# --------------------------------------------------------------------------------------
# Checks and conversion to perflab types
# --------------------------------------------------------------------------------------


def check_output(
    out: BenchmarkOutput,
    *,
    delegate: str | None = None,
    required_flags: tuple[str, ...] = (),
    need_timings: bool = True,
) -> None:
    """Raise ModelError if the run failed, silently ignored a flag we rely on, or did not
    apply the requested delegate. The message quotes the tool's own line."""
    for flag in required_flags:
        if any(f.split("=", 1)[0] == flag for f in out.unconsumed_flags):
            raise ModelError(
                f"this benchmark_model binary does not know {flag} (it printed 'Unconsumed cmdline flags: "
                f"{' '.join(out.unconsumed_flags)}'); use a newer build (TF >= 2.10)"
            )
    delegate_errors = [e for e in out.errors if "Failed to apply" in e or "Disallowed CPU fallback" in e]
    if delegate_errors:
        raise UnsupportedError(f"{delegate or 'the'} delegate is not supported for this model here: "
                         + " / ".join(delegate_errors))
    if out.errors:
        raise ModelError(f"benchmark_model reported an error: {out.errors[0]}")
    if delegate is not None and delegate in DELEGATE_LOG_NAMES and delegate != "xnnpack":
        wanted = DELEGATE_LOG_NAMES[delegate].lower()
        # "WARN: Could not create GPU delegate: ..." — the tool goes on, on the CPU
        for w in out.warnings:
            if "could not create" in w.lower() and wanted in w.lower():
                raise UnsupportedError(f"{DELEGATE_LOG_NAMES[delegate]} delegate is not supported on this device: {w}")
        if need_timings and not any(app.delegate.lower() == wanted for app in out.delegates):
            raise UnsupportedError(
                f"{DELEGATE_LOG_NAMES[delegate]} delegate is not supported here: benchmark_model printed no line "
                "saying it was applied, so the model would have run on the CPU"
            )
        for app in out.delegates:
            if app.delegate.lower() == wanted and app.coverage is Coverage.NONE:
                raise UnsupportedError(f"{DELEGATE_LOG_NAMES[delegate]} delegate was not applied (not supported for "
                                 f"this model here): {app.line}")
    if need_timings and out.inference_avg_ms is None and out.inference is None:
        raise ModelError("benchmark_model printed no inference timings (run did not finish?)")


def timing_result(out: BenchmarkOutput, mode: SeriesMode, *, source: str = "benchmark_model") -> TimingResult:
    """A TimingResult from parsed output. benchmark_model prints only summary statistics,
    so ``samples_ms`` is None and ``summary`` carries count/mean/std/min/max."""
    summary = out.inference.summary() if out.inference is not None else None
    if summary is None and out.inference_avg_ms is not None:
        summary = SummaryStats(
            count=out.inference.count if out.inference is not None else 0,
            first_ms=None,
            mean_ms=out.inference_avg_ms,
            std_ms=None,
            min_ms=None,
            max_ms=None,
        )
    missing: dict[str, str] = {
        "samples_ms": f"{source} prints only summary statistics (count/avg/std/min/max), no per-run samples",
        "warmup_ms": f"{source} prints only the warm-up average"
        + ("" if out.warmup_avg_ms is None else f" ({out.warmup_avg_ms:.3f} ms)"),
    }
    if out.init_ms is None:
        missing["init_ms"] = "benchmark_model printed no Init time"
    if out.first_ms is None:
        missing["first_ms"] = "benchmark_model printed no first-inference time"
    mem_peak_mb: float | None = None
    mem_source: str | None = None
    if out.peak_mem_mb is not None:
        mem_peak_mb = out.peak_mem_mb
        mem_source = "benchmark_model overall peak footprint (periodic monitoring, MB)"
    elif out.mem_overall_mb is not None:
        mem_peak_mb = out.mem_overall_mb
        mem_source = out.mem_overall_source
    else:
        missing["mem_peak_mb"] = "benchmark_model printed no memory footprint line"
    missing["cpu_load_pct"] = ("the process's own CPU is not measured here: benchmark_model does not report its CPU "
                               "time and the sampler reads only its RSS (the device's busy is CPU dev)")
    warnings = list(out.warnings)
    return TimingResult(
        mode=mode,
        init_ms=out.init_ms,
        first_ms=out.first_ms,
        warmup_ms=[],
        warmup_mean_ms=out.warmup_avg_ms,
        samples_ms=None,
        summary=summary,
        mem_peak_mb=mem_peak_mb,
        mem_source=mem_source,
        cpu_load_pct=None,
        tool_log=out.text,
        missing=missing,
        delegate_info=list(out.delegate_lines),
        warnings=warnings,
    )


def profile_result(out: BenchmarkOutput, *, source: str = "tflite op profiling") -> ProfileResult | None:
    """Per-layer table from the regular runs' Run Order (primary graph); None if absent."""
    sec = out.runs_profile
    if sec is None or not sec.run_order:
        return None
    layers = [
        LayerTiming(
            index=i,
            node_type=row.node_type,
            name=row.name,
            avg_ms=row.avg_ms,
            first_ms=row.first_ms,
            pct=row.pct,
            times_called=row.times_called,
        )
        for i, row in enumerate(sec.run_order)
    ]
    total_ms: float | None = None
    if sec.timings is not None and sec.timings.avg_us is not None:
        total_ms = sec.timings.avg_us / 1000.0
    elif sec.timings is not None and sec.timings.curr_us is not None:
        total_ms = sec.timings.curr_us / 1000.0
    return ProfileResult(layers=layers, source=source, total_ms=total_ms, tool_log=out.text)
