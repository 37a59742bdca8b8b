"""Trace inferences against benchmark_model's own numbers. Pure.

benchmark_model runs its warm-up invokes, then its timed invokes, and prints a ``count=``
line for each series; with ``debug.tflite.trace=1`` every one of them is an Invoke section in
the trace. Matching the two says whether the trace saw every run (lost events or a capture
that started late show up as missing inferences) and how far the trace's mean of the timed
runs is from the tool's average (issue 10 expects agreement within 2%).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from perflab.formats.benchmark_output import BenchmarkOutput
from perflab.tracing.sections import Inference


@dataclass(frozen=True)
class ToolAgreement:
    warmup_runs: int | None  # the tool's warm-up count= (None: not in its output)
    timed_runs: int | None
    trace_inferences: int
    counts_match: bool  # trace inferences == warm-up + timed runs
    compared: int  # timed runs compared (the last ones in the trace)
    trace_mean_ms: float | None
    tool_avg_ms: float | None
    diff_pct: float | None  # (trace − tool) / tool × 100
    note: str | None  # why something is missing or the counts differ


def against_benchmark(infs: Sequence[Inference], out: BenchmarkOutput) -> ToolAgreement:
    """Compare the trace's inferences with one benchmark_model run's output."""
    warm = out.warmup.count if out.warmup is not None else None
    timed = out.inference.count if out.inference is not None else None
    tool_avg = out.inference_avg_ms
    n = len(infs)
    if timed is None or tool_avg is None:
        return ToolAgreement(warm, timed, n, False, 0, None, tool_avg, None,
                             "benchmark_model's output has no timed-run series (count= line / Inference (avg))")
    expected = (warm or 0) + timed
    note: str | None = None
    if warm is None:
        note = "no warm-up count= line: the last timed-run count of inferences compared"
    elif n > expected:
        note = f"{n - expected} more Invoke sections than the tool's runs: the last {timed} compared"
    elif n < expected:
        note = (f"{expected - n} of the tool's runs missing from the trace (lost events or a capture that "
                f"started late or stopped early): the last {min(n, timed)} compared")
    chosen = list(infs[-timed:]) if timed else []
    if not chosen:
        return ToolAgreement(warm, timed, n, n == expected, 0, None, tool_avg, None,
                             note or "no inferences in the trace")
    mean_ms = statistics.fmean(i.duration_us / 1000.0 for i in chosen)
    return ToolAgreement(warm, timed, n, n == expected, len(chosen), mean_ms, tool_avg,
                         (mean_ms - tool_avg) / tool_avg * 100.0 if tool_avg > 0 else None, note)
