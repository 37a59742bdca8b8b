"""TFLite op profiles (benchmark_model ``--enable_op_profiling``) as a table or JSON.

The parsing itself is :func:`perflab.formats.benchmark_output.parse_output` (stdout/stderr,
logcat captures with their ``MM-DD hh:mm:ss.mmm pid tid I tflite  :`` prefixes, the CSV
file); this module only shapes what it found for ``perflab profile parse``. Pure.

A log whose op tables are missing (op profiling was off) or cut short (logcat truncates long
messages) still holds the run's summary timings: those are shown with a note saying what is
missing (:class:`TableState`); only a text with neither is an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from perflab.core.display import fmt_num
from perflab.errors import SourceLocation, UserInputError
from perflab.formats.benchmark_output import (
    BenchmarkOutput,
    NodeTypeRow,
    ProfilePhase,
    ProfileRow,
    ProfileSection,
    parse_output,
)

# TfLiteGpuDelegateV2, TfLiteXNNPackDelegate, TfLiteNnapiDelegate, TfLiteHexagonDelegate, and
# vendor delegates named the same way.
_DELEGATE_TYPE = re.compile(r"^TfLite\w*Delegate\w*$")


def is_delegate_node(node_type: str, name: str) -> bool:
    """A node that a delegate runs as one opaque kernel (its time hides every op inside), or
    an op a delegate reported itself (XNNPACK's ``Delegate/<op>:<i>`` names)."""
    return bool(_DELEGATE_TYPE.match(node_type)) or name.startswith("Delegate/")


@dataclass(frozen=True)
class NodeView:
    index: int
    node_type: str
    name: str
    avg_ms: float
    pct: float | None
    first_ms: float | None
    times_called: int | None
    delegate: bool  # run by a delegate (opaque node, or an op the delegate reported itself)
    opaque: bool  # one delegate kernel standing for many ops (TfLiteGpuDelegateV2, …)


@dataclass(frozen=True)
class NodeTypeView:
    node_type: str
    count: int
    avg_ms: float
    pct: float | None
    delegate: bool
    from_table: bool  # False: summed from the run-order rows (the tool printed no summary)


@dataclass(frozen=True)
class SectionView:
    phase: str  # init / runs / delegate
    graph: str
    nodes: tuple[NodeView, ...]
    node_types: tuple[NodeTypeView, ...]
    total_avg_ms: float | None  # "Timings (microseconds): … avg=" of the section
    runs: int | None

    @property
    def opaque_ms(self) -> float:
        return sum(n.avg_ms for n in self.nodes if n.opaque)


class TableState(StrEnum):
    COMPLETE = "complete"
    TRUNCATED = "truncated"  # a table or section cut short (logcat truncates long messages)
    MISSING = "missing"  # no op-profiling table at all (op profiling was off)


@dataclass(frozen=True)
class RunTimings:
    """The tool's summary timings (ms, as printed; None where the log does not say)."""

    init_ms: float | None
    first_ms: float | None
    warmup_avg_ms: float | None
    inference_avg_ms: float | None
    inference_std_ms: float | None
    inference_count: int | None
    memory_overall_mb: float | None  # "Memory footprint delta"/"Peak memory footprint" overall=
    peak_memory_mb: float | None  # --report_peak_memory_footprint

    @property
    def empty(self) -> bool:
        return all(v is None for v in (self.init_ms, self.first_ms, self.warmup_avg_ms, self.inference_avg_ms))


@dataclass(frozen=True)
class OpProfile:
    sections: tuple[SectionView, ...]
    delegates_applied: tuple[str, ...]  # what the tool said about delegates, as printed
    timings: RunTimings | None = None
    table: TableState = TableState.COMPLETE
    table_note: str = ""  # why the table is missing or truncated, in words

    @property
    def runs(self) -> SectionView | None:
        for s in self.sections:
            if s.phase == ProfilePhase.RUNS.value and s.graph == "primary":
                return s
        return None


def _node(i: int, row: ProfileRow) -> NodeView:
    return NodeView(i, row.node_type, row.name, row.avg_ms, row.pct, row.first_ms, row.times_called,
                    is_delegate_node(row.node_type, row.name), bool(_DELEGATE_TYPE.match(row.node_type)))


def _types(sec: ProfileSection, nodes: tuple[NodeView, ...]) -> tuple[NodeTypeView, ...]:
    delegate_types = {n.node_type for n in nodes if n.delegate} - {n.node_type for n in nodes if not n.delegate}
    if sec.by_type:
        return tuple(_type_row(r, r.node_type in delegate_types) for r in sec.by_type)
    sums: dict[str, list[float]] = {}
    for n in nodes:
        sums.setdefault(n.node_type, []).append(n.avg_ms)
    total = sum(n.avg_ms for n in nodes)
    rows = [
        NodeTypeView(t, len(v), sum(v), sum(v) / total * 100.0 if total > 0 else None,
                     t in delegate_types, False)
        for t, v in sums.items()
    ]
    return tuple(sorted(rows, key=lambda r: -r.avg_ms))


def _type_row(r: NodeTypeRow, delegate: bool) -> NodeTypeView:
    return NodeTypeView(r.node_type, r.count, r.avg_ms, r.pct, delegate or bool(_DELEGATE_TYPE.match(r.node_type)),
                        True)


def run_timings(out: BenchmarkOutput) -> RunTimings:
    inf = out.inference.summary() if out.inference is not None else None
    warm = out.warmup.summary() if out.warmup is not None else None
    return RunTimings(
        init_ms=out.init_ms if out.init_ms is not None else out.init_session_ms,
        first_ms=out.first_ms,
        warmup_avg_ms=out.warmup_avg_ms if out.warmup_avg_ms is not None else (warm.mean_ms if warm else None),
        inference_avg_ms=out.inference_avg_ms if out.inference_avg_ms is not None else (inf.mean_ms if inf else None),
        inference_std_ms=inf.std_ms if inf else None,
        inference_count=inf.count if inf else None,
        memory_overall_mb=out.mem_overall_mb,
        peak_memory_mb=out.peak_mem_mb,
    )


_SECTION_HEADING = re.compile(r"(?:Operator-wise )?Profiling Info for (?:Regular Benchmark Runs|Benchmark Initialization):")
_TRUNC_HINT = "logcat truncates long messages: prefer the tool's stdout or --profiling_output_csv_file"


def table_state(out: BenchmarkOutput, sections: tuple[SectionView, ...]) -> tuple[TableState, str]:
    """Whether the op tables are all there, cut short, or absent, and why in words."""
    if not any(s.nodes or s.node_types for s in sections):
        if out.profile or _SECTION_HEADING.search(out.text):
            return TableState.TRUNCATED, f"op table truncated: a profiling section starts but has no rows ({_TRUNC_HINT})"
        return TableState.MISSING, ("op table missing: the log has no op-profiling tables "
                                    "(run benchmark_model with --enable_op_profiling=true)")
    problems: list[str] = []
    for raw, view in zip(out.profile, sections, strict=True):
        where = f"{view.phase} section ({view.graph} graph)"
        rows = len(view.nodes)
        if raw.nodes_executed is not None and rows < raw.nodes_executed:
            problems.append(f"{where} lists {rows} of {raw.nodes_executed} nodes")
        elif raw.timings is None:
            problems.append(f"{where} ends before its Timings line")
    if not problems and out.profile and all(s.phase == ProfilePhase.INIT.value for s in sections):
        problems.append("the regular runs' section is missing after the initialisation section")
    if problems:
        return TableState.TRUNCATED, f"op table truncated: {'; '.join(problems)} ({_TRUNC_HINT})"
    return TableState.COMPLETE, ""


def op_profile(out: BenchmarkOutput) -> OpProfile:
    sections = []
    for sec in out.profile:
        rows = sec.run_order or sec.top  # some captures print only one of the two tables
        nodes = tuple(_node(i, r) for i, r in enumerate(rows))
        total_ms: float | None = None
        if sec.timings is not None:
            us = sec.timings.avg_us if sec.timings.avg_us is not None else sec.timings.curr_us
            total_ms = us / 1000.0 if us is not None else None
        sections.append(SectionView(sec.phase.value, sec.graph, nodes, _types(sec, nodes), total_ms,
                                    sec.timings.count if sec.timings is not None else None))
    views = tuple(sections)
    state, note = table_state(out, views)
    return OpProfile(views, tuple(d.line for d in out.delegates), run_timings(out), state, note)


def parse_op_profile(text: str, source: str) -> OpProfile:
    """An op profile from a benchmark_model log, a logcat capture or the CSV file; a log whose
    tables are missing or truncated gives its summary timings and says so (``table``). Raises
    UserInputError (naming ``source``) when the text holds neither a table row nor a timing."""
    out = parse_output(text)
    prof = op_profile(out)
    if not any(s.nodes or s.node_types for s in prof.sections) and (prof.timings is None or prof.timings.empty):
        said = f"; the tool reported: {out.errors[0]}" if out.errors else ""
        msg = ("no op-profiling tables or benchmark timings found (run benchmark_model with "
               f"--enable_op_profiling=true){said}") if text.strip() else "empty file"
        raise UserInputError(msg, SourceLocation(source, None, None) if source else None)
    return prof


def _short(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def render_table(prof: OpProfile, *, name_width: int = 60) -> str:
    """Readable text: per section, every node (type, name, avg ms, %; nodes a delegate ran
    marked with *) and the per-node-type summary."""
    lines: list[str] = []
    if prof.table is not TableState.COMPLETE:
        lines.extend(_timings_lines(prof.timings))
        lines.append(prof.table_note)
        lines.append("")
    for sec in prof.sections:
        title = {"init": "initialisation", "runs": "regular runs", "delegate": "delegate internal"}.get(
            sec.phase, sec.phase)
        total = f", {sec.total_avg_ms:.3f} ms per run" if sec.total_avg_ms is not None else ""
        runs = f" over {sec.runs} runs" if sec.runs is not None else ""
        lines.append(f"== {title} ({sec.graph} graph){total}{runs}")
        if sec.nodes:
            tw = max(9, *(len(n.node_type) for n in sec.nodes))
            lines.append(f"  {'#':>3}  {'node type':<{tw}}  {'avg ms':>9}  {'%':>7}  name")
            for n in sec.nodes:
                mark = "*" if n.delegate else " "
                lines.append(f"{mark} {n.index:>3}  {n.node_type:<{tw}}  {n.avg_ms:>9.3f}  "
                             f"{fmt_num(n.pct, '6.2f'):>6}%  {_short(n.name, name_width)}")
        if sec.node_types:
            tw = max(9, *(len(t.node_type) for t in sec.node_types))
            src = "" if all(t.from_table for t in sec.node_types) else " (summed from the nodes)"
            lines.append(f"  by node type{src}:")
            for t in sec.node_types:
                mark = "*" if t.delegate else " "
                lines.append(f"{mark}      {t.node_type:<{tw}}  {t.avg_ms:>9.3f}  {fmt_num(t.pct, '6.2f'):>6}%  "
                             f"x{t.count}")
        if any(n.opaque for n in sec.nodes):
            lines.append(f"  * delegate node: one opaque kernel ({sec.opaque_ms:.3f} ms in all); the layers "
                         "inside need the trace or the differential profiler")
        elif any(n.delegate for n in sec.nodes):
            lines.append("  * op run by a delegate, as the delegate reported it")
        lines.append("")
    for d in prof.delegates_applied:
        lines.append(f"delegate: {d}")
    return "\n".join(lines).rstrip() + "\n"


def _timings_lines(t: RunTimings | None) -> list[str]:
    if t is None or t.empty:
        return ["summary timings: none in the log"]
    n = f" over {t.inference_count} runs" if t.inference_count is not None else ""
    std = f" (std {fmt_num(t.inference_std_ms, '.3f')})" if t.inference_std_ms is not None else ""
    out = [
        "summary timings (ms):",
        (f"  init {fmt_num(t.init_ms, '.3f')}, first inference {fmt_num(t.first_ms, '.3f')}, "
         f"warm-up avg {fmt_num(t.warmup_avg_ms, '.3f')}"),
        f"  inference avg {fmt_num(t.inference_avg_ms, '.3f')}{std}{n}",
    ]
    if t.memory_overall_mb is not None or t.peak_memory_mb is not None:
        out.append(f"  memory overall {fmt_num(t.memory_overall_mb, '.2f', 'MB')}, "
                   f"peak {fmt_num(t.peak_memory_mb, '.2f', 'MB')}")
    return out


def _timings_json(t: RunTimings | None) -> dict[str, float | int | None] | None:
    if t is None:
        return None
    return {"init_ms": t.init_ms, "first_ms": t.first_ms, "warmup_avg_ms": t.warmup_avg_ms,
            "inference_avg_ms": t.inference_avg_ms, "inference_std_ms": t.inference_std_ms,
            "inference_count": t.inference_count, "memory_overall_mb": t.memory_overall_mb,
            "peak_memory_mb": t.peak_memory_mb}


def to_json(prof: OpProfile) -> dict[str, object]:
    return {
        "schema": "perflab.op_profile/1",
        "op_table": prof.table.value,
        "op_table_note": prof.table_note or None,
        "timings": _timings_json(prof.timings),
        "delegates_applied": list(prof.delegates_applied),
        "sections": [
            {
                "phase": s.phase,
                "graph": s.graph,
                "total_avg_ms": s.total_avg_ms,
                "runs": s.runs,
                "nodes": [
                    {"index": n.index, "node_type": n.node_type, "name": n.name, "avg_ms": n.avg_ms,
                     "pct": n.pct, "first_ms": n.first_ms, "times_called": n.times_called,
                     "delegate": n.delegate, "opaque_delegate_node": n.opaque}
                    for n in s.nodes
                ],
                "node_types": [
                    {"node_type": t.node_type, "count": t.count, "avg_ms": t.avg_ms, "pct": t.pct,
                     "delegate": t.delegate, "from_table": t.from_table}
                    for t in s.node_types
                ],
            }
            for s in prof.sections
        ],
    }
