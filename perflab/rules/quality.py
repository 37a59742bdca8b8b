"""A cell's quality record from its per-frame scores (pure)."""

from __future__ import annotations

import numpy as np

from perflab.analysis.vmaf import pool_vmaf
from perflab.store.results import FrameQuality, KeptVideoRecord, QualityRecord

NO_REFERENCE = "no reference: an LR-only input has no HR to compare with (no-reference measures only)"
"""Why a frame from an LR-only input (``role: lr``) has no PSNR/SSIM, and a cell whose frames
all are has no mean of them."""
_FULL_REFERENCE = ("psnr_y_db", "ssim_y", "psnr_rgb_db")


def quality_record(per: list[FrameQuality], computed_on: str, downscale: str | None = None) -> QualityRecord:
    """The cell's quality: means over its frames (finite values only), the worst frame's PSNR-Y,
    the temporal measure pooled (mean, worst frame) over the frames that have one (those with an HR
    where there are some, else those of LR-only footage, held against their input).
    Full-reference means are over the frames that have a reference; when none has, they are
    missing with :data:`NO_REFERENCE`."""
    if not per:
        return QualityRecord(missing={"psnr_y_db": "no input frames"}, downscale=downscale)

    def mean(values: list[float | None]) -> float | None:
        vals = [v for v in values if v is not None and np.isfinite(v)]
        return float(np.mean(vals)) if vals else None

    missing = {}
    piqe = mean([r.piqe for r in per])
    if piqe is None:
        missing["piqe"] = next((r.missing["piqe"] for r in per if "piqe" in r.missing), "not computed")
    no_ref = sum(1 for r in per if not r.reference)
    if no_ref == len(per):
        missing.update({k: NO_REFERENCE for k in (*_FULL_REFERENCE, "psnr_y_db_min")})
    psnrs = [r.psnr_y_db for r in per if r.psnr_y_db is not None]
    # held against an HR where some frames have one; footage with no HR at all: against its input
    temporal = [v for r in per if r.reference and (v := r.temporal_err_y) is not None and np.isfinite(v)] or \
        [v for r in per if (v := r.temporal_err_y) is not None and np.isfinite(v)]
    if not temporal:
        missing["temporal_err_y"] = _no_temporal(per)
    return QualityRecord(
        psnr_y_db=mean([r.psnr_y_db for r in per]), ssim_y=mean([r.ssim_y for r in per]),
        psnr_rgb_db=mean([r.psnr_rgb_db for r in per]), piqe=piqe, psnr_y_db_min=min(psnrs) if psnrs else None,
        temporal_err_y=float(np.mean(temporal)) if temporal else None,
        temporal_err_y_max=max(temporal) if temporal else None,
        frames=len(per), per_frame=per, computed_on=computed_on, missing=missing, downscale=downscale,
        no_reference_frames=no_ref,
    )


def _no_temporal(per: list[FrameQuality]) -> str:
    """Why no frame has a temporal value: the frames' own reason when they share one (e.g. "single
    frames, no sequence" for photographs), else that no two consecutive frames of one sequence were had."""
    reasons = {r.missing.get("temporal_err_y") or "not computed" for r in per}
    if len(reasons) == 1:
        return reasons.pop()
    return "no two consecutive frames of one sequence: " + "; ".join(sorted(reasons))


def with_vmaf(q: QualityRecord, scores: dict[str, float], *, model: str | None, why: str | None,
              video: KeptVideoRecord | None) -> QualityRecord:
    """The quality record with each frame's VMAF (by frame name), the pooled figures
    (perflab.analysis.vmaf: mean, harmonic mean, 5th percentile) and the kept video; VMAF is
    missing with ``why`` where it was not computed, and a frame beyond the kept ones says so."""
    kept = video.frames if video is not None else 0
    per = []
    for f in q.per_frame:
        if f.frame in scores:
            per.append(f.model_copy(update={"vmaf": scores[f.frame]}))
        elif not f.reference:  # an LR-only input: VMAF is full-reference too
            per.append(f.model_copy(update={"missing": {**f.missing, "vmaf": NO_REFERENCE}}))
        else:
            reason = why or f"not among the {kept} frame(s) kept as video (outputs.video_frames)"
            per.append(f.model_copy(update={"missing": {**f.missing, "vmaf": reason}}))
    pooled = pool_vmaf([f.vmaf for f in per if f.vmaf is not None])
    missing = dict(q.missing)
    if pooled is None:
        no_ref = bool(per) and not any(f.reference for f in per)
        missing["vmaf"] = NO_REFERENCE if no_ref else (why or "no frame has a VMAF score")
    return q.model_copy(update={
        "per_frame": per, "video": video, "vmaf_model": model if pooled is not None else None,
        "vmaf": pooled.mean if pooled else None, "vmaf_harmonic_mean": pooled.harmonic_mean if pooled else None,
        "vmaf_p5": pooled.p5 if pooled else None, "vmaf_frames": pooled.n if pooled else 0, "missing": missing})


def no_reference_frame(frame: str, piqe: float | None, missing: dict[str, str], lr_from: str, *,
                       temporal_err_y: float | None = None) -> FrameQuality:
    """A frame of an LR-only input: the no-reference measures only — PIQE, and the temporal error
    held against the LR input itself (docs/quality.md "Temporal stability"); the full-reference
    measures missing with :data:`NO_REFERENCE`."""
    return FrameQuality(frame=frame, piqe=piqe, reference=False, lr_from=lr_from, temporal_err_y=temporal_err_y,
                        missing={**dict.fromkeys(_FULL_REFERENCE, NO_REFERENCE), **missing})
