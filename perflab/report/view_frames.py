"""Per-frame quality tables in the run report: each frame's PSNR-Y, SSIM-Y and PIQE beside bicubic's,
with statistics over every frame. Pure, no I/O; rules in :mod:`perflab.report.view_common`."""

from __future__ import annotations

from dataclasses import dataclass, field

from perflab.core.display import MISSING, fmt_signed
from perflab.report.view_common import (
    NO_REFERENCE_MARK,
    NOT_RECORDED,
    Footnotes,
    Val,
    cell_key,
    cell_label,
    delta_cls,
    device_emulated,
    device_name,
    finite_or_none,
    grouped_cells,
    is_emulated,
)
from perflab.report.view_rows import RowBuilder
from perflab.store.results import CellRecord, CellStatus, FrameQuality, RunRecord


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
    vmaf: Val = field(default_factory=lambda: Val(""))  # mean VMAF, Δ vs bicubic under it; pools in the title


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
    rows: list[tuple[str, list[Val]]]  # frame name, VALS_PER_CELL Vals (PSNR-Y, SSIM-Y, VMAF, PIQE) per column
    stats: list[FrameStatsRow]
    dist: list[FrameDist]
    total_frames: int
    shown_frames: int


MAX_FRAME_ROWS = 10  # per-frame table rows per device/delegate; statistics and the figure use every frame
FRAME_KEYS = ("psnr_y_db", "ssim_y", "psnr_rgb_db", "piqe", "d_psnr_y_db", "d_ssim_y")
_FRAME_NAMES = {"psnr_y_db": "PSNR-Y", "ssim_y": "SSIM-Y", "piqe": "PIQE", "psnr_rgb_db": "PSNR-RGB", "vmaf": "VMAF"}
_FRAME_COLUMNS = (("psnr_y_db", 2, " dB"), ("ssim_y", 4, ""), ("vmaf", 2, ""), ("piqe", 1, ""))
VALS_PER_CELL = len(_FRAME_COLUMNS)  # values per cell and frame in the per-frame table


def _per_frame(cell: CellRecord) -> dict[str, FrameQuality]:
    """frame name → its stored record."""
    return {f.frame: f for f in cell.quality.per_frame if f.frame}


def _fv(f: FrameQuality | None, key: str) -> float | None:
    """A stored per-frame value, None where absent or not finite."""
    return None if f is None else finite_or_none(getattr(f, key))


class _FrameBuilder:
    def __init__(self, run: RunRecord, notes: Footnotes) -> None:
        self.run = run
        self.notes = notes

    def frame_vals(self, cell: CellRecord, frame: str, e: FrameQuality | None, paired: bool) -> list[Val]:
        """PSNR-Y, SSIM-Y, VMAF and PIQE of one frame; under PSNR-Y, SSIM-Y and VMAF the stored difference to
        bicubic."""
        if e is None:
            m = self.notes.missing(f"no per-frame quality for {frame} in this cell")
            return [m] * VALS_PER_CELL
        out: list[Val] = []
        for key, digits, unit in _FRAME_COLUMNS:
            name = _FRAME_NAMES[key]
            v = _fv(e, key)
            if v is None and not e.reference and key != "piqe":  # an LR-only input: nothing to compare with
                out.append(Val(NO_REFERENCE_MARK, title=e.missing.get(key) or "no reference", cls="muted"))
                continue
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
                               sub=fmt_signed(d, digits, unit), sub_cls=delta_cls(d, digits=digits)))
        return out

    def stats(self, cell: CellRecord, per: dict[str, FrameQuality]) -> FrameStatsRow:
        """Means stored by the run, and a summary of the per-frame deltas it stored (mean, worst frame, count of
        frames where the cell loses to bicubic)."""
        q = cell.quality
        n = len(per)
        psnrs = [(f, v) for f, e in per.items() if (v := _fv(e, "psnr_y_db")) is not None]

        def recorded(attr: str, digits: int, what: str) -> Val:
            v = getattr(q, attr)
            if v is None and attr != "piqe" and n and q.no_reference_frames >= n:  # every frame is LR-only
                return Val(NO_REFERENCE_MARK, title=q.missing.get(attr) or "no reference", cls="muted")
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
            d_piqe, _ = RowBuilder(self.run, self.notes).stored_delta(cell, "piqe")
            if d_piqe is not None:
                piqe = Val(piqe.text, title=f"{piqe.title}; Δ vs bicubic {d_piqe:+.3f} (lower is better)",
                           sub=fmt_signed(d_piqe, 1), sub_cls=delta_cls(d_piqe, higher_better=False, digits=1))
        vmaf = self._vmaf(cell)

        def row(d_mean: Val, d_min: Val, worse: Val, d_ssim: Val) -> FrameStatsRow:
            return FrameStatsRow(cell_key(self.run, cell), cell_label(cell), cell.baseline, is_emulated(cell), n,
                                 recorded("psnr_y_db", 2, "PSNR-Y dB"), min_val, d_mean, d_min, worse,
                                 recorded("ssim_y", 4, "SSIM-Y"), d_ssim, recorded("psnr_rgb_db", 2, "PSNR-RGB dB"),
                                 piqe, vmaf)

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
            d_mean = Val(fmt_signed(mean_d, 2, " dB"), cls=delta_cls(mean_d, digits=2),
                         title=f"mean over {len(dp)} frame(s) of (PSNR-Y − bicubic's PSNR-Y on the same frame)")
            d_min = Val(fmt_signed(wd, 2, " dB"), cls=delta_cls(wd, digits=2), sub=wf, sub_cls="muted",
                        title=f"the frame where this cell does worst against bicubic: {wf} ({wd:+.4f} dB)")
            worse = Val(f"{n_worse} of {len(dp)}", cls="bad" if n_worse else "good",
                        title="frames on which PSNR-Y is below bicubic's on the same frame")
        else:
            d_mean = d_min = worse = self.notes.missing(why)
        if ds:
            ms = sum(ds) / len(ds)
            d_ssim = Val(fmt_signed(ms, 4), cls=delta_cls(ms, digits=4), title=f"mean ΔSSIM-Y over {len(ds)} frame(s)")
        else:
            d_ssim = self.notes.missing(why)
        return row(d_mean, d_min, d_ssim=d_ssim, worse=worse)


    def _vmaf(self, cell: CellRecord) -> Val:
        """The cell's pooled VMAF (mean; harmonic mean and 5th percentile under it), its Δ vs bicubic in the
        title, or why it is missing."""
        q = cell.quality
        if q.vmaf is None:
            if q.no_reference_frames and q.no_reference_frames >= len(q.per_frame):
                return Val(NO_REFERENCE_MARK, title=q.missing.get("vmaf") or "no reference", cls="muted")
            return self.notes.missing(q.missing.get("vmaf") or f"VMAF {NOT_RECORDED}")
        pools = (f"harmonic mean {q.vmaf_harmonic_mean:.2f} · p5 {q.vmaf_p5:.2f}"
                 if q.vmaf_harmonic_mean is not None and q.vmaf_p5 is not None else None)
        title = f"{q.vmaf_model or 'VMAF'}: mean {q.vmaf:.4f} over {q.vmaf_frames} kept frame(s)"
        if not cell.baseline:
            d, why = RowBuilder(self.run, self.notes).stored_delta(cell, "vmaf")
            title += f"; Δ vs bicubic {d:+.4f}" if d is not None else f"; Δ vs bicubic: {why}"
        return Val(f"{q.vmaf:.2f}", title=title, sub=pools, sub_cls="muted")


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
