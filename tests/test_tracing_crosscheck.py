"""Trace inferences against benchmark_model's own counts and average (formats.md §1.2 lines)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perflab.cli import app
from perflab.formats.benchmark_output import parse_output
from perflab.tracing.attribution import attribute
from perflab.tracing.crosscheck import against_benchmark
from perflab.tracing.ftrace import parse_trace

FX = Path(__file__).parent / "fixtures" / "ftrace"


def tool_log(warmup: int | None, timed: int, avg_us: float) -> str:
    lines = ["INFO: STARTING!", "INFO: Graph: [/data/local/tmp/m.tflite]"]
    if warmup is not None:
        lines += [("INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if "
                  "exceeding 150 seconds."),
                  f"INFO: count={warmup} curr=15726" if warmup == 1 else
                  f"INFO: count={warmup} first=15726 curr=15726 min=15726 max=15726 avg=15726 std=0"]
    lines += [("INFO: Running benchmark for at least 1 iterations and at least 1 seconds but terminate if "
              "exceeding 150 seconds."),
              f"INFO: count={timed} first={avg_us:g} curr={avg_us:g} min={avg_us:g} max={avg_us:g} avg={avg_us:g} std=0",
              (f"INFO: Inference timings in us: Init: 1000, First inference: 15726, Warmup (avg): 15726, "
              f"Inference (avg): {avg_us:g}")]
    return "\n".join(lines) + "\n"


def test_counts_match_and_the_timed_run_agrees() -> None:
    tr = parse_trace((FX / "kernel49_notgid_lost_events.txt").read_text())
    infs = attribute(tr, us_per_tick=1.0).inferences
    ag = against_benchmark(infs, parse_output(tool_log(1, 1, 15600)))
    assert (ag.warmup_runs, ag.timed_runs, ag.trace_inferences, ag.counts_match, ag.compared) == (1, 1, 2, True, 1)
    assert ag.trace_mean_ms == pytest.approx(15.736) and ag.tool_avg_ms == pytest.approx(15.6)
    assert ag.diff_pct == pytest.approx((15.736 - 15.6) / 15.6 * 100) and ag.note is None


def test_missing_runs_and_missing_series_are_said() -> None:
    tr = parse_trace((FX / "android13_atrace_tgid_gpu.txt").read_text())
    infs = attribute(tr, us_per_tick=1.0).inferences
    ag = against_benchmark(infs, parse_output(tool_log(3, 2, 4735)))
    assert not ag.counts_match and ag.compared == 2 and ag.diff_pct == pytest.approx(0.0)
    assert ag.note is not None and "3 of the tool's runs missing from the trace" in ag.note
    none = against_benchmark(infs, parse_output("INFO: STARTING!\nERROR: Failed to apply GPU delegate.\n"))
    assert none.diff_pct is None and none.note is not None and "no timed-run series" in none.note


def test_cli_benchmark_log(tmp_path: Path) -> None:
    log = tmp_path / "bm.txt"
    log.write_text(tool_log(1, 1, 15736))
    trace = str(FX / "kernel49_notgid_lost_events.txt")
    res = CliRunner().invoke(app, ["trace", "parse", "--benchmark-log", str(log), trace])
    assert res.exit_code == 0, res.output
    assert ("benchmark_model: 1 warm-up + 1 timed runs, 2 inferences in the trace; timed runs: tool avg 15.736 ms, "
            "trace mean 15.736 ms (+0.00%, last 1)") in res.stdout
    res = CliRunner().invoke(app, ["trace", "parse", "--json", "--benchmark-log", str(log), trace])
    assert json.loads(res.stdout)["benchmark_model"]["counts_match"] is True
    res = CliRunner().invoke(app, ["trace", "parse", "--benchmark-log", str(tmp_path / "none.txt"), trace])
    assert res.exit_code == 2 and "none.txt" in res.stderr
