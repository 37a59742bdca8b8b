"""Step changes over a nightly history, and cells whose status flips. Pure functions.

Change points: binary segmentation (as asv's step detection does, in its simplest form). A
history x₀…xₙ₋₁ (one value per night, e.g. a cell's median latency) is split where the sum of
squared deviations from the two segments' means is smallest; the split is kept when

1. the cost falls by more than a BIC-like penalty ``2·σ²·ln n`` — σ is estimated robustly from
   the night-to-night differences (1.4826·MAD(Δx)/√2), so a single noisy night does not
   count as a step and slow drift does not inflate σ; and
2. Welch's t-test between the two segments gives p < ``alpha``;

each side is then split again the same way. Every segment holds at least ``min_size`` nights.

Flaky cells: a cell whose status goes ok → not ok → ok (or the reverse) across the history;
``flips`` counts the changes between ``ok`` and anything else from night to night.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from scipy import stats as sps

MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True)
class ChangePoint:
    index: int  # the first night of the new level
    before: float  # mean of the segment before
    after: float  # mean of the segment after
    change_pct: float | None  # (after / before − 1) × 100
    p_value: float


def noise_sigma(values: Sequence[float]) -> float:
    """Robust σ of night-to-night noise: 1.4826·MAD of the first differences / √2."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 3:
        return float(np.std(x)) if x.size else 0.0
    d = np.diff(x)
    return float(MAD_TO_SIGMA * np.median(np.abs(d - np.median(d))) / math.sqrt(2))


def _sse(x: np.ndarray) -> float:
    return float(((x - x.mean()) ** 2).sum()) if x.size else 0.0


def _best_split(x: np.ndarray, min_size: int) -> tuple[int, float] | None:
    n = x.size
    if n < 2 * min_size:
        return None
    c1 = np.cumsum(x)
    c2 = np.cumsum(x * x)
    best: tuple[int, float] | None = None
    for k in range(min_size, n - min_size + 1):
        left = c2[k - 1] - c1[k - 1] ** 2 / k
        rs, rs2, m = c1[-1] - c1[k - 1], c2[-1] - c2[k - 1], n - k
        right = rs2 - rs * rs / m
        cost = float(left + right)
        if best is None or cost < best[1]:
            best = (k, cost)
    return best


def detect_change_points(values: Sequence[float], *, min_size: int = 3, alpha: float = 0.01,
                         sigma: float | None = None) -> list[ChangePoint]:
    """Step changes in a history (see the module text) → change points in index order."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2 * min_size or not np.all(np.isfinite(x)):
        return []
    s = noise_sigma(values) if sigma is None else sigma
    scale = float(np.max(np.abs(x))) or 1.0
    s = max(s, 1e-9 * scale)
    penalty = 2 * s * s * math.log(x.size)
    found: list[int] = []

    def split(lo: int, hi: int) -> None:
        seg = x[lo:hi]
        best = _best_split(seg, min_size)
        if best is None:
            return
        k, cost = best
        gain = _sse(seg) - cost
        if gain <= penalty:
            return
        left, right = seg[:k], seg[k:]
        if np.ptp(left) == 0 and np.ptp(right) == 0:
            p = 0.0 if left[0] != right[0] else 1.0
        else:
            p = float(sps.ttest_ind(left, right, equal_var=False).pvalue)
        if not p < alpha:
            return
        found.append(lo + k)
        split(lo, lo + k)
        split(lo + k, hi)

    split(0, int(x.size))
    bounds = [0, *sorted(found), int(x.size)]
    out: list[ChangePoint] = []
    for i in range(1, len(bounds) - 1):
        left, right = x[bounds[i - 1]:bounds[i]], x[bounds[i]:bounds[i + 1]]
        if np.ptp(left) == 0 and np.ptp(right) == 0:
            p = 0.0 if left[0] != right[0] else 1.0
        else:
            p = float(sps.ttest_ind(left, right, equal_var=False).pvalue)
        before, after = float(left.mean()), float(right.mean())
        out.append(ChangePoint(bounds[i], before, after, (after / before - 1) * 100 if before != 0 else None, p))
    return out


K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class FlakyCell(Generic[K]):
    key: K
    nights: int
    flips: int  # changes between ok and not ok from one night to the next
    not_ok: int  # nights whose status was not ok
    statuses: tuple[str, ...]


def status_flips(statuses: Sequence[str]) -> int:
    ok = [s == "ok" for s in statuses]
    return sum(1 for a, b in itertools.pairwise(ok) if a != b)


def flaky_cells(history: Mapping[K, Sequence[str]], *, min_flips: int = 2) -> list[FlakyCell[K]]:
    """Cells (key → statuses in night order) that flipped between ok and not ok at least
    ``min_flips`` times; most flips first. A cell that broke once and stayed broken (1 flip) is
    a regression, not a flaky cell."""
    out = [FlakyCell(k, len(s), status_flips(s), sum(1 for v in s if v != "ok"), tuple(s))
           for k, s in history.items()]
    return sorted((f for f in out if f.flips >= min_flips), key=lambda f: (-f.flips, str(f.key)))
