"""Latency statistics and stability checks. Pure functions.

Median ± MAD beside mean ± std (pyperf); outliers by modified z-score (hyperfine:
|0.6745·(x − median)/MAD| > 3.5); instability reported with the numbers and a fix.
Raw per-iteration samples get every check (`stability_warnings`); a series known only from a
tool's summary (benchmark_model on a phone: count/mean/std/min/max) gets the checks those
numbers allow (`summary_stability_warnings`: CV from std/mean against the same threshold), and
says that it came from the summary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

MAD_TO_SIGMA = 1.4826  # scales the MAD to σ for normally distributed samples


@dataclass(frozen=True)
class SeriesStats:
    n: int
    median_ms: float
    mean_ms: float
    p10_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    std_ms: float  # sample standard deviation (ddof=1; 0 for n=1)
    mad_ms: float  # raw median absolute deviation (not scaled)
    cv_pct: float  # std / mean × 100


def percentile_ms(samples: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (numpy's default, 'linear')."""
    return float(np.percentile(np.asarray(samples, dtype=np.float64), pct))


def summarize(samples_ms: Sequence[float]) -> SeriesStats:
    if len(samples_ms) == 0:
        raise ValueError("no samples")
    a = np.asarray(samples_ms, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError("samples contain non-finite values")
    med = float(np.median(a))
    mean = float(a.mean())
    std = float(a.std(ddof=1)) if a.size > 1 else 0.0
    return SeriesStats(
        n=int(a.size),
        median_ms=med,
        mean_ms=mean,
        p10_ms=float(np.percentile(a, 10)),
        p90_ms=float(np.percentile(a, 90)),
        p95_ms=float(np.percentile(a, 95)),
        p99_ms=float(np.percentile(a, 99)),
        min_ms=float(a.min()),
        max_ms=float(a.max()),
        std_ms=std,
        mad_ms=float(np.median(np.abs(a - med))),
        cv_pct=(std / mean * 100.0) if mean > 0 else math.nan,
    )


def outlier_mask(samples_ms: Sequence[float], threshold: float = 3.5) -> np.ndarray:
    """Modified z-score outliers (Iglewicz & Hoaglin); all False when MAD is 0."""
    a = np.asarray(samples_ms, dtype=np.float64)
    med = np.median(a)
    mad = np.median(np.abs(a - med))
    if mad == 0:
        return np.zeros(a.shape, dtype=bool)
    return np.asarray(np.abs(0.6745 * (a - med) / mad) > threshold)


@dataclass(frozen=True)
class StabilityWarning:
    code: str  # high_cv / drift / bimodal / outliers / too_few
    message: str


@dataclass(frozen=True)
class StabilityThresholds:
    max_cv_pct: float = 10.0
    max_drift_pct: float = 10.0
    min_samples: int = 10
    max_outlier_pct: float = 10.0


def drift_pct(samples_ms: Sequence[float]) -> float:
    """Median of the second half relative to the first half, in percent (0 = no drift)."""
    a = np.asarray(samples_ms, dtype=np.float64)
    half = a.size // 2
    if half < 2:
        return 0.0
    first, second = float(np.median(a[:half])), float(np.median(a[half:]))
    return (second - first) / first * 100.0 if first > 0 else 0.0


def drift_message(samples_ms: Sequence[float], d_pct: float) -> str:
    """Say which way the series drifted, by how much, the likely cause for that direction, and a fix.

    Getting slower over a run is the thermal/DVFS signature; getting faster is not throttling but
    a device still warming up (clocks ramping, caches and allocators settling) or load that left.
    """
    a = np.asarray(samples_ms, dtype=np.float64)
    half = a.size // 2
    first, second = float(np.median(a[:half])), float(np.median(a[half:]))
    numbers = (f"the second half's median is {second:.2f} ms against {first:.2f} ms in the first "
               f"({abs(d_pct):.1f}% {'slower' if d_pct > 0 else 'faster'}, threshold "
               "stability.max_drift_pct)")
    if d_pct > 0:
        return (f"drifting slower: {numbers}. Slowing down over a run is the signature of thermal "
                "throttling or frequency scaling; start cooler (cooldown.max_start_temp_c), pin "
                "governors, or report burst and sustained separately.")
    return (f"drifting faster: {numbers}. Speeding up is not throttling: the device was still "
            "warming up (clocks ramping up, caches and allocators settling) or other load stopped; "
            "raise runs.warmup so the timed runs start warm, and check for background load.")


def bimodality_gap(samples_ms: Sequence[float]) -> tuple[float, float, float] | None:
    """Look for two well-separated clusters: a gap in the sorted samples wider than 4 robust σ
    of both sides, each side holding at least 15% of the samples. Returns (low_median, high_median,
    high_fraction) or None.
    """
    a = np.sort(np.asarray(samples_ms, dtype=np.float64))
    n = a.size
    if n < 12:
        return None
    lo_min = max(2, math.ceil(0.15 * n))
    best: tuple[float, float, float] | None = None
    best_score = 0.0
    for k in range(lo_min, n - lo_min + 1):
        low, high = a[:k], a[k:]
        gap = high[0] - low[-1]
        spread = max(
            MAD_TO_SIGMA * float(np.median(np.abs(low - np.median(low)))),
            MAD_TO_SIGMA * float(np.median(np.abs(high - np.median(high)))),
            1e-9 * float(a[-1]),
        )
        score = gap / spread
        if score > 4.0 and score > best_score and gap > 0.05 * float(np.median(low)):
            best_score = score
            best = (float(np.median(low)), float(np.median(high)), (n - k) / n)
    return best


def stability_warnings(
    samples_ms: Sequence[float], thresholds: StabilityThresholds = StabilityThresholds()
) -> list[StabilityWarning]:
    """Warnings that give the numbers and a suggested fix (pyperf / hyperfine style)."""
    out: list[StabilityWarning] = []
    n = len(samples_ms)
    if n < thresholds.min_samples:
        out.append(StabilityWarning(
            "too_few", f"only {n} samples; statistics are rough. Raise runs.iterations to ≥ {thresholds.min_samples}."
        ))
        if n < 2:
            return out
    s = summarize(samples_ms)
    if s.cv_pct > thresholds.max_cv_pct:
        out.append(StabilityWarning(
            "high_cv",
            f"unstable: CV {s.cv_pct:.1f}% > {thresholds.max_cv_pct:g}% (mean {s.mean_ms:.2f} ms, std "
            f"{s.std_ms:.2f} ms, median {s.median_ms:.2f} ± {s.mad_ms:.2f} ms MAD). Close background load, "
            "add warm-up runs, let the device cool (cooldown.max_start_temp_c) or raise runs.iterations.",
        ))
    d = drift_pct(samples_ms)
    if abs(d) > thresholds.max_drift_pct:
        out.append(StabilityWarning("drift", drift_message(samples_ms, d)))
    bi = bimodality_gap(samples_ms)
    if bi is not None:
        low, high, frac = bi
        out.append(StabilityWarning(
            "bimodal",
            f"bimodal: {100 * (1 - frac):.0f}% of runs near {low:.2f} ms and {100 * frac:.0f}% near {high:.2f} ms. "
            "Often core migration (big/LITTLE) or DVFS; pin threads/governors or report both modes.",
        ))
    out_pct = float(outlier_mask(samples_ms).mean() * 100.0)
    if out_pct > thresholds.max_outlier_pct:
        out.append(StabilityWarning(
            "outliers",
            f"{out_pct:.0f}% of runs are outliers (modified z-score > 3.5). Something else ran during "
            "the measurement; check the CPU load of other processes.",
        ))
    return out


@dataclass(frozen=True)
class SummaryOnly:
    """Stats from a tool that reports only count/mean/std/min/max (benchmark_model)."""

    n: int
    mean_ms: float
    std_ms: float | None
    min_ms: float | None
    max_ms: float | None
    missing: dict[str, str] = field(default_factory=dict)


SUMMARY_SOURCE = "from the tool's summary (count/mean/std/min/max; no per-run samples)"


def summary_stability_warnings(
    summary: SummaryOnly, thresholds: StabilityThresholds = StabilityThresholds()
) -> list[StabilityWarning]:
    """The stability checks a tool summary allows, each saying it comes from the summary.

    CV = std / mean against the same ``max_cv_pct`` as raw samples, and the sample count against
    ``min_samples``. Drift, bimodality and outliers need per-run samples and are not checked
    (the latency record's ``source`` says "tool summary"). A summary without a usable std gives
    an ``unchecked`` warning, so a quiet phone series is never mistaken for a checked one.
    """
    out: list[StabilityWarning] = []
    if summary.n < thresholds.min_samples:
        out.append(StabilityWarning(
            "too_few", f"only {summary.n} runs ({SUMMARY_SOURCE}); statistics are rough. "
            f"Raise runs.iterations to ≥ {thresholds.min_samples}.",
        ))
    if summary.std_ms is None or not math.isfinite(summary.std_ms) or not summary.mean_ms > 0:
        why = summary.missing.get("std", "the tool reported no standard deviation")
        out.append(StabilityWarning(
            "unchecked", f"stability not checked: {why}. Use a tool build that prints std, or raw samples.",
        ))
    else:
        cv = summary.std_ms / summary.mean_ms * 100.0
        if cv > thresholds.max_cv_pct:
            rng = ""
            if summary.min_ms is not None and summary.max_ms is not None:
                rng = f", min {summary.min_ms:.2f} ms, max {summary.max_ms:.2f} ms"
            out.append(StabilityWarning(
                "high_cv",
                f"unstable: CV {cv:.1f}% > {thresholds.max_cv_pct:g}% {SUMMARY_SOURCE}: mean "
                f"{summary.mean_ms:.2f} ms, std {summary.std_ms:.2f} ms{rng}, n {summary.n}. Close "
                "background load, add warm-up runs, let the device cool (cooldown.max_start_temp_c) "
                "or raise runs.iterations.",
            ))
    return out


def _ranks(v: Sequence[float]) -> np.ndarray:
    x = np.asarray(v, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    i = 0
    while i < len(x):  # average ranks for ties
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman rank correlation (ties averaged); None with fewer than 3 pairs or a constant side."""
    if len(a) != len(b):
        raise ValueError("spearman: sequences differ in length")
    if len(a) < 3:
        return None
    ra, rb = _ranks(a), _ranks(b)
    if np.std(ra) == 0 or np.std(rb) == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])
