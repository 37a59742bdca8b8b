"""The run report's view model, its common ground: one displayed value (:class:`Val`), the numbered
reasons of missing ones (:class:`Footnotes`), and how cells and devices are named, ordered and grouped.
Pure, no I/O.

Rules the whole view keeps (perflab.report.view and its parts view_*):
- A missing number is shown as "—" (perflab.core.display.MISSING) with its reason (hover title and a
  numbered footnote), never as a blank or 0. Where a record gives no reason, the view says that no
  reason was recorded.
- Emulated cells and devices carry ``emulated=True`` all the way to the template.
- Each cell is set beside the bicubic baseline on the same device and delegate.
- The view renders what the run stored and computes nothing that analysis owns: baseline pairing,
  deltas (cell and per frame), the real-time verdict with its rule, the MAI score and the reading
  of delegate lines all come from ``results.json`` (``perflab.rules.derive`` / ``perflab.analysis``).
  A value an older results file does not hold is shown missing with the reason
  :data:`NOT_RECORDED`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from perflab.core.display import MISSING
from perflab.rules.device import cell_is_emulated, cell_is_imported
from perflab.rules.device import is_emulated as device_is_emulated
from perflab.store.results import CellRecord, DeviceRecord, LatencyRecord, RunRecord

MODE_LABELS = {"paced": "paced", "back_to_back": "back-to-back"}
NOT_RECORDED = "not recorded by this perflab version"
NO_REFERENCE_MARK = "no ref."
"""Shown where a full-reference figure (PSNR, SSIM, VMAF, their Δ) would be for a frame or a
cell whose inputs have no HR reference (LR-only inputs: ``reference`` false in results)."""
FULL_REFERENCE_ATTRS = frozenset({"psnr_y_db", "ssim_y", "psnr_rgb_db", "psnr_y_db_min", "vmaf", "temporal_err_y",
                                  "mai2021_score", "mai2021_ratio"})

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


def no_reference_val(cell: CellRecord, attr: str) -> Val | None:
    """The "no ref." mark when ``attr`` is a full-reference figure and every frame of the cell
    came from an LR-only input, else None."""
    q = cell.quality
    if attr in FULL_REFERENCE_ATTRS and q.frames and q.no_reference_frames >= q.frames:
        return Val(NO_REFERENCE_MARK, title="no reference: every input of this cell is LR-only (role: lr), "
                   "so there is no HR to compare with; PIQE is measured", cls="muted")
    return None


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
    return cell_is_emulated(cell)  # the one rule, shared with the runner (perflab.rules.device)


def device_emulated(dev: DeviceRecord) -> bool:
    return device_is_emulated(dev)


def is_imported(cell: CellRecord) -> bool:
    return cell_is_imported(cell)  # the one rule (perflab.rules.device), as for emulated


def cell_label(cell: CellRecord) -> str:
    return f"{cell.model.name} {cell.model.variant}"


def series_of(cell: CellRecord, mode: str) -> LatencyRecord | None:
    rec = cell.series.get(mode)
    if rec is not None:
        return rec
    if cell.latency_ms is not None and cell.latency_ms.mode == mode:
        return cell.latency_ms
    return None


def cell_key(run: RunRecord, cell: CellRecord) -> str:
    """The cell's id in this run: the store's ``artifact_key`` (one naming rule, kept by the store)."""
    return cell.artifact_key


def html_id(prefix: str, text: str, fill: str = "-") -> str:
    """An HTML id (and URL fragment) for a cell or device: ``<prefix>-<text>`` with every character
    but letters, digits, ``-`` and ``_`` replaced by ``fill``."""
    return f"{prefix}-" + "".join(c if c.isalnum() or c in "-_" else fill for c in text)


def anchor_for(cell_id: str) -> str:
    """A cell's anchor in the run report (``#cell-…``; other pages link to it)."""
    return html_id("cell", cell_id)


def device_name(dev: DeviceRecord) -> str:
    return f"{dev.model} ({dev.serial})"


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


def finite_or_none(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def delta_cls(d: float, higher_better: bool = True, digits: int | None = None) -> str:
    """The colour of a change: good or bad by its sign; a zero — or, with ``digits``, one that shows as
    zero at that precision ("±0 MB") — is no change and gets no colour of its own (muted)."""
    if d == 0 or (digits is not None and round(d, digits) == 0):
        return "muted"
    return "good" if (d > 0) == higher_better else "bad"


# Telemetry keys whose reason is stored under another name (the sampler's stream names).
_TEL_REASON_KEYS: dict[str, tuple[str, ...]] = {
    "device_cpu_busy_pct": ("device_cpu_busy_pct", "cpu_busy_pct", "sampler"),
    "gpu_busy_pct": ("gpu_busy_pct", "sampler"),
    "temp_max_c": ("temp_max_c", "temp_c", "sampler"),
    "skin_max_c": ("skin_max_c", "skin_c", "sampler"),
    "cpu_load_pct": ("cpu_load_pct",),
    "current_ma": ("current_ma", "power_source", "sampler"),
    "power_mw": ("power_mw", "power_source", "current_ma", "sampler"),
    "mj_per_frame": ("mj_per_frame", "power_mw", "power_source", "sampler"),
    "mah_per_hour": ("mah_per_hour", "current_ma", "power_source", "sampler"),
    "mem_peak_mb": ("mem_peak_mb",),
    "voltage_v": ("voltage_v", "current_ma", "power_source", "sampler"),
    "energy_mj": ("energy_mj", "energy", "power_mw", "current_ma", "power_source", "sampler"),
    "window_s": ("window", "sampler"),
}


def telemetry_reason(cell: CellRecord, attr: str) -> str:
    """Why ``cell.telemetry.<attr>`` is missing: the stored reason, under its own name or its stream's."""
    t = cell.telemetry
    for k in _TEL_REASON_KEYS.get(attr, (attr,)):
        if k in t.missing:
            return t.missing[k]
    if attr not in type(t).model_fields:
        return f"{attr} {NOT_RECORDED}"
    return f"{attr} not recorded (no reason given)" if t.timeline_file else f"telemetry {NOT_RECORDED} or not sampled"
