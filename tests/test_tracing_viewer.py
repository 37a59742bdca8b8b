"""Does an exported trace load in the Perfetto UI, and show what we claim?

No real loader can run here (docs/tracing.md, "Export: how loading was checked"): the
Perfetto UI needs the network, this Chromium (156) no longer has chrome://tracing, and the
``perfetto`` wheel downloads its trace_processor binary at run time. So
:func:`perfetto_json_import` replays, in Python, what Perfetto's own JSON importer does with a
Chrome trace-event file — google/perfetto at ec5d16b (2026-08-22):

- ``src/trace_processor/util/json_parser.h``: strict JSON (no NaN/Infinity), ``\\uXXXX``
  escapes of the Basic Multilingual Plane only (a surrogate pair is an error);
- ``importers/json/json_trace_tokenizer.cc``: an object with ``traceEvents`` (or a bare
  array), ``displayTimeUnit`` "ms" or "ns"; per event ``ph`` a string; ``ts`` a number (or
  a numeric string) except on "M" events, converted to ns (``int * 1000``, else
  ``llround(x * 1000)``); ``dur`` a number; pid/tid numbers; a ``tid`` of 0 with a pid
  becomes the pid; async events' cookie from ``id``/``id2``;
- ``sorter/trace_sorter.h``: events in ts order, ties: "E" first, then "X" by longer duration,
  then file order;
- ``importers/json/json_trace_parser.cc``: "X" needs ``dur`` and must nest on its thread's
  track (a partial overlap is spilled to an overflow track and counted as an error); "C" needs
  a non-empty ``args`` object of numbers, one counter track per key named ``<name> <key>`` on
  the process; "M" ``process_name``/``thread_name`` need a non-empty ``args.name``; "b"/"e"
  need a pid and an id; "i" with thread scope needs a tid.

The result is the model the UI draws (processes, threads, slices per thread track, async
slices, counter tracks) plus every error Perfetto would report or fail on. The tests export
a real kernel trace captured on this machine (root only) and the fixture traces, and check
the model holds the inference windows, layers, irqs, segments and telemetry counters.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from perflab.cli import app
from perflab.tracing.attribution import attribute
from perflab.tracing.capture import LocalTraceCapture, local_trace_missing
from perflab.tracing.export import CounterPoint, chrome_trace, dumps
from perflab.tracing.ftrace import parse_trace

FX = Path(__file__).parent / "fixtures" / "ftrace"
PERFETTO_COMMIT = "ec5d16b14b743ba6063d720956d6d6af6610fd72"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


@dataclass(frozen=True)
class Slice:
    ts_ns: int
    dur_ns: int
    name: str
    cat: str

    @property
    def end_ns(self) -> int:
        return self.ts_ns + self.dur_ns


@dataclass
class Imported:
    """What Perfetto's importer makes of a JSON trace."""

    processes: dict[int, str] = field(default_factory=dict)
    threads: dict[tuple[int, int], str] = field(default_factory=dict)  # (pid, tid) -> name
    slices: dict[tuple[int, int], list[Slice]] = field(default_factory=dict)  # thread tracks
    async_slices: dict[tuple[int, str], list[Slice]] = field(default_factory=dict)  # (pid, name)
    counters: dict[tuple[int, str], list[tuple[int, float]]] = field(default_factory=dict)  # (pid, track)
    errors: list[str] = field(default_factory=list)

    def process(self, name_prefix: str) -> int:
        pids = [pid for pid, name in self.processes.items() if name.startswith(name_prefix)]
        assert len(pids) == 1, (name_prefix, self.processes)
        return pids[0]


class NotLoadable(Exception):
    """The whole file is refused (Perfetto shows an error instead of a trace)."""


def _llround(x: float) -> int:
    return math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1)


def _ts_ns(value: object) -> int | None:
    """json_trace_tokenizer.cc CoerceToTs: µs as a number (or a numeric string) → ns."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value * 1000
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) * 1000 if value == math.trunc(value) else _llround(value * 1000.0)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return _ts_ns(parsed) if isinstance(parsed, (int, float)) and not isinstance(parsed, bool) else None
    return None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _reject_constant(name: str) -> float:
    raise NotLoadable(f"{name} is not JSON (Perfetto's parser stops at it)")


@dataclass
class _Event:
    index: int
    phase: str
    ts_ns: int
    dur_ns: int | None
    pid: int
    tid: int
    pid_given: bool
    tid_given: bool
    raw: dict[str, Any]


def _load_events(text: str) -> list[Any]:
    """util/json_parser.h and the tokenizer's top level: the events, or NotLoadable."""
    if _SURROGATE_ESCAPE.search(text):
        raise NotLoadable("a \\uD8xx-\\uDFxx escape: Perfetto's parser rejects surrogate pairs")
    doc = json.loads(text, parse_constant=_reject_constant)
    events = doc
    if isinstance(doc, dict):
        unit = doc.get("displayTimeUnit")
        if unit is not None and unit not in ("ms", "ns"):
            raise NotLoadable(f"displayTimeUnit {unit!r}: Perfetto reads only 'ms' or 'ns'")
        events = doc.get("traceEvents")
    if not isinstance(events, list) or not all(isinstance(ev, dict) for ev in events):
        raise NotLoadable("no traceEvents array of objects")
    return events


def _uint32(ev: dict[str, Any], key: str, errors: list[str], i: int) -> int:
    v = ev.get(key, 0)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 2**32:
        errors.append(f"event {i}: {key} {v!r} is not a uint32 (a string is interned as an id)")
        return 0
    return int(v)


def _tokenize(i: int, ev: dict[str, Any], errors: list[str]) -> _Event | None:
    """json_trace_tokenizer.cc ParseTraceEventContents: one event, or None when dropped."""
    ph = ev.get("ph")
    if not isinstance(ph, str) or not ph:
        errors.append(f"event {i}: no ph")
        return None
    phase = ph[0]
    ts = _ts_ns(ev.get("ts"))
    if ts is None and phase != "M":
        errors.append(f"event {i} ({ph}): ts {ev.get('ts')!r} is not a number")
        return None
    dur = _ts_ns(ev["dur"]) if "dur" in ev else None
    if "dur" in ev and dur is None:
        errors.append(f"event {i}: dur {ev['dur']!r} is not a number")
        return None
    pid, tid = _uint32(ev, "pid", errors, i), _uint32(ev, "tid", errors, i)
    if tid == 0 and pid != 0:
        tid = pid  # the tokenizer: "make the tid equal to the pid if tid is not set"
    if ts is not None and ts < 0:
        errors.append(f"event {i}: negative timestamp (dropped by the sorter)")
        return None
    return _Event(i, phase, ts or 0, dur, pid, tid, "pid" in ev, "tid" in ev, ev)


def _sort_key(any_x: bool) -> Any:
    """sorter/trace_sorter.h: by ts; once an X event is seen, ties put E first, then X by
    longer duration, then the rest, each in file order."""
    def key(e: _Event) -> tuple[int, float, int]:
        if not any_x:
            return (e.ts_ns, 0, e.index)
        rank = -math.inf if e.phase == "E" else (-(e.dur_ns or 0) if e.phase == "X" else math.inf)
        return (e.ts_ns, rank, e.index)
    return key


class _Parser:
    """json_trace_parser.cc ParseJsonPacket, phase by phase, into an Imported model."""

    def __init__(self) -> None:
        self.out = Imported()
        self.stacks: dict[tuple[int, int], list[Slice]] = {}
        self.open_async: dict[tuple[int, str, str, str], list[Slice]] = {}

    def event(self, e: _Event) -> None:
        thread = (e.pid, e.tid)
        self.out.threads.setdefault(thread, "")
        self.out.processes.setdefault(e.pid, "")
        if e.phase == "M":
            self.meta(e, thread)
        elif e.phase in ("X", "i", "I", "R"):
            self.thread_slice(e, thread)
        elif e.phase in ("b", "e", "n"):
            self.async_event(e)
        elif e.phase == "C":
            self.counter(e)
        elif e.phase in ("B", "E", "s", "t", "f", "P", "T", "O", "N", "D"):
            self.out.errors.append(f"event {e.index}: phase {e.phase} (perflab does not write it; not modelled here)")
        else:
            self.out.errors.append(f"event {e.index}: unknown phase {e.phase!r} (ignored by Perfetto)")

    def meta(self, e: _Event, thread: tuple[int, int]) -> None:
        name, args = e.raw.get("name"), e.raw.get("args")
        if name not in ("process_name", "thread_name") or not isinstance(args, dict) or "name" not in args:
            return
        value = args["name"]
        if not isinstance(value, str) or not value:
            self.out.errors.append(f"event {e.index}: {name} without a name")
        elif name == "process_name":
            self.out.processes[e.pid] = value
        else:
            self.out.threads[thread] = value

    def thread_slice(self, e: _Event, thread: tuple[int, int]) -> None:
        if e.phase == "X" and e.dur_ns is None:
            self.out.errors.append(f"event {e.index}: X without dur")
            return
        if e.phase != "X":
            scope = e.raw.get("s")
            if scope in ("g", "p"):
                return  # global/process instants: tracks of their own, nothing to nest
            if scope not in (None, "t") or not e.tid_given:
                self.out.errors.append(f"event {e.index}: instant with scope {scope!r} and no tid")
                return
        s = Slice(e.ts_ns, e.dur_ns or 0, str(e.raw.get("name", "")), str(e.raw.get("cat", "")))
        stack = self.stacks.setdefault(thread, [])
        while stack and stack[-1].end_ns <= s.ts_ns:
            stack.pop()
        if stack and s.end_ns > stack[-1].end_ns:
            top = stack[-1]
            self.out.errors.append(f"event {e.index}: {s.name!r} [{s.ts_ns}, {s.end_ns}] ns overlaps {top.name!r} "
                                   f"[{top.ts_ns}, {top.end_ns}] on thread {thread} (spilled to an overflow track)")
            return
        stack.append(s)
        self.out.slices.setdefault(thread, []).append(s)

    def async_event(self, e: _Event) -> None:
        name, cat = str(e.raw.get("name", "")), str(e.raw.get("cat", ""))
        cookie = e.raw.get("id", e.raw.get("id2"))
        if not e.pid_given or cookie is None or isinstance(cookie, (bool, float, list)):
            self.out.errors.append(f"event {e.index}: async event without pid or id")
            return
        track = (e.pid, cat, str(cookie), name)
        if e.phase == "b":
            self.open_async.setdefault(track, []).append(Slice(e.ts_ns, 0, name, cat))
        elif e.phase == "e":
            opened = self.open_async.get(track)
            if not opened:
                self.out.errors.append(f"event {e.index}: async end {name!r} with nothing open")
                return
            b = opened.pop()
            self.out.async_slices.setdefault((e.pid, name), []).append(Slice(b.ts_ns, e.ts_ns - b.ts_ns, name, cat))

    def counter(self, e: _Event) -> None:
        args = e.raw.get("args")
        if not isinstance(args, dict) or not args:
            self.out.errors.append(f"event {e.index}: counter without args")
            return
        prefix = str(e.raw.get("name", "")) + (f" id: {e.raw['id']}" if "id" in e.raw else "") + " "
        for key, value in args.items():
            number = _number(value)
            if number is None:
                self.out.errors.append(f"event {e.index}: counter value {value!r} is not a number")
                continue
            self.out.counters.setdefault((e.pid, prefix + key), []).append((e.ts_ns, number))

    def finish(self) -> Imported:
        for track, opened in self.open_async.items():
            if opened:
                self.out.errors.append(f"async slice {track} never ended")
        return self.out


def perfetto_json_import(text: str) -> Imported:
    """The model Perfetto's JSON importer builds from ``text`` (see the module docstring);
    NotLoadable when it would refuse the whole file."""
    parser = _Parser()
    pending = [e for i, ev in enumerate(_load_events(text)) if ev
               for e in [_tokenize(i, ev, parser.out.errors)] if e is not None]
    for e in sorted(pending, key=_sort_key(any(e.phase == "X" for e in pending))):
        parser.event(e)
    return parser.finish()


def _named_everywhere(imp: Imported) -> None:
    """perflab's own rule on top of Perfetto's: every process it draws has a name."""
    assert all(imp.processes.values()), {pid: n for pid, n in imp.processes.items() if not n}


# ---- the checker can fail ---------------------------------------------------------------------


def _doc(*events: dict[str, Any], **top: Any) -> str:
    return json.dumps({"traceEvents": list(events), **top})


def test_the_importer_model_reports_what_perfetto_would_not_show() -> None:
    ok = {"name": "a", "ph": "X", "pid": 1, "tid": 2, "ts": 10.0, "dur": 5}
    assert perfetto_json_import(_doc(ok)).errors == []
    bad = {
        "partial overlap on a thread": _doc(ok, {**ok, "name": "b", "ts": 12, "dur": 5}),
        "no ts": _doc({"name": "a", "ph": "X", "pid": 1, "tid": 2, "dur": 1}),
        "X without dur": _doc({"name": "a", "ph": "X", "pid": 1, "tid": 2, "ts": 1}),
        "string pid": _doc({**ok, "pid": "surfaceflinger"}),
        "counter with a text value": _doc({"name": "c", "ph": "C", "pid": 1, "ts": 1, "args": {"value": "hot"}}),
        "counter without args": _doc({"name": "c", "ph": "C", "pid": 1, "ts": 1}),
        "async end with nothing open": _doc({"name": "s", "cat": "x", "ph": "e", "id": 3, "pid": 1, "ts": 1}),
        "negative ts": _doc({**ok, "ts": -1}),
    }
    for what, text in bad.items():
        assert perfetto_json_import(text).errors, what
    for what, text in {"NaN": _doc({**ok, "args": {"v": math.nan}}),
                       "surrogate pair": json.dumps({"traceEvents": [{**ok, "name": "\U0001F600"}]}),
                       "displayTimeUnit us": _doc(ok, displayTimeUnit="us")}.items():
        with pytest.raises(NotLoadable):
            perfetto_json_import(text)
        del what
    # nesting is decided in ns after Perfetto's rounding, and equal starts put the longer first
    nested = _doc({**ok, "name": "child", "ts": 10.0, "dur": 2}, ok, {**ok, "name": "tail", "ts": 13, "dur": 2.0})
    imp = perfetto_json_import(nested)
    assert imp.errors == [] and [s.name for s in imp.slices[(1, 2)]] == ["a", "child", "tail"]
    # a tid of 0 is the process's main thread
    imp = perfetto_json_import(_doc({"name": "c", "ph": "C", "pid": 7, "tid": 0, "ts": 1, "args": {"value": 3}},
                                    {"name": "thread_name", "ph": "M", "pid": 7, "tid": 0, "args": {"name": "main"}}))
    assert imp.counters == {(7, "c value"): [(1000, 3.0)]} and imp.threads[(7, 7)] == "main"


# ---- exports of real traces ---------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(FX.glob("*.txt")), ids=lambda p: p.name)
def test_fixture_traces_export_without_importer_errors(path: Path) -> None:
    trace = parse_trace(path.read_text(encoding="utf-8"))
    per_tick = trace.info.us_per_tick(19.2e6)
    assert per_tick is not None
    attr = attribute(trace, us_per_tick=per_tick)
    t0 = (trace.info.first_ts or 0) * per_tick
    counters = [CounterPoint("GPU busy %", t0 + 10.0 * k, 20.0 + k) for k in range(5)]
    doc = chrome_trace(trace, attr, source=path.name, counters=counters)
    imp = perfetto_json_import(json.dumps(doc))
    assert imp.errors == []
    _named_everywhere(imp)
    invokes = [s for ss in imp.slices.values() for s in ss if s.cat == "inference"]
    assert len(invokes) == len(attr.inferences)
    assert len([s for ss in imp.slices.values() for s in ss if s.cat == "irq"]) == len(attr.irqs)
    assert imp.counters[(imp.process("counters"), "GPU busy % value")][-1][1] == 24.0


def _busy(ms: float) -> None:
    end = time.perf_counter() + ms / 1000.0
    while time.perf_counter() < end:
        pass


def _io(i: int) -> None:
    """A write and fsync in /var/tmp (on disk, where /tmp may be memory): the block device's
    interrupt lands in the trace."""
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="perflab-viewer-") as folder:
        p = Path(folder) / f"io{i}"
        p.write_bytes(os.urandom(1 << 16))
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _real_run_export(tmp_path: Path) -> Path:
    """A real kernel capture on this machine (root): three inferences with two layers each
    written as ATrace sections, disk irqs inside them, a segment, and the real sampler's
    telemetry before and after, exported by ``perflab trace export RUN_DIR``."""
    from perflab.telemetry.local import HostSources, sample_once

    run = tmp_path / "run"
    pid = os.getpid()
    sources = HostSources()
    lines = sample_once(sources, pid, time.monotonic(), time.thread_time())
    with LocalTraceCapture(run / "traces" / "cell0.trace", buffer_kb=512) as cap, cap.segment("timing"):
        for i in range(3):
            cap.mark(f"B|{pid}|perflab:invoke")
            cap.mark(f"B|{pid}|CONV_2D@0/0")
            _io(i)
            _busy(2.0)
            cap.mark(f"E|{pid}")
            cap.mark(f"B|{pid}|DEPTH_TO_SPACE@1/0")
            _busy(1.0)
            cap.mark(f"E|{pid}")
            cap.mark(f"E|{pid}")
            time.sleep(0.002)
    lines += sample_once(sources, pid, time.monotonic(), time.thread_time())
    (run / "telemetry").mkdir()
    (run / "telemetry" / "cell0.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "run.json"
    res = CliRunner().invoke(app, ["trace", "export", str(run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def _irqs_in_capture(tmp_path: Path) -> int:
    """irq handler intervals in the saved capture, as the attribution pairs them."""
    trace = parse_trace((tmp_path / "run" / "traces" / "cell0.trace").read_text(encoding="utf-8"))
    return len(attribute(trace, us_per_tick=1.0).irqs)


needs_root_trace = pytest.mark.skipif(local_trace_missing() is not None, reason=str(local_trace_missing()))


@needs_root_trace
def test_a_real_traced_run_exports_what_the_viewer_needs(tmp_path: Path) -> None:
    """The real run's export is taken by Perfetto's importer without an error, with the
    processes, threads, slices and counters the UI is to show."""
    out = _real_run_export(tmp_path)
    imp = perfetto_json_import(out.read_text(encoding="utf-8"))
    assert imp.errors == []
    _named_everywhere(imp)
    # inference windows and their layers, on the process and thread that wrote them
    on_thread = {t: ss for t, ss in imp.slices.items() if any(s.cat == "inference" for s in ss)}
    assert len(on_thread) == 1
    (thread, ss), = on_thread.items()
    assert imp.processes[thread[0]].startswith("cell0: ") and imp.threads[thread]
    invokes = sorted((s for s in ss if s.cat == "inference"), key=lambda s: s.ts_ns)
    assert [s.name for s in invokes] == ["Invoke #0", "Invoke #1", "Invoke #2"]
    for inv in invokes:
        layers = [s for s in ss if s.cat == "op" and inv.ts_ns <= s.ts_ns and s.end_ns <= inv.end_ns]
        assert [s.name for s in sorted(layers, key=lambda s: s.ts_ns)] == ["CONV_2D@0/0", "DEPTH_TO_SPACE@1/0"]
    # irqs: a process with one thread per CPU; the disk's interrupts among them
    irqs_seen = _irqs_in_capture(tmp_path)
    assert irqs_seen > 0, "no irq in the capture: the fsync'd writes did not reach a block device"
    irqs = imp.process("cell0: irqs")
    irq_slices = [s for (p, _t), ss2 in imp.slices.items() if p == irqs for s in ss2]
    assert len(irq_slices) == irqs_seen and all(s.cat == "irq" for s in irq_slices)
    assert all(imp.threads[t].startswith("CPU ") for t in imp.slices if t[0] == irqs)
    # the segment around the inferences
    seg = imp.slices[next(t for t in imp.slices if t[0] == imp.process("cell0: perflab segments"))]
    assert [s.name for s in seg] == ["timing"] and seg[0].ts_ns <= invokes[0].ts_ns
    # telemetry counters, on the trace's clock (the sampler's time.monotonic() is the capture's mono clock)
    tele = imp.process("telemetry: cell0")
    tracks = {name for p, name in imp.counters if p == tele}
    assert {"cpu busy % value", "RSS MB value", "MemAvailable MB value"} <= tracks
    rss = imp.counters[(tele, "RSS MB value")]
    assert len(rss) == 2 and all(v > 0 for _, v in rss)
    assert rss[0][0] <= invokes[0].ts_ns and invokes[-1].end_ns <= rss[1][0]


def test_names_outside_the_basic_plane_and_non_finite_counters(tmp_path: Path) -> None:
    """A thread named with an emoji (comm is any 15 bytes): Python's default JSON escapes it
    as a surrogate pair, which Perfetto's parser refuses (the whole file); ``trace export``
    writes UTF-8, which loads. A counter value that is not finite is left out."""
    text = (FX / "android13_atrace_tgid_gpu.txt").read_text(encoding="utf-8")
    src = tmp_path / "emoji.trace"
    src.write_text(text.replace(" benchmark_model-5120", "  bench\U0001F600-5120"), encoding="utf-8")
    out = tmp_path / "emoji.json"
    res = CliRunner().invoke(app, ["trace", "export", str(src), "--out", str(out)])
    assert res.exit_code == 0, res.output
    written = out.read_text(encoding="utf-8")
    imp = perfetto_json_import(written)
    assert imp.errors == [] and "bench\U0001F600" in imp.threads.values()
    with pytest.raises(NotLoadable):
        perfetto_json_import(json.dumps(json.loads(written)))  # what json.dumps' defaults would have written

    trace = parse_trace(text)
    attr = attribute(trace, us_per_tick=1.0)
    t0 = float(trace.info.first_ts or 0)
    doc = chrome_trace(trace, attr, counters=[CounterPoint("temp", t0, math.nan), CounterPoint("temp", t0 + 1, 40.0),
                                              CounterPoint("temp", t0 + 2, math.inf)])
    imp = perfetto_json_import(dumps(doc))
    assert imp.errors == [] and imp.counters[(imp.process("counters"), "temp value")] == [(int(t0 + 1) * 1000, 40.0)]


# ---- a real loader, where one is at hand: Catapult's trace viewer (chrome://tracing's code) ----

CHROMIUM = Path("/usr/bin/chromium")
CATAPULT = Path(os.environ.get("PERFLAB_CATAPULT_DIR", "/nonexistent"))
_TRACE2HTML = CATAPULT / "tracing" / "bin" / "trace2html"
needs_catapult = pytest.mark.skipif(
    not (CHROMIUM.exists() and _TRACE2HTML.exists()),
    reason="needs /usr/bin/chromium and a catapult checkout in $PERFLAB_CATAPULT_DIR (tracing/bin/trace2html builds "
           "the trace viewer that chrome://tracing used; Chromium 156 no longer ships chrome://tracing)")
PIPE_READ_TIMEOUT_S = 120.0


class _Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
    JSON messages ending in NUL on fds 3 and 4), so no websocket library is needed."""

    def __init__(self, profile: Path) -> None:
        r, self._w = os.pipe()
        self._r, w = os.pipe()
        to_chrome_r, from_chrome_w = fcntl.fcntl(r, fcntl.F_DUPFD, 10), fcntl.fcntl(w, fcntl.F_DUPFD, 10)
        os.close(r)
        os.close(w)
        # bash (dash takes one-digit fds only) puts the pipe ends on fds 3 and 4, where Chromium
        # looks for them; they are above 9 first, so moving them cannot close what is on 3 or 4
        shell = f'exec 3<&{to_chrome_r} 4>&{from_chrome_w} {to_chrome_r}<&- {from_chrome_w}>&-; exec "$0" "$@"'
        self.proc = subprocess.Popen(
            ["/bin/bash", "-c", shell, str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-quic", f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            pass_fds=(to_chrome_r, from_chrome_w), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> dict[str, Any]:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + PIPE_READ_TIMEOUT_S  # events may stream on; the reply must come
        while True:
            assert time.monotonic() < deadline, f"no reply to {method} in {PIPE_READ_TIMEOUT_S} s"
            reply = self._read()
            if reply.get("id") == self._id:
                assert "error" not in reply, reply
                result: dict[str, Any] = reply["result"]
                return result
            self.events.append(reply)

    def wait_event(self, method: str) -> dict[str, Any]:
        deadline = time.monotonic() + PIPE_READ_TIMEOUT_S
        while True:
            assert time.monotonic() < deadline, f"no {method} event in {PIPE_READ_TIMEOUT_S} s"
            for ev in self.events:
                if ev.get("method") == method:
                    self.events.remove(ev)
                    return ev
            self.events.append(self._read())

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._r], [], [], PIPE_READ_TIMEOUT_S)
            chunk = os.read(self._r, 1 << 16) if ready else b""
            if not chunk:
                raise AssertionError("Chromium closed the DevTools pipe or stopped answering")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def close(self) -> None:
        os.close(self._w)
        os.close(self._r)
        self.proc.kill()
        self.proc.wait()


_CATAPULT_IMPORT_JS = r"""
(() => {
  const m = new tr.Model();
  new tr.importer.Import(m, new tr.importer.ImportOptions()).importTraces([TRACE_TEXT]);
  return JSON.stringify({
    warnings: (m.importWarnings || []).map(w => w.type + ': ' + w.message),
    processes: Object.values(m.processes).map(p => ({
      pid: p.pid, name: p.name || '',
      threads: Object.values(p.threads).map(t => ({tid: t.tid, name: t.name || '',
        slices: t.sliceGroup.slices.map(s => [s.title, s.category, s.start, s.duration])})),
      counters: Object.values(p.counters).map(c => ({name: c.name,
        series: c.series.map(se => [se.name, se.samples.map(x => [x.timestamp, x.value])])}))}))});
})()
"""


def catapult_import(trace_json: Path, tmp_path: Path) -> dict[str, Any]:
    """Catapult's own importer (tr.importer.Import into a tr.Model, what chrome://tracing
    ran on a loaded file), in headless Chromium, from the viewer that trace2html bundles."""
    page = tmp_path / "viewer.html"
    subprocess.run([sys.executable, str(_TRACE2HTML), str(trace_json), "--output", str(page)], check=True,
                   capture_output=True, timeout=600)
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    chrome = _Chromium(profile)
    try:
        target = chrome.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = chrome.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        chrome.send("Page.enable", session=session)
        chrome.send("Page.navigate", {"url": page.as_uri()}, session=session)
        chrome.wait_event("Page.loadEventFired")
        js = _CATAPULT_IMPORT_JS.replace("TRACE_TEXT", json.dumps(trace_json.read_text(encoding="utf-8")))
        res = chrome.send("Runtime.evaluate", {"expression": js, "returnByValue": True}, session=session)
        assert "exceptionDetails" not in res, res["exceptionDetails"]
        model: dict[str, Any] = json.loads(res["result"]["value"])
        return model
    finally:
        chrome.close()


@needs_root_trace
@needs_catapult
def test_catapult_trace_viewer_loads_a_real_traced_run(tmp_path: Path) -> None:
    out = _real_run_export(tmp_path)
    model = catapult_import(out, tmp_path)
    assert model["warnings"] == []
    procs = {p["name"]: p for p in model["processes"]}
    bench = [p for p in model["processes"] if any(s[1] == "inference" for t in p["threads"] for s in t["slices"])]
    assert len(bench) == 1 and bench[0]["name"].startswith("cell0: ")
    slices = [s for t in bench[0]["threads"] for s in t["slices"]]
    assert [s[0] for s in slices if s[1] == "inference"] == ["Invoke #0", "Invoke #1", "Invoke #2"]
    assert [s[0] for s in slices if s[1] == "op"] == ["CONV_2D@0/0", "DEPTH_TO_SPACE@1/0"] * 3
    irqs = procs["cell0: irqs"]
    assert all(t["name"].startswith("CPU ") for t in irqs["threads"])
    assert len([s for t in irqs["threads"] for s in t["slices"] if s[1] == "irq"]) == _irqs_in_capture(tmp_path) > 0
    assert [s[0] for t in procs["cell0: perflab segments"]["threads"] for s in t["slices"]] == ["timing"]
    counters = {c["name"]: c["series"] for c in procs["telemetry: cell0"]["counters"]}
    assert {"RSS MB", "MemAvailable MB", "cpu busy %"} <= set(counters)
    assert [name for name, _samples in counters["RSS MB"]] == ["value"] and len(counters["RSS MB"][0][1]) == 2
