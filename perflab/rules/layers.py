"""Rules over a cell's per-layer records (pure): the delegate partition table, rank agreement
between methods, and the passes aligned row for row (perflab.analysis.layer_align) as a record.
The estimate's cost model is here too. The passes that measure are perflab.lab.layers."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from perflab.analysis import layer_align as la
from perflab.analysis.stats import spearman
from perflab.store.layer_records import (
    AlignedCellRecord,
    AlignedLayersRecord,
    AlignedMethodRecord,
    AlignedOpRecord,
    AlignedRowRecord,
    LayerPassRecord,
    LayerRow,
    OpGroupRecord,
    PartitionRecord,
    PartitionRow,
    RankCheckRecord,
)
from perflab.store.results import CompatRecord, DelegateRecord

# --------------------------------------------------------------------------- estimate (a cost model)

CONV_LIKE = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV", "FULLY_CONNECTED")


@dataclass(frozen=True)
class OpShape:
    index: int
    op: str
    inputs: tuple[tuple[int, ...], ...]
    outputs: tuple[tuple[int, ...], ...]


def op_cost_units(op: OpShape) -> int:
    """A roofline-free cost model (pure): multiply-accumulates for conv-like ops, one unit per
    output element for everything else."""
    def n(shape: tuple[int, ...]) -> int:
        return int(math.prod(shape)) if shape else 1

    out = op.outputs[0] if op.outputs else ()
    if op.op == "CONV_2D" and len(op.inputs) >= 2 and len(op.inputs[1]) == 4:
        _, kh, kw, cin = op.inputs[1]
        return n(out) * kh * kw * cin
    if op.op == "DEPTHWISE_CONV_2D" and len(op.inputs) >= 2 and len(op.inputs[1]) == 4:
        _, kh, kw, _ = op.inputs[1]
        return n(out) * kh * kw
    if op.op == "TRANSPOSE_CONV" and len(op.inputs) >= 3 and len(op.inputs[1]) == 4:
        cout, kh, kw, _ = op.inputs[1]
        return n(op.inputs[2]) * kh * kw * cout
    if op.op == "FULLY_CONNECTED" and len(op.inputs) >= 2 and len(op.inputs[1]) == 2:
        return n(out) * op.inputs[1][1]
    return n(out)


def estimate_rows(ops: Sequence[OpShape], whole_ms: float) -> list[LayerRow]:
    """The whole model's time shared among its ops by :func:`op_cost_units` (pure)."""
    units = [op_cost_units(o) for o in ops]
    total = sum(units)
    return [LayerRow(index=o.index, node_type=o.op, name=f"{o.op}@{o.index}", avg_ms=whole_ms * u / total if total else 0.0,
                     pct=100.0 * u / total if total else None, method="estimate",
                     macs_per_lr_pixel=None)
            for o, u in zip(ops, units, strict=True)]



# --------------------------------------------------------------------------- delegate partition

GPU_DELEGATES = ("gpu",)


def _op_list(delegates: Sequence[DelegateRecord], compat: CompatRecord | None) -> tuple[list[str], str]:
    if compat is not None and compat.ops:
        return list(compat.ops), "analyzer"
    host = next((d for d in delegates if d.kind == "ops"), None)
    if host is not None:
        return [o for o in host.ops if o != "DELEGATE"], "host"
    return [], ""


def _overlay_trace(atrace: LayerPassRecord, place: list[str], why: list[str | None], src: list[str]) -> None:
    """An op traced as its own ATrace section ran on the CPU (delegated ops hide in the delegate node)."""
    traced = {int(m.group(1)) for r in atrace.rows if (m := re.search(r"@(\d+)", r.name))
              and not r.node_type.startswith("TfLite")}
    for k in traced:
        if 0 <= k < len(place):
            place[k], src[k] = "cpu", "trace"
            why[k] = why[k] or "traced as its own operator section (delegated ops hide inside the delegate node)"


def partition_table(delegate: str, delegates: Sequence[DelegateRecord], compat: CompatRecord | None,
                    atrace: LayerPassRecord | None = None) -> PartitionRecord:
    """Which ops ran on the delegate and which fell back to the CPU, and why (pure).

    The op list is the model analyzer's (CellRecord.model.compat), else the runtime's own
    (the host runner's ``ops`` record). Placement, strongest evidence first: per-operator
    ATrace sections (an op traced on its own ran on the CPU; delegated ops hide inside the
    delegate node); the tool's log (``Replacing N out of M``: all replaced → all on the
    delegate; the delegate not applied → all on the CPU); for the GPU delegate, the analyzer's
    incompatibility list names the ops that fall back, with its reason. What no source
    settles is ``unknown``.
    """
    ops, first = _op_list(delegates, compat)
    sources = [first]
    if not ops:
        return PartitionRecord(delegate=delegate, missing="no op list: the model analyzer did not run and the "
                               "device tool printed none")
    place: list[str] = ["unknown"] * len(ops)
    why: list[str | None] = [None] * len(ops)
    src: list[str] = [sources[0]] * len(ops)
    partitions: int | None = None
    replaced = next((d for d in delegates if d.kind == "replaced"), None)
    not_applied = next((d for d in delegates if d.kind == "not_applied"), None)
    applied = next((d for d in delegates if d.kind == "applied"), None)
    host_ops = next((d for d in delegates if d.kind == "ops"), None)
    if delegate == "cpu":
        place = ["cpu"] * len(ops)
        why = ["no delegate asked for: TFLite's builtin CPU kernels"] * len(ops)
    elif not_applied is not None:
        place = ["cpu"] * len(ops)
        why = [f"the delegate took nothing: {not_applied.line.strip()}"] * len(ops)
        src = ["log"] * len(ops)
        sources.append("log")
    elif replaced is not None and replaced.total:
        sources.append("log")
        partitions = replaced.partitions
        if replaced.replaced == replaced.total:
            place, src = ["delegate"] * len(ops), ["log"] * len(ops)
        elif delegate in GPU_DELEGATES and compat is not None and compat.gpu_checked:
            bad = {i.op_index: i.reason for i in compat.gpu_issues}
            for k in range(len(ops)):
                place[k] = "cpu" if k in bad else "delegate"
                why[k] = bad.get(k)
                src[k] = "analyzer"
    elif applied is not None and applied.coverage == "full":
        place, src = ["delegate"] * len(ops), ["log"] * len(ops)
        sources.append("log")
    elif host_ops is not None and "DELEGATE" in host_ops.ops:
        partitions = host_ops.ops.count("DELEGATE")
        why = ["the delegate took part of the graph; LiteRT's Python binding does not say which nodes"] * len(ops)
    if atrace is not None and atrace.rows:
        sources.append("trace")
        _overlay_trace(atrace, place, why, src)
    rows = [PartitionRow(index=k, op=op, placement=place[k], reason=why[k], source=src[k]) for k, op in enumerate(ops)]
    return PartitionRecord(delegate=delegate, rows=rows, on_delegate=place.count("delegate"), on_cpu=place.count("cpu"),
                           unknown=place.count("unknown"), partitions=partitions, sources=sorted(set(sources)))


# --------------------------------------------------------------------------- rank agreement


def _conv_rows(p: LayerPassRecord) -> list[LayerRow]:
    return [r for r in p.rows if r.node_type in ("conv", "merged") or r.node_type.upper().startswith("CONV")]


def rank_against_macs(p: LayerPassRecord) -> RankCheckRecord | None:
    """Rank agreement of a pass's conv rows with their MACs (a proxy where nothing else measured);
    rows not resolved (``unresolved``: no number, only an interval) are left out."""
    rows = [r for r in _conv_rows(p) if r.macs_per_lr_pixel and r.unresolved is None]
    if len(rows) < 2:
        return None
    times = [r.avg_ms for r in rows]
    macs = [float(r.macs_per_lr_pixel or 0) for r in rows]
    same_top = times.index(max(times)) in [i for i, m in enumerate(macs) if m == max(macs)]
    return RankCheckRecord(against="macs", spearman=spearman(times, macs), n=len(rows), same_top=same_top,
                           note="conv rows only; MACs are a proxy: element-wise work and memory traffic are not counted")


def rank_between(aligned: AlignedLayersRecord, method: str, other: str,
                 skip_groups: frozenset[str] = frozenset()) -> RankCheckRecord | None:
    """Rank agreement of two methods over the aligned table's groups (pure): each method's time
    per group as the table sums it, by the one stored op → group mapping; only groups both
    methods timed whole (every op seen) count, and none of ``skip_groups`` (a differential's
    unresolved rows). None with fewer than two such groups."""
    cols = {m.method: k for k, m in enumerate(aligned.methods)}
    if method not in cols or other not in cols:
        return None
    a: list[float] = []
    b: list[float] = []
    for row in aligned.rows:
        if row.kind != "group" or skip_groups.intersection(row.groups):
            continue
        x, y = row.cells[cols[method]], row.cells[cols[other]]
        if x.time_ms is None or y.time_ms is None or x.ops_seen < x.ops_total or y.ops_seen < y.ops_total:
            continue
        a.append(x.time_ms)
        b.append(y.time_ms)
    if len(a) < 2:
        return None
    return RankCheckRecord(against=other, spearman=spearman(a, b), n=len(a), same_top=a.index(max(a)) == b.index(max(b)),
                           note="groups of the aligned table: the other method's ops summed into them by the stored "
                                "op → group mapping; only groups both timed whole")


# --------------------------------------------------------------------------- aligned table


def _method_rows(p: LayerPassRecord) -> la.MethodRows:
    return la.MethodRows(method=p.method, total_ms=p.total_ms, missing=p.missing or (None if p.rows else "no rows"),
                         sum_se_ms=p.sum_check.layers_sum_se_ms if p.sum_check is not None else None,
                         rows=tuple(la.MethodRow(name=r.name, node_type=r.node_type, avg_ms=r.avg_ms, se_ms=r.se_ms,
                                                 layers=tuple(r.layers)) for r in p.rows))


def aligned_record(passes: Sequence[LayerPassRecord], ops: Sequence[la.ModelOp], model_file: str) -> AlignedLayersRecord:
    """The passes aligned row for row over the differential groups (pure: analysis.layer_align)."""
    t = la.align(ops, [_method_rows(p) for p in passes])
    untrusted = {p.method: p.unreliable for p in passes if p.unreliable}
    unresolved = {(p.method, r.name): r.unresolved for p in passes for r in p.rows if r.unresolved}

    def why(method: str, groups: Sequence[str]) -> str | None:
        return next((w for g in groups if (w := unresolved.get((method, g))) is not None), None)

    return AlignedLayersRecord(
        model_file=model_file,
        ops=[AlignedOpRecord(index=a.index, op=a.op, group=a.group, how=a.how) for a in t.mapping.ops],
        groups=[OpGroupRecord(name=g.name, layers=list(g.layers), ops=list(g.ops)) for g in t.mapping.groups],
        methods=[AlignedMethodRecord(method=m.method, level=m.level, total_ms=m.total_ms, rows_sum_ms=m.rows_sum_ms,
                                     assigned_ms=m.assigned_ms, unmatched=list(m.unmatched), missing=m.missing,
                                     notes=list(m.notes), unreliable=untrusted.get(m.method))
                 for m in t.methods],
        rows=[AlignedRowRecord(name=r.name, kind=r.kind, groups=list(r.groups), ops=list(r.ops),
                               disagreements=list(r.disagreements),
                               cells=[AlignedCellRecord(method=c.method, time_ms=c.time_ms, se_ms=c.se_ms,
                                                        ops_seen=c.ops_seen, ops_total=c.ops_total, missing=c.missing,
                                                        note=c.note, flagged=c.flagged,
                                                        unresolved=why(c.method, r.groups)) for c in r.cells])
              for r in t.rows],
        tolerance_pct=t.tolerance_pct, se_factor=t.se_factor, notes=list(t.notes))
