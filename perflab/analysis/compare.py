"""Comparing one metric of one cell between two runs, with its uncertainty. Pure functions.

The way pyperf and hyperfine compare: a change is a number *with* a confidence interval, and
a regression needs both a change beyond the user's threshold and a statistical test that says
the change is not noise.

- The same frames on both sides (quality per frame): a paired bootstrap of the mean (the pairs
  resampled together) and the Wilcoxon signed-rank test on the differences — frame-to-frame
  spread cancels, so a small drop of PSNR on every frame is seen.
- Raw samples on both sides (latency of every iteration): a percentile
  bootstrap of the statistic's ratio B/A and difference B − A (``resamples`` draws of each side
  with replacement, seeded, so a report is reproducible), and the Mann–Whitney U test (two
  sided) on the raw samples.
- Only a tool summary (benchmark_model on a phone gives count, mean and std): Welch's
  t-interval for the difference of the means and Welch's t-test, said so in ``method``; the
  ratio's interval is the difference's divided by A's mean (A taken as exact). This holds also
  where the asked statistic (median, p90) was not measured: the mean stands in, said in ``note``.
- One value per run (peak memory, mean power over the window): the change is given without an
  interval and cannot be tested; crossing a threshold is reported as ``untested``, never as a
  regression.

Thresholds are written ``metric:value`` (``latency.median:5%``, ``quality.psnr_y_db:-0.1``,
``telemetry.power_mw:10%``). The sign names the bad direction: a positive threshold flags an
increase beyond it (slower, more power), a negative one a decrease beyond it (lower PSNR).
A ``%`` makes it relative to A, else it is in the metric's own unit. A change is a regression
when it is significant (p < alpha *and* the interval excludes no change) and its point
estimate is beyond the threshold in the bad direction.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

from perflab.core.display import fmt_num
from perflab.core.names import one_line
from perflab.errors import UserInputError

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_ALPHA = 0.05
MIN_SAMPLES = 3  # fewer raw samples than this on a side: no bootstrap
#: the metrics shown unless others are asked for, one list for a comparison of two runs
#: (perflab.report.compare) and the nightly trends (perflab.report.dashboard)
DEFAULT_METRICS: tuple[str, ...] = ("latency.median", "latency.p90", "quality.psnr_y_db", "telemetry.power_mw",
                                    "telemetry.mem_peak_mb")


class Statistic(StrEnum):
    MEDIAN = "median"
    MEAN = "mean"
    P90 = "p90"
    VALUE = "value"  # one recorded value per run, no samples


class Verdict(StrEnum):
    REGRESSION = "regression"  # significant and beyond the threshold in the bad direction
    IMPROVEMENT = "improvement"  # significant and beyond the threshold's size in the good direction
    CHANGED = "changed"  # significant, within the threshold (or no threshold)
    UNCHANGED = "unchanged"  # not significant
    UNTESTED = "untested"  # no spread known on one side: the change cannot be tested
    MISSING = "missing"  # a side has no value (reason in ``note``)


@dataclass(frozen=True)
class Threshold:
    metric: str
    value: float  # percent when relative, else in the metric's unit; the sign is the bad direction
    relative: bool

    def __str__(self) -> str:
        return f"{self.metric}:{self.value:+g}{'%' if self.relative else ''}"


_THRESHOLD_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)\s*:\s*([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)\s*(%?)\s*$")


def parse_threshold(text: str, known_metrics: Sequence[str] | None = None) -> Threshold:
    """``latency.median:5%`` → Threshold; bad input is a one-line UserInputError."""
    m = _THRESHOLD_RE.match(text)
    if m is None:
        raise UserInputError(f"--threshold {text!r}: write it as METRIC:VALUE[%], e.g. latency.median:5% or "
                             "quality.psnr_y_db:-0.1")
    metric, raw, pct = m.group(1), m.group(2), m.group(3)
    try:
        value = float(raw)
    except ValueError:
        raise UserInputError(f"--threshold {text!r}: {raw!r} is not a number") from None
    if not math.isfinite(value) or value == 0.0:
        raise UserInputError(f"--threshold {text!r}: the value must be a finite number other than 0 (its sign is "
                             "the bad direction)")
    if known_metrics is not None and metric not in known_metrics:
        raise UserInputError(f"--threshold {text!r}: unknown metric {metric!r}; known: {', '.join(known_metrics)}")
    return Threshold(metric=metric, value=value, relative=pct == "%")


@dataclass(frozen=True)
class Observation:
    """One side of a comparison: the recorded value and what is known of its spread."""

    value: float | None
    samples: tuple[float, ...] = ()  # raw samples (iterations, frames), if kept
    sample_keys: tuple[str, ...] = ()  # what each sample measured (frame names): paired when both sides match
    mean: float | None = None  # a tool's summary, where there are no raw samples
    std: float | None = None
    n: int = 0
    missing: str | None = None  # why ``value`` is None


@dataclass(frozen=True)
class MetricChange:
    metric: str
    a: float | None
    b: float | None
    diff: float | None  # b − a, in the metric's unit
    change_pct: float | None  # (b / a − 1) × 100
    diff_ci: tuple[float, float] | None
    change_pct_ci: tuple[float, float] | None
    p_value: float | None
    test: str | None  # "Mann-Whitney U" / "Welch t"
    method: str  # how the interval was made, in words
    n_a: int
    n_b: int
    significant: bool
    verdict: Verdict
    threshold: Threshold | None = None
    note: str | None = None

    def describe(self) -> str:
        """One line with the numbers, for JUnit failures and the terminal."""
        if self.verdict == Verdict.MISSING:
            return f"{self.metric}: missing ({self.note})"
        parts = [f"{self.metric}: {fmt_num(self.a)} → {fmt_num(self.b)}"]
        if self.change_pct is not None:
            ci = (f" [{self.change_pct_ci[0]:+.2f}%, {self.change_pct_ci[1]:+.2f}%]"
                  if self.change_pct_ci is not None else "")
            parts.append(f"{self.change_pct:+.2f}%{ci}")
        if self.diff is not None and self.threshold is not None and not self.threshold.relative:
            ci = f" [{self.diff_ci[0]:+.4g}, {self.diff_ci[1]:+.4g}]" if self.diff_ci is not None else ""
            parts.append(f"Δ {self.diff:+.4g}{ci}")
        if self.p_value is not None:
            parts.append(f"p={self.p_value:.3g} ({self.test})")
        if self.threshold is not None:
            parts.append(f"threshold {self.threshold}")
        parts.append(self.verdict.value)
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)


def _stat(a: np.ndarray, statistic: Statistic, axis: int | None = None) -> np.ndarray:
    if statistic == Statistic.MEAN:
        return np.asarray(a.mean(axis=axis))
    if statistic == Statistic.P90:
        return np.asarray(np.percentile(a, 90, axis=axis))
    return np.asarray(np.median(a, axis=axis))


def bootstrap_ci(
    a: Sequence[float] | npt.NDArray[np.float64], b: Sequence[float] | npt.NDArray[np.float64], statistic: Statistic = Statistic.MEDIAN, *,
    resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE, seed: int = 0,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Percentile bootstrap of (B/A − 1) × 100 and B − A for a statistic of independent samples
    → (change_pct interval, diff interval). Each side is resampled with replacement."""
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    rng = np.random.default_rng(seed)
    sa = _stat(xa[rng.integers(0, xa.size, (resamples, xa.size))], statistic, axis=1)
    sb = _stat(xb[rng.integers(0, xb.size, (resamples, xb.size))], statistic, axis=1)
    return _intervals(sa, sb, confidence)


def paired_bootstrap_ci(
    a: Sequence[float], b: Sequence[float], *, resamples: int = DEFAULT_RESAMPLES,
    confidence: float = DEFAULT_CONFIDENCE, seed: int = 0,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Paired samples (the same frames on both sides): the pairs are resampled together →
    (interval of (mean B / mean A − 1) × 100, interval of mean(B − A))."""
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, xa.size, (resamples, xa.size))
    return _intervals(xa[idx].mean(axis=1), xb[idx].mean(axis=1), confidence)


def _intervals(sa: npt.NDArray[np.float64], sb: npt.NDArray[np.float64],
               confidence: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Percentile intervals of (B/A − 1) × 100 and B − A over resampled statistics of each side
    (ratios that are not finite left out; none left → NaN)."""
    lo_q, hi_q = (1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100
    d_lo, d_hi = (float(v) for v in np.percentile(sb - sa, [lo_q, hi_q]))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = sb / sa
    ratio = ratio[np.isfinite(ratio)]
    if ratio.size == 0:
        return (math.nan, math.nan), (d_lo, d_hi)
    r_lo, r_hi = (float(v) for v in np.percentile(ratio, [lo_q, hi_q]))
    return ((r_lo - 1) * 100, (r_hi - 1) * 100), (d_lo, d_hi)


def wilcoxon_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired samples (1.0 when every pair is equal)."""
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    if not np.any(d != 0):
        return 1.0
    return float(sps.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)


def _paired(a: Observation, b: Observation) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
    """Both sides' samples aligned by key, when both name the same keys once each."""
    if not a.sample_keys or len(a.sample_keys) != len(a.samples) or len(b.sample_keys) != len(b.samples):
        return None
    ka, kb = dict(zip(a.sample_keys, a.samples, strict=True)), dict(zip(b.sample_keys, b.samples, strict=True))
    if len(ka) != len(a.samples) or set(ka) != set(kb):
        return None
    keys = list(a.sample_keys)
    return tuple(ka[k] for k in keys), tuple(kb[k] for k in keys)


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Mann–Whitney U p-value of two independent samples (1.0 when both are constant
    and equal)."""
    xa = np.asarray(a, dtype=np.float64)
    xb = np.asarray(b, dtype=np.float64)
    if np.ptp(np.concatenate([xa, xb])) == 0:
        return 1.0
    return float(sps.mannwhitneyu(xa, xb, alternative="two-sided").pvalue)


def welch_interval(
    mean_a: float, std_a: float, n_a: int, mean_b: float, std_b: float, n_b: int, *,
    confidence: float = DEFAULT_CONFIDENCE,
) -> tuple[tuple[float, float], float]:
    """Welch's t-interval for mean_b − mean_a from summaries → (interval, two-sided p-value)."""
    va, vb = std_a * std_a / n_a, std_b * std_b / n_b
    se = math.sqrt(va + vb)
    diff = mean_b - mean_a
    if se == 0:
        return (diff, diff), (1.0 if diff == 0 else 0.0)
    dof = (va + vb) ** 2 / ((va * va / (n_a - 1) if n_a > 1 else 0.0) + (vb * vb / (n_b - 1) if n_b > 1 else 0.0))
    t = float(sps.t.ppf((1 + confidence) / 2, dof))
    p = float(2 * sps.t.sf(abs(diff) / se, dof))
    return (diff - t * se, diff + t * se), p


def compare_metric(
    metric: str, a: Observation, b: Observation, statistic: Statistic, threshold: Threshold | None = None, *,
    alpha: float = DEFAULT_ALPHA, resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> MetricChange:
    """The change of one metric from A to B, its interval, its test and its verdict."""
    summaries = (a.mean is not None and b.mean is not None and a.std is not None and b.std is not None
                 and a.n >= 2 and b.n >= 2)
    no_samples = len(a.samples) < MIN_SAMPLES or len(b.samples) < MIN_SAMPLES
    if (a.value is None or b.value is None) and not (summaries and no_samples and statistic != Statistic.VALUE):
        why = "; ".join(f"{side}: {o.missing or 'not measured'}" for side, o in (("A", a), ("B", b))
                        if o.value is None)
        return MetricChange(metric, a.value, b.value, None, None, None, None, None, None, "none", a.n, b.n, False,
                            Verdict.MISSING, threshold, why)
    note: str | None = None
    pct_ci: tuple[float, float] | None = None
    diff_ci: tuple[float, float] | None = None
    p: float | None = None
    test: str | None = None
    paired = _paired(a, b) if statistic == Statistic.MEAN else None
    if paired is not None and len(paired[0]) >= MIN_SAMPLES:
        pa, pb = paired
        va, vb = float(np.mean(pa)), float(np.mean(pb))
        pct_ci, diff_ci = paired_bootstrap_ci(pa, pb, resamples=resamples, confidence=confidence, seed=seed)
        p = wilcoxon_p(pa, pb)
        test = "Wilcoxon signed-rank"
        method = (f"paired bootstrap of the mean ({resamples} resamples, {confidence:.0%}) over the same "
                  f"{len(pa)} samples on both sides")
        n_a = n_b = len(pa)
    elif statistic != Statistic.VALUE and len(a.samples) >= MIN_SAMPLES and len(b.samples) >= MIN_SAMPLES:
        va = float(_stat(np.asarray(a.samples, dtype=np.float64), statistic))
        vb = float(_stat(np.asarray(b.samples, dtype=np.float64), statistic))
        pct_ci, diff_ci = bootstrap_ci(a.samples, b.samples, statistic, resamples=resamples,
                                       confidence=confidence, seed=seed)
        p = mann_whitney_p(a.samples, b.samples)
        test = "Mann-Whitney U"
        method = (f"bootstrap of the {statistic.value} ({resamples} resamples, {confidence:.0%}) on raw samples "
                  f"(n={len(a.samples)}, {len(b.samples)})")
        n_a, n_b = len(a.samples), len(b.samples)
    elif summaries and a.mean is not None and b.mean is not None and a.std is not None and b.std is not None:
        va, vb = a.mean, b.mean
        diff_ci, p = welch_interval(a.mean, a.std, a.n, b.mean, b.std, b.n, confidence=confidence)
        pct_ci = ((diff_ci[0] / a.mean * 100, diff_ci[1] / a.mean * 100) if a.mean != 0 else None)
        test = "Welch t"
        method = f"Welch t-interval ({confidence:.0%}) from the tool summary (mean, std, n={a.n}, {b.n}): no raw samples"
        n_a, n_b = a.n, b.n
        if statistic != Statistic.MEAN:
            note = f"only a tool summary: the change of the mean is tested, not the {statistic.value}"
    else:
        if a.value is None or b.value is None:  # excluded above; keeps the types exact
            raise ValueError("compare_metric: no value and no summary")
        va, vb = a.value, b.value
        method = "one value per run: no interval"
        n_a, n_b = a.n, b.n
    diff = vb - va
    change_pct = (vb / va - 1) * 100 if va != 0 else None
    significant = p is not None and p < alpha and diff_ci is not None and (diff_ci[0] > 0 or diff_ci[1] < 0)
    verdict = _verdict(p, significant, change_pct if threshold is not None and threshold.relative else diff,
                       threshold)
    if verdict == Verdict.UNTESTED and _beyond(change_pct if threshold is not None and threshold.relative else diff,
                                               threshold, bad=True):
        note = "beyond the threshold, but one value per run cannot be tested"
    return MetricChange(metric, va, vb, diff, change_pct, diff_ci, pct_ci, p, test, method, n_a, n_b, significant,
                        verdict, threshold, note)


def _beyond(measure: float | None, threshold: Threshold | None, *, bad: bool) -> bool:
    """Is the change beyond the threshold in its bad direction (or, ``bad=False``, as far the
    other way)?"""
    if threshold is None or measure is None:
        return False
    t = threshold.value if bad else -threshold.value
    return measure > t if (threshold.value > 0) == bad else measure < t


def _verdict(p: float | None, significant: bool, measure: float | None, threshold: Threshold | None) -> Verdict:
    if p is None:
        return Verdict.UNTESTED
    if not significant:
        return Verdict.UNCHANGED
    if _beyond(measure, threshold, bad=True):
        return Verdict.REGRESSION
    if _beyond(measure, threshold, bad=False):
        return Verdict.IMPROVEMENT
    return Verdict.CHANGED


# -- metadata that must match before two cells are compared ---------------------------------------


class Severity(StrEnum):
    REFUSE = "refuse"
    WARN = "warn"


@dataclass(frozen=True)
class MetaDiff:
    key: str
    a: str | None
    b: str | None
    severity: Severity
    message: str


@dataclass(frozen=True)
class MetaRules:
    """Which differing metadata refuse a comparison and which only warn (pyperf keeps such a
    tuple of keys). ``temp_tolerance_c``: start temperatures further apart warn."""

    refuse: frozenset[str] = frozenset({"scenario_sha256"})
    warn: frozenset[str] = frozenset({"perflab_version", "device_fingerprint", "model_sha256", "device_model",
                                      "tflite_version", "threads"})
    temp_tolerance_c: float = 3.0
    labels: Mapping[str, str] = field(default_factory=lambda: {
        "scenario_sha256": "scenario (sha256)", "perflab_version": "perflab version",
        "device_fingerprint": "device build fingerprint", "model_sha256": "model file (sha256)",
        "device_model": "device model", "tflite_version": "TFLite version", "threads": "threads"})


def metadata_diffs(a: Mapping[str, str | None], b: Mapping[str, str | None], rules: MetaRules | None = None,
                   *, start_temp_a_c: float | None = None, start_temp_b_c: float | None = None) -> list[MetaDiff]:
    """The metadata keys whose values differ between A and B, each with its severity. A key
    missing on one side is not a difference (nothing is known to differ)."""
    rules = rules or MetaRules()
    out: list[MetaDiff] = []
    for key in sorted(rules.refuse | rules.warn):
        va, vb = a.get(key), b.get(key)
        if va is None or vb is None or va == vb:
            continue
        sev = Severity.REFUSE if key in rules.refuse else Severity.WARN
        label = rules.labels.get(key, key)
        out.append(MetaDiff(key, va, vb, sev, f"{label} differs: {one_line(va, 48)} vs {one_line(vb, 48)}"))
    if start_temp_a_c is not None and start_temp_b_c is not None:
        d = start_temp_b_c - start_temp_a_c
        if abs(d) > rules.temp_tolerance_c:
            out.append(MetaDiff("start_temp_c", f"{start_temp_a_c:.1f}", f"{start_temp_b_c:.1f}", Severity.WARN,
                                f"start temperature differs by {d:+.1f} °C (> {rules.temp_tolerance_c:g} °C): "
                                "thermal state may explain a change"))
    return out
