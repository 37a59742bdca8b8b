"""A cell's quality record from its per-frame scores (pure)."""

from __future__ import annotations

import numpy as np

from perflab.store.results import FrameQuality, QualityRecord


def quality_record(per: list[FrameQuality], computed_on: str) -> QualityRecord:
    """The cell's quality: means over its frames (finite values only), the worst frame's PSNR-Y,
    the temporal measure pooled (mean, worst frame) over the frames that have one."""
    if not per:
        return QualityRecord(missing={"psnr_y_db": "no input frames"})

    def mean(values: list[float | None]) -> float | None:
        vals = [v for v in values if v is not None and np.isfinite(v)]
        return float(np.mean(vals)) if vals else None

    missing = {}
    piqe = mean([r.piqe for r in per])
    if piqe is None:
        missing["piqe"] = next((r.missing["piqe"] for r in per if "piqe" in r.missing), "not computed")
    psnrs = [r.psnr_y_db for r in per if r.psnr_y_db is not None]
    temporal = [v for r in per if (v := r.temporal_err_y) is not None and np.isfinite(v)]
    if not temporal:
        missing["temporal_err_y"] = _no_temporal(per)
    return QualityRecord(
        psnr_y_db=mean([r.psnr_y_db for r in per]), ssim_y=mean([r.ssim_y for r in per]),
        psnr_rgb_db=mean([r.psnr_rgb_db for r in per]), piqe=piqe, psnr_y_db_min=min(psnrs) if psnrs else None,
        temporal_err_y=float(np.mean(temporal)) if temporal else None,
        temporal_err_y_max=max(temporal) if temporal else None,
        frames=len(per), per_frame=per, computed_on=computed_on, missing=missing,
    )


def _no_temporal(per: list[FrameQuality]) -> str:
    """Why no frame has a temporal value: the frames' own reason when they share one (e.g. "single
    frames, no sequence" for photographs), else that no two consecutive frames of one sequence were had."""
    reasons = {r.missing.get("temporal_err_y") or "not computed" for r in per}
    if len(reasons) == 1:
        return reasons.pop()
    return "no two consecutive frames of one sequence: " + "; ".join(sorted(reasons))
