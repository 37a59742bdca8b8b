"""The answer first: per device and delegate, each SR model beside bicubic (speed and quality), then
what it costs (CPU, GPU, memory, heat, current, energy) and the device at rest. Pure, no I/O; rules in
:mod:`perflab.report.view_common`."""

from __future__ import annotations

from dataclasses import dataclass, field

from perflab.core.display import fmt_ms, fmt_ratio, fmt_signed
from perflab.report import view_common as vc
from perflab.report.view_rows import RowBuilder
from perflab.rules.memory import mem_kind
from perflab.store.results import CellRecord, CellStatus, DeviceRecord, LatencyRecord, RunRecord


@dataclass
class CellHead:
    """What each row of the answer and of the costs starts with: which cell, and whether it finished."""

    cell_id: str
    anchor: str
    label: str
    delegate: str
    status: str
    ok: bool
    baseline: bool
    emulated: bool
    reason: str | None


def cell_head(run: RunRecord, cell: CellRecord) -> CellHead:
    key = vc.cell_key(run, cell)
    ok = cell.status == CellStatus.OK
    return CellHead(key, vc.anchor_for(key), vc.cell_label(cell), cell.delegate, str(cell.status), ok, cell.baseline,
                    vc.is_emulated(cell), None if ok else (cell.reason or "no reason recorded"))


@dataclass
class AnswerRow(CellHead):
    """One model beside bicubic on one device and delegate: the answer, as stored by the run."""

    realtime: vc.Val
    rule: str
    latency: vc.Val
    d_latency: vc.Val
    d_psnr: vc.Val
    d_ssim: vc.Val
    d_vmaf: vc.Val  # Δ VMAF (bicubic's row: its own VMAF)
    d_temporal: vc.Val  # Δ temporal error (bicubic's row: its own); lower is steadier
    d_piqe: vc.Val
    mai_ratio: vc.Val


@dataclass
class CostRow(CellHead):
    """What one cell costs beside bicubic on the same device, delegate and pacing: the stored deltas (the
    baseline row shows its own values), each with the power source and its confidence."""

    d_cpu_proc: vc.Val  # the measured process's CPU, points of one core (the summary's "CPU proc")
    d_cpu: vc.Val  # device CPU busy, points of all cores (the summary's "CPU dev")
    d_gpu: vc.Val
    d_mem: vc.Val
    d_temp: vc.Val  # the SoC/CPU zone (telemetry.temp_zone)
    d_skin: vc.Val  # the skin sensor (telemetry.skin_zone), its own column
    d_current: vc.Val
    mah_per_hour: vc.Val
    mj_per_frame: vc.Val
    source: vc.Val
    sentence: str | None = None  # the one line a user quotes: "+90 mA vs bicubic (battery counters, …)"


@dataclass
class IdleView:
    """The device at rest before its first cell: the floor every cell's cost sits on."""

    duration: str | None
    values: list[tuple[str, vc.Val]]
    reason: str | None = None  # why there is no idle record, or why it has no values


@dataclass
class AnswerDevice:
    device: DeviceRecord
    emulated: bool
    anchor: str
    rows: list[AnswerRow]
    cost: list[CostRow] = field(default_factory=list)
    idle: IdleView | None = None


def _range_text(lat: LatencyRecord) -> str:
    parts = [f"{k} {v:.3f} ms" for k, v in (("min", lat.min), ("max", lat.max), ("std", lat.std)) if v is not None]
    return "; " + ", ".join(parts) if parts else ""


def _latency_spread(rb: RowBuilder, cell: CellRecord) -> vc.Val:
    """The headline series' centre with its spread: median [p10–p90] (or median with p90 and MAD where no p10 is
    stored), or mean ± std where the tool reported only a summary, said so."""
    lat = cell.latency_ms
    if lat is None:
        return rb.notes.missing("no latency was recorded for this cell")
    mode = vc.MODE_LABELS.get(lat.mode, lat.mode)
    if lat.median is not None:
        p10 = lat.p10  # stored since perflab.results/2 gained it; older files have none
        if p10 is not None and lat.p90 is not None:
            sub = f"median [p10 {fmt_ms(p10)} – p90 {fmt_ms(lat.p90)}]"
        else:
            parts = [f"p90 {fmt_ms(lat.p90)}",
                     f"MAD {fmt_ms(lat.mad)}" if lat.mad is not None else ""]
            sub = "median; " + " · ".join(x for x in parts if x)
        return vc.Val(f"{fmt_ms(lat.median)} ms", sub=sub, sub_cls="muted",
                   title=f"{mode} series, n={lat.n}, source: {lat.source}{_range_text(lat)}")
    if lat.mean is not None:
        std = f" ± {fmt_ms(lat.std)}" if lat.std is not None else ""
        return vc.Val(f"{fmt_ms(lat.mean)}{std} ms", sub="mean ± std (tool summary)", sub_cls="bad",
                   title=f"{mode} series, n={lat.n}, source: {lat.source}{_range_text(lat)}; no median or p90: "
                         f"{lat.missing.get('median', 'no per-run samples')}")
    return rb.notes.missing(lat.missing.get("median") or "no latency statistic was recorded")


def _delta_val(rb: RowBuilder, cell: CellRecord, attr: str, digits: int, unit: str, *, higher_better: bool,
               what: str) -> vc.Val:
    if cell.baseline:
        return vc.Val("baseline", cls="muted")
    d, why = rb.stored_delta(cell, attr)
    if d is None and (mark := vc.no_reference_val(cell, attr)) is not None:
        return mark
    if d is None:
        return rb.notes.missing(why)
    return vc.Val(fmt_signed(d, digits, unit), cls=vc.delta_cls(d, higher_better, digits), title=f"{what}, Δ vs bicubic: "
               f"{d:+.4g}{unit}")


def _answer_row(rb: RowBuilder, cell: CellRecord) -> AnswerRow:
    h = vars(cell_head(rb.run, cell))
    if not h["ok"]:
        blank = vc.Val("")
        return AnswerRow(**h, realtime=blank, rule="", latency=blank, d_latency=blank, d_psnr=blank, d_ssim=blank,
                         d_vmaf=blank, d_temporal=blank, d_piqe=blank, mai_ratio=blank)
    rule = cell.realtime.rule if cell.realtime is not None else ""
    head = cell.latency_ms
    lat_attr = "latency_median_ms" if head is None or head.median is not None else "latency_mean_ms"
    return AnswerRow(
        **h,
        realtime=rb.realtime(cell), rule=rule, latency=_latency_spread(rb, cell),
        d_latency=_delta_val(rb, cell, lat_attr, 1, " ms", higher_better=False,
                             what="median latency" if lat_attr == "latency_median_ms" else "mean latency"),
        d_psnr=_delta_val(rb, cell, "psnr_y_db", 2, " dB", higher_better=True, what="PSNR-Y"),
        d_ssim=_delta_val(rb, cell, "ssim_y", 4, "", higher_better=True, what="SSIM-Y"),
        d_vmaf=_vmaf_val(rb, cell),
        d_temporal=_temporal_val(rb, cell),
        d_piqe=_delta_val(rb, cell, "piqe", 1, "", higher_better=False, what="PIQE (lower is better)"),
        mai_ratio=_mai_ratio(rb, cell),
    )


def _vmaf_val(rb: RowBuilder, cell: CellRecord) -> vc.Val:
    """Δ VMAF vs bicubic with the cell's own pooled VMAF under it; bicubic's row shows its own VMAF."""
    q = cell.quality
    model = q.vmaf_model or "VMAF"
    own = (f"VMAF {q.vmaf:.1f}" if q.vmaf is not None else None)
    pools = (f"{model} over {q.vmaf_frames} frame(s): mean {q.vmaf:.3f}, harmonic mean "
             f"{q.vmaf_harmonic_mean:.3f}, 5th percentile {q.vmaf_p5:.3f}"
             if q.vmaf is not None and q.vmaf_harmonic_mean is not None and q.vmaf_p5 is not None else model)
    if cell.baseline:
        if q.vmaf is None:
            return rb.notes.missing(q.missing.get("vmaf") or f"VMAF {vc.NOT_RECORDED}")
        return vc.Val(f"{q.vmaf:.1f}", cls="muted", title=f"bicubic's own VMAF; {pools}")
    d, why = rb.stored_delta(cell, "vmaf")
    if d is None:
        return rb.notes.missing(q.missing.get("vmaf") or why)
    return vc.Val(fmt_signed(d, 2, ""), cls=vc.delta_cls(d, True, 2), sub=own, sub_cls="muted",
                  title=f"VMAF, Δ vs bicubic on the same kept frames: {d:+.4g}; {pools}")


def _temporal_val(rb: RowBuilder, cell: CellRecord) -> vc.Val:
    """Δ temporal error vs bicubic (lower is steadier) with the cell's own mean under it; bicubic's row
    shows its own (docs/quality.md "Temporal stability")."""
    q = cell.quality
    own = getattr(q, "temporal_err_y", None)
    worst = getattr(q, "temporal_err_y_max", None)
    what = ("temporal error: the output's frame-to-frame change against the reference's own motion, "
            "8-bit Y levels, mean over the frames that follow another of their clip")
    if q.frames and getattr(q, "no_reference_frames", 0) == q.frames:
        what += "; LR-only footage: held against the LR input upscaled, there being no HR"
    if own is not None and worst is not None:
        what += f": {own:.3f} (worst frame {worst:.3f})"
    if cell.baseline:
        if own is None:
            return rb.notes.missing(q.missing.get("temporal_err_y") or f"temporal error {vc.NOT_RECORDED}")
        return vc.Val(f"{own:.2f}", cls="muted", title=f"bicubic's own {what}")
    d, why = rb.stored_delta(cell, "temporal_err_y")
    if d is None:
        return rb.notes.missing(q.missing.get("temporal_err_y") or why)
    return vc.Val(fmt_signed(d, 2, ""), cls=vc.delta_cls(d, False, 2), sub=None if own is None else f"{own:.2f}",
                  sub_cls="muted", title=f"Δ vs bicubic {d:+.4g} (negative: steadier than bicubic); {what}")


def _mai_ratio(rb: RowBuilder, cell: CellRecord) -> vc.Val:
    """The stored ratio of this cell's MAI 2021 score to bicubic's (>1: a better quality-for-time trade)."""
    if cell.baseline:
        return vc.Val("baseline", cls="muted")
    r, why = rb.stored_delta(cell, "mai2021_ratio")
    if r is None:
        return rb.notes.missing(why)
    return vc.Val(f"{fmt_ratio(r)}×", cls="good" if r > 1 else ("bad" if r < 1 else "muted"),
               title=f"MAI 2021 score {r:.3g}× bicubic's: 2^(2·PSNR-Y)/(C·median ms); 2× = +0.15 dB PSNR-Y or half "
                     "the latency")


_GENERIC_DELTA_REASON = "not measured on this cell or on its baseline"


def _cost_delta(rb: RowBuilder, cell: CellRecord, attr: str) -> tuple[float | None, str]:
    """The stored Δ vs bicubic, or the most specific reason it is absent (the cell's own stream reason before
    the deltas' generic one)."""
    d, why = rb.stored_delta(cell, attr)
    if d is not None:
        return d, ""
    if why == _GENERIC_DELTA_REASON or why.startswith(("no Δ ", "Δ ")):
        own = vc.telemetry_reason(cell, attr) if getattr(cell.telemetry, attr, None) is None else None
        if own is not None:
            return None, own
    return None, why


def _source_text(cell: CellRecord) -> str:
    t = cell.telemetry
    src = t.power_source or "source not recorded"
    if vc.is_emulated(cell) and "emulated" not in src.lower():
        src = f"{src} (emulated)"
    return src


def _cost_cell(rb: RowBuilder, cell: CellRecord, attr: str, digits: int, unit: str, what: str, *,
               idle_attr: str | None = None, absolute: bool = False) -> vc.Val:
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
            return rb.notes.missing(vc.telemetry_reason(cell, attr))
        return vc.Val(f"{float(own):.{digits}f}{unit}", title=f"bicubic's own {what}: {float(own):.4g}{unit}{src}",
                   sub=idle_sub or "baseline", sub_cls="muted")
    d, why = _cost_delta(rb, cell, attr)
    if d is None:
        return rb.notes.missing(why)
    title = f"{what}, Δ vs bicubic: {d:+.4g}{unit}{src}"
    sub = idle_sub
    if absolute and own is not None:
        title += f"; this cell {float(own):.4g}{unit}"
        sub = f"{float(own):.{digits}f} total"
    return vc.Val(fmt_signed(d, digits, unit), cls=vc.delta_cls(d, higher_better=False, digits=digits), title=title, sub=sub,
               sub_cls="muted")


def _own_val(rb: RowBuilder, cell: CellRecord, attr: str, digits: int, what: str) -> vc.Val:
    """A cost column that shows the cell's own value, not a Δ (e.g. mAh per hour beside Δ mA, so the two
    columns never show the same number)."""
    own = getattr(cell.telemetry, attr, None)
    if own is None:
        return rb.notes.missing(vc.telemetry_reason(cell, attr))
    src = f"; power source: {_source_text(cell)}, confidence {cell.telemetry.power_confidence or 'unstated'}"
    return vc.Val(f"{float(own):.{digits}f}", title=f"{what}: {float(own):.4g}{src}", sub="this cell", sub_cls="muted")


def _source_val(rb: RowBuilder, cell: CellRecord) -> vc.Val:
    t = cell.telemetry
    if t.power_source is None:
        return rb.notes.missing(vc.telemetry_reason(cell, "power_source" if "power_source" in t.missing else "current_ma"))
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
        extra.append(f"window {t.window_s:.1f} s{rate}{achieved_text(t.sample_rate_hz, t.sample_max_gap_ms)}")
    if t.sampler_cpu_pct is not None:
        extra.append(f"the sampler's own cost: {t.sampler_cpu_pct:.2f}% of one core")
    return vc.Val(_source_text(cell), sub=f"confidence {conf}", sub_cls=cls,
               title="; ".join([f"power source: {_source_text(cell)}, confidence {conf}", *extra]))


def achieved_text(rate_hz: float | None, gap_ms: float | None) -> str:
    """What the sampler achieved, where the record has it (older files do not)."""
    if rate_hz is None:
        return ""
    gap = f", longest gap {gap_ms:.0f} ms" if gap_ms is not None else ""
    return f" (achieved {rate_hz:.2f} Hz{gap})"


def cost_sentence(cell: CellRecord, fps: float | None) -> str | None:
    """The line a user quotes, from the stored deltas: "espcn fp32 · xnnpack at 30 fps: +90 mA vs bicubic
    (battery counters (not charging), confidence medium); device CPU +5 pts, …". None for the baseline or a cell that
    did not finish."""
    if cell.baseline or cell.status != CellStatus.OK or cell.deltas is None:
        return None
    d = cell.deltas
    pace = f" at {fps:g} fps" if fps else " back-to-back"
    head = f"{vc.cell_label(cell)} · {cell.delegate}{pace}"
    t = cell.telemetry
    src = f"{_source_text(cell)}, confidence {t.power_confidence or 'unstated'}"
    if d.current_ma is not None:
        lead = f"{fmt_signed(d.current_ma, 0, ' mA')} vs bicubic ({src})"
        if d.mj_per_frame is not None:
            lead += f", {fmt_signed(d.mj_per_frame, 1, ' mJ')} per frame"
    elif d.power_mw is not None:
        lead = f"{fmt_signed(d.power_mw, 0, ' mW')} vs bicubic ({src})"
    else:
        why = d.missing.get("current_ma") or d.missing.get("all")
        if why is None or why == _GENERIC_DELTA_REASON:
            why = vc.telemetry_reason(cell, "current_ma")
        lead = f"current and power not measured ({why})"
    rest = []
    for attr, name, digits, unit in (("device_cpu_busy_pct", "device CPU", 0, " pts"),
                                     ("gpu_busy_pct", "GPU", 0, " pts"), ("mem_peak_mb", "memory", 0, " MB"),
                                     ("temp_max_c", "max SoC temperature", 1, " °C")):
        v = getattr(d, attr, None)
        if isinstance(v, (int, float)):
            rest.append(f"{name} {fmt_signed(float(v), digits, unit)}")
    return f"{head}: {lead}" + ("; " + ", ".join(rest) if rest else "") + "."


def _cost_row(rb: RowBuilder, cell: CellRecord) -> CostRow:
    h = vars(cell_head(rb.run, cell))
    if not h["ok"]:
        blank = vc.Val("")
        return CostRow(**h, d_cpu_proc=blank, d_cpu=blank, d_gpu=blank, d_mem=blank, d_temp=blank, d_skin=blank,
                       d_current=blank, mah_per_hour=blank, mj_per_frame=blank, source=blank)
    kind = mem_kind(cell.telemetry.mem_source)
    return CostRow(
        **h,
        d_cpu_proc=_cost_cell(rb, cell, "cpu_load_pct", 0, " pts" if not cell.baseline else "%",
                              "the measured process's CPU (% of one core)"),
        d_cpu=_cost_cell(rb, cell, "device_cpu_busy_pct", 0, " pts" if not cell.baseline else "%",
                         "device CPU busy (points of all cores)", idle_attr="device_cpu_busy_pct"),
        d_gpu=_cost_cell(rb, cell, "gpu_busy_pct", 0, " pts" if not cell.baseline else "%", "GPU busy (%)",
                         idle_attr="gpu_busy_pct"),
        d_mem=_cost_cell(rb, cell, "mem_peak_mb", 0, " MB",
                         "peak RSS of the benchmark process (sampler)" if kind == "peak"
                         else "the tool's memory delta"),
        d_temp=_cost_cell(rb, cell, "temp_max_c", 1, " °C",
                          f"max SoC temperature ({cell.telemetry.temp_zone or 'zone not recorded'})"),
        d_skin=_cost_cell(rb, cell, "skin_max_c", 1, " °C",
                          f"max skin temperature ({cell.telemetry.skin_zone or 'zone not recorded'})"),
        d_current=_cost_cell(rb, cell, "current_ma", 0, " mA", "mean battery current", idle_attr="current_ma"),
        mah_per_hour=_own_val(rb, cell, "mah_per_hour", 0, "this cell's mean current held for an hour at this pacing "
                              "(mAh per hour is its mean mA; the Δ mA column is its difference vs bicubic)"),
        mj_per_frame=_cost_cell(rb, cell, "mj_per_frame", 1, "", "mJ per frame (mean power / fps)", absolute=True),
        source=_source_val(rb, cell),
        sentence=cost_sentence(cell, rb.fps),
    )


def build_idle(run: RunRecord, dev: DeviceRecord, notes: vc.Footnotes) -> IdleView:
    """The device's idle record as a line of values (missing ones with their reasons)."""
    rec = next((r for r in getattr(run, "idle", []) if r.serial == dev.serial), None)
    if rec is None:
        return IdleView(None, [], reason=f"no idle baseline: {vc.NOT_RECORDED}, or the run measured none "
                                         "(telemetry.idle_baseline_s)")
    if "all" in rec.missing:
        return IdleView(None, [], reason=f"idle baseline not measured: {rec.missing['all']}")
    reasons = {
        "device_cpu_busy_pct": ("device_cpu_busy_pct", "cpu_busy_pct"), "gpu_busy_pct": ("gpu_busy_pct",),
        "mem_avail_min_mb": ("mem_avail_min_mb",), "temp_c": ("temp_c",), "current_ma": ("current_ma",),
        "power_mw": ("power_mw", "current_ma"),
    }
    vals: list[tuple[str, vc.Val]] = []
    for attr, name, fmt in (("device_cpu_busy_pct", "CPU", "{:.0f}%"), ("gpu_busy_pct", "GPU", "{:.0f}%"),
                            ("mem_avail_min_mb", "memory available", "{:.0f} MB"), ("temp_c", "temperature",
                                                                                     "{:.1f} °C"),
                            ("current_ma", "current", "{:.0f} mA"), ("power_mw", "power", "{:.0f} mW")):
        v = getattr(rec, attr)
        if v is None:
            why = next((rec.missing[k] for k in reasons[attr] if k in rec.missing), f"{name} not recorded at rest")
            vals.append((name, notes.missing(why)))
        else:
            vals.append((name, vc.Val(fmt.format(v), title=f"{name} at rest: {v:.4g}")))
    dur = f"{rec.duration_s:.1f} s" if rec.duration_s is not None else None
    return IdleView(dur, vals)


def build_answer(run: RunRecord, rb: RowBuilder) -> list[AnswerDevice]:
    """Per device, per delegate: bicubic first, then each SR model beside it — speed and quality, then cost."""
    out = []
    for dev, groups in vc.grouped_cells(run):
        members = [c for _, m in groups for c in m]
        rows = [_answer_row(rb, c) for c in members]
        idle = build_idle(run, dev, rb.notes)
        cost = [_cost_row(rb, c) for c in members]
        emul = vc.device_emulated(dev) or any(r.emulated for r in rows)
        out.append(AnswerDevice(dev, emul, vc.html_id("answer", dev.serial), rows, cost, idle))
    return out
