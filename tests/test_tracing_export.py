"""Chrome trace-event JSON export and the ``perflab trace`` commands.

The export is checked against the rules the Perfetto UI's JSON importer applies: every event
has a phase, integer pid/tid and a numeric ts; complete slices have dur ≥ 0 and nest
properly on each thread (overlapping slices on one thread are dropped by the importer);
async begin/end pairs share name, cat and id; processes and threads carry names. A fuller
replay of Perfetto's importer, and a real loader, are in tests/test_tracing_viewer.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from perflab.cli import app
from perflab.errors import MeasurementError
from perflab.tracing.attribution import attribute
from perflab.tracing.export import PSEUDO_PID_IRQS, PSEUDO_PID_SEGMENTS, CounterPoint, chrome_trace, dumps
from perflab.tracing.ftrace import parse_trace
from perflab.tracing.synthetic import synthetic_trace

FX = Path(__file__).parent / "fixtures" / "ftrace"
FIXTURES = sorted(FX.glob("*.txt"))

Event = dict[str, Any]


def check_loadable(doc: dict[str, object]) -> list[Event]:
    """Assert the structural rules; returns the events."""
    text = json.dumps(doc)
    events = json.loads(text)["traceEvents"]
    assert isinstance(events, list) and events
    named_pids = {e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    stacks: dict[tuple[int, int], list[tuple[float, float]]] = {}
    async_open: dict[tuple[str, str, str], int] = {}
    for e in events:
        assert e["ph"] in {"X", "M", "C", "i", "b", "e"}, e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int), e
        if e["ph"] == "M":
            continue
        assert isinstance(e["ts"], (int, float)), e
        assert e["pid"] in named_pids, f"process {e['pid']} has no name"
        if e["ph"] == "X":
            assert e["dur"] >= 0
            stacks.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
        elif e["ph"] in ("b", "e"):
            key = (e["name"], e["cat"], e["id"])
            async_open[key] = async_open.get(key, 0) + (1 if e["ph"] == "b" else -1)
        elif e["ph"] == "C":
            assert all(isinstance(v, (int, float)) for v in e["args"].values())
    assert all(v == 0 for v in async_open.values())
    for track, slices in stacks.items():
        slices.sort(key=lambda s: (s[0], -s[1]))
        open_: list[float] = []
        for begin, end in slices:
            while open_ and open_[-1] <= begin:
                open_.pop()
            assert not open_ or end <= open_[-1] + 1e-6, f"slices overlap without nesting on {track}"
            open_.append(end)
    return events


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_exports_are_loadable(path: Path) -> None:
    tr = parse_trace(path.read_text(encoding="utf-8"))
    upt = tr.info.us_per_tick(19.2e6)
    assert upt is not None
    attr = attribute(tr, us_per_tick=upt)
    events = check_loadable(chrome_trace(tr, attr, source=path.name))
    invokes = [e for e in events if e.get("cat") == "inference"]
    assert [e["name"] for e in invokes] == [f"Invoke #{i}" for i in range(len(attr.inferences))]
    assert [e["dur"] for e in invokes] == [round(i.duration_us, 3) for i in attr.inferences]
    ops = [e for e in events if e.get("cat") in ("op", "delegate")]
    assert len(ops) == sum(len(i.ops) for i in attr.inferences)
    irq = [e for e in events if e.get("cat") == "irq"]
    assert len(irq) == len(attr.irqs) and all(e["pid"] == PSEUDO_PID_IRQS for e in irq)


def test_gpu_fixture_tracks_and_names() -> None:
    tr = parse_trace((FX / "android13_atrace_tgid_gpu.txt").read_text(encoding="utf-8"))
    doc = chrome_trace(tr, attribute(tr, us_per_tick=1.0), source="x",
                       counters=[CounterPoint("battery_current_ua", 5123_100000, -420000.0)])
    events = check_loadable(doc)
    meta = {(e["pid"], e.get("tid"), e["name"]): e["args"]["name"] for e in events if e["ph"] == "M"}
    assert meta[(5120, 0, "process_name")] == "benchmark_model"
    assert meta[(PSEUDO_PID_IRQS, 0, "thread_name")] == "CPU 0"
    kgsl = [e for e in events if e.get("name") == "kgsl-3d0"]
    assert len(kgsl) == 2 and all(e["tid"] == 0 and e["dur"] == 12 for e in kgsl)
    delegate = [e for e in events if e.get("cat") == "delegate"]
    assert [e["dur"] for e in delegate] == [2600, 2900] and all(e["tid"] == 5120 for e in delegate)
    seg = [e for e in events if e.get("cat") == "segment"]
    assert seg and seg[0]["pid"] == PSEUDO_PID_SEGMENTS and seg[0]["name"] == "cell0"
    assert [e["args"] for e in events if e.get("cat") == "telemetry"] == [{"value": -420000.0}]
    assert [e["name"] for e in events if e.get("cat") == "binder"] == ["binder → proc 601"]
    runs = [(e["tid"], e["name"], e["dur"]) for e in events if e.get("cat") == "sched"]
    assert runs == [(5, "benchmark_model 5131", 1460), (4, "benchmark_model 5120", 7410), (5, "benchmark_model 5131", 1360)]
    assert doc["otherData"]["inferences"] == 2  # type: ignore[index]


def test_marker_variants_export_counters_async_instants() -> None:
    tr = parse_trace((FX / "android_s_dsp_marker_variants.txt").read_text(encoding="utf-8"))
    events = check_loadable(chrome_trace(tr, attribute(tr, us_per_tick=1.0)))
    counters = [(e["name"], e["args"]["value"]) for e in events if e["ph"] == "C"]
    assert ("gpu_mem_kb", 20480.0) in counters and ("cpu4 freq (kHz)", 2419200.0) in counters
    assert [e["ph"] for e in events if e.get("cat") == "async"] == ["b", "e"]
    assert len([e for e in events if e["ph"] == "i"]) == 2
    assert [e["name"] for e in events if e.get("cat") == "fastrpc"] == ["fastrpc → cid 3"] * 2


def test_synthetic_export_is_loadable() -> None:
    tr = parse_trace(synthetic_trace(200_000, seed=5).text)
    check_loadable(chrome_trace(tr, attribute(tr, us_per_tick=1.0)))


def test_cli_trace_parse_and_export(tmp_path: Path) -> None:
    runner = CliRunner()
    gpu = str(FX / "android13_atrace_tgid_gpu.txt")
    res = runner.invoke(app, ["trace", "parse", gpu])
    assert res.exit_code == 0, res.output
    assert "inferences: 2 (Invoke) — median 4.735 ms, p90 4.811 ms" in res.stdout
    assert "kgsl-3d0" in res.stdout and "lost events: none" in res.stdout
    res = runner.invoke(app, ["trace", "parse", "--json", str(FX / "kernel49_notgid_lost_events.txt")])
    doc = json.loads(res.stdout)
    assert doc["loss"] == {"complete": False, "lost_events_by_cpu": {"1": 1183}, "lost_events": 1183,
                           "lost_uncounted_cpus": [], "overwritten_events": 2210, "buffer_started_cpus": [3]}
    assert doc["inferences"]["samples_ms"] == [15.726, 15.736]
    res = runner.invoke(app, ["trace", "parse", "--skip-first", "1", str(FX / "kernel49_notgid_lost_events.txt")])
    assert "inferences: 1 (Invoke) of 2 in the trace, after the first 1 (warm-up) — median 15.736 ms" in res.stdout
    res = runner.invoke(app, ["trace", "parse", "--json", "--threads", "5131,2290", gpu])
    assert json.loads(res.stdout)["cpu_busy"]["per_thread_ms"] == {"5131": 2.82}
    res = runner.invoke(app, ["trace", "parse", "--threads", "5131,x", gpu])
    assert res.exit_code == 2 and "--threads" in res.stderr
    res = runner.invoke(app, ["trace", "parse", "--segment", "nope", gpu])
    assert res.exit_code == 2 and f"{gpu}: --segment: no perflab segment named 'nope'" in res.stderr
    out = tmp_path / "deep" / "t.json"
    res = runner.invoke(app, ["trace", "export", gpu, "--out", str(out)])
    assert res.exit_code == 0, res.output
    check_loadable(json.loads(out.read_text()))


def test_cli_counter_clock_needs_the_counter_rate(tmp_path: Path) -> None:
    runner = CliRunner()
    mali = str(FX / "counter_clock_tgid_mali.txt")
    clock_file = tmp_path / "trace_clock"
    clock_file.write_text("local global [counter] uptime perf mono mono_raw boot x86-tsc\n")
    res = runner.invoke(app, ["trace", "parse", "--json", "--trace-clock", str(clock_file), mali])
    doc = json.loads(res.stdout)
    assert doc["clock"]["name"] == "counter" and doc["inferences"]["latency_ms"] is None
    assert "--counter-hz" in doc["durations_missing_reason"]
    res = runner.invoke(app, ["trace", "parse", "--json", "--counter-hz", "19200000", mali])
    assert json.loads(res.stdout)["inferences"]["samples_ms"] == [pytest.approx(154000 / 19200), pytest.approx(173200 / 19200)]
    res = runner.invoke(app, ["trace", "export", mali, "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "--counter-hz" in res.stderr
    res = runner.invoke(app, ["trace", "export", mali, "--counter-hz", "19200000", "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output


def test_cli_bad_inputs_are_one_line_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    log = tmp_path / "run.log"
    log.write_text("INFO: STARTING!\nINFO: Graph: [m.tflite]\n")
    cases = [["trace", "parse", str(log)], ["trace", "parse", str(tmp_path / "none.txt")],
             ["trace", "export", str(tmp_path), "--out", str(tmp_path / "x.json")]]
    for args in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "not a run folder" in runner.invoke(app, cases[2]).stderr


def test_dumps_writes_utf8_and_refuses_what_is_not_json() -> None:
    doc: dict[str, object] = {"traceEvents": [{"name": "x86_pkg_temp °C", "ph": "C", "pid": 1, "tid": 0, "ts": 1.0,
                                               "args": {"value": 40.0}},
                                              {"name": "thread_name", "ph": "M", "pid": 1, "tid": 2,
                                               "args": {"name": "bench\U0001F600"}}]}
    text = dumps(doc)
    assert "°C" in text and "\U0001F600" in text and "\\u" not in text
    assert json.loads(text) == doc
    bad = {"traceEvents": [{"name": "x", "ph": "X", "pid": 1, "tid": 1, "ts": 1.0, "dur": float("nan")}]}
    with pytest.raises(MeasurementError, match="not a number"):
        dumps(bad)
