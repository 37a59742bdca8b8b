"""Per-frame metrics over time (the frame order of the run's inputs), per device and delegate: each
cell's stored PSNR-Y, SSIM-Y, VMAF (where the run stored it) and temporal error beside bicubic's.
The run report draws them as a timeline figure; the frame viewer (perflab.report.viewer) plots the
same series. Pure, no I/O; the values are the stored ones (results.json), nothing is recomputed."""

from __future__ import annotations

from dataclasses import dataclass

from perflab.report import view_common as vc
from perflab.store.results import CellRecord, CellStatus, FrameQuality, RunRecord


@dataclass(frozen=True)
class FrameMetric:
    """A per-frame metric as ``FrameQuality`` stores it."""

    key: str
    label: str
    unit: str
    higher_better: bool


#: the metrics drawn over time, in this order; one stored in no cell of a group is left out with its reason
FRAME_METRICS = (
    FrameMetric("psnr_y_db", "PSNR-Y", "dB", True),
    FrameMetric("ssim_y", "SSIM-Y", "", True),
    FrameMetric("vmaf", "VMAF", "", True),
    FrameMetric("temporal_err_y", "Temporal error", "Y levels", False),
)


@dataclass(frozen=True)
class CellTrack:
    """One cell's values of one metric: (frame position in the group's order, value)."""

    cell_id: str
    label: str
    baseline: bool
    emulated: bool
    points: list[tuple[int, float]]


@dataclass(frozen=True)
class MetricTracks:
    metric: FrameMetric
    tracks: list[CellTrack]


@dataclass(frozen=True)
class FrameTimeline:
    """Per-frame metrics of one device and delegate over the frames in input order."""

    title: str
    emulated: bool
    frames: list[str]
    metrics: list[MetricTracks]
    left_out: list[str]  # "Temporal error: single frames, no sequence" — a metric no cell has, and why


def frame_value(f: FrameQuality, key: str) -> float | None:
    """A stored per-frame value (None where absent, not finite, or not a field of this results version)."""
    return vc.finite_or_none(getattr(f, key, None))


def _why_none(run_cells: list[CellRecord], key: str) -> str:
    for c in run_cells:
        why = c.quality.missing.get(key) or next((f.missing[key] for f in c.quality.per_frame if key in f.missing), None)
        if why:
            return why
    return vc.NOT_RECORDED if key == "vmaf" else "not recorded for these frames"


def build_frame_timelines(run: RunRecord, min_frames: int = 2) -> list[FrameTimeline]:
    """One timeline per device and delegate whose cells stored per-frame values of at least
    ``min_frames`` frames; the frame order is the run's input order (the order cells stored them)."""
    out: list[FrameTimeline] = []
    for dev, groups in vc.grouped_cells(run):
        for delegate, members in groups:
            cells = sorted((c for c in members if c.status == CellStatus.OK and c.quality.per_frame),
                           key=lambda c: 0 if c.baseline else 1)
            frames = list(dict.fromkeys(f.frame for c in cells for f in c.quality.per_frame if f.frame))
            if len(frames) < min_frames:
                continue
            pos = {f: i for i, f in enumerate(frames)}
            metrics: list[MetricTracks] = []
            left_out: list[str] = []
            for m in FRAME_METRICS:
                tracks = []
                for c in cells:
                    pts = [(pos[f.frame], v) for f in c.quality.per_frame
                           if f.frame in pos and (v := frame_value(f, m.key)) is not None]
                    if pts:
                        tracks.append(CellTrack(vc.cell_key(run, c), vc.cell_label(c), c.baseline, vc.is_emulated(c),
                                                pts))
                if tracks:
                    metrics.append(MetricTracks(m, tracks))
                else:
                    left_out.append(f"{m.label}: {_why_none(cells, m.key)}")
            if metrics:
                out.append(FrameTimeline(
                    title=f"{vc.device_name(dev)} · {delegate}",
                    emulated=vc.device_emulated(dev) or any(vc.is_emulated(c) for c in cells),
                    frames=frames, metrics=metrics, left_out=left_out))
    return out
