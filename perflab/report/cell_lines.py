"""The per-cell summary that ends ``perflab run`` and ``perflab nightly``: one line per cell.

Each line names the device (``EMULATED`` where the numbers come from an emulated phone,
``IMPORTED`` where they were read from a capture perflab did not measure), the
model, variant and delegate, the cell's status, and for a cell that ran: the headline latency
with its statistic named (p90 where per-run samples were measured, else the tool's mean), real
time yes/no (the stored verdict, by the rule that decided it) and the stored change versus
bicubic on the same device and delegate. A value that is missing is "—" with its reason.

Pure: a run record in, text lines out; the caller prints them.
"""

from __future__ import annotations

from collections.abc import Iterator

from perflab.analysis.derive import headline_latency as analysis_headline
from perflab.core.display import MISSING, fmt_ms, fmt_signed
from perflab.core.names import one_line
from perflab.rules.device import IMPORTED_TAG, cell_is_emulated, cell_is_imported
from perflab.store.results import CellRecord, CellStatus, RunRecord

EMULATED_TAG = "EMULATED"


def _device(cell: CellRecord) -> str:
    if cell_is_emulated(cell):
        return f"{cell.device.serial} ({EMULATED_TAG})"
    return f"{cell.device.serial} ({IMPORTED_TAG})" if cell_is_imported(cell) else cell.device.serial


def _short(reason: str | None, limit: int = 80) -> str:
    return one_line(reason or "no reason recorded", limit)


def headline_latency(cell: CellRecord) -> str:
    """``p90 12.3 ms`` where measured, else ``mean 12.3 ms`` (a tool summary), else "—" with why."""
    lat = cell.latency_ms
    if lat is None:
        return f"latency {MISSING} (not recorded)"
    head = analysis_headline(lat.p90, lat.mean)
    if head.value_ms is not None:
        return f"{head.statistic} {fmt_ms(head.value_ms, 'ms')}"
    return f"latency {MISSING} ({_short(lat.missing.get('p90') or lat.missing.get('mean'))})"


def real_time(cell: CellRecord) -> str:
    rt = cell.realtime
    if rt is None:
        return f"real time {MISSING} (not judged)"
    if rt.meets is None:
        return f"real time {MISSING} ({_short(rt.missing, 60)})"
    return "real time " + ("yes" if rt.meets else "no") + (f" by {rt.statistic}" if rt.statistic else "")


def vs_bicubic(cell: CellRecord) -> str:
    """The stored deltas to bicubic: latency (its statistic named) and PSNR-Y."""
    if cell.baseline:
        return "bicubic baseline"
    d = cell.deltas
    if d is None:
        return f"Δ vs bicubic {MISSING} (no bicubic on this device and delegate)"
    parts = []
    if d.latency_median_ms is not None:
        parts.append(f"median {fmt_signed(d.latency_median_ms, 1, ' ms')}")
    elif d.latency_mean_ms is not None:
        parts.append(f"mean {fmt_signed(d.latency_mean_ms, 1, ' ms')}")
    if d.psnr_y_db is not None:
        parts.append(f"PSNR-Y {fmt_signed(d.psnr_y_db, 2, ' dB')}")
    if not parts:
        why = d.missing.get("latency_median_ms") or d.missing.get("all")
        return f"Δ vs bicubic {MISSING}" + (f" ({_short(why, 60)})" if why else "")
    return "Δ vs bicubic " + ", ".join(parts)


def cell_line(cell: CellRecord) -> str:
    what = f"{_device(cell)} {cell.model.name} {cell.model.variant} {cell.delegate}"
    if cell.status != CellStatus.OK:
        return f"{what}: {cell.status.value} — {_short(cell.reason, 120)}"
    return f"{what}: ok · {headline_latency(cell)} · {real_time(cell)} · {vs_bicubic(cell)}"


def cell_lines(run: RunRecord, indent: str = "  ") -> Iterator[str]:
    """One line per cell of the run, in the run's order, under a heading naming the latency rule."""
    if not run.cells:
        return
    yield f"{indent}cells (latency of the headline series: p90 where measured, else the tool's mean):"
    for cell in run.cells:
        yield f"{indent}  {cell_line(cell)}"
