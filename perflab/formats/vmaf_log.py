"""libvmaf's JSON log (``libvmaf=log_fmt=json:log_path=…``), parsed (pure: text in, values out).

The log libvmaf 2.x and 3.x write::

    {"version": "86da14d", "fps": 144.53,
     "frames": [{"frameNum": 0, "metrics": {"integer_adm2": …, "vmaf": 82.106664}}, …],
     "pooled_metrics": {"vmaf": {"min": …, "max": …, "mean": …, "harmonic_mean": …}, …},
     "aggregate_metrics": {}}

Only the per-frame ``vmaf`` values, the libvmaf version and libvmaf's own pooled mean and
harmonic mean are read (the pooled values are kept to cross-check perflab's pooling,
perflab.analysis.vmaf). A log that is not this shape is a :class:`VmafLogError` naming the file
and what is wrong; it never returns a partial result silently.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from perflab.errors import MeasurementError


class VmafLogError(MeasurementError):
    """A libvmaf log that could not be read as one."""


@dataclass(frozen=True)
class VmafLog:
    version: str | None  # libvmaf's version string as it writes it (a git hash or "3.0.0")
    scores: tuple[float, ...]  # per frame, in frameNum order
    pooled_mean: float | None  # libvmaf's own pooled values (None where the log has none)
    pooled_harmonic_mean: float | None


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
        raise VmafLogError(f"{where}: expected a finite number, got {value!r:.40}")
    return float(value)


def _load(text: str | bytes, source: str) -> dict[str, object]:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise VmafLogError(f"{source}: not UTF-8 text") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise VmafLogError(f"{source}:{e.lineno}: not valid JSON: {e.msg}") from None
    except RecursionError:
        raise VmafLogError(f"{source}: JSON nested too deeply to be a libvmaf log") from None
    if not isinstance(raw, dict):
        raise VmafLogError(f"{source}: expected a JSON object, got {type(raw).__name__}")
    return raw


def _frame_scores(frames: object, source: str) -> tuple[float, ...]:
    if not isinstance(frames, list) or not frames:
        raise VmafLogError(f"{source}: no 'frames' list (is it a libvmaf JSON log?)")
    by_num: dict[int, float] = {}
    for i, f in enumerate(frames):
        where = f"{source}: frames[{i}]"
        if not isinstance(f, dict) or not isinstance(f.get("metrics"), dict):
            raise VmafLogError(f"{where}: expected an object with 'metrics'")
        num = f.get("frameNum")
        if isinstance(num, bool) or not isinstance(num, int):
            raise VmafLogError(f"{where}: frameNum is {num!r:.40}, not an integer")
        if "vmaf" not in f["metrics"]:
            raise VmafLogError(f"{where}: no 'vmaf' metric (was a VMAF model loaded?)")
        if num in by_num:
            raise VmafLogError(f"{where}: frameNum {num} appears twice")
        by_num[num] = _number(f["metrics"]["vmaf"], f"{where}.metrics.vmaf")
    nums = sorted(by_num)
    if nums != list(range(nums[0], nums[0] + len(nums))):
        raise VmafLogError(f"{source}: frame numbers are not consecutive ({nums[0]}…{nums[-1]}, {len(nums)} frames)")
    return tuple(by_num[n] for n in nums)


def parse_vmaf_log(text: str | bytes, source: str = "vmaf log") -> VmafLog:
    """libvmaf JSON log text → :class:`VmafLog`. Frames are ordered by ``frameNum``; a gap or a
    repeated frame number, a frame without ``vmaf``, no frames, or non-JSON text raise
    :class:`VmafLogError` naming ``source``."""
    raw = _load(text, source)
    scores = _frame_scores(raw.get("frames"), source)
    pooled = raw.get("pooled_metrics")
    vp = pooled.get("vmaf") if isinstance(pooled, dict) else None
    mean = hmean = None
    if isinstance(vp, dict):
        if "mean" in vp:
            mean = _number(vp["mean"], f"{source}: pooled_metrics.vmaf.mean")
        if "harmonic_mean" in vp:
            hmean = _number(vp["harmonic_mean"], f"{source}: pooled_metrics.vmaf.harmonic_mean")
    version = raw.get("version")
    return VmafLog(version=str(version) if isinstance(version, str | int) else None,
                   scores=scores, pooled_mean=mean, pooled_harmonic_mean=hmean)
