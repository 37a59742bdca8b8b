"""``perflab profile …`` and ``perflab trace …`` commands.

Mounted by perflab/cli/main.py as ``app.add_typer(profile_app, name="profile")`` and
``app.add_typer(trace_app, name="trace")``. Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from perflab.cli.errors import fail
from perflab.cli.options import number_option
from perflab.core.files import read_regular_bytes
from perflab.errors import PerflabError, SourceLocation, UserInputError

if TYPE_CHECKING:
    from perflab.tracing.facts import TraceFacts
    from perflab.tracing.runexport import BatteryScale

profile_app = typer.Typer(no_args_is_help=True, add_completion=False,
                          help="TFLite op profiles from benchmark_model logs.")
trace_app = typer.Typer(no_args_is_help=True, add_completion=False,
                        help="Kernel traces (ftrace text): summary, attribution, Perfetto export.")


def read_text_file(path: Path) -> str:
    """The file's text (undecodable bytes replaced); UserInputError naming the file if it
    cannot be read or is not a regular file (never blocks on a named pipe)."""
    return read_regular_bytes(path).decode("utf-8", errors="replace")


@profile_app.command("parse")
def profile_parse(
    file: Annotated[Path, typer.Argument(help="benchmark_model output, a logcat capture, or its profiling CSV")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Per-node and per-node-type op times from benchmark_model's op profiling."""
    from perflab.tracing.opprofile import parse_op_profile, render_table, to_json

    try:
        prof = parse_op_profile(read_text_file(file), str(file))
    except PerflabError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(to_json(prof), indent=2))
    else:
        typer.echo(render_table(prof), nl=False)


T = TypeVar("T")


def _with_file(source: str, option: str, fn: Callable[[], T]) -> T:
    """Run ``fn``; a UserInputError it raises without a location gets the trace file's."""
    try:
        return fn()
    except UserInputError as exc:
        if exc.location is not None:
            raise
        raise UserInputError(exc.message, SourceLocation(source, None, option)) from exc


def _tids(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        tids = [int(t) for t in value.split(",") if t.strip()]
    except ValueError as exc:
        raise UserInputError(f"thread ids must be integers, got {value!r}",
                             SourceLocation("command line", None, "--threads")) from exc
    if not tids:
        raise UserInputError("no thread ids given", SourceLocation("command line", None, "--threads"))
    return tids


def _trace_clock_arg(value: str | None) -> str | None:
    """--trace-clock: a saved tracefs ``trace_clock`` file, or its content, or a clock name."""
    if value is None:
        return None
    p = Path(value)
    if p.is_file():
        return read_text_file(p)
    return value


def _load_trace(file: Path, trace_clock: str | None) -> tuple[TraceFacts, str]:
    """What attribution needs of the trace file, read and parsed in one pass, in chunks."""
    from perflab.tracing.attribution import stream_facts
    from perflab.tracing.ftrace import file_chunks

    if file.is_dir():
        raise UserInputError("is a folder: pass a trace file (`perflab trace export RUN_DIR` exports a whole run)",
                             SourceLocation(str(file), None, None))
    clock = _trace_clock_arg(trace_clock)
    try:
        return stream_facts(file_chunks(file), trace_clock=clock, source=str(file)), str(file)
    except OSError as exc:
        raise UserInputError(f"cannot read: {exc.strerror or exc}", SourceLocation(str(file), None, None)) from exc


TraceClockOpt = Annotated[str | None, typer.Option(
    "--trace-clock", help="the tracefs trace_clock file saved at capture (or its content, or a clock name)")]
CounterHzOpt = Annotated[float | None, number_option(
    "--counter-hz", min=1.0, help="tick rate of a counter/x86-tsc/uptime trace clock, to turn ticks into time")]
TgidOpt = Annotated[int | None, number_option("--pid", integer=True, min=0, max=2**31 - 1, help="only inferences of this process (the B|pid field)")]
SegmentOpt = Annotated[str | None, typer.Option(
    "--segment", help="only inferences inside perflab segments of this name (perflab:segment:<name>:begin/end)")]
ThreadsOpt = Annotated[str | None, typer.Option(
    "--threads", help="CPU busy time of these thread ids (comma-separated; default: the inferences' process)")]
SkipOpt = Annotated[int, number_option(
    "--skip-first", integer=True, min=0, help="leave out the first N inferences (benchmark_model's warm-up runs)")]


@trace_app.command("parse")
def trace_parse(
    file: Annotated[Path, typer.Argument(help="ftrace text (the tracefs 'trace' file, trace_pipe output or an atrace dump)")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of text")] = False,
    trace_clock: TraceClockOpt = None,
    counter_hz: CounterHzOpt = None,
    pid: TgidOpt = None,
    segment: SegmentOpt = None,
    skip_first: SkipOpt = 0,
    threads: ThreadsOpt = None,
    benchmark_log: Annotated[Path | None, typer.Option(
        "--benchmark-log", help="benchmark_model's output of the traced run: compare its runs and average")] = None,
) -> None:
    """Summary of a kernel trace: clock, lost events, event counts, inferences (median, p90),
    top ops, irqs, CPU busy time, binder/fastrpc round trips, processor switch latency; with
    --benchmark-log, the trace's timed runs against the tool's own average."""
    from perflab.tracing.summary import render_summary, trace_summary

    try:
        trace, source = _load_trace(file, trace_clock)
        tids = _tids(threads)
        tool = None
        if benchmark_log is not None:
            from perflab.formats.benchmark_output import parse_output

            tool = parse_output(read_text_file(benchmark_log))
        doc = _with_file(source, "--segment", lambda: trace_summary(
            trace, source=source, counter_hz=counter_hz, tgid=pid, segment=segment, skip_first=skip_first,
            busy_tids=tids, benchmark_log=tool))
    except PerflabError as exc:
        fail(exc)
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
    else:
        typer.echo(render_summary(doc), nl=False)


@trace_app.command("export")
def trace_export(
    trace_file: Annotated[Path, typer.Argument(help="ftrace text file, or a run folder (its traces/*.trace and "
                                               "telemetry/*.txt in one file)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Chrome trace-event JSON to write (opens in ui.perfetto.dev)")],
    trace_clock: TraceClockOpt = None,
    counter_hz: CounterHzOpt = None,
    pid: TgidOpt = None,
    segment: SegmentOpt = None,
    skip_first: SkipOpt = 0,
) -> None:
    """Write the trace as Chrome trace-event JSON for the Perfetto UI: inference windows,
    per-op slices, irq slices per CPU, segments, round trips, counters."""
    from perflab.tracing.attribution import attribute
    from perflab.tracing.export import chrome_trace, dumps

    if trace_file.is_dir():
        _export_run(trace_file, out)
        return
    try:
        trace, source = _load_trace(trace_file, trace_clock)
        us_per_tick = trace.info.us_per_tick(counter_hz)
        if us_per_tick is None:
            raise UserInputError(f"{trace.info.clock or 'tick'} clock: the timestamps are raw ticks; pass "
                                 "--counter-hz (e.g. 19200000 for the ARM arch counter on Qualcomm)",
                                 SourceLocation(source, None, "--counter-hz"))
        attr = _with_file(source, "--segment", lambda: attribute(
            trace, us_per_tick=us_per_tick, tgid=pid, segment=segment, skip_first=skip_first))
        doc = chrome_trace(trace, attr, source=source)
        _write_doc(out, dumps(doc))
    except PerflabError as exc:
        fail(exc)
    n = len(doc["traceEvents"]) if isinstance(doc["traceEvents"], list) else 0
    typer.echo(f"{out}: {n} trace events (open in https://ui.perfetto.dev)")


def _write_doc(out: Path, text: str) -> None:
    """Write an exported trace document, making its folder; a write that fails is the user's path's fault."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"cannot write: {exc.strerror or exc}", SourceLocation(str(out), None, None)) from exc


def _battery_scales(run_dir: Path) -> dict[str, BatteryScale]:
    """Per telemetry file (stem): the battery convention the run stored in results.json; none when it has none."""
    from perflab.store.runfolder import is_run_folder, load_run
    from perflab.tracing.runexport import BatteryScale

    if not is_run_folder(run_dir):
        return {}
    try:
        run = load_run(run_dir)
    except PerflabError:
        return {}
    recs = [(c.telemetry.timeline_file, c.telemetry.convention) for c in run.cells]
    recs += [(i.timeline_file, i.convention) for i in run.idle]
    return {Path(f).stem: BatteryScale(c.ma_per_raw, c.v_per_raw) for f, c in recs if f and c is not None}


def _export_run(run_dir: Path, out: Path) -> None:
    """``trace export RUN_DIR``: every trace and telemetry timeline of the run, one JSON."""
    from perflab.analysis.timeline import parse_sampler_output
    from perflab.store.runfolder import RunFolder
    from perflab.tracing.export import dumps
    from perflab.tracing.runexport import NamedText, run_chrome_trace

    try:
        folder = RunFolder(run_dir)
        traces = [NamedText(p.stem, read_text_file(p)) for p in folder.trace_files()]
        timelines = [(p.stem, parse_sampler_output(read_text_file(p).splitlines())) for p in folder.timeline_files()]
        if not traces and not timelines:
            raise UserInputError("not a run folder with traces or telemetry (no traces/*.trace, no telemetry/*.txt)",
                                 SourceLocation(str(run_dir), None, None))
        doc = run_chrome_trace(traces, timelines, source=str(run_dir), battery=_battery_scales(run_dir))
        _write_doc(out, dumps(doc))
    except PerflabError as exc:
        fail(exc)
    other = doc["otherData"]
    assert isinstance(other, dict)
    n = len(doc["traceEvents"]) if isinstance(doc["traceEvents"], list) else 0
    typer.echo(f"{out}: {n} trace events from {len(other['traces'])} trace(s) and {len(other['telemetry'])} "
               f"telemetry timeline(s) (open in https://ui.perfetto.dev)")
    for name, why in dict(other["skipped"]).items():
        typer.echo(f"  skipped {name}: {why}", err=True)
