"""Per-layer profiles in the run report: each cell's layer table, its passes compared, the methods
aligned, and why a cell has none. Pure, no I/O; rules in :mod:`perflab.report.view_common`."""

from __future__ import annotations

from dataclasses import dataclass, replace

from perflab.core.display import MISSING, fmt_fine_ms, fmt_num, fmt_pct
from perflab.report import view_common as vc
from perflab.store.layer_records import (
    AlignedCellRecord,
    AlignedLayersRecord,
    InferenceTimelineRecord,
    LayerPassRecord,
    LayerRow,
    LayersRecord,
    PassLoadRecord,
    TraceLatencyRecord,
)
from perflab.store.results import CellStatus, RunRecord


@dataclass
class LayerRowView:
    index: int
    node_type: str
    name: str
    avg: str
    first: vc.Val
    pct: float
    pct_text: str
    times_called: vc.Val


@dataclass
class LayersView:
    cell_id: str
    anchor: str
    title: str
    device: str
    emulated: bool
    source: str
    total: vc.Val
    sum_avg: str
    rows: list[LayerRowView]
    compare: LayerCompareView | None = None


@dataclass
class LayerCompareRow:
    name: str
    cells: list[vc.Val]  # one per method column, in LayerCompareView.methods order


@dataclass
class LayerCompareView:
    """Every stored per-layer pass of one cell side by side, with the checks the analysis stored."""

    methods: list[vc.Val]  # column headers: the method named, a footnote when the pass is missing
    sources: list[str]
    rows: list[LayerCompareRow]
    checks: list[str]  # sum checks and rank agreement, in words
    trace: list[str]  # trace latency lines (median/p90 vs the tool's mean)
    partition: list[tuple[str, str, str, str]]  # (op, placement, reason, source)
    partition_summary: str
    timeline: InferenceTimelineRecord | None = None  # drawn by html.py (a figure), not here
    timeline_uri: str | None = None
    aligned: AlignedView | None = None  # the methods row for row (absent in older records)


@dataclass
class AlignedRowView:
    name: str
    kind: str  # group / span / total
    ops: str  # the ops the row covers, e.g. "CONV_2D@0, TANH@1"
    layers: str  # the Keras layers of its groups
    cells: list[vc.Val]  # one per method, in AlignedView.methods order
    disagreements: list[str]


@dataclass
class AlignedView:
    """The stored aligned table: one row per differential group, one column per method."""

    methods: list[vc.Val]  # headers: the method named; its level (per group, per op, totals only) or why missing
    rows: list[AlignedRowView]
    notes: list[str]  # the mapping's and each method's notes, unmatched rows, the rule for a disagreement
    rule: str


@dataclass
class LayersMissingView:
    device: str
    emulated: bool
    reason: str
    cells: list[str]


NO_LAYERS = ("no per-layer profile recorded for this cell: profiling was not requested (profiling.op_profiling), "
             f"or the reason was {vc.NOT_RECORDED}")


def build_layers_missing(run: RunRecord) -> list[LayersMissingView]:
    """Per device: the ok cells without a per-layer table, grouped by the reason the run stored."""
    out: list[LayersMissingView] = []
    for dev in vc.ordered_devices(run):
        by_reason: dict[str, list[str]] = {}
        emul = vc.device_emulated(dev)
        for c in run.cells:
            if c.device.serial != dev.serial or c.status != CellStatus.OK or _has_layers(c.layers):
                continue
            why = c.layers.missing if c.layers is not None else None
            by_reason.setdefault(why or NO_LAYERS, []).append(f"{vc.cell_label(c)} · {c.delegate}")
            emul = emul or vc.is_emulated(c)
        out.extend(LayersMissingView(vc.device_name(dev), emul, r, cells) for r, cells in by_reason.items())
    return out


def _has_layers(lay: LayersRecord | None) -> bool:
    return lay is not None and (bool(lay.rows) or any(p.rows for p in lay.passes))


def _trace_lines(t: TraceLatencyRecord) -> list[str]:
    """The stored trace latency (median/p90 vs the tool's mean), switches, irqs and notes, in words."""
    trace: list[str] = []

    def ms(x: float | None) -> str:
        return fmt_num(x, ".3f", "ms")
    trace.append(f"trace of {t.n} inferences: median {ms(t.median_ms)}, p90 {ms(t.p90_ms)}, "
                 f"mean {ms(t.mean_ms)} vs the tool's mean {ms(t.tool_mean_ms)}: {fmt_pct(t.diff_pct, signed=True)}"
                 + ("" if t.ok is None else f" ({'agrees within' if t.ok else 'disagrees: outside'} "
                                            f"±{t.tolerance_pct:g}%)"))
    for sw in t.switches:
        where = sw.processor.upper() if sw.processor in ("gpu", "npu") else "accelerator"
        own = f", the {where}'s own {sw.accel_median_us:.0f} µs" if sw.accel_median_us is not None else ""
        trace.append(f"switch {sw.op} via {sw.via} ({sw.irq_name}, n={sw.n}): CPU→{where} "
                     f"{sw.cpu_to_accel_median_us:.0f} µs, back {sw.accel_to_cpu_median_us:.0f} µs{own} (medians)")
    if t.irqs:
        trace.append("costliest irqs: " + ", ".join(
            f"{q.name} ×{q.count} ({q.total_us:.0f} µs, max {q.max_us:.0f} µs)" for q in t.irqs))
    if t.lost_events:
        trace.append(f"{t.lost_events} trace events lost")
    trace.extend(f"{k}: {v}" for k, v in t.missing.items())
    trace.extend(t.notes)
    return trace


_LEVEL = {"group": "per group", "op": "per op, summed per group", "total": "one node: totals only"}


def _aligned_cell(c: AlignedCellRecord, rule: str, dis: list[str], notes: vc.Footnotes) -> vc.Val:
    if c.time_ms is None:
        return notes.missing(f"{c.method}: {c.missing}" if c.missing else f"{c.method}: {vc.NOT_RECORDED}")
    text = fmt_fine_ms(c.time_ms) + ("" if c.se_ms is None else f" ± {fmt_fine_ms(c.se_ms)}")
    title = f"{c.method}: {c.ops_seen} of {c.ops_total} ops" if c.ops_total else f"{c.method}"
    if c.flagged:
        title += "; disagrees: " + "; ".join(d for d in dis if c.method in d) + f" ({rule})"
    if c.note:
        return vc.Val(text + " *", title=f"{title}; {c.note}", cls="partial" + (" disagree" if c.flagged else ""),
                   sub=c.note, sub_cls="muted")
    return vc.Val(text, title=title, cls="disagree" if c.flagged else "")


def build_aligned(a: AlignedLayersRecord, notes: vc.Footnotes) -> AlignedView | None:
    """The stored aligned table in display form (every number and flag is the stored one)."""
    if a.missing:
        return AlignedView(methods=[], rows=[], notes=[f"aligned table missing: {a.missing}"], rule="")
    rule = (f"flagged where two methods differ by more than ±{a.tolerance_pct:g}% of the larger and more than "
            f"{a.se_factor:g} combined standard errors")
    methods = []
    for m in a.methods:
        if m.missing:
            methods.append(vc.Val(m.method, title=m.missing, note=notes.add(f"{m.method}: {m.missing}"), cls="missing"))
        elif m.unreliable:
            methods.append(vc.Val(m.method, title=f"unreliable: {m.unreliable}",
                               note=notes.add(f"{m.method}: unreliable, not to be trusted: {m.unreliable}"),
                               sub="unreliable", sub_cls="muted", cls="unreliable"))
        else:
            methods.append(vc.Val(m.method, title=m.method, sub=_LEVEL.get(m.level, m.level), sub_cls="muted"))
    layers = {g.name: g.layers for g in a.groups}
    untrusted = [bool(m.unreliable) for m in a.methods]

    def cell(c: AlignedCellRecord, r_dis: list[str], i: int) -> vc.Val:
        v = _aligned_cell(c, rule, r_dis, notes)
        if c.unresolved and c.time_ms is not None:
            v = replace(v, text=f"≈ {v.text}", title=f"{c.unresolved}; {v.title}")
        grey = (i < len(untrusted) and untrusted[i]) or c.unresolved is not None
        return replace(v, cls=f"{v.cls} unreliable".strip()) if grey else v

    rows = [AlignedRowView(name=r.name, kind=r.kind, ops=f"all {len(r.ops)} ops" if r.kind == "total" else ", ".join(r.ops),
                           layers=", ".join(x for g in r.groups for x in layers.get(g, [])),
                           cells=[cell(c, r.disagreements, i) for i, c in enumerate(r.cells)],
                           disagreements=list(r.disagreements)) for r in a.rows]
    out = list(a.notes)
    for m in a.methods:
        if m.missing:
            continue
        tot = fmt_fine_ms(m.total_ms, "ms")
        rs = fmt_fine_ms(m.rows_sum_ms, "ms")
        out.append(f"{m.method}: its rows sum to {rs} (the pass's own total {tot})")
        out.extend(f"{m.method}: {n}" for n in m.notes)
        out.extend(f"{m.method}: row {u}" for u in m.unmatched)
    return AlignedView(methods=methods, rows=rows, notes=out, rule=rule)


def _load_text(ld: PassLoadRecord) -> str:
    def f(x: float | None, spec: str = ".2f") -> str:
        return "?" if x is None else format(x, spec)

    host = (f"host load average {f(ld.host_loadavg_1m_start)} → {f(ld.host_loadavg_1m_end)} "
            f"({ld.host_cpus or '?'} CPUs, {f(ld.host_cpu_busy_pct, '.0f')}% busy)")
    if ld.phone_loadavg_1m_start is None and ld.phone_loadavg_1m_end is None:
        why = ld.missing.get("phone_loadavg_1m")
        return host + (f"; phone load not read ({why})" if why else "")
    return host + f"; phone load average {f(ld.phone_loadavg_1m_start)} → {f(ld.phone_loadavg_1m_end)}"


def _method_header(p: LayerPassRecord, notes: vc.Footnotes) -> vc.Val:
    if p.missing:
        return vc.Val(p.method, title=p.missing, note=notes.add(f"{p.method}: {p.missing}"), cls="missing")
    if p.unreliable:
        return vc.Val(p.method, title=f"unreliable: {p.unreliable}", sub="unreliable", sub_cls="muted",
                   note=notes.add(f"{p.method}: unreliable, not to be trusted: {p.unreliable}"), cls="unreliable")
    return vc.Val(p.method, title=p.source)


def _pass_cell(p: LayerPassRecord, r: LayerRow) -> vc.Val:
    """A row's time (± its standard error, or with its 95% interval), greyed when the pass is
    unreliable or the row not resolved (its interval too wide for a number: marked "≈")."""
    text = fmt_fine_ms(r.avg_ms) if r.se_ms is None else f"{fmt_fine_ms(r.avg_ms)} ± {fmt_fine_ms(r.se_ms)}"
    if r.ci_lo_ms is not None and r.ci_hi_ms is not None:
        text = f"{fmt_fine_ms(r.avg_ms)} [{fmt_fine_ms(r.ci_lo_ms)}, {fmt_fine_ms(r.ci_hi_ms)}]"
    covers = f" ({', '.join(r.layers)})" if r.layers else ""
    title = f"{r.method or p.method}: {r.node_type}{covers}"
    if p.unreliable:
        return vc.Val(text, title=f"unreliable ({p.unreliable}); {title}", cls="unreliable")
    if r.unresolved:
        return vc.Val(f"≈ {text}", title=f"{r.unresolved}; {title}", sub="not resolved", sub_cls="muted",
                      cls="unreliable")
    return vc.Val(text, title=title)


def _pass_checks(p: LayerPassRecord) -> list[str]:
    checks: list[str] = []
    if p.unreliable:
        checks.append(f"{p.method}: UNRELIABLE, not to be trusted: {p.unreliable}")
    if p.rounds is not None:
        checks.append(f"{p.method}: {p.rounds} rounds; {p.stop or 'no stopping rule recorded'}")
    if p.load is not None:
        checks.append(f"{p.method}: load during the pass: {_load_text(p.load)}")
    checks.extend(f"{p.method}: {n_}" for n_ in p.notes)
    sc = p.sum_check
    if sc is not None:
        checks.append(
            f"{p.method}: sum of layers {sc.layers_sum_ms:.3f} ms vs whole model {sc.whole_model_ms:.3f} ms "
            f"({sc.whole_model_source}): {fmt_pct(sc.diff_pct, signed=True)}, "
            f"{'within' if sc.ok else 'outside'} ±{sc.tolerance_pct:g}%")
    for rc in p.rank_checks:
        rho = fmt_num(rc.spearman, ".2f")
        top = "same top layer" if rc.same_top else "different top layer"
        checks.append(f"{p.method} vs {rc.against}: Spearman {rho} over {rc.n} layers, {top}"
                      + (f" ({rc.note})" if rc.note else ""))
    return checks


def build_layer_compare(lay: LayersRecord, notes: vc.Footnotes) -> LayerCompareView:
    """The stored passes side by side: one column per method, one row per layer (by name, first seen first)."""
    methods: list[vc.Val] = []
    sources: list[str] = []
    by_name: dict[str, list[vc.Val]] = {}
    checks: list[str] = []
    for p in lay.passes:
        methods.append(_method_header(p, notes))
        sources.append(p.source)
    n = len(lay.passes)
    for i, p in enumerate(lay.passes):
        for r in p.rows:
            by_name.setdefault(r.name, [vc.Val("") for _ in range(n)])[i] = _pass_cell(p, r)
        checks.extend(_pass_checks(p))
    t = lay.trace
    trace = _trace_lines(t) if t is not None else []
    partition: list[tuple[str, str, str, str]] = []
    summary = ""
    pr = lay.partition
    if pr is not None:
        partition = [(r.op, r.placement, r.reason or "", r.source) for r in pr.rows]
        parts = MISSING if pr.partitions is None else str(pr.partitions)
        summary = (f"{pr.delegate}: {pr.on_delegate} ops on the delegate, {pr.on_cpu} on the CPU, "
                   f"{pr.unknown} unknown; {parts} partitions")
        if pr.missing:
            summary += f" ({pr.missing})"
    return LayerCompareView(
        methods=methods, sources=sources,
        rows=[LayerCompareRow(name, cells) for name, cells in by_name.items()],
        checks=checks, trace=trace, partition=partition, partition_summary=summary,
        timeline=t.timeline if t is not None and t.timeline is not None and t.timeline.spans else None,
        aligned=build_aligned(lay.aligned, notes) if lay.aligned is not None else None)


def build_layers(run: RunRecord, notes: vc.Footnotes) -> list[LayersView]:
    out = []
    for c in run.cells:
        if c.layers is None or not _has_layers(c.layers):
            continue
        total = c.layers.total_ms
        sum_avg = sum(r.avg_ms for r in c.layers.rows)
        denom = total if total else sum_avg
        rows = []
        for r in sorted(c.layers.rows, key=lambda r: -r.avg_ms):
            pct = r.pct if r.pct is not None else (100.0 * r.avg_ms / denom if denom > 0 else 0.0)
            rows.append(LayerRowView(
                index=r.index,
                node_type=r.node_type,
                name=r.name,
                avg=f"{r.avg_ms:.3f}",
                first=vc.Val(f"{r.first_ms:.3f}") if r.first_ms is not None else notes.missing(
                    f"first-run time per layer not given by {c.layers.source}"),
                pct=max(0.0, min(100.0, pct)),
                pct_text=f"{pct:.1f}%",
                times_called=vc.Val(str(r.times_called)) if r.times_called is not None else notes.missing(
                    f"call count per layer not given by {c.layers.source}"),
            ))
        out.append(LayersView(
            cell_id=vc.cell_key(run, c),
            anchor=vc.anchor_for(vc.cell_key(run, c)) + "-layers",
            title=f"{vc.cell_label(c)} · {c.delegate}",
            device=vc.device_name(c.device),
            emulated=vc.is_emulated(c),
            source=c.layers.source,
            total=vc.Val(f"{total:.3f} ms") if total is not None else notes.missing(
                f"total of the profiling pass not given by {c.layers.source}"),
            sum_avg=f"{sum_avg:.3f} ms",
            rows=rows,
            compare=build_layer_compare(c.layers, notes) if c.layers.passes else None,
        ))
    return out
