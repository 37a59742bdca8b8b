"""The run report's view model: RunRecord → display-ready rows. Pure, no I/O.

Rules kept here:
- A missing number is shown as "—" with its reason (hover title and a numbered footnote), never as
  a blank or 0. Where a record gives no reason, the view says that no reason was recorded.
- Emulated cells and devices carry ``emulated=True`` all the way to the template.
- Each cell is set beside the bicubic baseline on the same device and delegate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from perflab.report.pareto import pareto_front
from perflab.store.results import (
    CellRecord,
    CellStatus,
    DeviceRecord,
    LatencyRecord,
    RunRecord,
    WarningRecord,
)

MODE_LABELS = {"paced": "paced", "back_to_back": "back-to-back"}


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
        return Val("—", title=reason, note=self.add(reason), cls="missing")

    @property
    def items(self) -> list[tuple[int, str]]:
        return [(n, t) for t, n in self._by_text.items()]


def fmt_ms(v: float) -> str:
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_size(size_bytes: int) -> str:
    if size_bytes >= 1024 * 1024:
        return f"{size_bytes / (1024 * 1024):.2f} MB"
    kb = size_bytes / 1024
    return f"{kb:.1f} KB" if kb < 100 else f"{kb:.0f} KB"


def fmt_sci(v: float) -> str:
    """Compact scientific notation for scores spanning many decades: ``1.87e17``."""
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    mant, exp = f"{v:.2e}".split("e")
    return f"{mant}e{int(exp)}"


def fmt_ratio(r: float) -> str:
    """A ratio in two significant digits without exponent below 10, whole numbers above: 0.21, 1.4, 30, 140."""
    return f"{r:.0f}" if r >= 10 else f"{r:.2g}"


def fmt_signed(v: float, digits: int, unit: str = "") -> str:
    if v == 0:
        return f"±{0:.{digits}f}{unit}"
    return f"{v:+.{digits}f}{unit}".replace("-", "−")


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


def budget_ms(fps: float | None) -> float | None:
    return 1000.0 / fps if fps else None


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
    mem: Val
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


def cell_key(run: RunRecord, cell: CellRecord) -> str:
    """The cell's id in this run: its ``cell_id``, prefixed by the device serial when devices share it
    (the runner names multi-device samples ``serial/cell_id`` the same way)."""
    shared = sum(1 for c in run.cells if c.cell_id == cell.cell_id) > 1
    return f"{cell.device.serial}/{cell.cell_id}" if shared else cell.cell_id


def anchor_for(cell_id: str) -> str:
    return "cell-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in cell_id)


def device_name(dev: DeviceRecord) -> str:
    return f"{dev.model} ({dev.serial})"


class _RowBuilder:
    def __init__(self, run: RunRecord, notes: Footnotes) -> None:
        self.run = run
        self.notes = notes
        self.fps = run.scenario.fps
        self.budget = budget_ms(self.fps)

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
        if self.budget is None:
            return self.notes.missing("scenario has no fps, so there is no frame budget to judge real time against")
        head = cell.latency_ms
        p90 = head.p90 if head is not None else None
        budget_txt = f"frame budget {self.budget:.1f} ms at {self.fps:g} fps"
        rt = cell.realtime
        if rt is None and p90 is not None:
            rt = p90 <= self.budget
        if rt is None:
            reason = head.missing.get("p90") if head is not None else None
            return self.notes.missing(
                f"real time not judged: no p90 latency ({reason})" if reason else "real time not judged: no p90 latency"
            )
        p90_txt = f"p90 {p90:.2f} ms" if p90 is not None else "p90 unknown"
        return Val("yes" if rt else "no", title=f"{p90_txt} vs {budget_txt}", cls="rt-yes" if rt else "rt-no")

    def quality(self, cell: CellRecord, base: CellRecord | None, attr: str, digits: int, unit: str,
                *, higher_better: bool = True) -> Val:
        value = getattr(cell.quality, attr)
        if value is None:
            return self.notes.missing(cell.quality.missing.get(attr) or f"{attr} not measured (no reason given)")
        title = f"{attr}: {value:.6g}" + (f" over {cell.quality.frames} frame(s)" if cell.quality.frames else "")
        if cell.quality.computed_on:
            title += f", computed on {cell.quality.computed_on}"
        text = f"{value:.{digits}f}"
        if cell.baseline:
            return Val(text, title=title, sub="baseline", sub_cls="muted")
        delta: float | None = getattr(cell.deltas, attr, None) if cell.deltas is not None else None
        if delta is None and base is not None:
            b = getattr(base.quality, attr)
            if b is not None:
                delta = float(value) - float(b)
        if delta is None:
            why = "no bicubic baseline on this device and delegate" if base is None else "baseline has no value"
            return Val(text, title=f"{title}; Δ vs bicubic unknown: {why}", sub="Δ —", sub_cls="muted")
        better = delta > 0 if higher_better else delta < 0
        cls = "muted" if delta == 0 else ("good" if better else "bad")
        return Val(text, title=f"{title}; Δ vs bicubic {delta:+.6g}{unit}", sub=fmt_signed(delta, digits, unit),
                   sub_cls=cls)

    def mai(self, cell: CellRecord, base: CellRecord | None) -> Val:
        """The MAI 2021 score 2^(2·PSNR-Y)/(C·runtime ms), C = 1; beside it the ratio to bicubic's."""
        q = cell.quality
        score = q.mai2021_score
        if score is None:
            reason = q.missing.get("mai2021_score")
            if reason is None:
                lat = cell.latency_ms
                if q.psnr_y_db is None:
                    reason = "MAI score needs PSNR-Y, which was not measured"
                elif lat is None or (lat.median is None and lat.mean is None):
                    reason = "MAI score needs a median (or mean) latency, which was not measured"
                elif q.psnr_y_db >= 60:
                    reason = "MAI score not computed: PSNR-Y ≥ 60 dB (output practically identical to HR)"
                else:
                    reason = "MAI score not recorded (no reason given)"
            return self.notes.missing(reason)
        title = (f"MAI 2021 score {score:.4g} = 2^(2·PSNR-Y) / (C·median latency ms), C = 1. Absolute values are "
                 "only comparable within perflab (the challenge used its own C and runtime measurement); "
                 "the ratio to bicubic is what carries over")
        if cell.baseline:
            return Val(fmt_sci(score), title=title, sub="baseline", sub_cls="muted")
        b = base.quality.mai2021_score if base is not None else None
        if b is None or b <= 0:
            return Val(fmt_sci(score), title=title + "; no bicubic score to compare with", sub="× —", sub_cls="muted")
        ratio = score / b
        cls = "good" if ratio > 1 else ("bad" if ratio < 1 else "muted")
        return Val(fmt_sci(score), title=f"{title}; {ratio:.3g}× bicubic's {b:.4g}", sub=f"{fmt_ratio(ratio)}× bic",
                   sub_cls=cls)

    def median_with_delta(self, cell: CellRecord, mode: str, base: CellRecord | None) -> Val:
        v = self.latency(cell, mode, "median")
        rec = series_of(cell, mode)
        if v.missing and rec is not None and rec.mean is not None:
            # A tool summary (benchmark_model) has a mean but no median: show the mean, labelled as such.
            reason = rec.missing.get("median") or "median not recorded (no reason given)"
            return Val(fmt_ms(rec.mean), note=self.notes.add(reason), sub="mean, no median", sub_cls="muted",
                       title=f"median not available ({reason}); this is the mean from {rec.source}, n={rec.n}")
        if v.missing or cell.baseline or base is None:
            return v
        brec = series_of(base, mode)
        if rec is None or brec is None or rec.median is None or brec.median is None or brec.median <= 0:
            return v
        ratio = rec.median / brec.median
        return Val(v.text, title=f"{v.title}; {ratio:.2f}× bicubic's {brec.median:.3f} ms", sub=f"{ratio:.1f}× bic",
                   sub_cls="muted")

    def telemetry(self, cell: CellRecord, attr: str, fmt: Callable[[float], str], what: str) -> Val:
        v = getattr(cell.telemetry, attr)
        if v is None:
            return self.notes.missing(cell.telemetry.missing.get(attr) or f"{what} not recorded (no reason given)")
        title = what
        if attr == "mem_peak_mb" and cell.telemetry.mem_source:
            title += f" (source: {cell.telemetry.mem_source})"
        return Val(fmt(float(v)), title=title)

    def power(self, cell: CellRecord) -> Val:
        t = cell.telemetry
        if t.power_source is None:
            reason = t.missing.get("power_source") or t.missing.get("power")
            return self.notes.missing(reason or "no power source for this cell (no reason given)")
        conf = t.power_confidence or "unstated"
        cls = {"high": "good", "medium": "", "low": "bad", "none": "bad"}.get(conf, "")
        return Val(t.power_source, title=f"power source: {t.power_source}; confidence: {conf}",
                   sub=f"confidence: {conf}", sub_cls=cls)

    def size(self, cell: CellRecord) -> Val:
        if cell.model.size_bytes is None:
            return self.notes.missing("model file size not recorded")
        return Val(fmt_size(cell.model.size_bytes), title=f"{cell.model.size_bytes} bytes"
                   + (f", sha256 {cell.model.sha256}" if cell.model.sha256 else ""))

    def row(self, cell: CellRecord, base: CellRecord | None) -> RowView:
        ok = cell.status == CellStatus.OK
        placeholder = Val("")  # not rendered: a cell that is not ok shows its status and reason instead
        head = cell.latency_ms
        source = head.source if head is not None else None
        if ok:
            vals = {
                "paced_median": self.median_with_delta(cell, "paced", base),
                "paced_p90": self.latency(cell, "paced", "p90"),
                "b2b_median": self.median_with_delta(cell, "back_to_back", base),
                "b2b_p90": self.latency(cell, "back_to_back", "p90"),
                "init": self.startup(cell, "init"),
                "first": self.startup(cell, "first"),
                "realtime": self.realtime(cell),
                "psnr": self.quality(cell, base, "psnr_y_db", 2, " dB"),
                "ssim": self.quality(cell, base, "ssim_y", 4, ""),
                "piqe": self.quality(cell, base, "piqe", 1, "", higher_better=False),
                "mai": self.mai(cell, base),
                "cpu": self.telemetry(cell, "cpu_load_pct", lambda v: f"{v:.0f}%", "CPU load during the run"),
                "mem": self.telemetry(cell, "mem_peak_mb", lambda v: f"{v:.0f}", "peak memory (MB)"),
                "power": self.power(cell),
            }
        else:
            vals = {k: placeholder for k in ("paced_median", "paced_p90", "b2b_median", "b2b_p90", "init", "first",
                                              "realtime", "psnr", "ssim", "piqe", "mai", "cpu", "mem", "power")}
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


def find_baseline(run: RunRecord, cell: CellRecord) -> CellRecord | None:
    """The bicubic baseline for ``cell``: named by its deltas, else the baseline on the same device/delegate."""
    if cell.baseline:
        return cell
    if cell.deltas is not None:
        named = [c for c in run.cells if c.cell_id == cell.deltas.baseline_cell_id]
        same_device = [c for c in named if c.device.serial == cell.device.serial]
        if same_device or named:
            return (same_device or named)[0]
    for c in run.cells:
        if c.baseline and c.device.serial == cell.device.serial and c.delegate == cell.delegate:
            return c
    return None


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
    devices: list[DeviceView] = []
    for dev, groups in grouped_cells(run):
        gviews = []
        for delegate, members in groups:
            base = next((c for c in members if c.baseline), None)
            rows = [rb.row(c, find_baseline(run, c)) for c in members]
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
    warnings = [
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
        budget_ms=budget_ms(run.scenario.fps),
        any_emulated=any(is_emulated(c) for c in run.cells) or any(device_emulated(d) for d in run.devices),
        devices=devices,
        problems=problems,
        warnings=warnings,
        layers=build_layers(run, notes),
        frame_tables=build_frame_tables(run, notes),
        compat=build_compat(run),
        footnotes=notes,
        counts=counts,
    )


def build_layers(run: RunRecord, notes: Footnotes) -> list[LayersView]:
    out = []
    for c in run.cells:
        if c.layers is None or not c.layers.rows:
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
        ))
    return out


MAX_FRAME_ROWS = 10  # per-frame table rows per device/delegate; statistics and the figure use every frame
FRAME_KEYS = ("psnr_y_db", "ssim_y", "psnr_rgb_db", "piqe", "d_psnr_y_db", "d_ssim_y")


def _finite(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _per_frame(cell: CellRecord) -> dict[str, dict[str, float | None]]:
    """frame name → its values (None where absent or not finite) and ``piqe_missing`` as a separate map."""
    out: dict[str, dict[str, float | None]] = {}
    for entry in cell.quality.per_frame:
        name = entry.get("frame")
        if name is None:
            continue
        out[str(name)] = {k: _finite(entry.get(k)) for k in FRAME_KEYS}
    return out


def _piqe_missing(cell: CellRecord) -> dict[str, str]:
    return {str(e["frame"]): str(e["piqe_missing"]) for e in cell.quality.per_frame
            if e.get("frame") is not None and e.get("piqe_missing")}


def _delta(e: dict[str, float | None], b: dict[str, float | None] | None, key: str) -> float | None:
    """The recorded difference to bicubic on this frame, else computed from the baseline's frame."""
    recorded = e.get(f"d_{key}")
    if recorded is not None:
        return recorded
    v, bv = e.get(key), (b.get(key) if b is not None else None)
    return v - bv if v is not None and bv is not None else None


def _delta_cls(d: float, higher_better: bool = True) -> str:
    if d == 0:
        return "muted"
    return "good" if (d > 0) == higher_better else "bad"


class _FrameBuilder:
    def __init__(self, run: RunRecord, notes: Footnotes) -> None:
        self.run = run
        self.notes = notes

    def frame_vals(self, cell: CellRecord, frame: str, e: dict[str, float | None] | None,
                   b: dict[str, float | None] | None, piqe_why: str | None) -> list[Val]:
        if e is None:
            m = self.notes.missing(f"no per-frame quality for {frame} in this cell")
            return [m, m, m]
        out: list[Val] = []
        for key, digits, unit, higher, name in (("psnr_y_db", 2, " dB", True, "PSNR-Y"), ("ssim_y", 4, "", True, "SSIM-Y"),
                                                ("piqe", 1, "", False, "PIQE")):
            v = e.get(key)
            if v is None:
                why = piqe_why if key == "piqe" and piqe_why else None
                out.append(self.notes.missing(why or f"{name} of {frame} not recorded in this cell"))
                continue
            title = f"{frame}: {name} {v:.4f}{unit}"
            if cell.baseline:
                out.append(Val(f"{v:.{digits}f}", title=title))
                continue
            d = e.get(f"d_{key}") if key != "piqe" else None
            if d is None:
                bv = b.get(key) if b is not None else None
                d = v - bv if bv is not None else None
            if d is None:
                out.append(Val(f"{v:.{digits}f}", title=title + "; no bicubic value on this frame", sub="Δ —",
                               sub_cls="muted"))
            else:
                out.append(Val(f"{v:.{digits}f}", title=f"{title}; Δ vs bicubic on this frame {d:+.4f}{unit}",
                               sub=fmt_signed(d, digits, unit), sub_cls=_delta_cls(d, higher)))
        return out

    def stats(self, cell: CellRecord, per: dict[str, dict[str, float | None]],
              base_per: dict[str, dict[str, float | None]] | None) -> FrameStatsRow:
        q = cell.quality
        n = len(per)
        psnrs = [(f, v) for f, e in per.items() if (v := e.get("psnr_y_db")) is not None]

        def recorded(attr: str, digits: int, what: str) -> Val:
            v = getattr(q, attr)
            if v is None:
                return self.notes.missing(q.missing.get(attr) or f"{what} not recorded (no reason given)")
            return Val(f"{v:.{digits}f}", title=f"{what} {v:.6g}, mean over {q.frames or n} frame(s)")

        psnr_min = q.psnr_y_db_min if q.psnr_y_db_min is not None else (min(v for _, v in psnrs) if psnrs else None)
        worst_f = min(psnrs, key=lambda fv: fv[1])[0] if psnrs else None
        min_val = (Val(f"{psnr_min:.2f}", title=f"lowest PSNR-Y over the frames: {psnr_min:.4f} dB"
                       + (f" ({worst_f})" if worst_f else ""), sub=worst_f, sub_cls="muted")
                   if psnr_min is not None else self.notes.missing(q.missing.get("psnr_y_db") or "no per-frame PSNR-Y"))
        piqe = recorded("piqe", 1, "PIQE (lower is better)")
        if cell.baseline:
            base_txt = Val("baseline", cls="muted")
            return FrameStatsRow(cell_key(self.run, cell), cell_label(cell), True, is_emulated(cell), n,
                                 recorded("psnr_y_db", 2, "PSNR-Y dB"), min_val, base_txt, base_txt, base_txt,
                                 recorded("ssim_y", 4, "SSIM-Y"), base_txt, recorded("psnr_rgb_db", 2, "PSNR-RGB dB"),
                                 piqe)
        if base_per is None:
            why = "no bicubic baseline with per-frame values on this device and delegate"
            d_mean = d_min = worse = d_ssim = self.notes.missing(why)
        else:
            dp = [(f, d) for f, e in per.items() if (d := _delta(e, base_per.get(f), "psnr_y_db")) is not None]
            ds = [d for f, e in per.items() if (d := _delta(e, base_per.get(f), "ssim_y")) is not None]
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
                d_mean = d_min = worse = self.notes.missing("no frame shared with the bicubic baseline")
            if ds:
                ms = sum(ds) / len(ds)
                d_ssim = Val(fmt_signed(ms, 4), cls=_delta_cls(ms), title=f"mean ΔSSIM-Y over {len(ds)} frame(s)")
            else:
                d_ssim = self.notes.missing("no frame with SSIM-Y shared with the bicubic baseline")
        if not piqe.missing and q.piqe is not None and base_per is not None:
            base = find_baseline(self.run, cell)
            bp = base.quality.piqe if base is not None else None
            if bp is not None:
                d = q.piqe - bp
                piqe = Val(piqe.text, title=f"{piqe.title}; Δ vs bicubic {d:+.3f} (lower is better)",
                           sub=fmt_signed(d, 1), sub_cls=_delta_cls(d, higher_better=False))
        return FrameStatsRow(cell_key(self.run, cell), cell_label(cell), False, is_emulated(cell), n,
                             recorded("psnr_y_db", 2, "PSNR-Y dB"), min_val, d_mean, d_min, worse,
                             recorded("ssim_y", 4, "SSIM-Y"), d_ssim, recorded("psnr_rgb_db", 2, "PSNR-RGB dB"), piqe)


def build_frame_tables(run: RunRecord, notes: Footnotes, max_rows: int = MAX_FRAME_ROWS) -> list[FrameTableView]:
    """Per device and delegate: per-frame values of the first ``max_rows`` frames, statistics over all frames,
    and every frame's ΔPSNR-Y / PIQE for the distribution figure."""
    fb = _FrameBuilder(run, notes)
    tables = []
    for dev, groups in grouped_cells(run):
        for delegate, members in groups:
            cells = [c for c in members if c.status == CellStatus.OK and c.quality.per_frame]
            if not cells:
                continue
            per = {id(c): _per_frame(c) for c in cells}
            frames = list(dict.fromkeys(f for c in cells for f in per[id(c)]))
            base = next((c for c in cells if c.baseline), None)
            base_per = per[id(base)] if base is not None else None
            cols = [FrameColumn(cell_key(run, c), cell_label(c), c.baseline, is_emulated(c)) for c in cells]
            piqe_why = {id(c): _piqe_missing(c) for c in cells}
            rows = []
            for f in frames[:max_rows]:
                b = base_per.get(f) if base_per is not None else None
                vals: list[Val] = []
                for c in cells:
                    vals.extend(fb.frame_vals(c, f, per[id(c)].get(f), b, piqe_why[id(c)].get(f)))
                rows.append((f, vals))
            dist = []
            for c in cells:
                dp = [d for f, e in per[id(c)].items()
                      if (d := _delta(e, base_per.get(f) if base_per is not None else None, "psnr_y_db")) is not None]
                pq = [v for e in per[id(c)].values() if (v := e.get("piqe")) is not None]
                dist.append(FrameDist(cell_label(c), c.baseline, is_emulated(c), [] if c.baseline else dp, pq))
            tables.append(FrameTableView(
                title=f"{device_name(dev)} · {delegate}",
                emulated=device_emulated(dev) or any(is_emulated(c) for c in cells),
                columns=cols, rows=rows,
                stats=[fb.stats(c, per[id(c)], None if c.baseline else base_per) for c in cells],
                dist=dist, total_frames=len(frames), shown_frames=min(len(frames), max_rows),
            ))
    return tables


# ---------------------------------------------------------------- delegate compatibility

TRAP_OPS = {"DEPTH_TO_SPACE": "depth-to-space (pixel shuffle)"}
_REPLACING = re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \(([^)]*)\) node"
                        r"(?:, yielding (\d+) partitions)?")
_APPLIED = re.compile(r"(?:Explicitly applied|Applied) (.+?) delegate, and the model graph will be "
                      r"(completely|partially) executed")
_NOT_APPLIED = re.compile(r"Though (.+?) delegate is explicitly applied, the model graph will not be executed")
_HOST_OPS = re.compile(r"^ops: (.*)$")


def is_trap(op_name: str, reason: str = "") -> bool:
    """Depth-to-space / pixel shuffle: the up-sampling op of most SR nets, and the op GPU delegates reject."""
    text = f"{op_name} {reason}".lower()
    return (op_name.upper() in TRAP_OPS or "depth_to_space" in text or "depthtospace" in text
            or ("pixel" in text and "shuffle" in text))


def read_delegate_line(line: str) -> DelegateLogLine:
    """A delegate line as printed by the device's tool, with a plain-words reading of the lines perflab knows."""
    m = _REPLACING.search(line)
    if m:
        n, total = int(m.group(1)), int(m.group(2))
        parts = f" in {m.group(4)} partition(s)" if m.group(4) else ""
        if n == total:
            return DelegateLogLine(line, f"all {total} nodes on {m.group(3)}{parts}", "good")
        return DelegateLogLine(line, f"{n} of {total} nodes on {m.group(3)}{parts}; {total - n} node(s) fell back to "
                               "CPU", "bad")
    m = _APPLIED.search(line)
    if m:
        if m.group(2) == "completely":
            return DelegateLogLine(line, f"whole graph on {m.group(1)}", "good")
        return DelegateLogLine(line, f"graph only partly on {m.group(1)}: the rest runs on CPU", "bad")
    m = _NOT_APPLIED.search(line)
    if m:
        return DelegateLogLine(line, f"{m.group(1)} delegate not used: the whole graph runs on CPU", "bad")
    m = _HOST_OPS.match(line)
    if m:
        names = m.group(1).split()
        n_del = sum(1 for x in names if x == "DELEGATE")
        if n_del:
            return DelegateLogLine(line, f"host LiteRT: {n_del} delegate node(s) in the graph (this line does not say "
                                   "which ops each took)", "muted")
        return DelegateLogLine(line, "host LiteRT: no delegate node, every op on the built-in CPU kernels", "muted")
    return DelegateLogLine(line)


def _model_key(cell: CellRecord) -> str:
    m = cell.model
    return m.sha256 or f"{m.name}\x00{m.variant}\x00{m.scale}"


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
        missing_reason: str | None = None
        if compat is None:
            missing_reason = next((c.model.missing["compat"] for c in cells if "compat" in c.model.missing), None)
            if missing_reason is None:
                not_ok = [c for c in cells if c.status != CellStatus.OK]
                if not_ok and len(not_ok) == len(cells):
                    missing_reason = (f"not analysed: the cell ended {not_ok[0].status} before the analyzer ran "
                                      f"({not_ok[0].reason or 'no reason recorded'})")
                else:
                    missing_reason = "no analyzer report recorded for this model (no reason given)"
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
        if compat is None:
            verdict, vcls = "no analyzer report", "muted"
        elif not compat.gpu_checked:
            verdict, vcls = "GPU check not run by the analyzer", "muted"
        elif issues:
            n_ops = len({(i.op_index, i.op_name) for i in issues})
            verdict, vcls = f"GPU delegate would reject {n_ops} op(s): they run on CPU, splitting the graph", "bad"
        elif compat.gpu_compatible:
            rt = f" (TFLite runtime {compat.runtime_version})" if compat.runtime_version else ""
            verdict, vcls = f"GPU delegate: compatible{rt}", "good"
        else:
            verdict, vcls = "GPU check ran but gave no verdict", "muted"
        runs = [
            DelegateRunView(
                cell_id=cell_key(run, c), anchor=anchor_for(cell_key(run, c)), device=device_name(c.device),
                delegate=c.delegate, status=str(c.status), ok=c.status == CellStatus.OK, emulated=is_emulated(c),
                reason=c.reason if c.status != CellStatus.OK else None,
                lines=[read_delegate_line(x) for x in c.delegate_log],
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
