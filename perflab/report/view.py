"""The run report's view model: RunRecord → display-ready rows. Pure, no I/O.

Rules kept here:
- A missing number is shown as "—" with its reason (hover title and a numbered footnote), never as
  a blank or 0. Where a record gives no reason, the view says that no reason was recorded.
- Emulated cells and devices carry ``emulated=True`` all the way to the template.
- Each cell is set beside the bicubic baseline on the same device and delegate.
"""

from __future__ import annotations

import math
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
class FrameTableView:
    title: str
    emulated: bool
    columns: list[FrameColumn]
    rows: list[tuple[str, list[Val]]]  # frame name, one Val per column
    mean_row: list[Val]


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

    def quality(self, cell: CellRecord, base: CellRecord | None, attr: str, digits: int, unit: str) -> Val:
        value = getattr(cell.quality, attr)
        if value is None:
            return self.notes.missing(cell.quality.missing.get(attr) or f"{attr} not measured (no reason given)")
        title = f"{attr}: {value:.6g}" + (f" over {cell.quality.frames} frame(s)" if cell.quality.frames else "")
        if cell.quality.computed_on:
            title += f", computed on {cell.quality.computed_on}"
        text = f"{value:.{digits}f}"
        if cell.baseline:
            return Val(text, title=title, sub="baseline", sub_cls="muted")
        delta: float | None = getattr(cell.deltas, attr) if cell.deltas is not None else None
        if delta is None and base is not None:
            b = getattr(base.quality, attr)
            if b is not None:
                delta = float(value) - float(b)
        if delta is None:
            why = "no bicubic baseline on this device and delegate" if base is None else "baseline has no value"
            return Val(text, title=f"{title}; Δ vs bicubic unknown: {why}", sub="Δ —", sub_cls="muted")
        cls = "good" if delta > 0 else ("bad" if delta < 0 else "muted")
        return Val(text, title=f"{title}; Δ vs bicubic {delta:+.6g}{unit}", sub=fmt_signed(delta, digits, unit),
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
                "cpu": self.telemetry(cell, "cpu_load_pct", lambda v: f"{v:.0f}%", "CPU load during the run"),
                "mem": self.telemetry(cell, "mem_peak_mb", lambda v: f"{v:.0f}", "peak memory (MB)"),
                "power": self.power(cell),
            }
        else:
            vals = {k: placeholder for k in ("paced_median", "paced_p90", "b2b_median", "b2b_p90", "init", "first",
                                              "realtime", "psnr", "ssim", "cpu", "mem", "power")}
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
            gviews.append(GroupView(delegate, cell_key(run, base) if base else None, rows))
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


def _per_frame(cell: CellRecord) -> dict[str, dict[str, float | None]]:
    out: dict[str, dict[str, float | None]] = {}
    for entry in cell.quality.per_frame:
        name = entry.get("frame")
        if name is None:
            continue
        vals: dict[str, float | None] = {}
        for k in ("psnr_y_db", "ssim_y"):
            v = entry.get(k)
            vals[k] = float(v) if isinstance(v, (int, float)) and math.isfinite(float(v)) else None
        out[str(name)] = vals
    return out


def build_frame_tables(run: RunRecord, notes: Footnotes) -> list[FrameTableView]:
    tables = []
    for dev, groups in grouped_cells(run):
        for delegate, members in groups:
            cells = [c for c in members if c.status == CellStatus.OK and c.quality.per_frame]
            if not cells:
                continue
            per = {c.cell_id: _per_frame(c) for c in cells}
            frames = list(dict.fromkeys(f for c in cells for f in per[c.cell_id]))
            base = next((c for c in cells if c.baseline), None)
            cols = [FrameColumn(cell_key(run, c), cell_label(c), c.baseline, is_emulated(c)) for c in cells]
            rows = []
            for f in frames:
                vals = []
                b = per[base.cell_id].get(f) if base is not None else None
                for c in cells:
                    e = per[c.cell_id].get(f)
                    psnr = e.get("psnr_y_db") if e is not None else None
                    if e is None or psnr is None:
                        vals.append(notes.missing(f"no per-frame quality for {f} in this cell"))
                        continue
                    ssim = e.get("ssim_y")
                    text = f"{psnr:.2f}"
                    title = f"{f}: PSNR-Y {psnr:.4f} dB" + (f", SSIM-Y {ssim:.4f}" if ssim is not None else "")
                    sub: str | None = f"SSIM {ssim:.4f}" if ssim is not None else None
                    cls = ""
                    bp = b.get("psnr_y_db") if b is not None else None
                    if not c.baseline and bp is not None:
                        d = psnr - bp
                        sub = fmt_signed(d, 2, " dB") + (f" · {ssim:.4f}" if ssim is not None else "")
                        cls = "good" if d > 0 else ("bad" if d < 0 else "muted")
                    vals.append(Val(text, title=title, sub=sub, sub_cls=cls))
                rows.append((f, vals))
            mean_row = []
            for c in cells:
                if c.quality.psnr_y_db is None:
                    mean_row.append(notes.missing(c.quality.missing.get("psnr_y_db") or "no mean PSNR-Y recorded"))
                else:
                    ssim_m = c.quality.ssim_y
                    mean_row.append(Val(f"{c.quality.psnr_y_db:.2f}",
                                        sub=f"SSIM {ssim_m:.4f}" if ssim_m is not None else None))
            tables.append(FrameTableView(
                title=f"{device_name(dev)} · {delegate}",
                emulated=device_emulated(dev) or any(is_emulated(c) for c in cells),
                columns=cols, rows=rows, mean_row=mean_row,
            ))
    return tables


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
