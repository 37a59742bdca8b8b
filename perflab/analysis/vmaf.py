"""Pooling per-frame VMAF scores into one figure per cell (pure).

Three poolings, because they answer different questions (docs/quality.md):

* ``mean`` — the arithmetic mean, what libvmaf prints as "VMAF score";
* ``harmonic_mean`` — libvmaf's harmonic mean, ``n / Σ 1/(sᵢ + 1) − 1``, which a few bad
  frames pull down more than the mean;
* ``p5`` — the 5th percentile (numpy's linear interpolation between order statistics): the
  level the worst 5 % of frames fall below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VmafPool:
    n: int
    mean: float
    harmonic_mean: float
    p5: float
    min: float


def pool_vmaf(scores: Sequence[float]) -> VmafPool | None:
    """The pooled figures of finite per-frame VMAF scores; None when there are none."""
    vals = np.asarray([s for s in scores if math.isfinite(s)], dtype=np.float64)
    if vals.size == 0:
        return None
    hmean = float(vals.size / np.sum(1.0 / (vals + 1.0)) - 1.0)
    return VmafPool(n=int(vals.size), mean=float(np.mean(vals)), harmonic_mean=hmean,
                    p5=float(np.percentile(vals, 5.0)), min=float(np.min(vals)))
