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

The robust path (:func:`solve_robust`, used by the lab's pass): each variant is timed once per
round (a fresh tool run; the rounds interleave the variants in a random order), its time is
the lower quartile of its rounds' values (:data:`ROUND_QUANTILE_PCT`) with an order-statistic
standard error, the costs are a weighted non-negative least squares fit (a cost cannot come
back negative) and each cost's 95% interval is the percentile bootstrap over the rounds (each
variant's rounds resampled, the fit repeated). Why the lower quartile and not the median:
timing noise on a shared host is one-sided (a disturbed round is slower, never faster), and
on the 2-core CI host a quarter to a third of the rounds of a variant came back 20–60% slow;
the median then sits on the edge of the disturbed rounds and the bootstrap of a median of
6–12 rounds lands on them often enough to widen a 7 ms layer's interval to ±5 ms. The lower
quartile stays on undisturbed rounds until three quarters are disturbed, and unlike the
minimum it is an interior statistic, so its bootstrap interval means what it says (the
minimum's kept shrinking as rounds were added, outside its own earlier interval).
:func:`wide_layers` is the stopping rule: rounds go on until no layer's interval is wider
than :data:`CI_TARGET_PCT` of its cost (or :data:`CI_FLOOR_PCT` of the whole model, whichever
is larger), or the budget ends. :func:`unresolved_layers` says, per layer, why its cost is not
a number (its interval still wider than twice that when the rounds stopped): that row is
shown with its interval, greyed, and left out of every comparison, while the layers that were
resolved stay numbers. :func:`unreliable_reason` says why no row of the solution may be
trusted, with the figures: a failed sum check, or not one layer resolved.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from perflab.errors import MeasurementError

SUM_TOLERANCE_PCT = 10.0  # issue 10: the layers' sum within 10% of the whole model
MIN_SE_MS = 1e-6  # a variant whose samples were identical still weighs finitely
#: the stopping rule's target: a layer's 95% interval half-width at most this % of its cost …
CI_TARGET_PCT = 5.0
#: … or at most this % of the whole model's time, whichever is larger (tiny layers)
CI_FLOOR_PCT = 1.0
#: a cost whose 95% interval is wider than this % of it (and than UNRELIABLE_FLOOR_PCT of the
#: whole model) is not a number: the pass is unreliable (twice the stopping rule's bounds)
UNRELIABLE_CI_PCT = 10.0
UNRELIABLE_FLOOR_PCT = 2.0
#: rounds before the intervals are judged (a bootstrap over fewer says little)
MIN_ROUNDS_FOR_CI = 3
#: a variant's time is this quantile of its rounds' values (the lower quartile: see the module doc)
ROUND_QUANTILE_PCT = 25.0
BOOTSTRAP_N = 400
#: a variant's standard error is at least this fraction of its time (one variant whose rounds
#: happened to agree must not outweigh all the others)
MIN_REL_SE = 0.002


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
    # the robust path only: per layer its 95% bootstrap interval (ms), and how many resamples
    intervals_ms: tuple[tuple[float, float], ...] = ()
    n_boot: int = 0


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


@dataclass(frozen=True)
class VariantRounds:
    """One variant's value per round (ms): a robust statistic of that round's tool run."""

    name: str
    counts: tuple[int, ...]
    values_ms: tuple[float, ...]


def robust_timing(v: VariantRounds, quantile_pct: float = ROUND_QUANTILE_PCT) -> VariantTiming:
    """The rounds' ``quantile_pct`` quantile (the lower quartile) with the order-statistic
    standard error of :func:`variant_timing`, at least :data:`MIN_REL_SE` of the value (one
    variant whose rounds happened to agree must not outweigh the others); a single round gets
    5% of its value (nothing to say how much it varies)."""
    x = [t for t in v.values_ms if math.isfinite(t)]
    if not x:
        raise MeasurementError(f"variant {v.name}: no rounds")
    t = variant_timing(v.name, v.counts, x, quantile_pct=quantile_pct)
    se = abs(t.time_ms) * 0.05 if len(x) == 1 else t.se_ms
    se = max(se, abs(t.time_ms) * MIN_REL_SE, MIN_SE_MS)
    return VariantTiming(name=v.name, counts=tuple(v.counts), time_ms=t.time_ms, se_ms=se, n=len(x))


def _nnls(a: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    from scipy.optimize import nnls

    sw = np.sqrt(w)
    x, _ = nnls(a * sw[:, None], y * sw)
    return np.asarray(x, dtype=np.float64)


def solve_robust(variants: Sequence[VariantRounds], names: Sequence[str], *, n_boot: int = BOOTSTRAP_N,
                 seed: int = 0) -> DifferentialSolution:
    """Per-unit costs by weighted non-negative least squares over the variants' lower quartiles
    (:func:`robust_timing`), with 95% percentile-bootstrap intervals (each variant's rounds
    resampled with replacement, the quartiles and the fit redone ``n_boot`` times; the weights
    stay the point fit's). ``se_ms`` of a cost is the bootstrap's standard deviation.
    MeasurementError when a unit is not identified."""
    p = len(names)
    if not variants:
        raise MeasurementError("no variant timings to solve")
    timings = [robust_timing(v) for v in variants]
    a = np.asarray([t.counts for t in timings], dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != p:
        raise MeasurementError(f"variant counts have {a.shape[1] if a.ndim == 2 else 0} columns for {p} layers")
    if np.linalg.matrix_rank(a) < p:
        raise MeasurementError(f"the {len(timings)} variants do not identify all {p} layers (rank "
                               f"{np.linalg.matrix_rank(a)})")
    y = np.asarray([t.time_ms for t in timings], dtype=np.float64)
    w = 1.0 / np.asarray([t.se_ms for t in timings], dtype=np.float64) ** 2
    x = _nnls(a, y, w)
    resid = y - a @ x
    chi2 = float(np.sum(w * resid**2))
    dof = len(timings) - p
    rng = np.random.default_rng(seed)
    vals = [np.asarray([t for t in v.values_ms if math.isfinite(t)], dtype=np.float64) for v in variants]
    boots = np.empty((max(n_boot, 0), p), dtype=np.float64)
    for b in range(boots.shape[0]):
        yb = np.asarray([float(np.percentile(rng.choice(vv, size=vv.size, replace=True), ROUND_QUANTILE_PCT))
                         for vv in vals])
        boots[b] = _nnls(a, yb, w)
    if boots.shape[0] >= 2:
        lo, hi = np.percentile(boots, 2.5, axis=0), np.percentile(boots, 97.5, axis=0)
        se = np.std(boots, axis=0, ddof=1)
        sums = boots.sum(axis=1)
        sum_se = float(np.std(sums, ddof=1))
    else:
        lo, hi, se, sum_se = x.copy(), x.copy(), np.zeros(p), 0.0
    layers = tuple(LayerCost(index=i, name=str(n), cost_ms=float(x[i]), se_ms=float(se[i]))
                   for i, n in enumerate(names))
    return DifferentialSolution(layers=layers, sum_ms=float(x.sum()), sum_se_ms=sum_se, chi2=chi2, dof=dof,
                                birge=1.0, residuals_ms=tuple(float(r) for r in resid),
                                intervals_ms=tuple((float(lo[i]), float(hi[i])) for i in range(p)),
                                n_boot=int(boots.shape[0]))


def wide_layers(sol: DifferentialSolution, whole_ms: float, *, target_pct: float = CI_TARGET_PCT,
                floor_pct: float = CI_FLOOR_PCT) -> list[str]:
    """The stopping rule: the layers whose 95% interval is still too wide (half-width above
    ``target_pct`` of the cost and above ``floor_pct`` of the whole model); empty: stop.
    Without intervals every layer is too wide."""
    if not sol.intervals_ms:
        return [c.name for c in sol.layers]
    out = []
    for c, (lo, hi) in zip(sol.layers, sol.intervals_ms, strict=True):
        allowed = max(target_pct / 100.0 * c.cost_ms, floor_pct / 100.0 * whole_ms)
        if (hi - lo) / 2.0 > allowed:
            out.append(c.name)
    return out


def _wide(c: LayerCost, lo: float, hi: float, whole_ms: float, limit_pct: float, floor_pct: float) -> str | None:
    """The layer's figures (``"c2 8.90 ms, 95% 8.04–9.93 ms (±10.6%)"``) when its interval's
    half-width is above ``limit_pct`` of its cost and above ``floor_pct`` of the whole model."""
    half = (hi - lo) / 2.0
    if half > limit_pct / 100.0 * c.cost_ms and half > floor_pct / 100.0 * whole_ms:
        rel = f"±{100.0 * half / c.cost_ms:.1f}%" if c.cost_ms > 0 else f"±{half:.2f} ms"
        return f"{c.name} {c.cost_ms:.2f} ms, 95% {lo:.2f}–{hi:.2f} ms ({rel})"
    return None


def too_wide(sol: DifferentialSolution, whole_ms: float, *, limit_pct: float = UNRELIABLE_CI_PCT,
             floor_pct: float = UNRELIABLE_FLOOR_PCT) -> list[str]:
    """The layers whose 95% interval is too wide for their cost to be a number at all: half-width
    above ``limit_pct`` of the cost and above ``floor_pct`` of the whole model, each with its
    figures (``"c2 8.90 ms, 95% 8.04–9.93 ms (±10.6%)"``). Empty without intervals (nothing to
    judge: the point fit alone)."""
    out = (_wide(c, lo, hi, whole_ms, limit_pct, floor_pct)
           for c, (lo, hi) in zip(sol.layers, sol.intervals_ms, strict=False))
    return [w for w in out if w is not None]


def unresolved_layers(sol: DifferentialSolution, whole_ms: float, *, limit_pct: float = UNRELIABLE_CI_PCT,
                      floor_pct: float = UNRELIABLE_FLOOR_PCT) -> dict[str, str]:
    """Per layer whose cost is not a number, why (:func:`too_wide`'s figures and the rule):
    its 95% interval is wider than ±``limit_pct`` of its cost and ±``floor_pct`` of the whole
    model. The other layers stay numbers (one unresolved 1 ms tail must not unmake a
    resolved 24 ms convolution)."""
    out: dict[str, str] = {}
    for c, (lo, hi) in zip(sol.layers, sol.intervals_ms, strict=False):
        wide = _wide(c, lo, hi, whole_ms, limit_pct, floor_pct)
        if wide is not None:
            out[c.name] = (f"not resolved: {wide} (a cost is a number when its 95% interval is within "
                           f"±{limit_pct:g}% of it or ±{floor_pct:g}% of the whole model, {whole_ms:.2f} ms)")
    return out


def unreliable_reason(check: SumCheck, sol: DifferentialSolution | None = None) -> str | None:
    """Why no row of the solution may be trusted, with the figures; None when its resolved rows
    may be. A failed sum check (the variants do not add up to the model: every row is suspect);
    or, given the solution, not one layer resolved (:func:`unresolved_layers`: every interval
    wider than ±:data:`UNRELIABLE_CI_PCT` of its cost and ±:data:`UNRELIABLE_FLOOR_PCT` of the
    whole model — on a busy host two adjacent layers traded 1.4–2.3 ms of a 5 ms delay that
    way). A solution with some layers resolved is not unreliable: its unresolved rows are marked
    one by one."""
    why = []
    if not check.ok:
        why.append(f"sum check failed: the layers sum to {check.layers_sum_ms:.3f} ms, the whole model took "
                   f"{check.whole_model_ms:.3f} ms ({check.diff_pct:+.1f}%, tolerance ±{check.tolerance_pct:g}%)")
    if sol is not None and sol.intervals_ms:
        wide = too_wide(sol, check.whole_model_ms)
        if len(wide) == len(sol.layers):
            why.append(f"no layer resolved: {'; '.join(wide)} (a cost is a number when its 95% interval is within "
                       f"±{UNRELIABLE_CI_PCT:g}% of it or ±{UNRELIABLE_FLOOR_PCT:g}% of the whole model, "
                       f"{check.whole_model_ms:.2f} ms)")
    return "; ".join(why) if why else None


def sum_check(sol: DifferentialSolution, whole_model_ms: float,
              tolerance_pct: float = SUM_TOLERANCE_PCT) -> SumCheck:
    if whole_model_ms <= 0:
        raise MeasurementError(f"whole-model time must be positive, got {whole_model_ms}")
    diff = (sol.sum_ms - whole_model_ms) / whole_model_ms * 100.0
    return SumCheck(layers_sum_ms=sol.sum_ms, layers_sum_se_ms=sol.sum_se_ms, whole_model_ms=whole_model_ms,
                    diff_pct=diff, tolerance_pct=tolerance_pct, ok=abs(diff) <= tolerance_pct)
