"""A cell's quality record from its per-frame scores (pure)."""

from __future__ import annotations

import numpy as np

from perflab.store.results import FrameQuality, QualityRecord


def quality_record(per: list[FrameQuality], computed_on: str) -> QualityRecord:
    """The cell's quality: means over its frames (finite values only), the worst frame's PSNR-Y."""
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
    return QualityRecord(
        psnr_y_db=mean([r.psnr_y_db for r in per]), ssim_y=mean([r.ssim_y for r in per]),
        psnr_rgb_db=mean([r.psnr_rgb_db for r in per]), piqe=piqe, psnr_y_db_min=min(psnrs) if psnrs else None,
        frames=len(per), per_frame=per, computed_on=computed_on, missing=missing,
    )
