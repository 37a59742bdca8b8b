"""Apply analysis' rules to a run's cell records once, at the end of a run (or a resume):
deltas versus the baseline (cell and per frame), the real-time verdict with its rule, and the
MAI 2021 score. The report renders what this stores; it computes none of it.
"""

from __future__ import annotations

from collections.abc import Sequence

from perflab.analysis.derive import (
    PairKey,
    diff,
    frame_deltas,
    mai2021_score,
    pair_baselines,
    ratio,
    realtime_verdict,
)
from perflab.store.results import (
    CellRecord,
    CellStatus,
    DeltaRecord,
    IdleDeltaRecord,
    IdleRecord,
    QualityRecord,
    RealtimeRecord,
)


def _realtime(c: CellRecord, fps: float | None) -> RealtimeRecord | None:
    lat = c.latency_ms
    if c.status != CellStatus.OK or lat is None or not fps:
        return None
    v = realtime_verdict(fps, lat.p90, lat.mean, lat.missing.get("p90"))
    return RealtimeRecord(meets=v.meets, statistic=v.statistic, value_ms=v.value_ms, budget_ms=v.budget_ms,
                          rule=v.rule, missing=v.missing)


def _quality(c: CellRecord, b: CellRecord | None) -> QualityRecord:
    q = c.quality
    update: dict[str, object] = {}
    lat = c.latency_ms
    runtime = None if lat is None else (lat.median if lat.median is not None else lat.mean)
    missing = dict(q.missing)
    if c.status == CellStatus.OK and q.psnr_y_db is not None and runtime is not None and runtime > 0:
        update["mai2021_score"] = mai2021_score(q.psnr_y_db, runtime)
    elif c.status == CellStatus.OK:
        missing.setdefault("mai2021_score", "needs PSNR-Y and a latency")
    if b is not None and c.status == CellStatus.OK and b.status == CellStatus.OK and q.per_frame:
        d = frame_deltas({f.frame: (f.psnr_y_db, f.ssim_y) for f in q.per_frame},
                         {f.frame: (f.psnr_y_db, f.ssim_y) for f in b.quality.per_frame})
        bt = {f.frame: f.temporal_err_y for f in b.quality.per_frame}
        bv = {f.frame: f.vmaf for f in b.quality.per_frame}
        update["per_frame"] = [
            f.model_copy(update={"d_psnr_y_db": d[f.frame][0], "d_ssim_y": d[f.frame][1],
                                 "d_temporal_err_y": diff(f.temporal_err_y, bt.get(f.frame)),
                                 "d_vmaf": diff(f.vmaf, bv.get(f.frame))}) if f.frame in d else f
            for f in q.per_frame
        ]
    update["missing"] = missing
    return q.model_copy(update=update)


def _deltas(c: CellRecord, b: CellRecord, quality: QualityRecord, b_quality: QualityRecord) -> DeltaRecord:
    if c.status != CellStatus.OK or b.status != CellStatus.OK:
        why = f"baseline {b.cell_id} is {b.status.value}" if b.status != CellStatus.OK else f"this cell is {c.status.value}"
        return DeltaRecord(baseline_cell_id=b.cell_id, missing={"all": why})
    bl, cl = b.latency_ms, c.latency_ms
    values: dict[str, float | None] = {
        "latency_median_ms": diff(cl.median if cl else None, bl.median if bl else None),
        "latency_mean_ms": diff(cl.mean if cl else None, bl.mean if bl else None),
        "psnr_y_db": diff(c.quality.psnr_y_db, b.quality.psnr_y_db),
        "ssim_y": diff(c.quality.ssim_y, b.quality.ssim_y),
        "piqe": diff(c.quality.piqe, b.quality.piqe),
        "temporal_err_y": diff(c.quality.temporal_err_y, b.quality.temporal_err_y),
        "vmaf": diff(c.quality.vmaf, b.quality.vmaf),
        "mai2021_ratio": ratio(quality.mai2021_score, b_quality.mai2021_score),
        "mem_peak_mb": diff(c.telemetry.mem_peak_mb, b.telemetry.mem_peak_mb),
        "cpu_load_pct": diff(c.telemetry.cpu_load_pct, b.telemetry.cpu_load_pct),
        **{k: diff(getattr(c.telemetry, k), getattr(b.telemetry, k)) for k in _COST_KEYS},
    }
    ct, bt = c.telemetry, b.telemetry
    mixed: dict[str, str] = {}
    if ct.power_source and bt.power_source and ct.power_source != bt.power_source:
        # a meter figure minus a battery-counter figure is not a difference of the workloads
        why = f"measured by different sources: {ct.power_source} here, {bt.power_source} on {b.cell_id}"
        mixed = {k: why for k in _POWER_KEYS}
        values.update(dict.fromkeys(_POWER_KEYS))
    missing = {k: mixed.get(k) or _reason(ct.missing, k) or _reason(bt.missing, k) or c.quality.missing.get(k)
               or "not measured on this cell or on its baseline" for k, v in values.items() if v is None}
    return DeltaRecord.model_validate({"baseline_cell_id": b.cell_id, **values, "missing": missing})


_COST_KEYS = ("device_cpu_busy_pct", "gpu_busy_pct", "temp_max_c", "skin_max_c", "current_ma", "power_mw",
              "mj_per_frame", "mah_per_hour")
_IDLE_KEYS = ("device_cpu_busy_pct", "gpu_busy_pct", "current_ma", "power_mw")
_POWER_KEYS = ("current_ma", "power_mw", "mj_per_frame", "mah_per_hour")
#: where the telemetry files the reason a delta's value is missing when not under its own key
_REASON_KEYS = {"temp_max_c": ("temp_c",), "skin_max_c": ("skin_c",), "power_mw": ("current_ma", "power_source"),
                "mj_per_frame": ("power_mw", "current_ma"), "mah_per_hour": ("current_ma",)}


def _reason(missing: dict[str, str], key: str) -> str | None:
    for k in (key, *_REASON_KEYS.get(key, ())):
        if k in missing:
            return missing[k]
    return None


def _vs_idle(c: CellRecord, idle: IdleRecord | None) -> IdleDeltaRecord | None:
    if idle is None or c.status != CellStatus.OK:
        return None
    values = {k: diff(getattr(c.telemetry, k), getattr(idle, k)) for k in _IDLE_KEYS}
    missing = {k: c.telemetry.missing.get(k) or idle.missing.get(k) or "not measured" for k, v in values.items()
               if v is None}
    return IdleDeltaRecord(**values, missing=missing)


def finalize_cells(cells: list[CellRecord], fps: float | None, idle: Sequence[IdleRecord] = ()) -> list[CellRecord]:
    """New records with ``deltas``, ``vs_idle``, ``realtime``, per-frame deltas and the MAI
    score filled in."""
    idle_by = {r.serial: r for r in idle}
    pairs = pair_baselines([PairKey(c.device.serial, c.delegate, c.baseline) for c in cells])
    out: list[CellRecord] = []
    for i, c in enumerate(cells):
        b = cells[pairs[i]] if i in pairs else None
        quality = _quality(c, b)
        deltas = None
        if b is not None:
            deltas = _deltas(c, b, quality, _quality(b, None))
        out.append(c.model_copy(update={
            "realtime": _realtime(c, fps),
            "quality": quality,
            "deltas": deltas,
            "vs_idle": _vs_idle(c, idle_by.get(c.device.serial)),
        }))
    return out
