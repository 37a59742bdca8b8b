"""`perflab trace export RUN_DIR`: a run's traces and telemetry counters as one Chrome trace JSON."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from perflab.cli import app
from perflab.telemetry.local import HostSources, sample_once
from perflab.tracing.capture import LocalTraceCapture, local_trace_missing

PID = 4321


def _trace(base_s: int, invokes: int) -> str:
    lines = ["# trace_clock: local global counter [mono] boot", "# tracer: nop", "#"]
    t = base_s * 1_000_000
    for _ in range(invokes):
        for text, step in ((f"B|{PID}|Invoke", 1000), (f"B|{PID}|CONV_2D@0/0", 3000), (f"E|{PID}", 10),
                           (f"E|{PID}", 1000)):
            lines.append(f"  benchmark_model-{PID}  [001] ...1. {t // 1_000_000}.{t % 1_000_000:06d}: "
                         f"tracing_mark_write: {text}")
            t += step
    return "\n".join(lines) + "\n"


SAMPLER = """\
T 100.000
cpu cpu 100 0 100 800 0 0 0
cpu cpu0 50 0 50 400 0 0 0
freq cpu0 1800000
rss 204800
mem 4096000
tz x86_pkg_temp 45000
T 100.500
cpu cpu 200 0 150 850 0 0 0
cpu cpu0 120 0 80 410 0 0 0
freq cpu0 2400000
rss 307200
mem 4000000
tz x86_pkg_temp 51000
"""


def _events(path: Path) -> list[dict[str, Any]]:
    doc = json.loads(path.read_text())
    events: list[dict[str, Any]] = doc["traceEvents"]
    named = {e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    for e in events:
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] != "M":
            assert isinstance(e["ts"], (int, float)) and e["pid"] in named, e
    return events


def test_run_folder_export_merges_cells_and_telemetry(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "traces").mkdir(parents=True)
    (run / "telemetry").mkdir()
    (run / "traces" / "cellA.trace").write_text(_trace(100, 3))
    (run / "traces" / "cellB.trace").write_text(_trace(101, 2))  # same pid: must land on its own process
    (run / "traces" / "broken.trace").write_text("# trace_clock: [x86-tsc]\n  a-1 [000] .... 123: foo: bar\n")
    (run / "telemetry" / "cellA.txt").write_text(SAMPLER)
    out = tmp_path / "run.json"
    res = CliRunner().invoke(app, ["trace", "export", str(run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "2 trace(s) and 1 telemetry timeline(s)" in res.stdout and "skipped broken" in res.stderr
    events = _events(out)
    names = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    invokes = [e for e in events if e["ph"] == "X" and str(e["name"]).startswith("Invoke #")]
    assert len(invokes) == 5
    assert {names[e["pid"]].split(":")[0] for e in invokes} == {"cellA", "cellB"}
    assert len({e["pid"] for e in invokes}) == 2
    counters = {e["name"]: e for e in events if e["ph"] == "C"}
    assert counters["cpu busy %"]["args"]["value"] == 100.0 * 150 / 200  # (100+50 busy) of 200 ticks
    assert counters["freq cpu0 MHz"]["ts"] == 100.5e6 and counters["freq cpu0 MHz"]["args"]["value"] == 2400.0
    assert counters["x86_pkg_temp °C"]["args"]["value"] == 51.0
    assert names[counters["RSS MB"]["pid"]] == "telemetry: cellA"
    other = json.loads(out.read_text())["otherData"]
    assert other["inferences"] == 5 and other["clocks"]["cellA"] == "mono"


def test_a_folder_without_traces_or_telemetry_is_one_line_exit_2(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["trace", "export", str(tmp_path), "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "not a run folder" in res.stderr


def test_real_local_trace_and_sampler_share_the_clock(tmp_path: Path) -> None:
    """Root only: a real capture (clock mono) and real sampler lines (time.monotonic) land
    together on one timeline."""
    if local_trace_missing() is not None:
        import pytest

        pytest.skip(str(local_trace_missing()))
    run = tmp_path / "run"
    pid = os.getpid()
    sources = HostSources()
    lines = sample_once(sources, pid, time.monotonic(), time.thread_time())
    with LocalTraceCapture(run / "traces" / "local.trace", buffer_kb=256) as cap, cap.segment("timing"):
        cap.mark(f"B|{pid}|perflab:invoke")
        cap.mark(f"E|{pid}")
    lines += sample_once(sources, pid, time.monotonic(), time.thread_time())
    (run / "telemetry").mkdir()
    (run / "telemetry" / "local.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "o.json"
    res = CliRunner().invoke(app, ["trace", "export", str(run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    events = _events(out)
    inv = next(e for e in events if e["ph"] == "X" and str(e["name"]).startswith("Invoke #"))
    ticks = sorted(e["ts"] for e in events if e["ph"] == "C")
    assert ticks and ticks[0] <= inv["ts"] <= ticks[-1]  # the marker lies between the two samples
