"""Per-run latency samples on a phone from the timed run itself.

benchmark_model prints only count/avg/std/min/max, so a phone's series has no median or p90
of its own. On a rooted phone with a tracefs the timed run is captured with a kernel trace
(:class:`perflab.tracing.phone_capture.PhoneTraceCapture`: ATrace via ``debug.tflite.trace``
and ``debug.atrace.app_*``, journaled and undone; no kernel events, only the trace_marker
lines, to keep the trace's own cost low), and the run's per-inference intervals — TFLite's
``Invoke`` ATrace sections, the last N in the segment where N is the tool's own count — become
the series' samples (median, p90, p99, samples.csv). They are used only when the count
matches and their mean is within :data:`TIMING_TRACE_TOLERANCE_PCT` of the tool's own mean;
otherwise, and where no trace can be had (not rooted, no tracefs, no ATrace sections), the
series keeps the tool's summary and ``missing["p90"]`` says why, so the verdict falls back to
the mean with its weaker rule. The trace's cost on latency is measured in
``benchmarks/bench_timing_trace.py`` (docs/methodology.md "Phone latency from the timing trace").
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from perflab.core.types import TimingResult
from perflab.devices.capabilities import ShellDevice
from perflab.errors import DeviceGoneError, PerflabError, RunInterrupted

log = logging.getLogger("perflab.lab.phone_timing")

T = TypeVar("T")
TIMING_SEGMENT = "timing"
TIMING_TRACE_TOLERANCE_PCT = 5.0
_SUMMARY_KEYS = ("median", "p90", "p95", "p99", "mad")


@dataclass
class TimingTrace:
    """What a traced timed run left: the trace text (None when there is none) and why not."""

    rel_path: str
    text: str | None = None
    why: str | None = None  # no trace: why (not rooted, no tracefs, capture failed)
    notes: list[str] = field(default_factory=list)


def traced(device: object, out: Path, rel_path: str, run: Callable[[], T]) -> tuple[T, TimingTrace]:
    """``run()`` under a kernel trace of a rooted phone, saved to ``out``. A phone that cannot be
    traced (not rooted, no tracefs) runs untraced, and the TimingTrace says why; a trace that
    fails after the run keeps the run. Errors of the run itself propagate unchanged."""
    from perflab.tracing.phone_capture import PhoneTraceCapture

    tt = TimingTrace(rel_path)
    if not isinstance(device, ShellDevice):
        tt.why = "not a phone with a shell"
        return run(), tt
    cap = PhoneTraceCapture(device, out, events=())
    try:
        cap.__enter__()
    except (RunInterrupted, DeviceGoneError):
        raise
    except PerflabError as exc:
        tt.why = f"no kernel trace of the timed run: {exc}"
        return run(), tt
    try:
        with cap.segment(TIMING_SEGMENT):
            result = run()
    except BaseException:
        try:
            cap.__exit__(None, None, None)
        except PerflabError as exc:
            log.warning("[%s] timing trace: %s", device.serial, exc)
        raise
    try:
        cap.__exit__(None, None, None)
    except (RunInterrupted, DeviceGoneError):
        raise
    except PerflabError as exc:
        tt.why = f"the kernel trace of the timed run could not be saved: {exc}"
        return result, tt
    tt.notes = list(cap.notes)
    try:
        tt.text = out.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        tt.why = f"the kernel trace of the timed run could not be read: {exc}"
    return result, tt


def invoke_intervals_ms(text: str, rel_path: str) -> list[float]:
    """Every inference's duration (ms) in the timing segment of a saved trace, in order (pure).
    MeasurementError when the trace cannot be read."""
    from perflab.tracing.attribution import attribute, saved_trace_facts

    parsed, per_tick = saved_trace_facts(text, rel_path)
    a = attribute(parsed, us_per_tick=per_tick, segment=TIMING_SEGMENT)
    return [inf.duration_us / 1000.0 for inf in a.inferences]


def with_trace_samples(t: TimingResult, tt: TimingTrace,
                       tolerance_pct: float = TIMING_TRACE_TOLERANCE_PCT) -> TimingResult:
    """The timed run with per-run samples from its trace, or unchanged with ``missing["p90"]``
    (and the other order statistics) saying why not (pure)."""
    if t.samples_ms:
        return t  # the tool gave its own samples

    def without(why: str) -> TimingResult:
        missing = dict(t.missing)
        for k in _SUMMARY_KEYS:
            missing[k] = why
        return dataclasses.replace(t, missing=missing)

    if tt.text is None:
        return without(f"{tt.why or 'no kernel trace of the timed run'}; the tool reports only "
                       "count/avg/std/min/max")
    if t.summary is None:
        return t
    try:
        intervals = invoke_intervals_ms(tt.text, tt.rel_path)
    except PerflabError as exc:
        return without(f"the kernel trace of the timed run could not be read: {exc}")
    n = t.summary.count
    if not intervals:
        return without(f"the kernel trace {tt.rel_path} holds no invoke sections (the runtime wrote no ATrace: "
                       "a user build, or debug.tflite.trace not read)")
    if len(intervals) < n:
        return without(f"the kernel trace {tt.rel_path} holds {len(intervals)} invoke sections, fewer than the "
                       f"{n} timed runs (lost events)")
    samples = intervals[len(intervals) - n:]  # the first run and the warm-up runs come first
    mean = sum(samples) / len(samples)
    tool = t.summary.mean_ms
    diff_pct = (mean - tool) / tool * 100.0 if tool > 0 else 0.0
    if abs(diff_pct) > tolerance_pct:
        return without(f"the kernel trace's {n} invoke sections average {mean:.3f} ms, {diff_pct:+.1f}% from the "
                       f"tool's {tool:.3f} ms (more than {tolerance_pct:g}%): not the same runs")
    source = (f"ATrace invoke sections of the timed run, kernel trace {tt.rel_path}; mean {diff_pct:+.1f}% "
              "from the tool's")
    missing = {k: v for k, v in t.missing.items() if k not in _SUMMARY_KEYS}
    return dataclasses.replace(t, samples_ms=samples, samples_source=source, missing=missing)
