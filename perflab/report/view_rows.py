"""The run report's main table: one row of values per cell (latency, real time, quality, memory,
power), each beside bicubic's on the same device and delegate. Pure, no I/O; rules in
:mod:`perflab.report.view_common`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from perflab.core.display import MISSING, fmt_mai, fmt_ms, fmt_ratio, fmt_signed, fmt_size
from perflab.core.units import frame_budget_ms
from perflab.report import view_common as vc
from perflab.rules.memory import mem_kind
from perflab.store.results import CellRecord, CellStatus, RunRecord, WarningRecord


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
    size: vc.Val
    paced_median: vc.Val
    paced_p90: vc.Val
    b2b_median: vc.Val
    b2b_p90: vc.Val
    init: vc.Val
    first: vc.Val
    realtime: vc.Val
    psnr: vc.Val
    ssim: vc.Val
    piqe: vc.Val
    mai: vc.Val
    cpu: vc.Val  # the measured process, % of one core (the cost table's "Δ CPU proc")
    cpu_dev: vc.Val  # the device's busy, % of all cores (the cost table's "Δ CPU dev")
    mem_peak: vc.Val  # absolute peak (RSS high-water mark or the tool's peak footprint)
    mem_delta: vc.Val  # the tool's growth of max RSS since it started: a different quantity
    power: vc.Val
    warnings: list[WarningRecord]


class RowBuilder:
    def __init__(self, run: RunRecord, notes: vc.Footnotes) -> None:
        self.run = run
        self.notes = notes
        self.fps = run.scenario.fps
        self.budget = frame_budget_ms(self.fps)

    def latency(self, cell: CellRecord, mode: str, attr: str) -> vc.Val:
        rec = vc.series_of(cell, mode)
        if rec is None:
            if mode == "paced" and not self.fps:
                return self.notes.missing("scenario runs back-to-back only (no fps), so there is no paced series")
            return self.notes.missing(f"no {vc.MODE_LABELS.get(mode, mode)} series was recorded for this cell")
        value = getattr(rec, attr)
        if value is None:
            reason = rec.missing.get(attr)
            return self.notes.missing(
                reason or f"{attr} of the {vc.MODE_LABELS.get(mode, mode)} series not recorded (no reason given)"
            )
        title = f"{vc.MODE_LABELS.get(mode, mode)} {attr}: {value:.3f} ms, n={rec.n}, source: {rec.source}"
        if attr == "median" and rec.p10 is not None and rec.p90 is not None:
            title += f"; spread p10 {rec.p10:.3f} – p90 {rec.p90:.3f} ms"
        return vc.Val(fmt_ms(float(value)), title=title)

    def startup(self, cell: CellRecord, attr: str) -> vc.Val:
        recs = [r for r in [cell.latency_ms, *cell.series.values()] if r is not None]
        for r in recs:
            v = getattr(r, attr)
            if v is not None:
                return vc.Val(fmt_ms(float(v)), title=f"{attr}: {v:.3f} ms (source: {r.source})")
        for r in recs:
            if attr in r.missing:
                return self.notes.missing(r.missing[attr])
        return self.notes.missing(f"{attr} latency not recorded (no reason given)")

    def realtime(self, cell: CellRecord) -> vc.Val:
        """The stored verdict and the rule that decided it (p90, or the mean where only mean ± std exist)."""
        if self.budget is None:
            return self.notes.missing("scenario has no fps, so there is no frame budget to judge real time against")
        rt = cell.realtime
        if rt is None:
            return self.notes.missing(f"real-time verdict {vc.NOT_RECORDED}")
        if rt.meets is None:
            return self.notes.missing(f"real time not judged: {rt.missing or 'no reason given'}")
        budget = rt.budget_ms if rt.budget_ms is not None else self.budget
        stat = rt.statistic or "p90"
        value = f"{stat} {rt.value_ms:.2f} ms" if rt.value_ms is not None else f"{stat} value not recorded"
        title = f"{value} {'≤' if rt.meets else '>'} frame budget {budget:.1f} ms at {self.fps:g} fps. Rule: {rt.rule}"
        sub = f"by {stat}"
        return vc.Val("yes" if rt.meets else "no", title=title, cls="rt-yes" if rt.meets else "rt-no", sub=sub,
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
            why = (f"Δ {attr} vs bicubic {vc.NOT_RECORDED}" if attr not in type(d).model_fields
                   else f"no Δ {attr} vs bicubic: this cell or bicubic ({d.baseline_cell_id}) has no {attr}")
        return None, why

    def quality(self, cell: CellRecord, attr: str, digits: int, unit: str, *, higher_better: bool = True) -> vc.Val:
        value = getattr(cell.quality, attr)
        if value is None and (mark := vc.no_reference_val(cell, attr)) is not None:
            return mark
        if value is None:
            return self.notes.missing(cell.quality.missing.get(attr) or f"{attr} not measured (no reason given)")
        title = f"{attr}: {value:.6g}" + (f" over {cell.quality.frames} frame(s)" if cell.quality.frames else "")
        if cell.quality.computed_on:
            title += f", computed on {cell.quality.computed_on}"
        text = f"{value:.{digits}f}"
        if cell.baseline:
            return vc.Val(text, title=title, sub="baseline", sub_cls="muted")
        delta, why = self.stored_delta(cell, attr)
        if delta is None:
            return vc.Val(text, title=f"{title}; Δ vs bicubic unknown: {why}", sub=f"Δ {MISSING}", sub_cls="muted")
        return vc.Val(text, title=f"{title}; Δ vs bicubic {delta:+.6g}{unit}", sub=fmt_signed(delta, digits, unit),
                   sub_cls=vc.delta_cls(delta, higher_better, digits))

    def mai(self, cell: CellRecord) -> vc.Val:
        """The stored MAI 2021 score, shown as log10 (the raw score spans ~18 decades)."""
        q = cell.quality
        score = q.mai2021_score
        if score is None:
            return self.notes.missing(q.missing.get("mai2021_score") or f"MAI score {vc.NOT_RECORDED}")
        title = (f"MAI 2021 score {score:.3g} = 2^(2·PSNR-Y) / (C·median latency ms), C = 1; shown as log10 "
                 f"= {fmt_mai(score)} (+0.30 = twice the score, i.e. +0.15 dB PSNR-Y or half the latency). "
                 "Absolute values are only comparable within perflab (the challenge used its own C and runtime "
                 "measurement)")
        if cell.baseline:
            return vc.Val(fmt_mai(score), title=title, sub="baseline", sub_cls="muted")
        ratio, why = self.stored_delta(cell, "mai2021_ratio")
        if ratio is None:
            return vc.Val(fmt_mai(score), title=f"{title}; ratio to bicubic: {why}")
        return vc.Val(fmt_mai(score), title=f"{title}; {ratio:.3g}× bicubic's score", sub=f"{fmt_ratio(ratio)}× bic",
                   sub_cls="good" if ratio > 1 else ("bad" if ratio < 1 else "muted"))

    def median_with_delta(self, cell: CellRecord, mode: str) -> vc.Val:
        v = self.latency(cell, mode, "median")
        rec = vc.series_of(cell, mode)
        if v.missing and rec is not None and rec.mean is not None:
            # A tool summary (benchmark_model) has a mean but no median: show the mean, labelled as such.
            reason = rec.missing.get("median") or "median not recorded (no reason given)"
            std = f" ± {rec.std:.2f}" if rec.std is not None else ""
            return vc.Val(fmt_ms(rec.mean), note=self.notes.add(reason), sub="mean, no median", sub_cls="muted",
                       title=f"median not available ({reason}); this is the mean{std} ms from {rec.source}, "
                             f"n={rec.n}")
        head = cell.latency_ms
        if v.missing or cell.baseline or head is None or head.mode != mode:
            return v
        delta, _ = self.stored_delta(cell, "latency_median_ms")
        if delta is None:
            return v
        return vc.Val(v.text, title=f"{v.title}; {delta:+.3f} ms vs bicubic's median", sub=f"{fmt_signed(delta, 1)} ms",
                   sub_cls="muted")

    def telemetry(self, cell: CellRecord, attr: str, fmt: Callable[[float], str], what: str) -> vc.Val:
        v = getattr(cell.telemetry, attr)
        if v is None:
            return self.notes.missing(vc.telemetry_reason(cell, attr))
        return vc.Val(fmt(float(v)), title=what)

    def memory(self, cell: CellRecord, kind: str) -> vc.Val:
        """Memory in the column of its meaning (rules.memory): ``peak`` — the peak RSS of the benchmark process
        from the sampler (``mem_peak_mb``); ``delta`` — the tool's own growth of max RSS since it started
        (``tool_mem_mb``), a second, labelled figure. A /3 file's tool figure sits in ``mem_peak_mb``."""
        t = cell.telemetry
        if kind == "delta":
            v, src = ((t.tool_mem_mb, t.tool_mem_source) if t.tool_mem_source is not None
                      else (t.mem_peak_mb, t.mem_source))
            if v is None or mem_kind(src) != "delta":
                why = t.missing.get("tool_mem_mb") if v is None else None
                return self.notes.missing(
                    why or f"this device's tool reports no memory delta ({src or 'no memory figure'}); see Peak MB")
            return vc.Val(f"{v:.0f}", title=f"{v:.1f} MB: the tool's own figure; source: {src}")
        if t.mem_peak_mb is None:
            return self.notes.missing(t.missing.get("mem_peak_mb") or "memory not recorded (no reason given)")
        if mem_kind(t.mem_source) != "peak":  # a /3 file whose only figure is the tool's delta
            return self.notes.missing(f"this device's tool reports a different memory quantity ({t.mem_source}); "
                                      "see the Mem Δ MB column")
        return vc.Val(f"{t.mem_peak_mb:.0f}", title=f"{t.mem_peak_mb:.1f} MB; source: {t.mem_source or 'not recorded'}")

    def power(self, cell: CellRecord) -> vc.Val:
        """Mean power over the headline window where measured, with its source and confidence under it."""
        t = cell.telemetry
        conf = t.power_confidence or "unstated"
        cls = {"high": "good", "medium": "", "low": "bad", "none": "bad"}.get(conf, "")
        if t.power_mw is not None:
            return vc.Val(f"{t.power_mw:.0f} mW", title=f"mean power {t.power_mw:.1f} mW; source: "
                       f"{t.power_source or 'not recorded'}; confidence: {conf}",
                       sub=f"{t.power_source or 'source not recorded'} · {conf}", sub_cls=cls)
        if t.power_source is None:
            reason = t.missing.get("power_mw") or t.missing.get("power_source") or t.missing.get("power")
            return self.notes.missing(reason or "no power source for this cell (no reason given)")
        why = t.missing.get("power_mw") or "no power value recorded for this cell (no reason given)"
        return vc.Val(MISSING, note=self.notes.add(why), cls="missing", title=f"{why}; power source: {t.power_source}",
                   sub=f"{t.power_source} · {conf}", sub_cls=cls)

    def size(self, cell: CellRecord) -> vc.Val:
        if cell.model.size_bytes is None:
            return self.notes.missing("model file size not recorded")
        return vc.Val(fmt_size(cell.model.size_bytes), title=f"{cell.model.size_bytes} bytes"
                   + (f", sha256 {cell.model.sha256}" if cell.model.sha256 else ""))

    def row(self, cell: CellRecord) -> RowView:
        ok = cell.status == CellStatus.OK
        placeholder = vc.Val("")  # not rendered: a cell that is not ok shows its status and reason instead
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
                "cpu": self.telemetry(cell, "cpu_load_pct", lambda v: f"{v:.0f}%",
                                      "the measured process's CPU time / wall time, % of one core"),
                "cpu_dev": self.telemetry(cell, "device_cpu_busy_pct", lambda v: f"{v:.0f}%",
                                          "the device's CPU busy over the window, % of all cores"),
                "mem_peak": self.memory(cell, "peak"),
                "mem_delta": self.memory(cell, "delta"),
                "power": self.power(cell),
            }
        else:
            vals = {k: placeholder for k in ("paced_median", "paced_p90", "b2b_median", "b2b_p90", "init", "first",
                                              "realtime", "psnr", "ssim", "piqe", "mai", "cpu", "cpu_dev", "mem_peak",
                                              "mem_delta", "power")}
        return RowView(
            cell_id=vc.cell_key(self.run, cell),
            anchor=vc.anchor_for(vc.cell_key(self.run, cell)),
            label=vc.cell_label(cell),
            model_name=cell.model.name,
            family=cell.model.family,
            variant=cell.model.variant,
            scale=cell.model.scale,
            threads=cell.threads,
            status=str(cell.status),
            ok=ok,
            baseline=cell.baseline,
            emulated=vc.is_emulated(cell),
            reason=cell.reason or (None if ok else "no reason recorded"),
            latency_source=source,
            size=self.size(cell),
            warnings=list(cell.warnings),
            **vals,
        )
