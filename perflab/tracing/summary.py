"""What ``perflab trace parse`` prints: a summary of one trace as JSON-ready data and as
text. Pure. Durations need the clock in µs: a tick clock (counter, x86-tsc, uptime) without
its frequency leaves every duration missing with that reason, counts still given."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import asdict
from typing import Any

from perflab.analysis.stats import SeriesStats, summarize
from perflab.core.display import MISSING, fmt_num
from perflab.formats.benchmark_output import BenchmarkOutput
from perflab.tracing.attribution import attribute
from perflab.tracing.crosscheck import against_benchmark
from perflab.tracing.facts import TraceFacts
from perflab.tracing.ftrace import ParsedTrace, TsUnit
from perflab.tracing.sections import DEFAULT_INVOKE_RE

TOP_OPS = 10
SCHEMA = "perflab.trace_summary/1"


def _stats(s: SeriesStats | None) -> dict[str, float | int] | None:
    if s is None:
        return None
    d = asdict(s)
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in d.items()}


def _ms(samples_us: list[float]) -> dict[str, float | int] | None:
    return _stats(summarize([v / 1000.0 for v in samples_us])) if samples_us else None


def trace_summary(trace: ParsedTrace | TraceFacts, *, source: str, counter_hz: float | None = None,
                  invoke_re: re.Pattern[str] = DEFAULT_INVOKE_RE, tgid: int | None = None,
                  segment: str | None = None, skip_first: int = 0,
                  busy_tids: Collection[int] | None = None,
                  benchmark_log: BenchmarkOutput | None = None) -> dict[str, object]:
    info = trace.info
    us_per_tick = info.us_per_tick(counter_hz)
    timed = us_per_tick is not None
    attr = attribute(trace, us_per_tick=us_per_tick if us_per_tick is not None else 1.0, invoke_re=invoke_re,
                     tgid=tgid, segment=segment, skip_first=skip_first, busy_tids=busy_tids)
    missing = None if timed else (f"{info.clock or 'tick'} clock: timestamps are raw ticks; "
                                  "pass --counter-hz to convert them")
    span_us = (info.last_ts - info.first_ts) * us_per_tick if (
        timed and us_per_tick is not None and info.first_ts is not None and info.last_ts is not None) else None

    def when_timed(value: object) -> object:
        return value if timed else None

    tool: dict[str, object] | None = None
    if benchmark_log is not None:
        ag = against_benchmark(attr.inferences, benchmark_log)
        tool = {"warmup_runs": ag.warmup_runs, "timed_runs": ag.timed_runs, "trace_inferences": ag.trace_inferences,
                "counts_match": ag.counts_match, "compared": ag.compared,
                "trace_mean_ms": when_timed(None if ag.trace_mean_ms is None else round(ag.trace_mean_ms, 6)),
                "tool_avg_ms": ag.tool_avg_ms,
                "diff_pct": when_timed(None if ag.diff_pct is None else round(ag.diff_pct, 3)), "note": ag.note}

    return {
        "schema": SCHEMA,
        "source": source,
        "clock": {"name": info.clock, "from": info.clock_source, "ts_unit": info.ts_unit.value,
                  "us_per_tick": us_per_tick},
        "durations_missing_reason": missing,
        "header": {"tracer": info.tracer, "cpus": info.cpus, "has_tgid": info.has_tgid,
                   "flags_width": info.flags_width},
        "records": info.records,
        "span_ms": round(span_us / 1000.0, 6) if span_us is not None else None,
        "unparsed_lines": info.unparsed_lines,
        "unparsed_examples": list(info.unparsed_examples),
        "loss": {
            "complete": info.complete,
            "lost_events_by_cpu": {str(k): v for k, v in info.lost_events.items()},
            "lost_events": info.lost_total,
            "lost_uncounted_cpus": list(info.lost_uncounted_cpus),
            "overwritten_events": info.overwritten_events,
            "buffer_started_cpus": list(info.buffer_started_cpus),
        },
        "event_counts": trace.event_counts,
        "inferences": {
            "count": len(attr.inferences),
            "in_trace": attr.inferences_in_trace,
            "selection": {"segment": segment, "skip_first": skip_first},
            "names": sorted({i.name for i in attr.inferences}),
            "latency_ms": when_timed(_stats(attr.latency_ms)),
            "samples_ms": when_timed([round(i.duration_us / 1000.0, 6) for i in attr.inferences]),
            "unmatched_section_ends": attr.markers.unmatched_ends,
            "sections_open_at_end": attr.markers.unclosed,
        },
        "top_ops": [
            {"name": o.name, "op_type": o.op_type, "delegate": o.delegate, "n": o.stats_ms.n,
             "median_ms": when_timed(round(o.stats_ms.median_ms, 6)), "p90_ms": when_timed(round(o.stats_ms.p90_ms, 6)),
             "share_pct": round(o.share_pct, 3)}
            for o in attr.ops[:TOP_OPS]
        ],
        "segments": [{"name": s.name, "duration_ms": when_timed(round(s.duration_us / 1000.0, 6))}
                     for s in attr.segments],
        "irqs": [{"name": s.name, "irqs": list(s.irqs), "count": s.count,
                  "total_ms": when_timed(round(s.total_us / 1000.0, 6)), "max_us": when_timed(round(s.max_us, 3))}
                 for s in attr.irq_summary],
        "cpu_busy": None if attr.busy is None else {
            "threads": list(attr.busy_tids),
            "total_ms": when_timed(round(attr.busy.total_us / 1000.0, 6)),
            "per_thread_ms": when_timed({str(k): round(v / 1000.0, 6) for k, v in sorted(attr.busy.per_thread_us.items())}),
        },
        "binder": {"round_trips": len(attr.binder), "unanswered": attr.binder_unanswered,
                   "round_trip_ms": when_timed(_ms([t.duration_us for t in attr.binder]))},
        "fastrpc": {"round_trips": len(attr.fastrpc), "unanswered": attr.fastrpc_unanswered,
                    "round_trip_ms": when_timed(_ms([t.duration_us for t in attr.fastrpc]))},
        "benchmark_model": tool,
        "switch_latency": {
            "nodes": len(attr.switches),
            "via": sorted({s.via for s in attr.switches}),
            "cpu_to_accel_ms": when_timed(_ms([s.cpu_to_accel_us for s in attr.switches])),
            "accel_to_cpu_ms": when_timed(_ms([s.accel_to_cpu_us for s in attr.switches])),
            "processors": sorted({s.processor for s in attr.switches if s.processor}),
            "accel_ms": when_timed(_ms([s.accel_us for s in attr.switches if s.accel_us is not None])),
        },
    }


def _num(v: object, spec: str = ".3f") -> str:
    return fmt_num(v, spec) if isinstance(v, (int, float)) else MISSING


def _name_table(out: list[str], title: str, rows: list[Any], rest: Callable[[Any], str]) -> None:
    """A titled table of named rows, names padded to the longest; ``rest`` gives the columns after it."""
    out.append(title)
    w = max(len(r["name"]) for r in rows)
    out.extend(f"  {r['name']:<{w}}  {rest(r)}" for r in rows)


def render_summary(doc: dict[str, object]) -> str:  # noqa: C901 — a flat list of sections
    """Readable text of :func:`trace_summary`'s result."""
    out: list[str] = []
    clock = doc["clock"]
    assert isinstance(clock, dict)
    name = clock["name"] or ("unknown nanosecond clock (local/global/mono/boot/…)"
                             if clock["ts_unit"] == TsUnit.US.value else "unknown tick clock")
    out.append(f"trace {doc['source']}: {doc['records']} events, {_num(doc['span_ms'])} ms")
    out.append(f"  clock: {name} (from {clock['from']})")
    if doc["durations_missing_reason"]:
        out.append(f"  durations: missing — {doc['durations_missing_reason']}")
    loss = doc["loss"]
    assert isinstance(loss, dict)
    if loss["complete"]:
        out.append("  lost events: none")
    else:
        parts = []
        if loss["lost_events"]:
            per = ", ".join(f"CPU{k}: {v}" for k, v in loss["lost_events_by_cpu"].items())
            parts.append(f"{loss['lost_events']} lost while reading ({per})")
        if loss["lost_uncounted_cpus"]:
            parts.append("an unknown number lost on CPU " + ", ".join(map(str, loss["lost_uncounted_cpus"])))
        if loss["overwritten_events"]:
            parts.append(f"{loss['overwritten_events']} overwritten in the ring buffer")
        if loss["buffer_started_cpus"]:
            parts.append("buffer started late on CPU " + ", ".join(map(str, loss["buffer_started_cpus"])))
        out.append("  lost events: " + "; ".join(parts))
    if doc["unparsed_lines"]:
        out.append(f"  unparsed lines: {doc['unparsed_lines']} (first: {doc['unparsed_examples'][0]!r})"  # type: ignore[index]
                   )
    counts = doc["event_counts"]
    assert isinstance(counts, dict)
    out.append("  events: " + ", ".join(f"{k} {v}" for k, v in list(counts.items())[:12])
               + (" …" if len(counts) > 12 else ""))
    inf = doc["inferences"]
    assert isinstance(inf, dict)
    lat = inf["latency_ms"]
    line = f"inferences: {inf['count']}"
    if inf["count"]:
        line += f" ({', '.join(inf['names'])})"
    if inf["in_trace"] != inf["count"]:
        sel = inf["selection"]
        assert isinstance(sel, dict)
        why = [f"in segment {sel['segment']}"] if sel["segment"] else []
        why += [f"after the first {sel['skip_first']} (warm-up)"] if sel["skip_first"] else []
        line += f" of {inf['in_trace']} in the trace, {' and '.join(why)}"
    if isinstance(lat, dict):
        line += (f" — median {_num(lat['median_ms'])} ms, p90 {_num(lat['p90_ms'])} ms, mean {_num(lat['mean_ms'])} ms, "
                 f"min {_num(lat['min_ms'])}, max {_num(lat['max_ms'])}")
    out.append(line)
    if inf["unmatched_section_ends"] or inf["sections_open_at_end"]:
        out.append(f"  ATrace: {inf['unmatched_section_ends']} section ends without a begin, "
                   f"{inf['sections_open_at_end']} sections still open at the end (cut by the capture)")
    ops = doc["top_ops"]
    assert isinstance(ops, list)
    if ops:
        _name_table(out, "top ops (median ms, p90 ms, share of the top-level ops):", ops, lambda o: (
            f"{_num(o['median_ms']):>9}  {_num(o['p90_ms']):>9}  {o['share_pct']:6.2f}%  n={o['n']}"
            + ("  [delegate]" if o["delegate"] else "")))
    segs = doc["segments"]
    assert isinstance(segs, list)
    if segs:
        out.append("segments: " + ", ".join(f"{s['name']} {_num(s['duration_ms'])} ms" for s in segs))
    irqs = doc["irqs"]
    assert isinstance(irqs, list)
    if irqs:
        _name_table(out, "irqs (count, total ms, longest µs):", irqs, lambda s: (
            f"{s['count']:>7}  {_num(s['total_ms']):>9}  {_num(s['max_us'], '.1f'):>8}  "
            f"irq {','.join(map(str, s['irqs']))}"))
    busy = doc["cpu_busy"]
    if isinstance(busy, dict):
        out.append(f"CPU busy of threads {','.join(map(str, busy['threads']))}: {_num(busy['total_ms'])} ms")
    for kind in ("binder", "fastrpc"):
        rt = doc[kind]
        assert isinstance(rt, dict)
        if rt["round_trips"] or rt["unanswered"]:
            st = rt["round_trip_ms"]
            med = f", median {_num(st['median_ms'])} ms, p90 {_num(st['p90_ms'])} ms" if isinstance(st, dict) else ""
            out.append(f"{kind}: {rt['round_trips']} round trips{med}; {rt['unanswered']} without reply")
    sw = doc["switch_latency"]
    assert isinstance(sw, dict)
    if sw["nodes"]:
        c2a, a2c = sw["cpu_to_accel_ms"], sw["accel_to_cpu_ms"]
        out.append(f"switch latency over {sw['nodes']} delegate nodes (via {', '.join(sw['via'])}): "
                   f"CPU→accelerator median {_num(c2a['median_ms'] if isinstance(c2a, dict) else None)} ms, "
                   f"accelerator→CPU median {_num(a2c['median_ms'] if isinstance(a2c, dict) else None)} ms"
                   + (f" (to {', '.join(sw['processors'])})" if sw.get("processors") else ""))
        own = sw.get("accel_ms")
        if isinstance(own, dict):
            out.append(f"the accelerator's own time per node: median {_num(own['median_ms'])} ms")
    tool = doc.get("benchmark_model")
    if isinstance(tool, dict):
        line = (f"benchmark_model: {tool['warmup_runs']} warm-up + {tool['timed_runs']} timed runs, "
                f"{tool['trace_inferences']} inferences in the trace")
        if isinstance(tool["trace_mean_ms"], float) and isinstance(tool["diff_pct"], float):
            line += (f"; timed runs: tool avg {_num(tool['tool_avg_ms'])} ms, trace mean {_num(tool['trace_mean_ms'])} ms "
                     f"({tool['diff_pct']:+.2f}%, last {tool['compared']})")
        out.append(line)
        if tool["note"]:
            out.append(f"  {tool['note']}")
    return "\n".join(out) + "\n"
