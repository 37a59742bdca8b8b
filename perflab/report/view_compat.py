"""Delegate compatibility in the run report: op counts, GPU issues (the depth-to-space trap) and
what the delegate said at run time. Pure, no I/O; rules in :mod:`perflab.report.view_common`."""

from __future__ import annotations

from dataclasses import dataclass

from perflab.core.display import fmt_size
from perflab.report.view_common import anchor_for, cell_key, cell_label, device_name, is_emulated
from perflab.store.results import CellRecord, CellStatus, CompatRecord, DelegateRecord, RunRecord


@dataclass
class OpCountView:
    name: str
    count: int
    trap: bool  # the classic SR trap: depth-to-space / pixel shuffle
    rejected: bool  # named in a GPU issue


@dataclass
class GpuIssueView:
    op_index: int
    op_name: str
    reason: str
    source: str
    trap: bool


@dataclass
class DelegateLogLine:
    text: str
    verdict: str | None = None  # a plain-words reading of a line the report understands
    cls: str = ""


@dataclass
class DelegateRunView:
    """What one device did with this model under one delegate: the tool's own delegate lines."""

    cell_id: str
    anchor: str
    device: str
    delegate: str
    status: str
    ok: bool
    emulated: bool
    reason: str | None
    lines: list[DelegateLogLine]


@dataclass
class CompatView:
    """One model variant (deduplicated by sha256): the analyzer's op list and GPU verdict, and the devices' logs."""

    anchor: str
    title: str
    family: str
    scale: int
    sha256: str | None
    size: str | None
    source: str | None
    missing_reason: str | None  # no analyzer report, and why
    ops: list[OpCountView]
    n_ops: int
    verdict: str
    verdict_cls: str  # good / bad / muted
    issues: list[GpuIssueView]
    trap_present: bool
    trap_rejected: bool
    runs: list[DelegateRunView]
    emulated: bool


TRAP_OPS = {"DEPTH_TO_SPACE": "depth-to-space (pixel shuffle)"}


def is_trap(op_name: str, reason: str = "") -> bool:
    """Depth-to-space / pixel shuffle: the up-sampling op of most SR nets, and the op GPU delegates reject."""
    text = f"{op_name} {reason}".lower()
    return (op_name.upper() in TRAP_OPS or "depth_to_space" in text or "depthtospace" in text
            or ("pixel" in text and "shuffle" in text))


def read_delegate_record(rec: DelegateRecord) -> DelegateLogLine:
    """A delegate line as the device's tool printed it, with a plain-words reading of the structured record the run
    stored (parsed once, at run time). A line the run kept verbatim (``kind`` ``line``, or any line of a
    perflab.results/1 file) gets no reading."""
    name = rec.delegate or "the delegate"
    if rec.kind == "replaced" and rec.replaced is not None and rec.total is not None:
        parts = f" in {rec.partitions} partition(s)" if rec.partitions is not None else ""
        if rec.replaced == rec.total:
            return DelegateLogLine(rec.line, f"all {rec.total} nodes on {name}{parts}", "good")
        return DelegateLogLine(rec.line, f"{rec.replaced} of {rec.total} nodes on {name}{parts}; "
                               f"{rec.total - rec.replaced} node(s) fell back to CPU", "bad")
    if rec.kind == "applied":
        if rec.coverage == "full":
            return DelegateLogLine(rec.line, f"whole graph on {name}", "good")
        return DelegateLogLine(rec.line, f"graph only partly on {name}: the rest runs on CPU", "bad")
    if rec.kind == "not_applied":
        return DelegateLogLine(rec.line, f"{name} delegate not used: the whole graph runs on CPU", "bad")
    if rec.kind == "ops":
        n_del = sum(1 for x in rec.ops if x == "DELEGATE")
        if n_del:
            return DelegateLogLine(rec.line, f"host LiteRT: {n_del} delegate node(s) in the graph (this line does "
                                   "not say which ops each took)", "muted")
        return DelegateLogLine(rec.line, "host LiteRT: no delegate node, every op on the built-in CPU kernels", "muted")
    return DelegateLogLine(rec.line)


def _model_key(cell: CellRecord) -> str:
    m = cell.model
    return m.sha256 or f"{m.name}\x00{m.variant}\x00{m.scale}"


def _compat_missing_reason(cells: list[CellRecord]) -> str:
    """Why a model has no analyzer report: the reason the run stored, or the status its cells ended in."""
    stored = next((c.model.missing["compat"] for c in cells if "compat" in c.model.missing), None)
    if stored is not None:
        return stored
    not_ok = [c for c in cells if c.status != CellStatus.OK]
    if not_ok and len(not_ok) == len(cells):
        return (f"not analysed: the cell ended {not_ok[0].status} before the analyzer ran "
                f"({not_ok[0].reason or 'no reason recorded'})")
    return "no analyzer report recorded for this model (no reason given)"


def _gpu_verdict(compat: CompatRecord | None, issues: list[GpuIssueView]) -> tuple[str, str]:
    """The analyzer's GPU-delegate verdict in words, and its class (good / bad / muted)."""
    if compat is None:
        return "no analyzer report", "muted"
    if not compat.gpu_checked:
        return "GPU check not run by the analyzer", "muted"
    if issues:
        n_ops = len({(i.op_index, i.op_name) for i in issues})
        return f"GPU delegate would reject {n_ops} op(s): they run on CPU, splitting the graph", "bad"
    if compat.gpu_compatible:
        rt = f" (TFLite runtime {compat.runtime_version})" if compat.runtime_version else ""
        return f"GPU delegate: compatible{rt}", "good"
    return "GPU check ran but gave no verdict", "muted"


def build_compat(run: RunRecord) -> list[CompatView]:
    """One entry per model variant (by sha256), in run order: analyzer op counts, GPU verdict and rejects, and for
    each device and delegate the tool's own delegate lines."""
    by_key: dict[str, list[CellRecord]] = {}
    for c in run.cells:
        by_key.setdefault(_model_key(c), []).append(c)
    out: list[CompatView] = []
    for key, cells in by_key.items():
        model = cells[0].model
        compat = next((c.model.compat for c in cells if c.model.compat is not None), None)
        missing_reason = _compat_missing_reason(cells) if compat is None else None
        issues: list[GpuIssueView] = []
        ops: list[OpCountView] = []
        if compat is not None:
            issues = [GpuIssueView(i.op_index, i.op_name, i.reason, i.source, is_trap(i.op_name, i.reason))
                      for i in compat.gpu_issues]
            rejected = {i.op_name for i in compat.gpu_issues}
            counts = dict(compat.op_counts)
            if not counts:
                for o in compat.ops:
                    counts[o] = counts.get(o, 0) + 1
            ops = [OpCountView(n, k, is_trap(n), n in rejected) for n, k in counts.items()]
        verdict, vcls = _gpu_verdict(compat, issues)
        runs = [
            DelegateRunView(
                cell_id=cell_key(run, c), anchor=anchor_for(cell_key(run, c)), device=device_name(c.device),
                delegate=c.delegate, status=str(c.status), ok=c.status == CellStatus.OK, emulated=is_emulated(c),
                reason=c.reason if c.status != CellStatus.OK else None,
                lines=[read_delegate_record(x) for x in c.delegates],
            )
            for c in cells
        ]
        emul = all(is_emulated(c) for c in cells)
        out.append(CompatView(
            anchor="compat-" + anchor_for(key)[5:][:40],
            title=cell_label(cells[0]),
            family=model.family,
            scale=model.scale,
            sha256=model.sha256,
            size=fmt_size(model.size_bytes) if model.size_bytes is not None else None,
            source=compat.source if compat is not None else None,
            missing_reason=missing_reason,
            ops=ops,
            n_ops=sum(o.count for o in ops),
            verdict=verdict,
            verdict_cls=vcls,
            issues=issues,
            trap_present=any(o.trap for o in ops) or any(i.trap for i in issues),
            trap_rejected=any(i.trap for i in issues),
            runs=runs,
            emulated=emul,
        ))
    return out
