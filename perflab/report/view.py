"""The run report's view model: RunRecord → display-ready rows. Pure, no I/O.

Rules kept here:
- A missing number is shown as "—" with its reason (hover title and a numbered footnote), never as
  a blank or 0. Where a record gives no reason, the view says that no reason was recorded.
- Emulated cells and devices carry ``emulated=True`` all the way to the template.
- Each cell is set beside the bicubic baseline on the same device and delegate.
- The view renders what the run stored and computes nothing that analysis owns: baseline pairing,
  deltas (cell and per frame), the real-time verdict with its rule, the MAI score and the reading
  of delegate lines all come from ``results.json`` (``perflab.lab.derive`` / ``perflab.analysis``).
  A value an older results file does not hold is shown missing with the reason
  :data:`NOT_RECORDED`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from perflab.core.display import (
    MISSING,
    fmt_fine_ms,
    fmt_mai,
    fmt_ms,
    fmt_num,
    fmt_pct,
    fmt_ratio,
    fmt_signed,
    fmt_size,
)
from perflab.core.units import frame_budget_ms
from perflab.report.pareto import pareto_front
from perflab.store.results import (
    AlignedCellRecord,
    AlignedLayersRecord,
    CellRecord,
    CellStatus,
    CompatRecord,
    DelegateRecord,
    DeviceRecord,
    FrameQuality,
    InferenceTimelineRecord,
    LatencyRecord,
    LayersRecord,
    RunRecord,
    TraceLatencyRecord,
    WarningRecord,
)

MODE_LABELS = {"paced": "paced", "back_to_back": "back-to-back"}
NOT_RECORDED = "not recorded by this perflab version"
NO_POWER = f"power {NOT_RECORDED}"


@dataclass(frozen=True)
class Val:
    """One displayed value. ``note`` is the footnote number of a missing value's reason."""

    text: str
    title: str | None = None
    note: int | None = None
    cls: str = ""
    sub: str | None = None  # small second line (e.g. a delta or a source)
    sub_cls: str = ""

    @property
    def missing(self) -> bool:
        return self.note is not None


class Footnotes:
    """Numbered reasons for missing values; the same reason text gets the same number."""

    def __init__(self) -> None:
        self._by_text: dict[str, int] = {}

    def add(self, reason: str) -> int:
        return self._by_text.setdefault(reason, len(self._by_text) + 1)

    def missing(self, reason: str) -> Val:
        return Val(MISSING, title=reason, note=self.add(reason), cls="missing")

    @property
    def items(self) -> list[tuple[int, str]]:
        return [(n, t) for t, n in self._by_text.items()]


def is_emulated(cell: CellRecord) -> bool:
    return cell.emulated or cell.device.kind == "emulated"


def device_emulated(dev: DeviceRecord) -> bool:
    return dev.kind == "emulated"


def cell_label(cell: CellRecord) -> str:
    return f"{cell.model.name} {cell.model.variant}"


def series_of(cell: CellRecord, mode: str) -> LatencyRecord | None:
    rec = cell.series.get(mode)
    if rec is not None:
        return rec
    if cell.latency_ms is not None and cell.latency_ms.mode == mode:
        return cell.latency_ms
    return None


@dataclass
class RowView:
    cell_id: str
    anchor: str
    label: str
    model_name: str
    family: str
    variant: str
    scale: int
    threads: int
    status: str
    ok: bool
    baseline: bool
    emulated: bool
    reason: str | None
    latency_source: str | None
    size: Val
    paced_median: Val
    paced_p90: Val
    b2b_median: Val
    b2b_p90: Val
    init: Val
    first: Val
    realtime: Val
    psnr: Val
    ssim: Val
    piqe: Val
    mai: Val
    cpu: Val
    mem_peak: Val  # absolute peak (RSS high-water mark or the tool's peak footprint)
    mem_delta: Val  # the tool's growth of max RSS since it started: a different quantity
    power: Val
    warnings: list[WarningRecord]


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
class LayerRowView:
    index: int
    node_type: str
    name: str
    avg: str
    first: Val
    pct: float
    pct_text: str
    times_called: Val


@dataclass
class LayersView:
    cell_id: str
    anchor: str
    title: str
    device: str
    emulated: bool
    source: str
    total: Val
    sum_avg: str
    rows: list[LayerRowView]
    compare: LayerCompareView | None = None


@dataclass
class LayerCompareRow:
    name: str
    cells: list[Val]  # one per method column, in LayerCompareView.methods order


@dataclass
class LayerCompareView:
    """Every stored per-layer pass of one cell side by side, with the checks the analysis stored."""

    methods: list[Val]  # column headers: the method named, a footnote when the pass is missing
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
    cells: list[Val]  # one per method, in AlignedView.methods order
    disagreements: list[str]


@dataclass
class AlignedView:
    """The stored aligned table: one row per differential group, one column per method."""

    methods: list[Val]  # headers: the method named; its level (per group, per op, totals only) or why missing
    rows: list[AlignedRowView]
    notes: list[str]  # the mapping's and each method's notes, unmatched rows, the rule for a disagreement
    rule: str


@dataclass
class FrameColumn:
    cell_id: str
    label: str
    baseline: bool
    emulated: bool


@dataclass
class FrameStatsRow:
    """One cell's per-frame quality summarised over all of its frames."""

    cell_id: str
    label: str
    baseline: bool
    emulated: bool
    frames: int
    psnr_mean: Val
    psnr_min: Val
    d_psnr_mean: Val
    d_psnr_min: Val
    worse: Val  # frames on which the cell loses to bicubic
    ssim_mean: Val
    d_ssim_mean: Val
    psnr_rgb: Val
    piqe: Val


@dataclass
class FrameDist:
    """All per-frame values of one cell, for the distribution figure."""

    label: str
    baseline: bool
    emulated: bool
    d_psnr_y_db: list[float]
    piqe: list[float]


@dataclass
class FrameTableView:
    title: str
    emulated: bool
    columns: list[FrameColumn]
    rows: list[tuple[str, list[Val]]]  # frame name, three Vals (PSNR-Y, SSIM-Y, PIQE) per column
    stats: list[FrameStatsRow]
    dist: list[FrameDist]
    total_frames: int
    shown_frames: int


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


@dataclass
class ParetoRow:
    device: str
    label: str
    delegate: str
    cost: str
    psnr: str
    baseline: bool
    emulated: bool


@dataclass
class AnswerRow:
    """One model beside bicubic on one device and delegate: the answer, as stored by the run."""

    cell_id: str
    anchor: str
    label: str
    delegate: str
    status: str
    ok: bool
    baseline: bool
    emulated: bool
    reason: str | None
    realtime: Val
    rule: str
    latency: Val
    d_latency: Val
    d_psnr: Val
    d_ssim: Val
    d_piqe: Val
    mai_ratio: Val


@dataclass
class CostRow:
    """What one cell costs beside bicubic on the same device, delegate and pacing: the stored deltas (the
    baseline row shows its own values), each with the power source and its confidence."""

    cell_id: str
    anchor: str
    label: str
    delegate: str
    status: str
    ok: bool
    baseline: bool
    emulated: bool
    reason: str | None
    d_cpu: Val  # device CPU busy, percentage points (the measured process's Δ in the tooltip)
    d_gpu: Val
    d_mem: Val
    d_temp: Val
    d_current: Val
    mah_per_hour: Val
    mj_per_frame: Val
    source: Val
    sentence: str | None = None  # the one line a user quotes: "+90 mA over bicubic (battery counters, …)"


@dataclass
class IdleView:
    """The device at rest before its first cell: the floor every cell's cost sits on."""

    duration: str | None
    values: list[tuple[str, Val]]
    reason: str | None = None  # why there is no idle record, or why it has no values


@dataclass
class AnswerDevice:
    device: DeviceRecord
    emulated: bool
    anchor: str
    rows: list[AnswerRow]
    cost: list[CostRow] = field(default_factory=list)
    idle: IdleView | None = None


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
class LayersMissingView:
    device: str
    emulated: bool
    reason: str
    cells: list[str]


@dataclass
class TelemetryRowView:
    """Every stored telemetry number of one cell (its own values, not deltas)."""

    cell_id: str
    anchor: str
    label: str
    delegate: str
    baseline: bool
    emulated: bool
    values: list[Val]


@dataclass
class TelemetryTableView:
    device: DeviceRecord
    emulated: bool
    columns: list[tuple[str, str]]  # (header, what it is)
    rows: list[TelemetryRowView]


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
    footnotes: Footnotes
    counts: dict[str, int] = field(default_factory=dict)
    answer: list[AnswerDevice] = field(default_factory=list)
    incomplete: IncompleteView | None = None
    warning_groups: list[WarningGroup] = field(default_factory=list)
    layers_missing: list[LayersMissingView] = field(default_factory=list)
    telemetry: list[TelemetryTableView] = field(default_factory=list)


def cell_key(run: RunRecord, cell: CellRecord) -> str:
    """The cell's id in this run: the store's ``artifact_key`` (one naming rule, kept by the store)."""
    return cell.artifact_key


def anchor_for(cell_id: str) -> str:
    return "cell-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in cell_id)


def device_name(dev: DeviceRecord) -> str:
    return f"{dev.model} ({dev.serial})"


class _RowBuilder:
    def __init__(self, run: RunRecord, notes: Footnotes) -> None:
        self.run = run
        self.notes = notes
        self.fps = run.scenario.fps
        self.budget = frame_budget_ms(self.fps)

    def latency(self, cell: CellRecord, mode: str, attr: str) -> Val:
        rec = series_of(cell, mode)
        if rec is None:
            if mode == "paced" and not self.fps:
                return self.notes.missing("scenario runs back-to-back only (no fps), so there is no paced series")
            return self.notes.missing(f"no {MODE_LABELS.get(mode, mode)} series was recorded for this cell")
        value = getattr(rec, attr)
        if value is None:
            reason = rec.missing.get(attr)
            return self.notes.missing(
                reason or f"{attr} of the {MODE_LABELS.get(mode, mode)} series not recorded (no reason given)"
            )
        title = f"{MODE_LABELS.get(mode, mode)} {attr}: {value:.3f} ms, n={rec.n}, source: {rec.source}"
        if attr == "median" and rec.p10 is not None and rec.p90 is not None:
            title += f"; spread p10 {rec.p10:.3f} – p90 {rec.p90:.3f} ms"
        return Val(fmt_ms(float(value)), title=title)

    def startup(self, cell: CellRecord, attr: str) -> Val:
        recs = [r for r in [cell.latency_ms, *cell.series.values()] if r is not None]
        for r in recs:
            v = getattr(r, attr)
            if v is not None:
                return Val(fmt_ms(float(v)), title=f"{attr}: {v:.3f} ms (source: {r.source})")
        for r in recs:
            if attr in r.missing:
                return self.notes.missing(r.missing[attr])
        return self.notes.missing(f"{attr} latency not recorded (no reason given)")

    def realtime(self, cell: CellRecord) -> Val:
        """The stored verdict and the rule that decided it (p90, or the mean where only mean ± std exist)."""
        if self.budget is None:
            return self.notes.missing("scenario has no fps, so there is no frame budget to judge real time against")
        rt = cell.realtime
        if rt is None:
            return self.notes.missing(f"real-time verdict {NOT_RECORDED}")
        if rt.meets is None:
            return self.notes.missing(f"real time not judged: {rt.missing or 'no reason given'}")
        budget = rt.budget_ms if rt.budget_ms is not None else self.budget
        stat = rt.statistic or "p90"
        value = f"{stat} {rt.value_ms:.2f} ms" if rt.value_ms is not None else f"{stat} value not recorded"
        title = f"{value} {'≤' if rt.meets else '>'} frame budget {budget:.1f} ms at {self.fps:g} fps. Rule: {rt.rule}"
        sub = f"by {stat}"
        return Val("yes" if rt.meets else "no", title=title, cls="rt-yes" if rt.meets else "rt-no", sub=sub,
                   sub_cls="bad" if stat == "mean" else "muted")

    def stored_delta(self, cell: CellRecord, attr: str) -> tuple[float | None, str]:
        """The delta to bicubic that analysis stored for ``attr``, or None and why it is absent."""
        d = cell.deltas
        if d is None:
            return None, "no bicubic baseline on this device and delegate"
        value = getattr(d, attr, None)  # fields an older perflab did not store read as absent
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value), ""
        why = d.missing.get(attr) or d.missing.get("all")
        if why is None:
            why = (f"Δ {attr} vs bicubic {NOT_RECORDED}" if attr not in type(d).model_fields
                   else f"no Δ {attr} vs bicubic: this cell or bicubic ({d.baseline_cell_id}) has no {attr}")
        return None, why

    def quality(self, cell: CellRecord, attr: str, digits: int, unit: str, *, higher_better: bool = True) -> Val:
        value = getattr(cell.quality, attr)
        if value is None:
            return self.notes.missing(cell.quality.missing.get(attr) or f"{attr} not measured (no reason given)")
        title = f"{attr}: {value:.6g}" + (f" over {cell.quality.frames} frame(s)" if cell.quality.frames else "")
        if cell.quality.computed_on:
            title += f", computed on {cell.quality.computed_on}"
        text = f"{value:.{digits}f}"
        if cell.baseline:
            return Val(text, title=title, sub="baseline", sub_cls="muted")
        delta, why = self.stored_delta(cell, attr)
        if delta is None:
            return Val(text, title=f"{title}; Δ vs bicubic unknown: {why}", sub=f"Δ {MISSING}", sub_cls="muted")
        return Val(text, title=f"{title}; Δ vs bicubic {delta:+.6g}{unit}", sub=fmt_signed(delta, digits, unit),
                   sub_cls=_delta_cls(delta, higher_better))

    def mai(self, cell: CellRecord) -> Val:
        """The stored MAI 2021 score, shown as log10 (the raw score spans ~18 decades)."""
        q = cell.quality
        score = q.mai2021_score
        if score is None:
            return self.notes.missing(q.missing.get("mai2021_score") or f"MAI score {NOT_RECORDED}")
        title = (f"MAI 2021 score {score:.3g} = 2^(2·PSNR-Y) / (C·median latency ms), C = 1; shown as log10 "
                 f"= {fmt_mai(score)} (+0.30 = twice the score, i.e. +0.15 dB PSNR-Y or half the latency). "
                 "Absolute values are only comparable within perflab (the challenge used its own C and runtime "
                 "measurement)")
        if cell.baseline:
            return Val(fmt_mai(score), title=title, sub="baseline", sub_cls="muted")
        ratio, why = self.stored_delta(cell, "mai2021_ratio")
        if ratio is None:
            return Val(fmt_mai(score), title=f"{title}; ratio to bicubic: {why}")
        return Val(fmt_mai(score), title=f"{title}; {ratio:.3g}× bicubic's score", sub=f"{fmt_ratio(ratio)}× bic",
                   sub_cls="good" if ratio > 1 else ("bad" if ratio < 1 else "muted"))

    def median_with_delta(self, cell: CellRecord, mode: str) -> Val:
        v = self.latency(cell, mode, "median")
        rec = series_of(cell, mode)
        if v.missing and rec is not None and rec.mean is not None:
            # A tool summary (benchmark_model) has a mean but no median: show the mean, labelled as such.
            reason = rec.missing.get("median") or "median not recorded (no reason given)"
            std = f" ± {rec.std:.2f}" if rec.std is not None else ""
            return Val(fmt_ms(rec.mean), note=self.notes.add(reason), sub="mean, no median", sub_cls="muted",
                       title=f"median not available ({reason}); this is the mean{std} ms from {rec.source}, "
                             f"n={rec.n}")
        head = cell.latency_ms
        if v.missing or cell.baseline or head is None or head.mode != mode:
            return v
        delta, _ = self.stored_delta(cell, "latency_median_ms")
        if delta is None:
            return v
        return Val(v.text, title=f"{v.title}; {delta:+.3f} ms vs bicubic's median", sub=f"{fmt_signed(delta, 1)} ms",
                   sub_cls="muted")

    def telemetry(self, cell: CellRecord, attr: str, fmt: Callable[[float], str], what: str) -> Val:
        v = getattr(cell.telemetry, attr)
        if v is None:
            return self.notes.missing(cell.telemetry.missing.get(attr) or f"{what} not recorded (no reason given)")
        return Val(fmt(float(v)), title=what)

    def memory(self, cell: CellRecord, kind: str) -> Val:
        """Peak memory in the column of its meaning: ``peak`` (absolute) or ``delta`` (growth since the tool
        started). The other column says where this cell's number is."""
        t = cell.telemetry
        if t.mem_peak_mb is None:
            return self.notes.missing(t.missing.get("mem_peak_mb") or "memory not recorded (no reason given)")
        actual = mem_kind(t.mem_source)
        if actual != kind:
            other = "Mem Δ MB" if actual == "delta" else "Peak MB"
            return self.notes.missing(f"this device's tool reports a different memory quantity ({t.mem_source}); "
                                      f"see the {other} column")
        return Val(f"{t.mem_peak_mb:.0f}", title=f"{t.mem_peak_mb:.1f} MB; source: {t.mem_source or 'not recorded'}")

    def power(self, cell: CellRecord) -> Val:
        """Mean power over the headline window where measured, with its source and confidence under it."""
        t = cell.telemetry
        conf = t.power_confidence or "unstated"
        cls = {"high": "good", "medium": "", "low": "bad", "none": "bad"}.get(conf, "")
        if t.power_mw is not None:
            return Val(f"{t.power_mw:.0f} mW", title=f"mean power {t.power_mw:.1f} mW; source: "
                       f"{t.power_source or 'not recorded'}; confidence: {conf}",
                       sub=f"{t.power_source or 'source not recorded'} · {conf}", sub_cls=cls)
        if t.power_source is None:
            reason = t.missing.get("power_mw") or t.missing.get("power_source") or t.missing.get("power")
            return self.notes.missing(reason or "no power source for this cell (no reason given)")
        why = t.missing.get("power_mw") or "no power value recorded for this cell (no reason given)"
        return Val(MISSING, note=self.notes.add(why), cls="missing", title=f"{why}; power source: {t.power_source}",
                   sub=f"{t.power_source} · {conf}", sub_cls=cls)

    def size(self, cell: CellRecord) -> Val:
        if cell.model.size_bytes is None:
            return self.notes.missing("model file size not recorded")
        return Val(fmt_size(cell.model.size_bytes), title=f"{cell.model.size_bytes} bytes"
                   + (f", sha256 {cell.model.sha256}" if cell.model.sha256 else ""))

    def row(self, cell: CellRecord) -> RowView:
        ok = cell.status == CellStatus.OK
        placeholder = Val("")  # not rendered: a cell that is not ok shows its status and reason instead
        head = cell.latency_ms
        source = head.source if head is not None else None
        if ok:
            vals = {
                "paced_median": self.median_with_delta(cell, "paced"),
                "paced_p90": self.latency(cell, "paced", "p90"),
                "b2b_median": self.median_with_delta(cell, "back_to_back"),
                "b2b_p90": self.latency(cell, "back_to_back", "p90"),
                "init": self.startup(cell, "init"),
                "first": self.startup(cell, "first"),
                "realtime": self.realtime(cell),
                "psnr": self.quality(cell, "psnr_y_db", 2, " dB"),
                "ssim": self.quality(cell, "ssim_y", 4, ""),
                "piqe": self.quality(cell, "piqe", 1, "", higher_better=False),
                "mai": self.mai(cell),
                "cpu": self.telemetry(cell, "cpu_load_pct", lambda v: f"{v:.0f}%", "CPU load during the run"),
                "mem_peak": self.memory(cell, "peak"),
                "mem_delta": self.memory(cell, "delta"),
                "power": self.power(cell),
            }
        else:
            vals = {k: placeholder for k in ("paced_median", "paced_p90", "b2b_median", "b2b_p90", "init", "first",
                                              "realtime", "psnr", "ssim", "piqe", "mai", "cpu", "mem_peak",
                                              "mem_delta", "power")}
        return RowView(
            cell_id=cell_key(self.run, cell),
            anchor=anchor_for(cell_key(self.run, cell)),
            label=cell_label(cell),
            model_name=cell.model.name,
            family=cell.model.family,
            variant=cell.model.variant,
            scale=cell.model.scale,
            threads=cell.threads,
            status=str(cell.status),
            ok=ok,
            baseline=cell.baseline,
            emulated=is_emulated(cell),
            reason=cell.reason or (None if ok else "no reason recorded"),
            latency_source=source,
            size=self.size(cell),
            warnings=list(cell.warnings),
            **vals,
        )


def mem_kind(source: str | None) -> str:
    """Which quantity a memory number is, from the source the workload recorded with it: ``delta`` for a tool's
    growth of max RSS since it started (benchmark_model's "overall delta"), ``peak`` for an absolute peak
    (VmHWM, a peak footprint) or an unstated source."""
    return "delta" if source is not None and "delta" in source.lower() else "peak"


def ordered_devices(run: RunRecord) -> list[DeviceRecord]:
    seen = {d.serial for d in run.devices}
    out = list(run.devices)
    for c in run.cells:
        if c.device.serial not in seen:
            seen.add(c.device.serial)
            out.append(c.device)
    return out


def grouped_cells(run: RunRecord) -> list[tuple[DeviceRecord, list[tuple[str, list[CellRecord]]]]]:
    """Cells by device (run order) and delegate (first appearance), baseline first in each group."""
    out = []
    for dev in ordered_devices(run):
        cells = [c for c in run.cells if c.device.serial == dev.serial]
        delegates = list(dict.fromkeys(c.delegate for c in cells))
        groups = []
        for d in delegates:
            members = [c for c in cells if c.delegate == d]
            members.sort(key=lambda c: 0 if c.baseline else 1)  # stable: keeps run order otherwise
            groups.append((d, members))
        out.append((dev, groups))
    return out


def build_view(run: RunRecord) -> ReportView:
    notes = Footnotes()
    rb = _RowBuilder(run, notes)
    answer = build_answer(run, rb)  # first on the page, so its footnotes are numbered first
    devices: list[DeviceView] = []
    for dev, groups in grouped_cells(run):
        gviews = []
        for delegate, members in groups:
            base = next((c for c in members if c.baseline), None)
            rows = [rb.row(c) for c in members]
            rejects = list(dict.fromkeys(
                f"{cell_label(c)} ({', '.join(dict.fromkeys(i.op_name for i in c.model.compat.gpu_issues))})"
                for c in members if c.model.compat is not None and c.model.compat.gpu_issues
            )) if "gpu" in delegate.lower() else []
            gviews.append(GroupView(delegate, cell_key(run, base) if base else None, rows, rejects))
        dev_emul = device_emulated(dev) or any(is_emulated(c) for d, m in groups for c in m)
        devices.append(DeviceView(dev, dev_emul, "dev-" + anchor_for(dev.serial)[5:], gviews))

    problems = [
        ProblemView(cell_key(run, c), anchor_for(cell_key(run, c)), device_name(c.device), cell_label(c), c.delegate, str(c.status),
                    c.reason or "no reason recorded", is_emulated(c))
        for c in run.cells if c.status != CellStatus.OK
    ]
    warnings = [WarningView("", "answer", "whole run", "run", MISSING, w.code, w.message, False) for w in run.warnings]
    warnings += [
        WarningView(cell_key(run, c), anchor_for(cell_key(run, c)), device_name(c.device), cell_label(c), c.delegate, w.code,
                    w.message, is_emulated(c))
        for c in run.cells for w in c.warnings
    ]
    counts: dict[str, int] = {}
    for c in run.cells:
        counts[str(c.status)] = counts.get(str(c.status), 0) + 1
    return ReportView(
        run=run,
        fps=run.scenario.fps,
        budget_ms=frame_budget_ms(run.scenario.fps),
        any_emulated=any(is_emulated(c) for c in run.cells) or any(device_emulated(d) for d in run.devices),
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


# ---------------------------------------------------------------- the answer first


def _range_text(lat: LatencyRecord) -> str:
    parts = [f"{k} {v:.3f} ms" for k, v in (("min", lat.min), ("max", lat.max), ("std", lat.std)) if v is not None]
    return "; " + ", ".join(parts) if parts else ""


def _latency_spread(rb: _RowBuilder, cell: CellRecord) -> Val:
    """The headline series' centre with its spread: median [p10–p90] (or median with p90 and MAD where no p10 is
    stored), or mean ± std where the tool reported only a summary, said so."""
    lat = cell.latency_ms
    if lat is None:
        return rb.notes.missing("no latency was recorded for this cell")
    mode = MODE_LABELS.get(lat.mode, lat.mode)
    if lat.median is not None:
        p10 = lat.p10  # stored since perflab.results/2 gained it; older files have none
        if p10 is not None and lat.p90 is not None:
            sub = f"median [p10 {fmt_ms(p10)} – p90 {fmt_ms(lat.p90)}]"
        else:
            parts = [f"p90 {fmt_ms(lat.p90)}",
                     f"MAD {fmt_ms(lat.mad)}" if lat.mad is not None else ""]
            sub = "median; " + " · ".join(x for x in parts if x)
        return Val(f"{fmt_ms(lat.median)} ms", sub=sub, sub_cls="muted",
                   title=f"{mode} series, n={lat.n}, source: {lat.source}{_range_text(lat)}")
    if lat.mean is not None:
        std = f" ± {fmt_ms(lat.std)}" if lat.std is not None else ""
        return Val(f"{fmt_ms(lat.mean)}{std} ms", sub="mean ± std (tool summary)", sub_cls="bad",
                   title=f"{mode} series, n={lat.n}, source: {lat.source}{_range_text(lat)}; no median or p90: "
                         f"{lat.missing.get('median', 'no per-run samples')}")
    return rb.notes.missing(lat.missing.get("median") or "no latency statistic was recorded")


def _delta_val(rb: _RowBuilder, cell: CellRecord, attr: str, digits: int, unit: str, *, higher_better: bool,
               what: str) -> Val:
    if cell.baseline:
        return Val("baseline", cls="muted")
    d, why = rb.stored_delta(cell, attr)
    if d is None:
        return rb.notes.missing(why)
    return Val(fmt_signed(d, digits, unit), cls=_delta_cls(d, higher_better), title=f"{what} minus bicubic's: "
               f"{d:+.4g}{unit}")


def _answer_row(rb: _RowBuilder, cell: CellRecord) -> AnswerRow:
    key = cell_key(rb.run, cell)
    ok = cell.status == CellStatus.OK
    blank = Val("")
    rule = ""
    if ok and cell.realtime is not None:
        rule = cell.realtime.rule
    if not ok:
        return AnswerRow(key, anchor_for(key), cell_label(cell), cell.delegate, str(cell.status), False, cell.baseline,
                         is_emulated(cell), cell.reason or "no reason recorded", blank, rule, blank, blank, blank,
                         blank, blank, blank)
    head = cell.latency_ms
    lat_attr = "latency_median_ms" if head is None or head.median is not None else "latency_mean_ms"
    return AnswerRow(
        key, anchor_for(key), cell_label(cell), cell.delegate, str(cell.status), True, cell.baseline,
        is_emulated(cell), None,
        realtime=rb.realtime(cell), rule=rule, latency=_latency_spread(rb, cell),
        d_latency=_delta_val(rb, cell, lat_attr, 1, " ms", higher_better=False,
                             what="median latency" if lat_attr == "latency_median_ms" else "mean latency"),
        d_psnr=_delta_val(rb, cell, "psnr_y_db", 2, " dB", higher_better=True, what="PSNR-Y"),
        d_ssim=_delta_val(rb, cell, "ssim_y", 4, "", higher_better=True, what="SSIM-Y"),
        d_piqe=_delta_val(rb, cell, "piqe", 1, "", higher_better=False, what="PIQE (lower is better)"),
        mai_ratio=_mai_ratio(rb, cell),
    )


def _mai_ratio(rb: _RowBuilder, cell: CellRecord) -> Val:
    """The stored ratio of this cell's MAI 2021 score to bicubic's (>1: a better quality-for-time trade)."""
    if cell.baseline:
        return Val("baseline", cls="muted")
    r, why = rb.stored_delta(cell, "mai2021_ratio")
    if r is None:
        return rb.notes.missing(why)
    return Val(f"{fmt_ratio(r)}×", cls="good" if r > 1 else ("bad" if r < 1 else "muted"),
               title=f"MAI 2021 score {r:.3g}× bicubic's: 2^(2·PSNR-Y)/(C·median ms); 2× = +0.15 dB PSNR-Y or half "
                     "the latency")


# ---------------------------------------------------------------- what SR costs beside bicubic

# Telemetry keys whose reason is stored under another name (the sampler's stream names).
_TEL_REASON_KEYS: dict[str, tuple[str, ...]] = {
    "device_cpu_busy_pct": ("device_cpu_busy_pct", "cpu_busy_pct", "sampler"),
    "gpu_busy_pct": ("gpu_busy_pct", "sampler"),
    "temp_max_c": ("temp_max_c", "temp_c", "sampler"),
    "current_ma": ("current_ma", "power_source", "sampler"),
    "power_mw": ("power_mw", "power_source", "current_ma", "sampler"),
    "mj_per_frame": ("mj_per_frame", "power_mw", "power_source", "sampler"),
    "mah_per_hour": ("mah_per_hour", "current_ma", "power_source", "sampler"),
    "mem_peak_mb": ("mem_peak_mb",),
    "voltage_v": ("voltage_v", "current_ma", "power_source", "sampler"),
    "energy_mj": ("energy_mj", "energy", "power_mw", "current_ma", "power_source", "sampler"),
    "window_s": ("window", "sampler"),
}
_GENERIC_DELTA_REASON = "not measured on this cell or on its baseline"


def telemetry_reason(cell: CellRecord, attr: str) -> str:
    """Why ``cell.telemetry.<attr>`` is missing: the stored reason, under its own name or its stream's."""
    t = cell.telemetry
    for k in _TEL_REASON_KEYS.get(attr, (attr,)):
        if k in t.missing:
            return t.missing[k]
    if attr not in type(t).model_fields:
        return f"{attr} {NOT_RECORDED}"
    return f"{attr} not recorded (no reason given)" if t.timeline_file else f"telemetry {NOT_RECORDED} or not sampled"


def _cost_delta(rb: _RowBuilder, cell: CellRecord, attr: str) -> tuple[float | None, str]:
    """The stored Δ vs bicubic, or the most specific reason it is absent (the cell's own stream reason before
    the deltas' generic one)."""
    d, why = rb.stored_delta(cell, attr)
    if d is not None:
        return d, ""
    if why == _GENERIC_DELTA_REASON or why.startswith(("no Δ ", "Δ ")):
        own = telemetry_reason(cell, attr) if getattr(cell.telemetry, attr, None) is None else None
        if own is not None:
            return None, own
    return None, why


def _source_text(cell: CellRecord) -> str:
    t = cell.telemetry
    src = t.power_source or "source not recorded"
    if is_emulated(cell) and "emulated" not in src.lower():
        src = f"{src} (emulated)"
    return src


def _cost_cell(rb: _RowBuilder, cell: CellRecord, attr: str, digits: int, unit: str, what: str, *,
               idle_attr: str | None = None, absolute: bool = False) -> Val:
    """One cost column: the baseline's own value, or an SR cell's stored Δ vs bicubic; with the Δ vs the device
    at rest under it where stored (``idle_attr``), and for ``absolute`` columns the cell's own value under it."""
    t = cell.telemetry
    own = getattr(t, attr, None)
    src = f"; power source: {_source_text(cell)}, confidence {t.power_confidence or 'unstated'}" \
        if attr in ("current_ma", "power_mw", "mj_per_frame", "mah_per_hour") else ""
    idle_sub = None
    if idle_attr is not None and cell.vs_idle is not None:
        iv = getattr(cell.vs_idle, idle_attr, None)
        if isinstance(iv, (int, float)):
            idle_sub = f"{fmt_signed(float(iv), digits)} vs idle"
    if cell.baseline:
        if own is None:
            return rb.notes.missing(telemetry_reason(cell, attr))
        return Val(f"{float(own):.{digits}f}{unit}", title=f"bicubic's own {what}: {float(own):.4g}{unit}{src}",
                   sub=idle_sub or "baseline", sub_cls="muted")
    d, why = _cost_delta(rb, cell, attr)
    if d is None:
        return rb.notes.missing(why)
    title = f"{what} minus bicubic's: {d:+.4g}{unit}{src}"
    sub = idle_sub
    if absolute and own is not None:
        title += f"; this cell {float(own):.4g}{unit}"
        sub = f"{float(own):.{digits}f} total"
    return Val(fmt_signed(d, digits, unit), cls=_delta_cls(d, higher_better=False), title=title, sub=sub,
               sub_cls="muted")


def _source_val(rb: _RowBuilder, cell: CellRecord) -> Val:
    t = cell.telemetry
    if t.power_source is None:
        return rb.notes.missing(telemetry_reason(cell, "power_source" if "power_source" in t.missing else "current_ma"))
    conf = t.power_confidence or "unstated"
    cls = {"high": "good", "medium": "", "low": "bad", "none": "bad"}.get(conf, "")
    extra = []
    if t.charging:
        extra.append("charging during the window: current is net of the charger")
    if t.convention is not None and t.convention.how:
        extra.append(f"current_now: {t.convention.how}")
    elif t.current_convention:
        extra.append(f"current_now: {t.current_convention}")
    if t.window_s is not None:
        rate = f" sampled every {t.sample_interval_ms:g} ms" if t.sample_interval_ms is not None else ""
        extra.append(f"window {t.window_s:.1f} s{rate}{_achieved(t.sample_rate_hz, t.sample_max_gap_ms)}")
    if t.sampler_cpu_pct is not None:
        extra.append(f"the sampler's own cost: {t.sampler_cpu_pct:.2f}% of one core")
    return Val(_source_text(cell), sub=f"confidence {conf}", sub_cls=cls,
               title="; ".join([f"power source: {_source_text(cell)}, confidence {conf}", *extra]))


def _achieved(rate_hz: float | None, gap_ms: float | None) -> str:
    """What the sampler achieved, where the record has it (older files do not)."""
    if rate_hz is None:
        return ""
    gap = f", longest gap {gap_ms:.0f} ms" if gap_ms is not None else ""
    return f" (achieved {rate_hz:.2f} Hz{gap})"


def cost_sentence(cell: CellRecord, fps: float | None) -> str | None:
    """The line a user quotes, from the stored deltas: "espcn fp32 · xnnpack at 30 fps: +90 mA over bicubic
    (battery counters (not charging), confidence medium); CPU +5 pts, …". None for the baseline or a cell that
    did not finish."""
    if cell.baseline or cell.status != CellStatus.OK or cell.deltas is None:
        return None
    d = cell.deltas
    pace = f" at {fps:g} fps" if fps else " back-to-back"
    head = f"{cell_label(cell)} · {cell.delegate}{pace}"
    t = cell.telemetry
    src = f"{_source_text(cell)}, confidence {t.power_confidence or 'unstated'}"
    if d.current_ma is not None:
        lead = f"{fmt_signed(d.current_ma, 0, ' mA')} over bicubic ({src})"
        if d.mj_per_frame is not None:
            lead += f", {fmt_signed(d.mj_per_frame, 1, ' mJ')} per frame"
    elif d.power_mw is not None:
        lead = f"{fmt_signed(d.power_mw, 0, ' mW')} over bicubic ({src})"
    else:
        why = d.missing.get("current_ma") or d.missing.get("all")
        if why is None or why == _GENERIC_DELTA_REASON:
            why = telemetry_reason(cell, "current_ma")
        lead = f"current and power not measured ({why})"
    rest = []
    for attr, name, digits, unit in (("device_cpu_busy_pct", "CPU", 0, " pts"), ("gpu_busy_pct", "GPU", 0, " pts"),
                                     ("mem_peak_mb", "memory", 0, " MB"), ("temp_max_c", "max temperature", 1, " °C")):
        v = getattr(d, attr, None)
        if isinstance(v, (int, float)):
            rest.append(f"{name} {fmt_signed(float(v), digits, unit)}")
    return f"{head}: {lead}" + ("; " + ", ".join(rest) if rest else "") + "."


def _cost_row(rb: _RowBuilder, cell: CellRecord) -> CostRow:
    key = cell_key(rb.run, cell)
    ok = cell.status == CellStatus.OK
    if not ok:
        blank = Val("")
        return CostRow(key, anchor_for(key), cell_label(cell), cell.delegate, str(cell.status), False, cell.baseline,
                       is_emulated(cell), cell.reason or "no reason recorded", blank, blank, blank, blank, blank, blank,
                       blank, blank)
    kind = mem_kind(cell.telemetry.mem_source)
    d_cpu = _cost_cell(rb, cell, "device_cpu_busy_pct", 0, " pts" if not cell.baseline else "%",
                       "device CPU busy (all cores, %)", idle_attr="device_cpu_busy_pct")
    proc, _ = rb.stored_delta(cell, "cpu_load_pct")
    if proc is not None and not cell.baseline and d_cpu.title is not None:
        d_cpu = replace(d_cpu, title=f"{d_cpu.title}; the measured process alone: {proc:+.1f} pts")
    return CostRow(
        key, anchor_for(key), cell_label(cell), cell.delegate, str(cell.status), True, cell.baseline,
        is_emulated(cell), None,
        d_cpu=d_cpu,
        d_gpu=_cost_cell(rb, cell, "gpu_busy_pct", 0, " pts" if not cell.baseline else "%", "GPU busy (%)",
                         idle_attr="gpu_busy_pct"),
        d_mem=_cost_cell(rb, cell, "mem_peak_mb", 0, " MB",
                         "peak memory" if kind == "peak" else "the tool's memory delta"),
        d_temp=_cost_cell(rb, cell, "temp_max_c", 1, " °C",
                          f"max temperature ({cell.telemetry.temp_zone or 'zone not recorded'})"),
        d_current=_cost_cell(rb, cell, "current_ma", 0, " mA", "mean battery current", idle_attr="current_ma"),
        mah_per_hour=_cost_cell(rb, cell, "mah_per_hour", 0, "", "mAh per hour at this pacing", absolute=True),
        mj_per_frame=_cost_cell(rb, cell, "mj_per_frame", 1, "", "mJ per frame (mean power / fps)", absolute=True),
        source=_source_val(rb, cell),
        sentence=cost_sentence(cell, rb.fps),
    )


def build_idle(run: RunRecord, dev: DeviceRecord, notes: Footnotes) -> IdleView:
    """The device's idle record as a line of values (missing ones with their reasons)."""
    rec = next((r for r in getattr(run, "idle", []) if r.serial == dev.serial), None)
    if rec is None:
        return IdleView(None, [], reason=f"no idle baseline: {NOT_RECORDED}, or the run measured none "
                                         "(telemetry.idle_baseline_s)")
    if "all" in rec.missing:
        return IdleView(None, [], reason=f"idle baseline not measured: {rec.missing['all']}")
    reasons = {
        "device_cpu_busy_pct": ("device_cpu_busy_pct", "cpu_busy_pct"), "gpu_busy_pct": ("gpu_busy_pct",),
        "mem_avail_min_mb": ("mem_avail_min_mb",), "temp_c": ("temp_c",), "current_ma": ("current_ma",),
        "power_mw": ("power_mw", "current_ma"),
    }
    vals: list[tuple[str, Val]] = []
    for attr, name, fmt in (("device_cpu_busy_pct", "CPU", "{:.0f}%"), ("gpu_busy_pct", "GPU", "{:.0f}%"),
                            ("mem_avail_min_mb", "memory available", "{:.0f} MB"), ("temp_c", "temperature",
                                                                                     "{:.1f} °C"),
                            ("current_ma", "current", "{:.0f} mA"), ("power_mw", "power", "{:.0f} mW")):
        v = getattr(rec, attr)
        if v is None:
            why = next((rec.missing[k] for k in reasons[attr] if k in rec.missing), f"{name} not recorded at rest")
            vals.append((name, notes.missing(why)))
        else:
            vals.append((name, Val(fmt.format(v), title=f"{name} at rest: {v:.4g}")))
    dur = f"{rec.duration_s:.1f} s" if rec.duration_s is not None else None
    return IdleView(dur, vals)


def build_answer(run: RunRecord, rb: _RowBuilder) -> list[AnswerDevice]:
    """Per device, per delegate: bicubic first, then each SR model beside it — speed and quality, then cost."""
    out = []
    for dev, groups in grouped_cells(run):
        members = [c for _, m in groups for c in m]
        rows = [_answer_row(rb, c) for c in members]
        idle = build_idle(run, dev, rb.notes)
        cost = [_cost_row(rb, c) for c in members]
        emul = device_emulated(dev) or any(r.emulated for r in rows)
        out.append(AnswerDevice(dev, emul, "answer-" + anchor_for(dev.serial)[5:], rows, cost, idle))
    return out


def build_incomplete(run: RunRecord) -> IncompleteView | None:
    """None when the run measured every planned cell; else why it stopped and what it lacks."""
    recorded = {(c.device.serial, c.cell_id) for c in run.cells}
    names = {d.serial: device_name(d) for d in ordered_devices(run)}
    never = [f"{names.get(p.serial, p.serial)} · {p.cell_id}" for p in run.planned
             if (p.serial, p.cell_id) not in recorded]
    interrupted = [(f"{device_name(c.device)} · {c.cell_id}", c.reason or "no reason recorded")
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


NO_LAYERS = ("no per-layer profile recorded for this cell: profiling was not requested (profiling.op_profiling), "
             f"or the reason was {NOT_RECORDED}")


def build_layers_missing(run: RunRecord) -> list[LayersMissingView]:
    """Per device: the ok cells without a per-layer table, grouped by the reason the run stored."""
    out: list[LayersMissingView] = []
    for dev in ordered_devices(run):
        by_reason: dict[str, list[str]] = {}
        emul = device_emulated(dev)
        for c in run.cells:
            if c.device.serial != dev.serial or c.status != CellStatus.OK or _has_layers(c.layers):
                continue
            why = c.layers.missing if c.layers is not None else None
            by_reason.setdefault(why or NO_LAYERS, []).append(f"{cell_label(c)} · {c.delegate}")
            emul = emul or is_emulated(c)
        out.extend(LayersMissingView(device_name(dev), emul, r, cells) for r, cells in by_reason.items())
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
        trace.append(f"switch {sw.op} via {sw.via} ({sw.irq_name}, n={sw.n}): CPU→accelerator "
                     f"{sw.cpu_to_accel_median_us:.0f} µs, back {sw.accel_to_cpu_median_us:.0f} µs (medians)")
    if t.irqs:
        trace.append("costliest irqs: " + ", ".join(
            f"{q.name} ×{q.count} ({q.total_us:.0f} µs, max {q.max_us:.0f} µs)" for q in t.irqs))
    if t.lost_events:
        trace.append(f"{t.lost_events} trace events lost")
    trace.extend(f"{k}: {v}" for k, v in t.missing.items())
    trace.extend(t.notes)
    return trace


_LEVEL = {"group": "per group", "op": "per op, summed per group", "total": "one node: totals only"}


def _aligned_cell(c: AlignedCellRecord, rule: str, dis: list[str], notes: Footnotes) -> Val:
    if c.time_ms is None:
        return notes.missing(f"{c.method}: {c.missing}" if c.missing else f"{c.method}: {NOT_RECORDED}")
    text = fmt_fine_ms(c.time_ms) + ("" if c.se_ms is None else f" ± {fmt_fine_ms(c.se_ms)}")
    title = f"{c.method}: {c.ops_seen} of {c.ops_total} ops" if c.ops_total else f"{c.method}"
    if c.flagged:
        title += "; disagrees: " + "; ".join(d for d in dis if c.method in d) + f" ({rule})"
    if c.note:
        return Val(text + " *", title=f"{title}; {c.note}", cls="partial" + (" disagree" if c.flagged else ""),
                   sub=c.note, sub_cls="muted")
    return Val(text, title=title, cls="disagree" if c.flagged else "")


def build_aligned(a: AlignedLayersRecord, notes: Footnotes) -> AlignedView | None:
    """The stored aligned table in display form (every number and flag is the stored one)."""
    if a.missing:
        return AlignedView(methods=[], rows=[], notes=[f"aligned table missing: {a.missing}"], rule="")
    rule = (f"flagged where two methods differ by more than ±{a.tolerance_pct:g}% of the larger and more than "
            f"{a.se_factor:g} combined standard errors")
    methods = []
    for m in a.methods:
        if m.missing:
            methods.append(Val(m.method, title=m.missing, note=notes.add(f"{m.method}: {m.missing}"), cls="missing"))
        else:
            methods.append(Val(m.method, title=m.method, sub=_LEVEL.get(m.level, m.level), sub_cls="muted"))
    layers = {g.name: g.layers for g in a.groups}
    rows = [AlignedRowView(name=r.name, kind=r.kind, ops=f"all {len(r.ops)} ops" if r.kind == "total" else ", ".join(r.ops),
                           layers=", ".join(x for g in r.groups for x in layers.get(g, [])),
                           cells=[_aligned_cell(c, rule, r.disagreements, notes) for c in r.cells],
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


def build_layer_compare(lay: LayersRecord, notes: Footnotes) -> LayerCompareView:
    """The stored passes side by side: one column per method, one row per layer (by name, first seen first)."""
    methods: list[Val] = []
    sources: list[str] = []
    by_name: dict[str, list[Val]] = {}
    checks: list[str] = []
    for p in lay.passes:
        if p.missing:
            methods.append(Val(p.method, title=p.missing, note=notes.add(f"{p.method}: {p.missing}"), cls="missing"))
        else:
            methods.append(Val(p.method, title=p.source))
        sources.append(p.source)
    n = len(lay.passes)
    for i, p in enumerate(lay.passes):
        for r in p.rows:
            cells = by_name.setdefault(r.name, [Val("") for _ in range(n)])
            text = fmt_fine_ms(r.avg_ms) if r.se_ms is None else \
                f"{fmt_fine_ms(r.avg_ms)} ± {fmt_fine_ms(r.se_ms)}"
            covers = f" ({', '.join(r.layers)})" if r.layers else ""
            cells[i] = Val(text, title=f"{r.method or p.method}: {r.node_type}{covers}")
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


def build_layers(run: RunRecord, notes: Footnotes) -> list[LayersView]:
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
                first=Val(f"{r.first_ms:.3f}") if r.first_ms is not None else notes.missing(
                    f"first-run time per layer not given by {c.layers.source}"),
                pct=max(0.0, min(100.0, pct)),
                pct_text=f"{pct:.1f}%",
                times_called=Val(str(r.times_called)) if r.times_called is not None else notes.missing(
                    f"call count per layer not given by {c.layers.source}"),
            ))
        out.append(LayersView(
            cell_id=cell_key(run, c),
            anchor=anchor_for(cell_key(run, c)) + "-layers",
            title=f"{cell_label(c)} · {c.delegate}",
            device=device_name(c.device),
            emulated=is_emulated(c),
            source=c.layers.source,
            total=Val(f"{total:.3f} ms") if total is not None else notes.missing(
                f"total of the profiling pass not given by {c.layers.source}"),
            sum_avg=f"{sum_avg:.3f} ms",
            rows=rows,
            compare=build_layer_compare(c.layers, notes) if c.layers.passes else None,
        ))
    return out


MAX_FRAME_ROWS = 10  # per-frame table rows per device/delegate; statistics and the figure use every frame
FRAME_KEYS = ("psnr_y_db", "ssim_y", "psnr_rgb_db", "piqe", "d_psnr_y_db", "d_ssim_y")
_FRAME_NAMES = {"psnr_y_db": "PSNR-Y", "ssim_y": "SSIM-Y", "piqe": "PIQE", "psnr_rgb_db": "PSNR-RGB"}


def _finite(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _per_frame(cell: CellRecord) -> dict[str, FrameQuality]:
    """frame name → its stored record."""
    return {f.frame: f for f in cell.quality.per_frame if f.frame}


def _fv(f: FrameQuality | None, key: str) -> float | None:
    """A stored per-frame value, None where absent or not finite."""
    return None if f is None else _finite(getattr(f, key))


def _delta_cls(d: float, higher_better: bool = True) -> str:
    if d == 0:
        return "muted"
    return "good" if (d > 0) == higher_better else "bad"


class _FrameBuilder:
    def __init__(self, run: RunRecord, notes: Footnotes) -> None:
        self.run = run
        self.notes = notes

    def frame_vals(self, cell: CellRecord, frame: str, e: FrameQuality | None, paired: bool) -> list[Val]:
        """PSNR-Y, SSIM-Y and PIQE of one frame; under PSNR-Y and SSIM-Y the stored difference to bicubic."""
        if e is None:
            m = self.notes.missing(f"no per-frame quality for {frame} in this cell")
            return [m, m, m]
        out: list[Val] = []
        for key, digits, unit in (("psnr_y_db", 2, " dB"), ("ssim_y", 4, ""), ("piqe", 1, "")):
            name = _FRAME_NAMES[key]
            v = _fv(e, key)
            if v is None:
                out.append(self.notes.missing(e.missing.get(key) or f"{name} of {frame} not recorded in this cell"))
                continue
            title = f"{frame}: {name} {v:.4f}{unit}"
            if cell.baseline or key == "piqe":
                out.append(Val(f"{v:.{digits}f}", title=title))
                continue
            d = _fv(e, f"d_{key}")
            if d is None:
                why = "no bicubic value on this frame" if paired else "no bicubic baseline on this device and delegate"
                out.append(Val(f"{v:.{digits}f}", title=f"{title}; Δ vs bicubic: {why}", sub=f"Δ {MISSING}", sub_cls="muted"))
            else:
                out.append(Val(f"{v:.{digits}f}", title=f"{title}; Δ vs bicubic on this frame {d:+.4f}{unit}",
                               sub=fmt_signed(d, digits, unit), sub_cls=_delta_cls(d)))
        return out

    def stats(self, cell: CellRecord, per: dict[str, FrameQuality]) -> FrameStatsRow:
        """Means stored by the run, and a summary of the per-frame deltas it stored (mean, worst frame, count of
        frames where the cell loses to bicubic)."""
        q = cell.quality
        n = len(per)
        psnrs = [(f, v) for f, e in per.items() if (v := _fv(e, "psnr_y_db")) is not None]

        def recorded(attr: str, digits: int, what: str) -> Val:
            v = getattr(q, attr)
            if v is None:
                return self.notes.missing(q.missing.get(attr) or f"{what} not recorded (no reason given)")
            return Val(f"{v:.{digits}f}", title=f"{what} {v:.6g}, mean over {q.frames or n} frame(s)")

        worst_f = min(psnrs, key=lambda fv: fv[1])[0] if psnrs else None
        psnr_min = q.psnr_y_db_min
        min_val = (Val(f"{psnr_min:.2f}", title=f"lowest PSNR-Y over the frames: {psnr_min:.4f} dB"
                       + (f" ({worst_f})" if worst_f else ""), sub=worst_f, sub_cls="muted")
                   if psnr_min is not None else self.notes.missing(q.missing.get("psnr_y_db_min")
                                                                   or f"lowest PSNR-Y {NOT_RECORDED}"))
        piqe = recorded("piqe", 1, "PIQE (lower is better)")
        if not piqe.missing and not cell.baseline:
            d_piqe, _ = _RowBuilder(self.run, self.notes).stored_delta(cell, "piqe")
            if d_piqe is not None:
                piqe = Val(piqe.text, title=f"{piqe.title}; Δ vs bicubic {d_piqe:+.3f} (lower is better)",
                           sub=fmt_signed(d_piqe, 1), sub_cls=_delta_cls(d_piqe, higher_better=False))
        def row(d_mean: Val, d_min: Val, worse: Val, d_ssim: Val) -> FrameStatsRow:
            return FrameStatsRow(cell_key(self.run, cell), cell_label(cell), cell.baseline, is_emulated(cell), n,
                                 recorded("psnr_y_db", 2, "PSNR-Y dB"), min_val, d_mean, d_min, worse,
                                 recorded("ssim_y", 4, "SSIM-Y"), d_ssim, recorded("psnr_rgb_db", 2, "PSNR-RGB dB"),
                                 piqe)

        if cell.baseline:
            base_txt = Val("baseline", cls="muted")
            return row(base_txt, base_txt, base_txt, base_txt)
        dp = [(f, d) for f, e in per.items() if (d := _fv(e, "d_psnr_y_db")) is not None]
        ds = [d for e in per.values() if (d := _fv(e, "d_ssim_y")) is not None]
        why = ("no bicubic baseline on this device and delegate" if cell.deltas is None
               else "no per-frame difference to bicubic stored for this cell")
        if dp:
            mean_d = sum(d for _, d in dp) / len(dp)
            wf, wd = min(dp, key=lambda fd: fd[1])
            n_worse = sum(1 for _, d in dp if d < 0)
            d_mean = Val(fmt_signed(mean_d, 2, " dB"), cls=_delta_cls(mean_d),
                         title=f"mean over {len(dp)} frame(s) of (PSNR-Y − bicubic's PSNR-Y on the same frame)")
            d_min = Val(fmt_signed(wd, 2, " dB"), cls=_delta_cls(wd), sub=wf, sub_cls="muted",
                        title=f"the frame where this cell does worst against bicubic: {wf} ({wd:+.4f} dB)")
            worse = Val(f"{n_worse} of {len(dp)}", cls="bad" if n_worse else "good",
                        title="frames on which PSNR-Y is below bicubic's on the same frame")
        else:
            d_mean = d_min = worse = self.notes.missing(why)
        if ds:
            ms = sum(ds) / len(ds)
            d_ssim = Val(fmt_signed(ms, 4), cls=_delta_cls(ms), title=f"mean ΔSSIM-Y over {len(ds)} frame(s)")
        else:
            d_ssim = self.notes.missing(why)
        return row(d_mean, d_min, d_ssim=d_ssim, worse=worse)


def build_frame_tables(run: RunRecord, notes: Footnotes, max_rows: int = MAX_FRAME_ROWS) -> list[FrameTableView]:
    """Per device and delegate: per-frame values of the first ``max_rows`` frames, statistics over all frames,
    and every frame's stored ΔPSNR-Y / PIQE for the distribution figure."""
    fb = _FrameBuilder(run, notes)
    tables = []
    for dev, groups in grouped_cells(run):
        for delegate, members in groups:
            cells = [c for c in members if c.status == CellStatus.OK and c.quality.per_frame]
            if not cells:
                continue
            per = {id(c): _per_frame(c) for c in cells}
            frames = list(dict.fromkeys(f for c in cells for f in per[id(c)]))
            cols = [FrameColumn(cell_key(run, c), cell_label(c), c.baseline, is_emulated(c)) for c in cells]
            rows = []
            for f in frames[:max_rows]:
                vals: list[Val] = []
                for c in cells:
                    vals.extend(fb.frame_vals(c, f, per[id(c)].get(f), c.deltas is not None))
                rows.append((f, vals))
            dist = []
            for c in cells:
                dp = [d for e in per[id(c)].values() if (d := _fv(e, "d_psnr_y_db")) is not None]
                pq = [v for e in per[id(c)].values() if (v := _fv(e, "piqe")) is not None]
                dist.append(FrameDist(cell_label(c), c.baseline, is_emulated(c), [] if c.baseline else dp, pq))
            tables.append(FrameTableView(
                title=f"{device_name(dev)} · {delegate}",
                emulated=device_emulated(dev) or any(is_emulated(c) for c in cells),
                columns=cols, rows=rows,
                stats=[fb.stats(c, per[id(c)]) for c in cells],
                dist=dist, total_frames=len(frames), shown_frames=min(len(frames), max_rows),
            ))
    return tables


# ---------------------------------------------------------------- delegate compatibility

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


def pareto_rows(
    points: list[tuple[CellRecord, float, float]], cost_fmt: Callable[[CellRecord, float], str]
) -> list[ParetoRow]:
    """Pareto-optimal cells per device (cost lower, PSNR-Y higher), in device then cost order."""
    out = []
    serials = list(dict.fromkeys(c.device.serial for c, _, _ in points))
    for s in serials:
        pts = [(c, x, y) for c, x, y in points if c.device.serial == s]
        for i in pareto_front([(x, y) for _, x, y in pts]):
            c, x, y = pts[i]
            out.append(ParetoRow(device_name(c.device), cell_label(c), c.delegate, cost_fmt(c, x), f"{y:.2f}",
                                 c.baseline, is_emulated(c)))
    return out


# ---------------------------------------------------------------- every stored telemetry number

TELEMETRY_COLUMNS: list[tuple[str, str]] = [
    ("CPU busy", "device CPU busy over all cores in the window (%); per core in the tooltip"),
    ("CPU MHz", "mean clock per core/policy in the window (range across them; each in the tooltip)"),
    ("GPU busy", "GPU busy in the window (%)"),
    ("GPU MHz", "mean GPU clock in the window"),
    ("RSS peak", "sampled VmRSS peak of the measured process (MB)"),
    ("Mem avail min", "lowest MemAvailable of the device in the window (MB)"),
    ("Temp °C", "start → end (max) in the window, with the zone"),
    ("Current", "mean battery current, positive when drawn from the battery (mA)"),
    ("Voltage", "mean battery voltage (V)"),
    ("Power", "mean power (mW)"),
    ("Energy", "energy over the window: mJ and mAh"),
    ("Host pkg", "host CPU package power from RAPL (mW), where the host has it"),
    ("Window", "the span the measured process was alive (s), sampling interval (achieved rate, longest gap in the "
               + "tooltip), the sampler's own CPU cost"),
]


def _spread(values: dict[str, float], fmt: str) -> tuple[str, str]:
    vs = list(values.values())
    text = fmt.format(vs[0]) if len(vs) == 1 or min(vs) == max(vs) else f"{fmt.format(min(vs))}–{fmt.format(max(vs))}"
    return text, ", ".join(f"{k} {fmt.format(v)}" for k, v in values.items())


def _telemetry_values(cell: CellRecord, notes: Footnotes) -> list[Val]:
    t = cell.telemetry

    def num(attr: str, fmt: str, what: str) -> Val:
        v = getattr(t, attr)
        return Val(fmt.format(v), title=f"{what}: {v:.6g}") if v is not None else notes.missing(
            telemetry_reason(cell, attr))

    cpu = num("device_cpu_busy_pct", "{:.0f}%", "device CPU busy")
    if t.cpu_core_busy_pct and not cpu.missing:
        text, each = _spread(t.cpu_core_busy_pct, "{:.0f}")
        cpu = replace(cpu, sub=f"cores {text}%", sub_cls="muted", title=f"{cpu.title}; per core: {each}")
    if t.cpu_freq_mhz:
        text, each = _spread(t.cpu_freq_mhz, "{:.0f}")
        freq = Val(text, title=f"mean clock per core/policy (MHz): {each}")
    else:
        freq = notes.missing(t.missing.get("cpu_freq_mhz") or telemetry_reason(cell, "cpu_freq_mhz"))
    if t.temp_max_c is not None:
        start = f"{t.start_temp_c:.1f} → " if t.start_temp_c is not None else ""
        end = fmt_num(t.temp_end_c, ".1f")
        temp = Val(f"{start}{end} ({t.temp_max_c:.1f})", sub=t.temp_zone, sub_cls="muted",
                   title=f"zone {t.temp_zone or 'not recorded'}; start (cool-down gate) {t.start_temp_c}, end "
                         f"{t.temp_end_c}, max {t.temp_max_c} °C")
    else:
        temp = notes.missing(telemetry_reason(cell, "temp_max_c"))
    if t.energy_mj is not None:
        mah = f"{t.energy_mah:.3f} mAh" if t.energy_mah is not None else None
        energy = Val(f"{t.energy_mj:.0f} mJ", sub=mah, sub_cls="muted", title=f"energy over the window: "
                     f"{t.energy_mj:.1f} mJ" + (f", {t.energy_mah:.4f} mAh" if t.energy_mah is not None else ""))
    else:
        energy = notes.missing(telemetry_reason(cell, "energy_mj"))
    if t.window_s is not None:
        rate = f"every {t.sample_interval_ms:g} ms" if t.sample_interval_ms is not None else None
        cost = f"; the sampler used {t.sampler_cpu_pct:.2f}% of one core" if t.sampler_cpu_pct is not None else ""
        window = Val(f"{t.window_s:.1f} s", sub=rate, sub_cls="muted",
                     title=f"window {t.window_s:.2f} s{_achieved(t.sample_rate_hz, t.sample_max_gap_ms)}{cost}")
    else:
        window = notes.missing(telemetry_reason(cell, "window_s"))
    return [
        cpu, freq,
        num("gpu_busy_pct", "{:.0f}%", "GPU busy"),
        num("gpu_freq_mhz", "{:.0f}", "GPU clock (MHz)"),
        num("rss_peak_mb", "{:.0f} MB", "RSS peak of the measured process"),
        num("mem_avail_min_mb", "{:.0f} MB", "lowest MemAvailable"),
        temp,
        num("current_ma", "{:.0f} mA", "mean battery current"),
        num("voltage_v", "{:.3f} V", "mean battery voltage"),
        num("power_mw", "{:.0f} mW", "mean power"),
        energy,
        num("host_package_mw", "{:.0f} mW", "RAPL package power"),
        window,
    ]


def build_telemetry_tables(run: RunRecord, notes: Footnotes) -> list[TelemetryTableView]:
    """Per device: every telemetry number each ok cell stored, missing ones with their reasons. Devices whose cells
    stored no sampler telemetry at all (older perflab, or not sampled) are left out."""
    out = []
    for dev, groups in grouped_cells(run):
        cells = [c for _, m in groups for c in m if c.status == CellStatus.OK]
        if not any(c.telemetry.timeline_file or c.telemetry.window_s is not None for c in cells):
            continue
        rows = [TelemetryRowView(cell_key(run, c), anchor_for(cell_key(run, c)), cell_label(c), c.delegate, c.baseline,
                                 is_emulated(c), _telemetry_values(c, notes)) for c in cells]
        out.append(TelemetryTableView(dev, device_emulated(dev) or any(r.emulated for r in rows), TELEMETRY_COLUMNS,
                                      rows))
    return out
