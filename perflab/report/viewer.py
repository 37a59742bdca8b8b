"""The frame viewer: ``viewer.html`` beside the run report, SR vs bicubic vs the HR reference on a
chosen kept frame (side by side, or a wipe between two of them), and each cell's stored per-frame
metrics over time.

The run report stays a script-free single file (docs/report.md); the viewer is its own page in the
run folder because it shows the full-size frames the run kept under ``frames/`` (relative links,
nothing from the network) and needs a few lines of JavaScript for the wipe. Its data is built here
(pure: the run record and the frame index in, a JSON-ready dict out); the page is
``templates/viewer.html.j2`` + ``viewer.js``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from perflab.report import view_common as vc
from perflab.report.runfolder import LoadedRun
from perflab.report.view_video import FrameTimeline, build_frame_timelines
from perflab.store.results import CellRecord, CellStatus, artifact_dir

VIEWER_FILE = "viewer.html"


def _link(folder: Path, path: Path) -> str:
    """A relative URL from the run folder to one of its files, each part percent-encoded."""
    return "/".join(quote(p) for p in path.relative_to(folder).parts)


def _source(sid: str, label: str, kind: str, images: dict[str, str], emulated: bool = False) -> dict[str, Any]:
    return {"id": sid, "label": label, "kind": kind, "emulated": emulated, "images": images}


def _metrics(t: FrameTimeline | None, frames: list[str]) -> list[dict[str, Any]]:
    if t is None:
        return []
    pos = {f: i for i, f in enumerate(t.frames)}
    out = []
    for m in t.metrics:
        tracks = []
        for tr in m.tracks:
            by_pos = dict(tr.points)
            tracks.append({"cell": tr.cell_id, "label": tr.label, "baseline": tr.baseline, "emulated": tr.emulated,
                           "values": [by_pos.get(pos[f]) if f in pos else None for f in frames]})
        out.append({"key": m.metric.key, "label": m.metric.label, "unit": m.metric.unit,
                    "higher_better": m.metric.higher_better, "tracks": tracks})
    return out


def viewer_data(folder: LoadedRun) -> dict[str, Any] | None:
    """Per device and delegate: the frames in input order, the kept ones (some cell's output saved), the
    image sources (HR reference, LR input, bicubic, each SR cell) and the
    per-frame metrics as stored. None when the run kept no frames."""
    fr = folder.frames
    if not any(fr.outputs.values()):
        return None
    run = folder.run
    timelines = {t.title: t for t in build_frame_timelines(run, min_frames=1)}
    groups: list[dict[str, Any]] = []
    for dev, dgroups in vc.grouped_cells(run):
        for delegate, members in dgroups:
            cells: list[CellRecord] = sorted((c for c in members if c.status == CellStatus.OK),
                                             key=lambda c: 0 if c.baseline else 1)
            outs = {id(c): folder.frames.outputs.get(artifact_dir(c.artifact_key), {}) for c in cells}
            # a frame any cell kept (an LR-only input's has no HR image: its panes say so)
            kept = list(dict.fromkeys(f for c in cells for f in sorted(outs[id(c)])))
            if not kept:
                continue
            title = f"{vc.device_name(dev)} · {delegate}"
            t = timelines.get(title)
            frames = list(t.frames) if t is not None else []
            frames += [f for f in sorted(kept) if f not in frames]
            kept = [f for f in frames if f in kept]
            sources = [_source("hr", "HR reference", "hr", {f: _link(folder.path, fr.hr[f]) for f in kept if f in fr.hr})]
            lr = {f: _link(folder.path, fr.lr[f]) for f in kept if f in fr.lr}
            if lr:
                sources.append(_source("lr", f"LR input (pixels ×{run.scenario.scale})", "lr", lr))
            for c in cells:
                label = vc.cell_label(c) + (" (bicubic baseline)" if c.baseline and "bicubic" not in
                                            vc.cell_label(c).lower() else "")
                sources.append(_source(vc.cell_key(run, c), label, "baseline" if c.baseline else "model",
                                       {f: _link(folder.path, p) for f, p in outs[id(c)].items() if f in kept},
                                       vc.is_emulated(c)))
            groups.append({"title": title, "emulated": vc.device_emulated(dev) or any(vc.is_emulated(c) for c in cells),
                           "scale": run.scenario.scale, "frames": frames, "kept": kept, "sources": sources,
                           "metrics": _metrics(t, frames), "left_out": list(t.left_out) if t is not None else []})
    if not groups:
        return None
    return {"run_id": run.run_id, "scenario": run.scenario.name, "groups": groups}


def render_viewer_html(folder: LoadedRun) -> str | None:
    """The viewer page's HTML, or None when the run kept no frames to show."""
    from perflab.report.pages import render

    data = viewer_data(folder)
    if data is None:
        return None
    return render("viewer.html.j2", data=data, run=folder.run)
