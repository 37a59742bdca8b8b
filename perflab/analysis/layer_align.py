"""Per-layer methods aligned row for row (pure): which TFLite ops each differential group
covers, and every method's time summed over those ops.

The per-layer methods name layers differently: the op profile and ATrace by TFLite node
(``[tensor]:7``, ``CONV_2D@2/0``, XNNPACK's ``Delegate/Convolution (NHWC, F32) IGEMM:0``),
the estimate by op (``CONV_2D@2``), the differential by *groups* of Keras layers (a conv with
its activation, merged neighbours, the tail). The finest level at which all of them can be
compared is the group, so:

1. :func:`assign_ops` maps every op of the model to one group, from the Keras layer names that
   TFLite keeps in the op's tensor names (``espcn_x2_1/c2_1/BiasAdd;…``: the group whose layers
   are named most often together with the op's own kind — ``…/convolution`` for a CONV_2D —
   wins, then the one named most often); an op whose names name no layer (``StatefulPartitionedCall:0``)
   joins the group of the op before it in execution order (the first op: the one after it).
   Without groups (no differential rows) every op is its own group.
2. :func:`resolve_rows` finds the ops each row of a method stands for: a node index with its
   op type (``@N``, ``]:N``), a tensor name, XNNPACK's operators matched to the model's ops in
   execution order by type, or a delegate node (``TfLiteGpuDelegateV2``), which stands for every
   op the method does not show on its own.
3. :func:`align` sums each method's rows into the groups: a row inside one group counts there;
   a row that spans groups (a delegate node) is compared on a *span* row over the groups it
   covers (or only in the totals, when it covers them all). Cells say when a method saw only
   some of a group's ops, or none, and why; where two methods' values differ by more than
   both ``tolerance_pct`` of the larger and ``se_factor`` combined standard errors, the row
   says so and both cells are flagged.

Inputs and outputs are plain values: perflab.lab.layers builds them from the stored passes
and stores the result (LayersRecord.aligned).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from perflab.core.display import fmt_fine_ms

TOLERANCE_PCT = 10.0  # methods agree within 10% of the larger value …
SE_FACTOR = 2.0  # … or within two combined standard errors, whichever is wider

# XNNPACK operator type (before " (") → the TFLite builtins it can come from
XNNPACK_OPS: dict[str, tuple[str, ...]] = {
    "Convolution": ("CONV_2D", "DEPTHWISE_CONV_2D"),
    "Deconvolution": ("TRANSPOSE_CONV",),
    "Fully Connected": ("FULLY_CONNECTED",),
    "Add": ("ADD",),
    "Multiply": ("MUL",),
    "Subtract": ("SUB",),
    "Divide": ("DIV",),
    "Depth To Space": ("DEPTH_TO_SPACE",),
    "Space To Depth": ("SPACE_TO_DEPTH",),
    "Clamp": ("MINIMUM", "MAXIMUM", "RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1"),
    "Maximum": ("MAXIMUM",),
    "Minimum": ("MINIMUM",),
    "Tanh": ("TANH",),
    "Sigmoid": ("LOGISTIC",),
    "PReLU": ("PRELU",),
    "Leaky ReLU": ("LEAKY_RELU",),
    "ELU": ("ELU",),
    "HardSwish": ("HARD_SWISH",),
    "Copy": ("CONCATENATION", "RESHAPE", "STRIDED_SLICE", "SLICE", "PAD"),
    "Concatenate": ("CONCATENATION",),
    "Slice": ("STRIDED_SLICE", "SLICE"),
    "Constant Pad": ("PAD", "PADV2"),
    "Transpose": ("TRANSPOSE",),
    "Resize Bilinear": ("RESIZE_BILINEAR",),
    "Max Pooling": ("MAX_POOL_2D",),
    "Average Pooling": ("AVERAGE_POOL_2D",),
    "Convert": ("QUANTIZE", "DEQUANTIZE"),
    "Softmax": ("SOFTMAX",),
    "Mean": ("MEAN",),
    "Square": ("SQUARE",),
}


@dataclass(frozen=True)
class ModelOp:
    """One op of the model file, in execution order (index = TFLite node index)."""

    index: int
    op: str  # CONV_2D …
    tensor_names: str = ""  # its output and constant-input tensor names, joined with ";"

    @property
    def label(self) -> str:
        return f"{self.op}@{self.index}"


@dataclass(frozen=True)
class GroupDef:
    """A differential row: its name and the Keras layers it covers."""

    name: str
    layers: tuple[str, ...]


@dataclass(frozen=True)
class MethodRow:
    name: str
    node_type: str
    avg_ms: float
    se_ms: float | None = None
    layers: tuple[str, ...] = ()  # a differential row: the Keras layers it covers


@dataclass(frozen=True)
class MethodRows:
    """One method's pass: its rows, its own total and why it has none."""

    method: str
    rows: tuple[MethodRow, ...] = ()
    total_ms: float | None = None
    missing: str | None = None
    sum_se_ms: float | None = None  # the se of all rows' sum, correlations counted (the differential's fit)


@dataclass(frozen=True)
class OpAssignment:
    index: int
    op: str
    group: str
    how: str  # name (its tensor names name the group's layers) / order (the op before or after) / op


@dataclass(frozen=True)
class GroupOps:
    """Which ops a group covers (the stored mapping)."""

    name: str
    layers: tuple[str, ...]
    ops: tuple[int, ...]


@dataclass(frozen=True)
class Mapping:
    groups: tuple[GroupOps, ...]
    ops: tuple[OpAssignment, ...]
    notes: tuple[str, ...] = ()

    def group_of(self) -> dict[int, str]:
        return {a.index: a.group for a in self.ops}


@dataclass(frozen=True)
class RowTarget:
    """What one method row stands for: model ops (or a group, for a differential row)."""

    row: MethodRow
    ops: frozenset[int] = frozenset()
    groups: frozenset[str] = frozenset()
    how: str = ""  # index / tensor / xnnpack-order / delegate / group
    unmatched: str | None = None  # why no op could be found


@dataclass(frozen=True)
class AlignedCell:
    method: str
    time_ms: float | None = None
    se_ms: float | None = None
    ops_seen: int = 0
    ops_total: int = 0
    missing: str | None = None  # why there is no value
    note: str | None = None  # partial: which ops it did not see
    flagged: bool = False  # disagrees with another method on this row


@dataclass(frozen=True)
class AlignedRow:
    name: str
    kind: str  # group / span / total
    groups: tuple[str, ...]
    ops: tuple[str, ...]  # op labels (CONV_2D@0 …)
    cells: tuple[AlignedCell, ...]  # one per method, in the methods' order
    disagreements: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlignedMethod:
    method: str
    level: str  # group / op / total / missing
    total_ms: float | None  # the pass's own total
    rows_sum_ms: float | None  # the sum of all its rows
    assigned_ms: float | None  # the sum of the rows matched to ops
    unmatched: tuple[str, ...] = ()  # rows matched to no op, each with why
    missing: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlignedTable:
    mapping: Mapping
    methods: tuple[AlignedMethod, ...]
    rows: tuple[AlignedRow, ...]  # groups (and spans) in execution order, then the totals row
    tolerance_pct: float
    se_factor: float
    notes: tuple[str, ...] = ()


# --------------------------------------------------------------------------- ops → groups


# TFLite op → the TensorFlow op names (last part of a tensor name) it is converted from. A
# tensor name that names a layer *and* the op's own kind outweighs names of fused neighbours
# (a conv whose output name also lists the clip and pixel shuffle fused after it).
_TF_KINDS: dict[str, tuple[str, ...]] = {
    "CONV_2D": ("convolution", "BiasAdd", "Conv2D", "Relu", "Relu6"),
    "DEPTHWISE_CONV_2D": ("depthwise", "BiasAdd", "Relu", "Relu6"),
    "TRANSPOSE_CONV": ("conv2d_transpose", "BiasAdd"),
    "FULLY_CONNECTED": ("MatMul", "BiasAdd", "Tensordot"),
    "DEPTH_TO_SPACE": ("DepthToSpace",),
    "SPACE_TO_DEPTH": ("SpaceToDepth",),
    "MINIMUM": ("Minimum",),
    "MAXIMUM": ("Maximum",),
    "ADD": ("Add", "add"),
    "SUB": ("Sub", "sub"),
    "MUL": ("Mul", "mul"),
    "CONCATENATION": ("concat",),
    "STRIDED_SLICE": ("strided_slice",),
    "TANH": ("Tanh",),
    "LOGISTIC": ("Sigmoid",),
    "RELU": ("Relu",),
    "PRELU": ("add", "Relu", "mul", "Neg"),
}


def _layer_pattern(layer: str) -> re.Pattern[str]:
    return re.compile(rf"(^|/){re.escape(layer)}(_\d+)?(/|$)")


def _score(op: ModelOp, parts: Sequence[str], pats: Sequence[re.Pattern[str]]) -> tuple[int, int]:
    """(parts naming one of the layers and the op's own kind, parts naming one of the layers)."""
    kinds = _TF_KINDS.get(op.op, ())
    named = [p for p in parts if any(pat.search(p) for pat in pats)]
    typed = [p for p in named if kinds and p.rsplit("/", 1)[-1].startswith(kinds)]
    return len(typed), len(named)


def assign_ops(ops: Sequence[ModelOp], groups: Sequence[GroupDef]) -> Mapping:
    """Every op to exactly one group (see the module doc); without groups, one group per op."""
    if not groups:
        return Mapping(groups=tuple(GroupOps(name=o.label, layers=(), ops=(o.index,)) for o in ops),
                       ops=tuple(OpAssignment(index=o.index, op=o.op, group=o.label, how="op") for o in ops),
                       notes=("no differential groups: one row per op",))
    pats = [[_layer_pattern(la) for la in g.layers] for g in groups]
    by_name: list[int | None] = []
    for o in ops:
        parts = [p for p in o.tensor_names.split(";") if p]
        scores = [_score(o, parts, gp) for gp in pats]
        best = max(scores) if scores else (0, 0)
        by_name.append(scores.index(best) if best[1] > 0 else None)
    notes: list[str] = []
    if ops and all(g is None for g in by_name):
        notes.append("no op's tensor names name a layer of the differential groups: ops assigned by order only")
    chosen: list[tuple[int, str]] = []
    for k, g in enumerate(by_name):
        if g is not None:
            chosen.append((g, "name"))
            continue
        before = next((by_name[j] for j in range(k - 1, -1, -1) if by_name[j] is not None), None)
        after = next((by_name[j] for j in range(k + 1, len(by_name)) if by_name[j] is not None), None)
        pick = before if before is not None else after
        if pick is None:  # nothing named at all: share the ops out over the groups in order
            pick = min(len(groups) - 1, k * len(groups) // max(1, len(ops)))
        chosen.append((pick, "order"))
    assigned = tuple(OpAssignment(index=o.index, op=o.op, group=groups[g].name, how=how)
                     for o, (g, how) in zip(ops, chosen, strict=True))
    out = tuple(GroupOps(name=g.name, layers=g.layers,
                         ops=tuple(a.index for a in assigned if a.group == g.name)) for g in groups)
    for go in out:
        if not go.ops:
            notes.append(f"group {go.name} covers no op of the model (its work is fused into a neighbour's op)")
    return Mapping(groups=out, ops=assigned, notes=tuple(notes))


# --------------------------------------------------------------------------- rows → ops


def is_delegate_node(node_type: str) -> bool:
    """A delegate kernel node (TfLiteGpuDelegateV2, TfLiteXNNPackDelegate, DELEGATE …)."""
    return node_type == "DELEGATE" or (node_type.startswith("TfLite") and "Delegate" in node_type)


_AT = re.compile(r"@(\d+)(?:/(\d+))?$")  # ATrace CONV_2D@2/0, estimate CONV_2D@2
_BRACKET = re.compile(r"^\[(.*)\]:(\d+)$")  # benchmark_model: [tensor;names]:7
_XNN = re.compile(r"^Delegate/(.+):(\d+)$")  # benchmark_model with XNNPACK: Delegate/<xnn op>:k


def _xnn_kind(node_type: str) -> str:
    return node_type.split(" (", 1)[0].strip()


def _resolve_node(r: MethodRow, ops: Sequence[ModelOp], group_of: dict[int, str]) -> RowTarget:
    """A row named by node index (``[tensor]:7``, ``CONV_2D@2/0``, ``CONV_2D@2``) or tensor name."""
    by_index = {o.index: o for o in ops}
    idx: int | None = None
    how = "index"
    why = "the row's name carries no node index or tensor name of this model"
    if mb := _BRACKET.match(r.name):
        i = int(mb.group(2))
        if i in by_index and by_index[i].op == r.node_type:
            idx = i
        else:
            first = mb.group(1).split(";")[0]
            idx, how = next((o.index for o in ops if first and first in o.tensor_names.split(";")), None), "tensor"
            why = f"node {i} is not a {r.node_type} and no op has the tensor {first!r}"
    elif ma := _AT.search(r.name):
        i, sub = int(ma.group(1)), ma.group(2)
        if sub not in (None, "0"):
            why = f"subgraph {sub} (only the primary subgraph is aligned)"
        elif i in by_index and (by_index[i].op == r.node_type or r.name.startswith(by_index[i].op + "@")):
            idx = i
        elif i in by_index:
            why = f"node {i} of the model is a {by_index[i].op}, not a {r.node_type}"
        else:
            why = f"the model has no node {i} ({len(ops)} ops)"
    if idx is None:
        return RowTarget(row=r, unmatched=why)
    return RowTarget(row=r, ops=frozenset({idx}), groups=frozenset({group_of[idx]}), how=how)


def _resolve_xnnpack(rows: Sequence[MethodRow], ops: Sequence[ModelOp], group_of: dict[int, str]) -> list[RowTarget]:
    """XNNPACK numbers its own operators: match them, in their order, to the model's ops in
    execution order, by type (a second operator of one node — a split copy — takes the same op)."""
    out: list[RowTarget] = []
    pos, prev = 0, None
    for r in rows:
        kinds = XNNPACK_OPS.get(_xnn_kind(r.node_type))
        if kinds is None:
            out.append(RowTarget(row=r, unmatched=f"XNNPACK operator type {r.node_type!r} has no known TFLite op"))
            continue
        j = next((j for j in range(pos, len(ops)) if ops[j].op in kinds), None)
        if j is None and prev is not None and ops[prev].op in kinds:
            j = prev
        if j is None:
            out.append(RowTarget(row=r, unmatched=f"no {'/'.join(kinds)} op left in execution order"))
            continue
        o = ops[j]
        out.append(RowTarget(row=r, ops=frozenset({o.index}), groups=frozenset({group_of[o.index]}),
                             how="xnnpack-order"))
        pos, prev = max(pos, j + 1), j
    return out


def resolve_rows(m: MethodRows, ops: Sequence[ModelOp], mapping: Mapping) -> list[RowTarget]:
    """The ops (or group) each row of ``m`` stands for, in the rows' order."""
    group_of = mapping.group_of()
    groups = {g.name: g for g in mapping.groups}
    out: dict[int, RowTarget] = {}
    delegates: list[int] = []
    xnn: list[tuple[int, int]] = []  # (XNNPACK operator index, row position)
    for k, r in enumerate(m.rows):
        if r.layers or (m.method == "differential" and r.name in groups):
            g = groups.get(r.name)
            out[k] = (RowTarget(row=r, ops=frozenset(g.ops), groups=frozenset({r.name}), how="group") if g
                      else RowTarget(row=r, unmatched=f"no group named {r.name}"))
        elif is_delegate_node(r.node_type):
            delegates.append(k)
        elif mx := _XNN.match(r.name):
            xnn.append((int(mx.group(2)), k))
        else:
            out[k] = _resolve_node(r, ops, group_of)
    xs = sorted(xnn)
    out.update(zip([k for _, k in xs], _resolve_xnnpack([m.rows[k] for _, k in xs], ops, group_of), strict=True))
    seen = {i for t in out.values() for i in t.ops}
    covered = frozenset(o.index for o in ops if o.index not in seen)
    for k in delegates:  # together, the delegate nodes stand for every op not shown on its own
        r = m.rows[k]
        out[k] = (RowTarget(row=r, ops=covered, groups=frozenset(group_of[i] for i in covered), how="delegate")
                  if covered else RowTarget(row=r, unmatched="a delegate node, but the method shows every op on its own"))
    return [out[k] for k in range(len(m.rows))]


# --------------------------------------------------------------------------- the aligned table


def _sum_se(xs: Sequence[float | None]) -> float | None:
    if not xs or any(x is None for x in xs):
        return None
    return math.sqrt(sum(float(x) ** 2 for x in xs if x is not None))


def _disagreements(cells: list[AlignedCell], tolerance_pct: float, se_factor: float) -> tuple[list[AlignedCell],
                                                                                             list[str]]:
    texts: list[str] = []
    flagged: set[int] = set()
    comparable = [(k, c) for k, c in enumerate(cells) if c.time_ms is not None and c.note is None]
    for a in range(len(comparable)):
        for b in range(a + 1, len(comparable)):
            (ka, ca), (kb, cb) = comparable[a], comparable[b]
            va, vb = float(ca.time_ms or 0.0), float(cb.time_ms or 0.0)
            big = max(abs(va), abs(vb))
            unc = se_factor * math.hypot(ca.se_ms or 0.0, cb.se_ms or 0.0)
            tol = max(tolerance_pct / 100.0 * big, unc)
            if abs(va - vb) > tol:
                flagged.update((ka, kb))
                rel = f"{(va - vb) / vb * 100.0:+.0f}%" if vb else "∞"
                texts.append(f"{ca.method} {fmt_fine_ms(va)} ms vs {cb.method} {fmt_fine_ms(vb)} ms ({rel}; beyond "
                             f"±{tolerance_pct:g}%" + (f" and {se_factor:g}σ = {fmt_fine_ms(unc)} ms" if unc else "") + ")")
    return [c if k not in flagged else _flag(c) for k, c in enumerate(cells)], texts


def _flag(c: AlignedCell) -> AlignedCell:
    return replace(c, flagged=True)


def _cell(method: MethodRows, targets: list[RowTarget], span: frozenset[str], span_ops: frozenset[int],
          labels: dict[int, str], coarse_missing: str | None) -> AlignedCell:
    """The method's time over the groups ``span``: the sum of its rows that lie inside."""
    if method.missing:
        return AlignedCell(method=method.method, missing=method.missing, ops_total=len(span_ops))
    if coarse_missing:
        return AlignedCell(method=method.method, missing=coarse_missing, ops_total=len(span_ops))
    inside = [t for t in targets if t.groups and t.groups <= span]
    across = [t for t in targets if t.groups and t.groups & span and not t.groups <= span]
    if not inside:
        if across:
            t = across[0]
            return AlignedCell(method=method.method, ops_total=len(span_ops),
                               missing=f"inside {t.row.name}, which spans {', '.join(sorted(t.groups))}: "
                                       "compared on the row of those groups")
        if span_ops:
            return AlignedCell(method=method.method, ops_total=len(span_ops),
                               missing="no row for " + ", ".join(labels[i] for i in sorted(span_ops)))
        return AlignedCell(method=method.method, missing="the group covers no op of the model")
    seen = frozenset(i for t in inside for i in t.ops) & span_ops
    note = None
    unseen = sorted(span_ops - seen)
    if unseen and not any(t.how == "group" for t in inside):
        note = f"{len(seen)} of {len(span_ops)} ops (no row for {', '.join(labels[i] for i in unseen)})"
    if across:
        extra = f"part inside {across[0].row.name}, which spans {', '.join(sorted(across[0].groups))}"
        note = f"{note}; {extra}" if note else extra
    return AlignedCell(method=method.method, time_ms=sum(t.row.avg_ms for t in inside),
                       se_ms=_sum_se([t.row.se_ms for t in inside]),
                       ops_seen=len(span_ops) if any(t.how == "group" for t in inside) else len(seen),
                       ops_total=len(span_ops), note=note)


def _spans(methods: Sequence[MethodRows], targets: dict[str, list[RowTarget]],
           order: list[str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Groups joined by rows that cover several (delegate nodes): the span rows (keyed by their
    last group) and the methods one of whose rows covers every group (compared in the totals)."""
    parent = {g: g for g in order}

    def find(g: str) -> str:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g
    coarse: dict[str, str] = {}
    every = frozenset(order)
    for m in methods:
        for t in targets[m.method]:
            if len(t.groups) > 1 and t.groups != every:
                first, *rest = sorted(t.groups, key=order.index)
                for g in rest:
                    parent[find(g)] = find(first)
            elif len(t.groups) > 1:
                coarse[m.method] = f"one {t.row.node_type} node covers every group: compared in the totals only"
    comps: dict[str, list[str]] = {}
    for g in order:
        comps.setdefault(find(g), []).append(g)
    return {c[-1]: c for c in comps.values() if len(c) > 1}, coarse


def _method_summary(m: MethodRows, ts: list[RowTarget], coarse: bool) -> AlignedMethod:
    if m.missing:
        return AlignedMethod(method=m.method, level="missing", total_ms=m.total_ms, rows_sum_ms=None,
                             assigned_ms=None, missing=m.missing)
    unmatched = tuple(f"{t.row.name}: {t.unmatched}" for t in ts if t.unmatched)
    level = "total" if coarse else "group" if any(t.how == "group" for t in ts) else "op"
    notes: list[str] = []
    if unmatched:
        notes.append(f"{len(unmatched)} row(s) matched to no op of the model: in its rows' sum, not in any group")
    hows = {t.how for t in ts if not t.unmatched}
    if "xnnpack-order" in hows:
        notes.append("XNNPACK numbers its own operators: they are matched to the model's ops in execution order, "
                     "by type")
    if "delegate" in hows:
        notes.append("a delegate node stands for every op the method does not show on its own")
    if "group" in hows:
        notes.append("its first group also carries the fixed per-invoke cost (input handling, the interpreter "
                     "call), which per-op methods do not count")
    return AlignedMethod(method=m.method, level=level, total_ms=m.total_ms,
                         rows_sum_ms=sum(r.avg_ms for r in m.rows),
                         assigned_ms=sum(t.row.avg_ms for t in ts if not t.unmatched), unmatched=unmatched,
                         notes=tuple(notes))


def align(ops: Sequence[ModelOp], methods: Sequence[MethodRows], *, groups: Sequence[GroupDef] | None = None,
          tolerance_pct: float = TOLERANCE_PCT, se_factor: float = SE_FACTOR) -> AlignedTable:
    """The aligned table (see the module doc). ``groups`` default to the differential pass's
    rows (those that list their layers); without them, each op is a row."""
    if groups is None:
        diff = next((m for m in methods if m.method == "differential" and not m.missing), None)
        groups = [GroupDef(r.name, r.layers) for r in diff.rows if r.layers] if diff is not None else []
    mapping = assign_ops(ops, groups)
    labels = {o.index: o.label for o in ops}
    group_ops = {g.name: frozenset(g.ops) for g in mapping.groups}
    order = [g.name for g in mapping.groups]
    targets = {m.method: resolve_rows(m, ops, mapping) if not m.missing else [] for m in methods}
    spans_after, coarse = _spans(methods, targets, order)

    def row(name: str, kind: str, span: list[str]) -> AlignedRow:
        sops = frozenset(i for g in span for i in group_ops[g])
        cells = [_cell(m, targets[m.method], frozenset(span), sops, labels,
                       coarse.get(m.method) if kind != "total" else None) for m in methods]
        if kind == "total":  # the fit's own se of the sum, where the rows' errors are correlated
            cells = [replace(c, se_ms=m.sum_se_ms) if m.sum_se_ms is not None and c.time_ms is not None
                     and not any(t.unmatched for t in targets[m.method]) else c for c, m in zip(cells, methods, strict=True)]
        cells, dis = _disagreements(cells, tolerance_pct, se_factor)
        return AlignedRow(name=name, kind=kind, groups=tuple(span), ops=tuple(labels[i] for i in sorted(sops)),
                          cells=tuple(cells), disagreements=tuple(dis))
    rows: list[AlignedRow] = []
    for g in order:
        rows.append(row(g, "group", [g]))
        if g in spans_after:
            rows.append(row(" + ".join(spans_after[g]), "span", spans_after[g]))
    rows.append(row("total", "total", order))
    return AlignedTable(mapping=mapping, methods=tuple(_method_summary(m, targets[m.method], m.method in coarse)
                                                       for m in methods),
                        rows=tuple(rows), tolerance_pct=tolerance_pct, se_factor=se_factor, notes=mapping.notes)
