"""The run report's view model: RunRecord → display-ready rows (:func:`build_view`), assembled from its
parts (perflab.report.view_*: common ground, main rows, the answer and costs, telemetry, layers,
frames, compatibility). Pure, no I/O; the rules the whole view keeps are in
:mod:`perflab.report.view_common`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from perflab.core.display import MISSING
from perflab.core.units import frame_budget_ms
from perflab.report import view_common as vc
from perflab.report.view_answer import AnswerDevice, build_answer
from perflab.report.view_compat import CompatView, build_compat
from perflab.report.view_frames import FrameTableView, build_frame_tables
from perflab.report.view_layers import LayersMissingView, LayersView, build_layers, build_layers_missing
from perflab.report.view_rows import RowBuilder, RowView
from perflab.report.view_telemetry import TelemetryTableView, build_telemetry_tables
from perflab.store.results import CellStatus, DeviceRecord, ProvenanceRecord, RunRecord


@dataclass
class GroupView:
    """The cells of one device and delegate, baseline first."""

    delegate: str
    baseline_id: str | None
    rows: list[RowView]
    gpu_rejects: list[str] = field(default_factory=list)  # models here whose ops the analyzer says a GPU rejects


@dataclass
class DeviceView:
    device: DeviceRecord
    emulated: bool
    anchor: str
    groups: list[GroupView]


@dataclass
class ProblemView:
    cell_id: str
    anchor: str
    device: str
    label: str
    delegate: str
    status: str
    reason: str
    emulated: bool


@dataclass
class WarningView:
    cell_id: str
    anchor: str
    device: str
    label: str
    delegate: str
    code: str
    message: str
    emulated: bool


@dataclass
class IncompleteView:
    """Why the run is not complete, and which cells it lacks."""

    reason: str
    never_ran: list[str]  # "device · cell id" of planned cells with no record
    interrupted: list[tuple[str, str]]  # ("device · cell id", reason) of cells marked interrupted
    unknown_plan: bool  # the results file does not list the planned cells (perflab.results/1)


@dataclass
class WarningItem:
    """One warning text and every cell that carries it."""

    message: str
    cells: list[WarningView]  # a run-level warning has one entry with an empty cell_id


@dataclass
class WarningGroup:
    code: str
    title: str
    count: int  # warnings of this kind
    n_cells: int  # cells that carry one (0: the warning is about the whole run)
    items: list[WarningItem]


@dataclass
class ReportView:
    run: RunRecord
    fps: float | None
    budget_ms: float | None
    any_emulated: bool
    devices: list[DeviceView]
    problems: list[ProblemView]
    warnings: list[WarningView]
    layers: list[LayersView]
    frame_tables: list[FrameTableView]
    compat: list[CompatView]
    footnotes: vc.Footnotes
    counts: dict[str, int] = field(default_factory=dict)
    answer: list[AnswerDevice] = field(default_factory=list)
    incomplete: IncompleteView | None = None
    warning_groups: list[WarningGroup] = field(default_factory=list)
    layers_missing: list[LayersMissingView] = field(default_factory=list)
    telemetry: list[TelemetryTableView] = field(default_factory=list)
    #: the imported cells' provenance, one per capture (``perflab import``); every cell imported:
    #: each place a cell appears carries the IMPORTED badge
    imported: list[ProvenanceRecord] = field(default_factory=list)
    all_imported: bool = False


def build_view(run: RunRecord) -> ReportView:
    notes = vc.Footnotes()
    rb = RowBuilder(run, notes)
    answer = build_answer(run, rb)  # first on the page, so its footnotes are numbered first
    devices: list[DeviceView] = []
    for dev, groups in vc.grouped_cells(run):
        gviews = []
        for delegate, members in groups:
            base = next((c for c in members if c.baseline), None)
            rows = [rb.row(c) for c in members]
            rejects = list(dict.fromkeys(
                f"{vc.cell_label(c)} ({', '.join(dict.fromkeys(i.op_name for i in c.model.compat.gpu_issues))})"
                for c in members if c.model.compat is not None and c.model.compat.gpu_issues
            )) if "gpu" in delegate.lower() else []
            gviews.append(GroupView(delegate, vc.cell_key(run, base) if base else None, rows, rejects))
        dev_emul = vc.device_emulated(dev) or any(vc.is_emulated(c) for d, m in groups for c in m)
        devices.append(DeviceView(dev, dev_emul, vc.html_id("dev", dev.serial), gviews))

    problems = [
        ProblemView(vc.cell_key(run, c), vc.anchor_for(vc.cell_key(run, c)), vc.device_name(c.device), vc.cell_label(c), c.delegate, str(c.status),
                    c.reason or "no reason recorded", vc.is_emulated(c))
        for c in run.cells if c.status != CellStatus.OK
    ]
    warnings = [WarningView("", "answer", "whole run", "run", MISSING, w.code, w.message, False) for w in run.warnings]
    warnings += [
        WarningView(vc.cell_key(run, c), vc.anchor_for(vc.cell_key(run, c)), vc.device_name(c.device), vc.cell_label(c), c.delegate, w.code,
                    w.message, vc.is_emulated(c))
        for c in run.cells for w in c.warnings
    ]
    counts: dict[str, int] = {}
    for c in run.cells:
        counts[str(c.status)] = counts.get(str(c.status), 0) + 1
    return ReportView(
        run=run,
        fps=run.scenario.fps,
        budget_ms=frame_budget_ms(run.scenario.fps),
        any_emulated=any(vc.is_emulated(c) for c in run.cells) or any(vc.device_emulated(d) for d in run.devices),
        imported=list({(p.source_file, p.sha256): p for c in run.cells if (p := c.provenance) is not None}.values()),
        all_imported=bool(run.cells) and all(vc.is_imported(c) for c in run.cells),
        devices=devices,
        problems=problems,
        warnings=warnings,
        layers=build_layers(run, notes),
        frame_tables=build_frame_tables(run, notes),
        compat=build_compat(run),
        footnotes=notes,
        counts=counts,
        answer=answer,
        incomplete=build_incomplete(run),
        warning_groups=group_warnings(warnings),
        layers_missing=build_layers_missing(run),
        telemetry=build_telemetry_tables(run, notes),
    )


def build_incomplete(run: RunRecord) -> IncompleteView | None:
    """None when the run measured every planned cell; else why it stopped and what it lacks."""
    recorded = {(c.device.serial, c.cell_id) for c in run.cells}
    names = {d.serial: vc.device_name(d) for d in vc.ordered_devices(run)}
    never = [f"{names.get(p.serial, p.serial)} · {p.cell_id}" for p in run.planned
             if (p.serial, p.cell_id) not in recorded]
    interrupted = [(f"{vc.device_name(c.device)} · {c.cell_id}", c.reason or "no reason recorded")
                   for c in run.cells if c.status == CellStatus.INTERRUPTED]
    unknown_plan = not run.planned
    if run.stop is None and not never and not interrupted and run.finished_utc is not None:
        return None
    if run.stop is not None:
        sig = f" ({run.stop.signal})" if run.stop.signal else ""
        reason = f"the run was stopped{sig} at {run.stop.at_utc}: {run.stop.reason}"
    elif run.finished_utc is None:
        reason = "the run has no finish time: it ended before writing its final record"
    else:
        reason = "some planned cells have no finished record"
    return IncompleteView(reason, never, interrupted, unknown_plan)


WARNING_TITLES = {
    "high_cv": "Unstable timing (high coefficient of variation)",
    "drift": "Latency drifted during the series",
    "bimodal": "Two latency levels (bimodal)",
    "outliers": "Outliers",
    "too_few": "Too few timed runs",
    "unchecked": "Stability not checked",
    "emulated": "Emulated numbers",
    "tool": "Warnings printed by the device's tool",
    "training_images": "Quality measured on images the zoo was trained on",
    "sampler_rate": "The telemetry sampler fell behind its asked rate",
    "sampler_stall": "The telemetry sampler stalled during the inference window",
    "battery_convention": "The device config's battery unit or sign contradicts the data",
}


def group_warnings(warnings: list[WarningView]) -> list[WarningGroup]:
    """Warnings by kind (code, in order of first appearance) with counts; identical texts are listed once with
    every cell that carries them."""
    by_code: dict[str, dict[str, list[WarningView]]] = {}
    for w in warnings:
        by_code.setdefault(w.code, {}).setdefault(w.message, []).append(w)
    out = []
    for code, msgs in by_code.items():
        items = [WarningItem(m, ws) for m, ws in msgs.items()]
        all_w = [w for ws in msgs.values() for w in ws]
        out.append(WarningGroup(code, WARNING_TITLES.get(code, code), len(all_w),
                                len({(w.device, w.cell_id) for w in all_w if w.cell_id}), items))
    return out
