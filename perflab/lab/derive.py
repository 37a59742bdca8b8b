"""Derived fields of cell records: deltas versus the baseline and the realtime verdict."""

from __future__ import annotations

from perflab.store.results import CellRecord, CellStatus, DeltaRecord


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def finalize_cells(cells: list[CellRecord], fps: float | None) -> list[CellRecord]:
    """Fill ``deltas`` (versus bicubic on the same device and delegate) and ``realtime``.

    realtime: the headline series' p90 (or mean, when the tool gives no p90) fits the frame
    budget 1000/fps ms. None when not paced or not measured.
    """
    base: dict[tuple[str, str], CellRecord] = {
        (c.device.serial, c.delegate): c for c in cells if c.baseline and c.status == CellStatus.OK
    }
    out: list[CellRecord] = []
    for c in cells:
        c = c.model_copy(deep=True)
        lat = c.latency_ms
        if fps and lat is not None and c.status == CellStatus.OK:
            worst = lat.p90 if lat.p90 is not None else lat.mean
            c.realtime = None if worst is None else worst <= 1000.0 / fps
        b = base.get((c.device.serial, c.delegate))
        if c.quality.psnr_y_db is not None and lat is not None and c.status == CellStatus.OK:
            runtime = lat.median if lat.median is not None else lat.mean
            if runtime and runtime > 0 and c.quality.psnr_y_db < 60:
                c.quality.mai2021_score = 2.0 ** (2.0 * c.quality.psnr_y_db) / runtime
        if b is not None and not c.baseline and c.status == CellStatus.OK:
            base_frames = {f.get("frame"): f for f in b.quality.per_frame}
            for f in c.quality.per_frame:
                bf = base_frames.get(f.get("frame"))
                if bf is not None:
                    for k in ("psnr_y_db", "ssim_y"):
                        if isinstance(f.get(k), float) and isinstance(bf.get(k), float):
                            f[f"d_{k}"] = f[k] - bf[k]
            bl, cl = b.latency_ms, c.latency_ms
            c.deltas = DeltaRecord(
                baseline_cell_id=b.cell_id,
                latency_median_ms=_diff(cl.median if cl else None, bl.median if bl else None),
                latency_mean_ms=_diff(cl.mean if cl else None, bl.mean if bl else None),
                psnr_y_db=_diff(c.quality.psnr_y_db, b.quality.psnr_y_db),
                ssim_y=_diff(c.quality.ssim_y, b.quality.ssim_y),
                mem_peak_mb=_diff(c.telemetry.mem_peak_mb, b.telemetry.mem_peak_mb),
                cpu_load_pct=_diff(c.telemetry.cpu_load_pct, b.telemetry.cpu_load_pct),
            )
        out.append(c)
    return out
