"""Figures for the run report: data in, PNG bytes out. Pure (no file I/O), Agg backend only.

Every figure labels emulated data "(emulated)" and draws it with hollow markers / hatched boxes so
that a reader never takes it for a measurement on hardware. Every figure is drawn inside
:func:`drawing`: one at a time per process (Matplotlib is not thread-safe, and a worker renders
several units' reports at once).
"""

from __future__ import annotations

import contextlib
import io
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display, no GUI toolkit; set before pyplot is imported

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.text import Annotation
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter
from matplotlib.transforms import Bbox

PACED_COLOR = "#2563eb"
B2B_COLOR = "#f59e0b"
WARMUP_COLOR = "#9ca3af"
BUDGET_COLOR = "#dc2626"
PALETTE = ("#2563eb", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#65a30d", "#9333ea")
DPI = 110


@dataclass(frozen=True)
class LatencyGroup:
    """Raw samples of one cell (ms). Empty sequences are simply not drawn."""

    label: str
    paced: Sequence[float]
    back_to_back: Sequence[float]
    emulated: bool = False


@dataclass(frozen=True)
class TradeoffPoint:
    """One cell in a cost-versus-quality plot. ``series`` groups points (a device) for colour and front."""

    label: str
    x: float
    y: float
    series: str
    baseline: bool = False
    emulated: bool = False
    on_front: bool = False


@dataclass(frozen=True)
class TracePoint:
    """Samples of one cell in iteration order, warm-up first (ms)."""

    label: str
    warmup: Sequence[float]
    samples: Sequence[float]
    emulated: bool = False


def _style() -> Any:  # rc_context's key type is a Literal union that differs across Matplotlib versions
    return {
        "font.size": 9,
        "axes.titlesize": 10,
        "axes.labelsize": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": "#e5e7eb",
        "grid.linewidth": 0.8,
        "axes.edgecolor": "#9ca3af",
        "legend.fontsize": 8,
        "legend.frameon": False,
    }


_DRAWING = threading.RLock()


@contextlib.contextmanager
def drawing() -> Iterator[None]:
    """Draw one figure at a time in this process, in the report's style.

    Matplotlib is not thread-safe: pyplot's figure registry, the global rcParams that
    ``rc_context`` swaps in and out, and the FreeType faces behind text are shared by every
    thread. A worker renders the reports of several units at once (one thread each); two figures
    drawn together corrupted each other (``FT_Load_Glyph … invalid outline``, once a heap abort).
    Every figure of perflab is drawn inside this lock; drawing is a small part of a report."""
    with _DRAWING, plt.rc_context(_style()):
        yield


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _emul(label: str, emulated: bool) -> str:
    return f"{label} (emulated)" if emulated else label


def _horizontal() -> dict[str, Any]:
    """boxplot's horizontal switch: ``orientation`` since Matplotlib 3.10, ``vert`` before it."""
    major, minor = (int(p) for p in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def _use_log(values: Sequence[float]) -> bool:
    pos = [v for v in values if v > 0]
    return bool(pos) and max(pos) / min(pos) > 20.0


def plain_number(v: float) -> str:
    """A tick label as a plain number: 20, 2, 0.5, 1000 (never "2×10¹")."""
    return f"{v:g}" if v < 1e6 else f"{v:.0f}"


def plain_log_axis(axis: Any) -> None:
    """Log scale ticks at 1, 2, 5 per decade, labelled as plain numbers (ms, KB), no minor labels."""
    axis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: plain_number(v)))
    axis.set_minor_formatter(NullFormatter())


def latency_distribution_png(
    groups: Sequence[LatencyGroup], budget_ms: float | None, fps: float | None, title: str
) -> bytes:
    """Horizontal box plots per cell, paced and back-to-back side by side, with the frame budget."""
    if not groups:
        raise ValueError("no latency groups to plot")
    with drawing():
        fig, ax = plt.subplots(figsize=(8.6, 0.62 * len(groups) + 1.3))
        ticks: list[float] = []
        labels: list[str] = []
        all_values: list[float] = []
        for i, g in enumerate(reversed(groups)):
            y = float(i)
            ticks.append(y)
            labels.append(_emul(g.label, g.emulated))
            for values, offset, color in ((g.paced, 0.17, PACED_COLOR), (g.back_to_back, -0.17, B2B_COLOR)):
                if len(values) == 0:
                    continue
                all_values.extend(values)
                bp = ax.boxplot(
                    [list(values)],
                    positions=[y + offset],
                    **_horizontal(),
                    widths=0.28,
                    whis=(5.0, 95.0),
                    patch_artist=True,
                    showfliers=True,
                    flierprops={"marker": ".", "markersize": 3, "markeredgecolor": color, "alpha": 0.6},
                    medianprops={"color": "#111827", "linewidth": 1.4},
                    whiskerprops={"color": color},
                    capprops={"color": color},
                )
                for box in bp["boxes"]:
                    box.set_facecolor(color if not g.emulated else "white")
                    box.set_alpha(0.55 if not g.emulated else 1.0)
                    box.set_edgecolor(color)
                    if g.emulated:
                        box.set_hatch("///")
        ax.set_yticks(ticks, labels)
        ax.set_ylim(-0.6, len(groups) - 0.4)
        handles = [
            Line2D([], [], color=PACED_COLOR, lw=6, alpha=0.55, label="paced"),
            Line2D([], [], color=B2B_COLOR, lw=6, alpha=0.55, label="back-to-back"),
        ]
        if budget_ms is not None:
            ax.axvline(budget_ms, color=BUDGET_COLOR, ls="--", lw=1.2)
            fps_text = f" @ {fps:g} fps" if fps else ""
            handles.append(Line2D([], [], color=BUDGET_COLOR, ls="--", label=f"frame budget {budget_ms:.1f} ms{fps_text}"))
            all_values.append(budget_ms)
        if _use_log(all_values):
            ax.set_xscale("log")
            plain_log_axis(ax.xaxis)
        ax.set_xlabel("latency per inference (ms) — box: quartiles, whiskers: p5–p95")
        ax.set_title(title, loc="left")
        ax.grid(axis="y", visible=False)
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside: never on the title
        return _png(fig)


def latency_trace_png(traces: Sequence[TracePoint], budget_ms: float | None, title: str) -> bytes:
    """Latency per iteration (warm-up shaded grey) — shows drift, throttling and bimodal runs."""
    if not traces:
        raise ValueError("no traces to plot")
    with drawing():
        fig, ax = plt.subplots(figsize=(8.6, 3.0))
        values: list[float] = []
        max_warm = max(len(t.warmup) for t in traces)
        if max_warm:
            ax.axvspan(-max_warm - 0.5, -0.5, color="#f3f4f6", zorder=0)
            ax.text(-max_warm / 2 - 0.5, 0.02, "warm-up", transform=ax.get_xaxis_transform(), ha="center",
                    va="bottom", color="#6b7280", fontsize=7.5)
        for k, t in enumerate(traces):
            color = PALETTE[k % len(PALETTE)]
            xs = list(range(-len(t.warmup), len(t.samples)))
            ys = list(t.warmup) + list(t.samples)
            values.extend(ys)
            ax.plot(xs, ys, color=color, lw=1.0, ls=":" if t.emulated else "-", marker=".", markersize=2.5,
                    label=_emul(t.label, t.emulated))
        if budget_ms is not None:
            ax.axhline(budget_ms, color=BUDGET_COLOR, ls="--", lw=1.2, label=f"frame budget {budget_ms:.1f} ms")
            values.append(budget_ms)
        if _use_log(values):
            ax.set_yscale("log")
            plain_log_axis(ax.yaxis)
        ax.set_xlabel("iteration (negative = warm-up)")
        ax.set_ylabel("latency (ms)")
        ax.set_title(title, loc="left")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return _png(fig)


# Where a point's number may go, in points from the marker: first close by (no leader line), then on rings
# further out (with a thin leader line back to the marker).
_NEAR_OFFSETS = ((6, 4), (6, -11), (-13, 4), (-13, -11), (-3, 9), (-3, -15), (10, -3), (-18, -3))
_RING_OFFSETS = tuple(
    (round(r * math.cos(math.radians(a))) - 3, round(r * math.sin(math.radians(a))) - 3)
    for r in (22.0, 34.0, 48.0) for a in range(15, 360, 30)
)


def place_labels(ax: Any, anchors: Sequence[tuple[float, float]], texts: Sequence[str], *,
                 fontsize: float = 7.5, marker_px: float = 6.0) -> list[Annotation]:
    """Put each text next to its anchor (data coordinates) where it overlaps no other label and no marker:
    the first free offset close by, else the first free one further out with a leader line; where none is
    free, the least crowded. Greedy, in the given order (put the most important first)."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    pix = [ax.transData.transform(a) for a in anchors]
    markers = [Bbox.from_extents(x - marker_px, y - marker_px, x + marker_px, y + marker_px) for x, y in pix]
    placed: list[Bbox] = []
    out: list[Annotation] = []
    for i, (anchor, text) in enumerate(zip(anchors, texts, strict=True)):
        best: tuple[int, float, float, bool] | None = None
        for (dx, dy), leader in [(o, False) for o in _NEAR_OFFSETS] + [(o, True) for o in _RING_OFFSETS]:
            t = ax.annotate(text, anchor, xytext=(dx, dy), textcoords="offset points", fontsize=fontsize)
            bb = t.get_window_extent(renderer).expanded(1.2, 1.25)
            t.remove()
            hits = sum(bb.overlaps(o) for o in placed) + sum(bb.overlaps(m) for j, m in enumerate(markers) if j != i)
            if best is None or hits < best[0]:
                best = (hits, dx, dy, leader)
            if hits == 0:
                break
        assert best is not None
        _, bx, by, leader = best
        arrow = {"arrowstyle": "-", "color": "#9ca3af", "lw": 0.6, "shrinkA": 0, "shrinkB": 4} if leader else None
        t = ax.annotate(text, anchor, xytext=(bx, by), textcoords="offset points", fontsize=fontsize,
                        color="#111827", fontweight="bold", zorder=5, arrowprops=arrow)
        placed.append(t.get_window_extent(renderer).expanded(1.2, 1.25))
        out.append(t)
    return out


def tradeoff_png(
    points: Sequence[TradeoffPoint],
    *,
    x_label: str,
    y_label: str,
    title: str,
    x_log: bool = False,
    budget_ms: float | None = None,
) -> bytes:
    """Scatter of cost (x, lower is better) against quality (y, higher is better).

    Each point carries a number placed where it collides with no other label or marker; the key beside the
    plot names each number, so long cell names never pile up on the axes. Baseline points are stars;
    emulated points are hollow; points with ``on_front`` are joined per series by a dashed step line: the
    Pareto front.
    """
    if not points:
        raise ValueError("no points to plot")
    series_names = list(dict.fromkeys(p.series for p in points))
    # numbering: per device, baseline first, then by cost
    order = sorted(range(len(points)), key=lambda i: (series_names.index(points[i].series),
                                                      0 if points[i].baseline else 1, points[i].x, -points[i].y))
    number = {i: k + 1 for k, i in enumerate(order)}
    with drawing():
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        handles: list[Line2D] = []
        colors = {name: PALETTE[k % len(PALETTE)] for k, name in enumerate(series_names)}
        for name in series_names:
            color = colors[name]
            pts = [p for p in points if p.series == name]
            front = sorted((p for p in pts if p.on_front), key=lambda p: (p.x, -p.y))
            if len(front) >= 2:
                ax.plot([p.x for p in front], [p.y for p in front], color=color, lw=1.2, ls="--",
                        drawstyle="steps-post", alpha=0.8, zorder=1)
            for p in front:
                ax.scatter([p.x], [p.y], s=190, facecolors="none", edgecolors=color, linewidths=1.0, alpha=0.5,
                           zorder=2)
            for p in pts:
                marker = "*" if p.baseline else "o"
                size = 170 if p.baseline else 46
                face = "white" if p.emulated else color
                ax.scatter([p.x], [p.y], marker=marker, s=size, facecolors=face, edgecolors=color,
                           linewidths=1.3, zorder=3)
            handles.append(Line2D([], [], marker="o", ls="", color=color, label=name))
        handles.append(Line2D([], [], marker="*", ls="", color="#374151", markersize=11, label="bicubic baseline"))
        if any(p.emulated for p in points):
            handles.append(Line2D([], [], marker="o", ls="", markerfacecolor="white", color="#374151",
                                  label="emulated (not measured on hardware)"))
        if any(p.on_front for p in points):
            handles.append(Line2D([], [], ls="--", color="#374151", label="Pareto front"))
        if budget_ms is not None:
            ax.axvline(budget_ms, color=BUDGET_COLOR, ls="--", lw=1.2)
            handles.append(Line2D([], [], color=BUDGET_COLOR, ls="--", label=f"frame budget {budget_ms:.1f} ms"))
        if x_log:
            ax.set_xscale("log")
            plain_log_axis(ax.xaxis)
        ax.margins(x=0.12, y=0.15)
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.set_title(title, loc="left")
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
        place_labels(ax, [(points[i].x, points[i].y) for i in order], [str(number[i]) for i in order])
        key = []
        for i in order:  # the number's colour is its device's (the legend below names devices)
            p = points[i]
            text = f"{p.label} (bicubic)" if p.baseline and "bicubic" not in p.label else p.label
            key.append(Line2D([], [], ls="", marker=f"${number[i]}$", markersize=7 if number[i] < 10 else 10,
                              color=colors[p.series], label=text))
        fig.legend(handles=key, loc="upper left", bbox_to_anchor=(0.91, 0.88), handletextpad=0.6,
                   title="key", title_fontsize=8, alignment="left")
        return _png(fig)


@dataclass(frozen=True)
class FrameSeries:
    """Per-frame values of one cell: ΔPSNR-Y vs bicubic on the same frame (dB) and PIQE (lower is better)."""

    label: str
    d_psnr_y_db: Sequence[float]
    piqe: Sequence[float]
    baseline: bool = False
    emulated: bool = False


def _jitter(n: int, width: float) -> list[float]:
    """Deterministic spread for a strip plot (golden-ratio sequence), so the same data gives the same PNG."""
    return [((k * 0.6180339887) % 1.0 - 0.5) * width for k in range(n)]


def _strip_box(ax: Any, rows: Sequence[tuple[str, Sequence[float], bool]], color: str) -> None:
    for i, (_, values, emulated) in enumerate(reversed(rows)):
        if len(values) == 0:
            continue
        y = float(i)
        if len(values) >= 4:
            bp = ax.boxplot([list(values)], positions=[y], **_horizontal(), widths=0.5, whis=(5.0, 95.0),
                            patch_artist=True, showfliers=False, medianprops={"color": "#111827", "linewidth": 1.4},
                            whiskerprops={"color": color}, capprops={"color": color})
            for box in bp["boxes"]:
                box.set_facecolor("white" if emulated else color)
                box.set_alpha(1.0 if emulated else 0.25)
                box.set_edgecolor(color)
                if emulated:
                    box.set_hatch("///")
        ys = [y + j for j in _jitter(len(values), 0.36)]
        ax.scatter(list(values), ys, s=14 if len(values) < 50 else 7, facecolors="white" if emulated else color, edgecolors=color,
                   linewidths=0.6, alpha=0.75, zorder=3)
    ax.set_yticks(range(len(rows)), [_emul(label, em) for label, _, em in reversed(rows)])
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.grid(axis="y", visible=False)


def frame_quality_png(series: Sequence[FrameSeries], title: str) -> bytes:
    """Two panels per device/delegate: each SR cell's per-frame ΔPSNR-Y vs bicubic (0 = bicubic), and each
    cell's per-frame PIQE (bicubic included). Every frame is a dot; a box (quartiles, whiskers p5–p95) is
    drawn once a cell has 4 frames or more."""
    sr = [(s.label, s.d_psnr_y_db, s.emulated) for s in series if not s.baseline and len(s.d_psnr_y_db)]
    pq = [(s.label + (" (bicubic)" if s.baseline and "bicubic" not in s.label else ""), s.piqe, s.emulated)
          for s in series if len(s.piqe)]
    if not sr and not pq:
        raise ValueError("no per-frame values to plot")
    panels = [p for p in ((sr, "ΔPSNR-Y vs bicubic on the same frame (dB) — right of 0 beats bicubic", PALETTE[1]),
                          (pq, "PIQE per frame — lower is better (no reference)", PALETTE[3])) if p[0]]
    n_rows = max(len(p[0]) for p in panels)
    with drawing():
        fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels) + 1.6, 0.5 * n_rows + 1.4),
                                 squeeze=False)
        for ax, (rows, xlabel, color) in zip(axes[0], panels, strict=True):
            _strip_box(ax, rows, color)
            if rows is sr:
                ax.axvline(0.0, color="#2563eb", ls="--", lw=1.1)
            ax.set_xlabel(xlabel)
        fig.suptitle(title, x=0.01, ha="left", fontsize=10)
        fig.tight_layout()
        return _png(fig)


@dataclass(frozen=True)
class FrameTrack:
    """One cell's values of a per-frame metric: (frame position, value)."""

    label: str
    points: Sequence[tuple[int, float]]
    baseline: bool = False
    emulated: bool = False


@dataclass(frozen=True)
class FramePanel:
    name: str
    unit: str
    higher_better: bool
    tracks: Sequence[FrameTrack]


BASELINE_COLOR = "#111827"


def frame_metrics_png(panels: Sequence[FramePanel], n_frames: int, title: str, marked: Sequence[int] = ()) -> bytes:
    """Per-frame metrics over the frames (input order), one stacked panel per metric sharing the frame
    axis, a line per cell: bicubic dashed black, each SR cell in its palette colour (dotted when
    emulated). ``marked`` frames (those the frame viewer can show) get a light band."""
    if not panels:
        raise ValueError("no per-frame metrics to plot")
    with drawing():
        fig, axes = plt.subplots(len(panels), 1, figsize=(8.6, 0.7 + 1.5 * len(panels)), sharex=True, squeeze=False)
        colors: dict[str, str] = {}
        for ax, p in zip(axes[:, 0], panels, strict=True):
            for x in marked:
                ax.axvspan(x - 0.5, x + 0.5, color="#fef3c7", zorder=0, lw=0)
            for t in p.tracks:
                color = BASELINE_COLOR if t.baseline else colors.setdefault(t.label, PALETTE[len(colors) % len(PALETTE)])
                xs, ys = [x for x, _ in t.points], [y for _, y in t.points]
                ax.plot(xs, ys, color=color, lw=1.2, ls="--" if t.baseline else (":" if t.emulated else "-"),
                        marker="o" if len(xs) <= 40 else None, ms=3, mfc="white" if t.emulated else color,
                        label=_emul(t.label, t.emulated))
            better = "higher" if p.higher_better else "lower"
            unit = f" ({p.unit})" if p.unit else ""
            ax.set_ylabel(f"{p.name}{unit}\n{better} is better", fontsize=8, rotation=0, ha="right", va="center",
                          labelpad=8)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.ticklabel_format(axis="y", style="plain", useOffset=False)
        axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        axes[-1, 0].set_xlabel("frame (input order)")
        axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[-1, 0].set_xlim(-0.6, max(n_frames - 1, 1) + 0.6)
        axes[0, 0].set_title(title, loc="left")
        fig.align_ylabels(axes[:, 0])
        return _png(fig)


@dataclass(frozen=True)
class TimelinePanel:
    """One stream over the run: one line per sampler file (segments are never joined across gaps)."""

    name: str
    unit: str
    segments: Sequence[Sequence[tuple[float, float]]]


@dataclass(frozen=True)
class TimelineWindow:
    start_s: float
    end_s: float
    label: str  # a short tag drawn on the plot ("1", "2", "idle"); the key beside the figure names it
    idle: bool = False


TIMELINE_COLORS = {"mA": "#dc2626", "mW": "#d97706", "°C": "#7c3aed", "%": "#2563eb", "MB": "#059669"}


def _stagger_rows(xs: Sequence[float], min_gap: float, rows: int = 3) -> list[int]:
    """A text row per label (0 = nearest the axis) so that labels on one row are ``min_gap`` apart."""
    last: list[float | None] = [None] * rows
    out = []
    for x in xs:
        r = next((i for i in range(rows) if last[i] is None or x - (last[i] or 0.0) >= min_gap), rows - 1)
        last[r] = x
        out.append(r)
    return out


def timeline_png(panels: Sequence[TimelinePanel], windows: Sequence[TimelineWindow], title: str,
                 emulated: bool = False) -> bytes:
    """Stacked streams sharing the time axis (s), each cell's inference window shaded and tagged on top."""
    if not panels:
        raise ValueError("no streams to plot")
    with drawing():
        fig, axes = plt.subplots(len(panels), 1, figsize=(8.6, 0.6 + 1.25 * len(panels)), sharex=True,
                                 squeeze=False)
        xs = [t for p in panels for seg in p.segments for t, _ in seg] + \
             [x for w in windows for x in (w.start_s, w.end_s)]
        span = (max(xs) - min(xs)) if xs else 1.0
        for ax, p in zip(axes[:, 0], panels, strict=True):
            k = 0
            for w in windows:
                if w.idle:
                    ax.axvspan(w.start_s, w.end_s, color="#f3f4f6", zorder=0, lw=0)
                else:
                    ax.axvspan(w.start_s, w.end_s, color=("#dbeafe", "#e0e7ff")[k % 2], zorder=0, lw=0)
                    k += 1
            color = TIMELINE_COLORS.get(p.unit, "#374151")
            for seg in p.segments:
                if seg:
                    ax.plot([t for t, _ in seg], [v for _, v in seg], color=color, lw=1.0,
                            ls=":" if emulated else "-")
            ax.set_ylabel(f"{p.name}\n({p.unit})", fontsize=8, rotation=0, ha="right", va="center", labelpad=8)
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.ticklabel_format(axis="y", style="plain", useOffset=False)
            if p.unit == "%":
                ax.set_ylim(-3, 103)
        top = axes[0, 0]
        centers = [(w.start_s + w.end_s) / 2 for w in windows]
        order = sorted(range(len(windows)), key=lambda i: centers[i])
        rows = _stagger_rows([centers[i] for i in order], min_gap=0.035 * span)
        for i, r in zip(order, rows, strict=True):
            w = windows[i]
            top.annotate(w.label, xy=(centers[i], 1.0), xycoords=("data", "axes fraction"),
                         xytext=(0, 2 + 10 * r), textcoords="offset points", ha="center", va="bottom",
                         fontsize=7.5, color="#6b7280" if w.idle else "#1e3a8a",
                         fontweight="normal" if w.idle else "bold")
        n_rows = (max(rows) + 1) if rows else 0
        top.set_title(title, loc="left", pad=6 + 10 * n_rows)
        axes[-1, 0].set_xlabel("time on the device clock (s from its first sample)")
        fig.align_ylabels(axes[:, 0])
        return _png(fig)


@dataclass(frozen=True)
class SpanBar:
    """One span of a traced inference (µs from the inference's begin) on a named track."""

    name: str
    kind: str  # op / delegate / irq
    begin_us: float
    end_us: float
    track: str


SPAN_COLORS = {"op": "#2563eb", "delegate": "#059669", "irq": "#dc2626"}


def inference_timeline_png(spans: Sequence[SpanBar], title: str, emulated: bool = False) -> bytes:
    """One inference as horizontal bars, one row per track (thread or CPU), coloured by kind."""
    if not spans:
        raise ValueError("no spans to plot")
    tracks: list[str] = []
    for s in spans:
        t = s.track or s.kind
        if t not in tracks:
            tracks.append(t)
    with drawing():
        fig, ax = plt.subplots(figsize=(8.6, 0.8 + 0.35 * len(tracks)))
        for s in spans:
            y = tracks.index(s.track or s.kind)
            width = max(s.end_us - s.begin_us, 0.0)
            ax.barh(y, width, left=s.begin_us, height=0.7, color=SPAN_COLORS.get(s.kind, "#6b7280"),
                    edgecolor="white", linewidth=0.4, hatch="//" if emulated else None,
                    fill=not emulated)
            if width > 0:
                ax.text(s.begin_us + width / 2, y, s.name, ha="center", va="center", fontsize=6, clip_on=True,
                        color="white" if not emulated else "#111827")
        ax.set_yticks(range(len(tracks)))
        ax.set_yticklabels(tracks)
        ax.invert_yaxis()
        ax.set_xlabel("µs from the inference's begin")
        handles = [Line2D([0], [0], color=c, lw=6, label=k) for k, c in SPAN_COLORS.items()
                   if any(s.kind == k for s in spans)]
        ax.legend(handles=handles, loc="upper right", ncol=len(handles))
        ax.set_title(_emul(title, emulated), loc="left")
        return _png(fig)
