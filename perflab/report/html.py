"""The HTML run report, rebuilt from a run folder alone.

``render_run_report(run_dir)`` reads ``results.json`` (+ ``samples.csv`` and ``frames/`` when
present) and writes ``run_dir/index.html``: one self-contained file (inline CSS, figures as
embedded base64 PNG, no external URL), rendered by jinja2 with autoescaping on.

This module imports only the store and the report's own pure parts: never devices, workloads
or the emulator (a report must rebuild on a machine with no device attached).
"""

from __future__ import annotations

import base64
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from perflab.analysis.timeline import Timeline, parse_sampler_output
from perflab.core.display import fmt_ms, fmt_signed, fmt_size
from perflab.core.units import bytes_to_kib, frame_budget_ms, kib_to_bytes
from perflab.errors import StoreError
from perflab.report import crops, plots, timelines
from perflab.report import view_common as vc
from perflab.report.pages import device_link, environment
from perflab.report.pareto import ParetoRow, pareto_front, pareto_rows
from perflab.report.runfolder import LoadedRun, load_run_folder
from perflab.report.view import ReportView, build_view
from perflab.report.view_frames import VALS_PER_CELL, FrameTableView
from perflab.report.viewer import VIEWER_FILE, viewer_data
from perflab.store.results import CellRecord, CellStatus, DeviceRecord, RunRecord, artifact_dir

REPORT_FILE = "index.html"
MAX_CROP_FRAMES = 2  # frames shown per device/delegate in the visual comparison
CROP_HR_PX = 96  # side of the HR region shown
CROP_DISPLAY_PX = 288  # side of each zoomed panel


@dataclass
class Figure:
    title: str
    uri: str
    alt: str
    caption: str = ""
    notes: list[str] = field(default_factory=list)


@dataclass
class CropPanel:
    label: str
    uri: str | None
    note: str = ""
    emulated: bool = False
    kind: str = "model"  # hr / lr / baseline / model


@dataclass
class CropSet:
    title: str
    frame: str
    region: str
    zoom: int
    emulated: bool
    panels: list[CropPanel]


@dataclass
class Tradeoff:
    figure: Figure | None
    front: list[ParetoRow]
    left_out: list[str]


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _environment() -> jinja2.Environment:
    return environment({"short_sha": lambda h: h[:12] if h else ""})


# ---------------------------------------------------------------- figures


def samples_of(folder: LoadedRun, cell: CellRecord) -> dict[str, list[float]]:
    """Raw samples of a cell: the samples.csv rows named by the cell's ``artifact_key`` (the store's rule)."""
    return folder.samples.get(cell.artifact_key, {})


def frames_of(folder: LoadedRun, cell: CellRecord) -> dict[str, Path]:
    """Output frames of a cell: ``frames/<artifact_dir(artifact_key)>/`` (the store's rule)."""
    return folder.frames.outputs.get(artifact_dir(cell.artifact_key), {})


def latency_figures(folder: LoadedRun) -> tuple[list[Figure], list[str]]:
    """Distribution and per-iteration figures per device from raw samples; plus notes on cells without any."""
    run = folder.run
    budget = frame_budget_ms(run.scenario.fps)
    figures: list[Figure] = []
    notes: list[str] = []
    if not folder.samples_present:
        notes.append("This run folder has no samples.csv: no raw per-iteration samples to plot.")
    for dev, groups in vc.grouped_cells(run):
        ok = [c for _, members in groups for c in members if c.status == CellStatus.OK]
        dist: list[plots.LatencyGroup] = []
        traces: list[plots.TracePoint] = []
        for c in ok:
            s = samples_of(folder, c)
            paced, b2b, warm = s.get("paced", []), s.get("back_to_back", []), s.get("warmup", [])
            label = f"{vc.cell_label(c)} · {c.delegate}"
            if not paced and not b2b:
                head = c.latency_ms
                src = head.source if head is not None else "no latency record"
                what = "emulated; " if vc.is_emulated(c) else ""
                notes.append(f"{vc.device_name(dev)} — {label}: no raw samples ({what}latency from {src}); "
                             "its numbers in the tables are the tool's summary, not computed from samples.")
                continue
            dist.append(plots.LatencyGroup(label, paced, b2b, vc.is_emulated(c)))
            main = paced or b2b
            traces.append(plots.TracePoint(label, warm, main, vc.is_emulated(c)))
        if not dist:
            continue
        emul = " (emulated)" if any(g.emulated for g in dist) else ""
        title = f"{vc.device_name(dev)}{emul}"
        figures.append(Figure(
            title=f"Latency distribution — {title}",
            uri=_uri(plots.latency_distribution_png(dist, budget, run.scenario.fps, title)),
            alt=f"Box plots of latency per cell on {title}",
            caption="Box = quartiles, line = median, whiskers = p5–p95, dots = samples outside. "
                    "Blue: paced at the scenario fps; orange: back-to-back. Red dashed: frame budget.",
        ))
        figures.append(Figure(
            title=f"Latency per iteration — {title}",
            uri=_uri(plots.latency_trace_png(traces, budget, title)),
            alt=f"Latency per iteration on {title}",
            caption="Each cell's samples in run order (paced series when present, else back-to-back), "
                    "warm-up first. A rising slope means the device slowed down during the series (thermal throttling or "
                    "frequency scaling), a falling one that it was still warming up; two levels mean a bimodal run.",
        ))
    return figures, notes


def _tradeoff(
    run: RunRecord,
    cost: Callable[[CellRecord], tuple[float, str] | None],
    cost_reason: Callable[[CellRecord], str],
    cost_fmt: Callable[[float], str],
    *,
    title: str,
    x_label: str,
    x_log: bool,
    budget_ms: float | None,
) -> Tradeoff:
    left_out: list[str] = []
    pts: list[tuple[CellRecord, float, float]] = []
    suffix: dict[tuple[str, str], str] = {}
    for c in run.cells:
        if c.status != CellStatus.OK:
            continue
        xs, y = cost(c), c.quality.psnr_y_db
        name = f"{vc.cell_label(c)} · {c.delegate} on {vc.device_name(c.device)}"
        if y is None:
            left_out.append(f"{name}: no PSNR-Y ({c.quality.missing.get('psnr_y_db', 'no reason given')})")
        elif xs is None:
            left_out.append(f"{name}: {cost_reason(c)}")
        else:
            pts.append((c, float(xs[0]), float(y)))
            suffix[(c.device.serial, c.cell_id)] = xs[1]
    if not pts:
        return Tradeoff(None, [], left_out)
    on_front: set[int] = set()
    for serial in dict.fromkeys(c.device.serial for c, _, _ in pts):
        idx = [i for i, (c, _, _) in enumerate(pts) if c.device.serial == serial]
        for k in pareto_front([(pts[i][1], pts[i][2]) for i in idx]):
            on_front.add(idx[k])
    multi = len({c.device.serial for c, _, _ in pts}) > 1
    points = [
        plots.TradeoffPoint(
            label=vc.cell_label(c) + (f" · {c.delegate}" if c.delegate != "cpu" else "") + suffix[(c.device.serial, c.cell_id)],
            x=x, y=y, series=vc.device_name(c.device) + (" (emulated)" if vc.is_emulated(c) else ""),
            baseline=c.baseline, emulated=vc.is_emulated(c), on_front=i in on_front,
        )
        for i, (c, x, y) in enumerate(pts)
    ]
    png = plots.tradeoff_png(points, x_label=x_label, y_label="PSNR-Y (dB), higher is better", title=title,
                             x_log=x_log, budget_ms=budget_ms)
    caption = ("Pareto front (dashed, ringed points): no other cell on the same device is both cheaper and better."
               + (" One colour per device." if multi else ""))
    fig = Figure(title=title, uri=_uri(png), alt=title, caption=caption)
    return Tradeoff(fig, pareto_rows(pts, lambda c, v: cost_fmt(v) + suffix[(c.device.serial, c.cell_id)]), left_out)


def quality_vs_latency(run: RunRecord) -> Tradeoff:
    budget = frame_budget_ms(run.scenario.fps)

    def cost(c: CellRecord) -> tuple[float, str] | None:
        lat = c.latency_ms
        if lat is None:
            return None
        if lat.median is not None:
            return lat.median, ""
        if lat.mean is not None:  # a tool summary (benchmark_model) gives the mean only
            return lat.mean, " (mean)"
        return None

    def reason(c: CellRecord) -> str:
        if c.latency_ms is None:
            return "no latency recorded"
        return f"no median or mean latency ({c.latency_ms.missing.get('median', 'no reason given')})"

    mode = "paced" if run.scenario.fps else "back-to-back"
    t = _tradeoff(run, cost, reason, lambda v: f"{fmt_ms(v)} ms", title="Quality vs latency",
                  x_label=f"median latency per frame, headline series ({mode}), ms — lower is better",
                  x_log=False, budget_ms=budget)
    if t.figure is not None and any(lat.median is None and lat.mean is not None
                                    for c in run.cells if c.status == CellStatus.OK
                                    for lat in [c.latency_ms] if lat is not None):
        t.figure.caption += (" Cells marked “(mean)” have only a tool summary (no raw samples, no median) and are"
                             " placed at their mean latency.")
    return t


def quality_vs_size(run: RunRecord) -> Tradeoff:
    def cost(c: CellRecord) -> tuple[float, str] | None:
        return (bytes_to_kib(c.model.size_bytes), "") if c.model.size_bytes is not None else None

    return _tradeoff(run, cost, lambda c: "model size not recorded", lambda v: fmt_size(round(kib_to_bytes(v))),
                     title="Quality vs model size", x_label="model file size (KB, log scale) — lower is better",
                     x_log=True, budget_ms=None)


def frame_timeline_figures(run: RunRecord, kept: dict[str, list[str]]) -> list[Figure]:
    """Per device and delegate: each cell's stored per-frame PSNR-Y, SSIM-Y, VMAF and temporal error over
    the frames (perflab.report.view_video); ``kept`` (title → frames the viewer shows) are shaded."""
    from perflab.report.view_video import build_frame_timelines

    figs = []
    for t in build_frame_timelines(run):
        panels = [plots.FramePanel(m.metric.label, m.metric.unit, m.metric.higher_better,
                                   [plots.FrameTrack(tr.label, tr.points, tr.baseline, tr.emulated) for tr in m.tracks])
                  for m in t.metrics]
        marked = [i for i, f in enumerate(t.frames) if f in set(kept.get(t.title, ()))]
        emul = " (emulated)" if t.emulated else ""
        title = f"Per-frame metrics over time — {t.title}{emul}, {len(t.frames)} frames"
        figs.append(Figure(
            title=title, uri=_uri(plots.frame_metrics_png(panels, len(t.frames), title, marked)),
            alt=f"Per-frame {', '.join(m.metric.label for m in t.metrics)} of each cell over the frames on {t.title}",
            caption="Each cell's value on every frame in input order (bicubic dashed black). Temporal error: how much "
                    "the output's change from the previous frame departs from the reference's own motion, in 8-bit "
                    "Y levels (0 = as steady as the reference; docs/quality.md). Shaded frames can be opened in "
                    "the frame viewer.",
            notes=[f"Not drawn — {n}" for n in t.left_out]))
    return figs


def frame_figures(tables: list[FrameTableView]) -> list[Figure | None]:
    """Per-frame distribution figure for each per-frame table, when some cell has two frames or more."""
    out: list[Figure | None] = []
    for t in tables:
        series = [plots.FrameSeries(d.label, d.d_psnr_y_db, d.piqe, d.baseline, d.emulated) for d in t.dist]
        if t.total_frames < 2 or not any(len(s.d_psnr_y_db) or len(s.piqe) for s in series):
            out.append(None)
            continue
        emul = " (emulated)" if t.emulated else ""
        title = f"Per-frame quality — {t.title}{emul}, {t.total_frames} frames"
        out.append(Figure(
            title=title, uri=_uri(plots.frame_quality_png(series, title)),
            alt=f"Per-frame ΔPSNR-Y versus bicubic and PIQE per cell on {t.title}",
            caption="Every frame is a dot (all frames, not only those in the table); boxes show quartiles with "
                    "whiskers at p5–p95 once a cell has 4 frames or more. Left: PSNR-Y minus bicubic's on the same "
                    "frame (dashed line = bicubic; dots left of it are frames where the model loses). Right: PIQE, "
                    "a no-reference score of the output alone (lower is better).",
        ))
    return out


# ---------------------------------------------------------------- timelines


@dataclass
class TimelineView:
    """One device's sampler timelines: the figure (None when no stream has data), the key to the numbered
    windows, and each stream that is missing with its reason."""

    title: str
    anchor: str
    emulated: bool
    figure: Figure | None
    key: list[tuple[str, str]]  # (tag on the plot, what it is)
    missing: list[tuple[str, str]]  # (stream, why it is not drawn)
    notes: list[str] = field(default_factory=list)


def read_timeline(run_dir: Path, rel: str) -> Timeline | str:
    """A stored sampler file, parsed; or why it cannot be read. Only files inside the run folder are read."""
    base = run_dir.resolve()
    path = (run_dir / rel).resolve()
    if not path.is_relative_to(base):
        return f"{rel}: outside the run folder, not read"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        return f"{rel}: cannot read ({e.strerror or e})"
    return parse_sampler_output(text.splitlines())


def _segments(folder: LoadedRun, dev: DeviceRecord, cells: list[CellRecord]
              ) -> tuple[list[timelines.Segment], list[str], list[str]]:
    """A device's stored sampler files, parsed: (segments, notes on files that could not be read or had lines
    the parser did not understand, names of ok cells with no file)."""
    segs: list[timelines.Segment] = []
    unread: list[str] = []
    without: list[str] = []
    idle = next((r for r in folder.run.idle if r.serial == dev.serial), None)
    if idle is not None and idle.timeline_file:
        tl = read_timeline(folder.path, idle.timeline_file)
        if isinstance(tl, str):
            unread.append(f"idle baseline: {tl}")
        else:
            segs.append(timelines.Segment("at rest (idle baseline)", None, tl, idle.convention))
    for c in cells:
        t = c.telemetry
        name = f"{vc.cell_label(c)} · {c.delegate}"
        if not t.timeline_file:
            if c.status == CellStatus.OK:
                without.append(name)
            continue
        tl = read_timeline(folder.path, t.timeline_file)
        if isinstance(tl, str):
            unread.append(f"{name}: {tl}")
            continue
        if tl.garbage_lines:
            unread.append(f"{name}: {tl.garbage_lines} line(s) of {t.timeline_file} not understood, skipped")
        segs.append(timelines.Segment(name, c.artifact_key, tl, t.convention, t.temp_zone,
                                      vc.is_emulated(c)))
    return segs, unread, without


def timeline_views(folder: LoadedRun) -> list[TimelineView]:
    """Per device: current, power, temperature, CPU, GPU load and process memory over the run, from the stored
    timeline files of its idle baseline and its cells, each cell's inference window shaded and numbered."""
    out: list[TimelineView] = []
    for dev, groups in vc.grouped_cells(folder.run):
        cells = [c for _, m in groups for c in m]
        segs, unread, without = _segments(folder, dev, cells)
        emul = vc.device_emulated(dev) or any(s.emulated for s in segs)
        title = f"{vc.device_name(dev)}" + (" (emulated)" if emul else "")
        notes = list(unread)
        if without:
            notes.append(f"No timeline stored for {', '.join(without)} (telemetry was not sampled for "
                         f"{'this cell' if len(without) == 1 else 'these cells'}, or {vc.NOT_RECORDED}).")
        anchor = vc.html_id("timeline", dev.serial)
        dt = timelines.build_device_timeline(segs)
        if dt is None:
            if notes or segs or any(c.status == CellStatus.OK for c in cells):
                out.append(TimelineView(title, anchor, emul, None, [], [], notes or [
                    f"No timeline stored for this device ({vc.NOT_RECORDED}, or telemetry was not sampled)."]))
            continue
        panels = [plots.TimelinePanel(st.name, st.unit, st.segments) for st in dt.streams if not st.empty]
        missing = [(st.name, st.missing or "no samples") for st in dt.streams if st.empty]
        wins = [plots.TimelineWindow(w.start_s, w.end_s, "idle" if w.number is None else str(w.number),
                                     idle=w.number is None) for w in dt.windows]
        key = [("idle" if w.number is None else str(w.number),
                w.label + (" — process not seen: whole sampling span shaded" if w.whole_span else ""))
               for w in dt.windows]
        fig = None
        if panels:
            fig = Figure(
                title=f"Timeline — {title}", uri=_uri(plots.timeline_png(panels, wins, f"Timeline — {title}", emul)),
                alt=f"Current, power, temperature, CPU and GPU load over the run on {title}",
                caption="Shaded: each cell's inference window (while the measured process was alive), numbered as in "
                        "the key; grey: the device at rest before its first cell. Gaps between cells (set-up, "
                        "cool-down) were not sampled.",
            )
        out.append(TimelineView(title, anchor, emul, fig, key, missing, notes + dt.notes))
    return out


# ---------------------------------------------------------------- visual crops


def _psnr_note(cell: CellRecord, frame: str) -> str:
    """The frame's stored PSNR-Y and, for an SR cell, its stored difference to bicubic on that frame."""
    e = next((f for f in cell.quality.per_frame if f.frame == frame), None)
    if e is None or e.psnr_y_db is None:
        return ""
    d = e.d_psnr_y_db if not cell.baseline else None
    return f"PSNR-Y {e.psnr_y_db:.2f} dB" + (f" ({fmt_signed(d, 2)} vs bicubic)" if d is not None else "")


def visual_crops(folder: LoadedRun) -> tuple[list[CropSet], list[str]]:
    """Same region of HR, LR, bicubic and each SR output, zoomed; skipped when frames are absent."""
    fr = folder.frames
    notes: list[str] = []
    if fr.empty:
        return [], notes
    run = folder.run
    scale = run.scenario.scale
    sets: list[CropSet] = []
    for dev, groups in vc.grouped_cells(run):
        for delegate, members in groups:
            cells = [c for c in members if c.status == CellStatus.OK]
            outputs = {id(c): frames_of(folder, c) for c in cells}
            with_out = [c for c in cells if outputs[id(c)]]
            if not with_out:
                continue
            frames = sorted(f for f in fr.hr if any(f in outputs[id(c)] for c in with_out))
            for frame in frames[:MAX_CROP_FRAMES]:
                hr = crops.read_png_rgb(fr.hr[frame])
                size = min(CROP_HR_PX, hr.shape[0], hr.shape[1])
                reg = crops.detail_region(hr, size, margin=scale)
                reg = crops.Region(reg.top - reg.top % scale, reg.left - reg.left % scale, reg.height, reg.width)
                zoom = max(1, CROP_DISPLAY_PX // size)
                panels = [CropPanel("HR (ground truth)", crops.png_data_uri(crops.zoom_nearest(crops.crop(hr, reg), zoom)),
                                    kind="hr")]
                if frame in fr.lr:
                    lr = crops.read_png_rgb(fr.lr[frame])
                    lreg = reg.scaled_down(scale)
                    try:
                        img = crops.zoom_nearest(crops.crop(lr, lreg), zoom * scale)
                        panels.append(CropPanel(f"LR input (pixels ×{scale})", crops.png_data_uri(img), kind="lr"))
                    except ValueError:
                        panels.append(CropPanel("LR input", None, note=f"LR size {lr.shape[1]}×{lr.shape[0]} does "
                                                f"not match HR/{scale}", kind="lr"))
                for c in sorted(with_out, key=lambda c: 0 if c.baseline else 1):
                    label = vc.cell_label(c) + (" — bicubic baseline" if c.baseline and "bicubic" not in
                                             vc.cell_label(c).lower() else "")
                    kind = "baseline" if c.baseline else "model"
                    path = outputs[id(c)].get(frame)
                    if path is None:
                        panels.append(CropPanel(label, None, note="no output frame saved for this cell",
                                                emulated=vc.is_emulated(c), kind=kind))
                        continue
                    out = crops.read_png_rgb(path)
                    if out.shape != hr.shape:
                        panels.append(CropPanel(label, None, emulated=vc.is_emulated(c), kind=kind,
                                                note=f"output is {out.shape[1]}×{out.shape[0]}, HR is "
                                                     f"{hr.shape[1]}×{hr.shape[0]}: not comparable"))
                        continue
                    panels.append(CropPanel(label, crops.png_data_uri(crops.zoom_nearest(crops.crop(out, reg), zoom)),
                                            note=_psnr_note(c, frame), emulated=vc.is_emulated(c), kind=kind))
                sets.append(CropSet(
                    title=f"{vc.device_name(dev)} · {delegate}", frame=frame,
                    region=f"x {reg.left}–{reg.left + reg.width}, y {reg.top}–{reg.top + reg.height} "
                           f"of {hr.shape[1]}×{hr.shape[0]}",
                    zoom=zoom, emulated=any(p.emulated for p in panels), panels=panels,
                ))
            if len(frames) > MAX_CROP_FRAMES:
                notes.append(f"{vc.device_name(dev)} · {delegate}: showing {MAX_CROP_FRAMES} of {len(frames)} frames.")
    return sets, notes


# ---------------------------------------------------------------- render


def layer_timeline_figures(view: ReportView) -> None:
    """Draw each per-layer section's stored traced inference (spans) as a small timeline figure."""
    for lay in view.layers:
        c = lay.compare
        if c is None or c.timeline is None:
            continue
        bars = [plots.SpanBar(s.name, s.kind, s.begin_us, s.end_us, s.track) for s in c.timeline.spans]
        c.timeline_uri = _uri(plots.inference_timeline_png(
            bars, f"{lay.title}: inference {c.timeline.index}", emulated=lay.emulated))


def render_run_report_html(folder: LoadedRun) -> str:
    view: ReportView = build_view(folder.run)
    layer_timeline_figures(view)
    lat_figs, lat_notes = latency_figures(folder)
    q_lat = quality_vs_latency(folder.run)
    q_size = quality_vs_size(folder.run)
    crop_sets, crop_notes = visual_crops(folder)
    viewer = viewer_data(folder)
    kept = {g["title"]: g["kept"] for g in viewer["groups"]} if viewer else {}
    template = _environment().get_template("run_report.html.j2")
    return template.render(
        v=view,
        run=folder.run,
        devices=vc.ordered_devices(folder.run),
        latency_figures=lat_figs,
        latency_notes=lat_notes,
        q_lat=q_lat,
        q_size=q_size,
        crop_sets=crop_sets,
        crop_notes=crop_notes,
        timelines=timeline_views(folder),
        matrix=matrix_links(folder),
        run_parent=str(folder.path.parent),
        frame_figs=frame_figures(view.frame_tables),
        vals_per_cell=VALS_PER_CELL,
        frame_timelines=frame_timeline_figures(folder.run, kept),
        viewer_file=VIEWER_FILE if viewer else None,
        any_series=lambda mode: any(vc.series_of(c, mode) is not None for c in folder.run.cells),
    )


MATRIX_DIR = "matrix"  # reports/<scenario>/matrix/: where `perflab matrix reports/<scenario>` is meant to write


def matrix_links(folder: LoadedRun) -> dict[str, str]:
    """Each device's row in the scenario's compatibility matrix, when that page exists beside the
    run folders (``<run>/../matrix/index.html``): serial → relative link. Empty otherwise (the
    report then says how to build it)."""
    page = folder.path.parent / MATRIX_DIR / "index.html"
    if not page.is_file():
        return {}
    return {d.serial: device_link(f"../{MATRIX_DIR}/index.html", d.serial) for d in folder.run.devices}


def write_viewer(folder: LoadedRun) -> Path | None:
    """``viewer.html`` beside the report when the run kept frames (perflab.report.viewer); a stale one
    from an earlier rendering is removed when there is nothing to show."""
    from perflab.report.pages import atomic_write_text
    from perflab.report.viewer import render_viewer_html

    out = folder.path / VIEWER_FILE
    text = render_viewer_html(folder)
    try:
        if text is None:
            out.unlink(missing_ok=True)
            return None
        atomic_write_text(out, text)
        os.chmod(out, 0o644)
    except OSError as e:
        raise StoreError(f"{out}: cannot write the frame viewer: {e}") from e
    return out


def render_run_report(run_dir: Path) -> Path:
    """Rebuild ``run_dir/index.html`` from the run folder alone; returns the path written."""
    run_dir = Path(run_dir)
    folder = load_run_folder(run_dir)
    text = render_run_report_html(folder)
    write_viewer(folder)
    out = run_dir / REPORT_FILE
    try:
        fd, tmp = tempfile.mkstemp(prefix=".index.", suffix=".html", dir=run_dir)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is meant to be read
        os.replace(tmp, out)
    except OSError as e:
        raise StoreError(f"{out}: cannot write the report: {e}") from e
    return out

