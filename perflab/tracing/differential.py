"""Differential (virtual-layer) profiling: per-layer costs from timed model variants (pure).

Each variant v runs unit i ``counts[v][i]`` times (perflab.zoo.variants: prefixes of the
model, and the model with a copy of a unit inserted). Its measured time is modelled as
``t_v = Σ_i counts[v][i] · c_i + ε_v`` with ε_v of standard error ``se_v`` (from the
variant's own samples). :func:`solve_layers` finds the costs ``c`` by weighted least squares
(weights 1/se²) and their covariance ``(AᵀWA)⁻¹``; when the system is over-determined
(duplicate variants) and the weighted residuals are larger than the standard errors explain
(χ²/dof > 1: drift between variants, noise the per-variant errors did not see), the
covariance is scaled by χ²/dof (Birge ratio), so uncertainties are never smaller than the
scatter shows.

:func:`sum_check` compares the layers' sum with an independently timed whole model (the
shipped file, timed interleaved with the variants but left out of the fit). The rank agreement
between methods (``spearman``) lives in perflab.analysis.stats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from perflab.errors import MeasurementError

SUM_TOLERANCE_PCT = 10.0  # issue 10: the layers' sum within 10% of the whole model
MIN_SE_MS = 1e-6  # a variant whose samples were identical still weighs finitely


@dataclass(frozen=True)
class VariantTiming:
    """One variant's measured time: a robust centre and its standard error (ms)."""

    name: str
    counts: tuple[int, ...]
    time_ms: float
    se_ms: float
    n: int


@dataclass(frozen=True)
class LayerCost:
    index: int
    name: str
    cost_ms: float
    se_ms: float  # 1σ standard error of cost_ms


@dataclass(frozen=True)
class DifferentialSolution:
    layers: tuple[LayerCost, ...]
    sum_ms: float
    sum_se_ms: float
    chi2: float
    dof: int
    birge: float  # the factor the covariance was scaled by (≥ 1)
    residuals_ms: tuple[float, ...]  # measured − fitted, per variant, in input order


@dataclass(frozen=True)
class SumCheck:
    layers_sum_ms: float
    layers_sum_se_ms: float
    whole_model_ms: float
    diff_pct: float  # (sum − whole) / whole × 100
    tolerance_pct: float
    ok: bool


def variant_timing(name: str, counts: Sequence[int], samples_ms: Sequence[float],
                   quantile_pct: float = 50.0) -> VariantTiming:
    """A variant's time: the median of its samples (or another quantile) and its standard error
    (median: 1.2533·σ/√n, σ from the MAD; other quantiles: half the spread of the order
    statistics one binomial standard deviation either side)."""
    x = np.asarray([s for s in samples_ms if math.isfinite(s)], dtype=np.float64)
    if x.size == 0:
        raise MeasurementError(f"variant {name}: no samples")
    if quantile_pct != 50.0 and x.size > 1:
        xs = np.sort(x)
        q = quantile_pct / 100.0
        value = float(np.percentile(xs, quantile_pct))
        half = math.sqrt(x.size * q * (1.0 - q))
        lo = xs[max(0, math.floor(q * x.size - half))]
        hi = xs[min(x.size - 1, math.ceil(q * x.size + half))]
        return VariantTiming(name=name, counts=tuple(int(c) for c in counts), time_ms=value,
                             se_ms=float(hi - lo) / 2.0, n=int(x.size))
    med = float(np.median(x))
    sigma = 1.4826 * float(np.median(np.abs(x - med))) if x.size > 1 else 0.0
    if sigma == 0.0 and x.size > 1:
        sigma = float(np.std(x, ddof=1))
    se = 1.2533 * sigma / math.sqrt(x.size) if x.size > 1 else abs(med) * 0.05
    return VariantTiming(name=name, counts=tuple(int(c) for c in counts), time_ms=med, se_ms=se, n=int(x.size))


def solve_layers(timings: Sequence[VariantTiming], names: Sequence[str]) -> DifferentialSolution:
    """Weighted least squares for per-unit costs; MeasurementError when a unit is not identified
    (the variants do not separate it from the others)."""
    p = len(names)
    if not timings:
        raise MeasurementError("no variant timings to solve")
    a = np.asarray([t.counts for t in timings], dtype=np.float64)
    if a.shape[1] != p:
        raise MeasurementError(f"variant counts have {a.shape[1]} columns for {p} layers")
    y = np.asarray([t.time_ms for t in timings], dtype=np.float64)
    se = np.maximum(np.asarray([t.se_ms for t in timings], dtype=np.float64), MIN_SE_MS)
    w = 1.0 / se**2
    if np.linalg.matrix_rank(a) < p:
        raise MeasurementError(f"the {len(timings)} variants do not identify all {p} layers (rank "
                               f"{np.linalg.matrix_rank(a)})")
    ata = a.T @ (a * w[:, None])
    cov = np.linalg.inv(ata)
    x = cov @ (a.T @ (w * y))
    resid = y - a @ x
    chi2 = float(np.sum(w * resid**2))
    dof = len(timings) - p
    birge = max(1.0, math.sqrt(chi2 / dof)) if dof > 0 else 1.0
    cov = cov * birge**2
    ones = np.ones(p)
    layers = tuple(LayerCost(index=i, name=str(n), cost_ms=float(x[i]), se_ms=float(math.sqrt(max(cov[i, i], 0.0))))
                   for i, n in enumerate(names))
    return DifferentialSolution(layers=layers, sum_ms=float(x.sum()),
                                sum_se_ms=float(math.sqrt(max(float(ones @ cov @ ones), 0.0))), chi2=chi2,
                                dof=dof, birge=birge, residuals_ms=tuple(float(r) for r in resid))


def sum_check(sol: DifferentialSolution, whole_model_ms: float,
              tolerance_pct: float = SUM_TOLERANCE_PCT) -> SumCheck:
    if whole_model_ms <= 0:
        raise MeasurementError(f"whole-model time must be positive, got {whole_model_ms}")
    diff = (sol.sum_ms - whole_model_ms) / whole_model_ms * 100.0
    return SumCheck(layers_sum_ms=sol.sum_ms, layers_sum_se_ms=sol.sum_se_ms, whole_model_ms=whole_model_ms,
                    diff_pct=diff, tolerance_pct=tolerance_pct, ok=abs(diff) <= tolerance_pct)
