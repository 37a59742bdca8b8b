"""Latency statistics and stability warnings, against numpy/scipy definitions and known data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from perflab.analysis.stats import (
    StabilityThresholds,
    SummaryOnly,
    bimodality_gap,
    drift_pct,
    outlier_mask,
    stability_warnings,
    summarize,
    summary_stability_warnings,
)


def test_summary_matches_definitions() -> None:
    rng = np.random.default_rng(42)
    x = rng.lognormal(mean=3.0, sigma=0.1, size=201)
    s = summarize(list(x))
    assert s.n == 201
    assert s.median_ms == pytest.approx(float(np.median(x)))
    assert s.mean_ms == pytest.approx(float(np.mean(x)))
    assert s.std_ms == pytest.approx(float(np.std(x, ddof=1)))
    assert s.mad_ms == pytest.approx(float(sps.median_abs_deviation(x)))
    assert s.p90_ms == pytest.approx(float(np.percentile(x, 90)))
    assert s.p95_ms == pytest.approx(float(np.percentile(x, 95)))
    assert (s.min_ms, s.max_ms) == (float(x.min()), float(x.max()))
    assert s.cv_pct == pytest.approx(100 * np.std(x, ddof=1) / np.mean(x))


def test_small_hand_computed_example() -> None:
    s = summarize([10.0, 12.0, 11.0, 13.0, 100.0])
    assert s.median_ms == 12.0
    assert s.mean_ms == pytest.approx(29.2)
    assert s.mad_ms == 1.0  # |x - 12| = 2,0,1,1,88 -> median 1
    assert s.p90_ms == pytest.approx(65.2)  # linear between 13 and 100 at 0.6
    assert summarize([5.0]).std_ms == 0.0


def test_bad_samples_refused() -> None:
    with pytest.raises(ValueError):
        summarize([])
    with pytest.raises(ValueError):
        summarize([1.0, float("nan")])


def test_outliers_by_modified_z_score() -> None:
    x = [10.0, 10.1, 9.9, 10.05, 9.95, 10.0, 30.0]
    assert outlier_mask(x).tolist() == [False] * 6 + [True]
    assert not outlier_mask([5.0] * 10).any()


def test_stable_series_has_no_warning() -> None:
    rng = np.random.default_rng(1)
    assert stability_warnings(list(rng.normal(20.0, 0.3, 60))) == []


def test_high_cv_warning_gives_numbers_and_fix() -> None:
    rng = np.random.default_rng(2)
    w = stability_warnings(list(rng.normal(20.0, 5.0, 60)))
    high = [x for x in w if x.code == "high_cv"]
    assert len(high) == 1
    assert "CV" in high[0].message and "ms" in high[0].message and "iterations" in high[0].message


def test_drift_detected_on_thermal_ramp() -> None:
    ramp = list(np.linspace(20.0, 26.0, 80))
    assert drift_pct(ramp) == pytest.approx(
        (np.median(ramp[40:]) - np.median(ramp[:40])) / np.median(ramp[:40]) * 100
    )
    assert "drift" in {x.code for x in stability_warnings(ramp)}


def test_bimodal_detected_and_reported_with_modes() -> None:
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(10, 0.1, 40), rng.normal(15, 0.1, 20)])
    rng.shuffle(x)
    gap = bimodality_gap(list(x))
    assert gap is not None
    low, high, frac = gap
    assert low == pytest.approx(10, abs=0.2) and high == pytest.approx(15, abs=0.2)
    assert frac == pytest.approx(1 / 3, abs=0.02)
    assert bimodality_gap(list(rng.normal(10, 0.5, 60))) is None


def test_too_few_samples() -> None:
    assert [w.code for w in stability_warnings([10.0, 10.2, 10.1])] == ["too_few"]


def test_drift_wording_names_the_direction_and_the_cause() -> None:
    slower = list(np.linspace(20.0, 26.0, 80))
    (w,) = [x for x in stability_warnings(slower) if x.code == "drift"]
    assert w.message.startswith("drifting slower")
    assert "thermal throttling" in w.message and "%" in w.message and "ms" in w.message
    faster = list(np.linspace(26.0, 20.0, 80))
    (w,) = [x for x in stability_warnings(faster) if x.code == "drift"]
    assert w.message.startswith("drifting faster")
    assert "throttling" in w.message and "not throttling" in w.message  # never blamed on heat
    assert "runs.warmup" in w.message
    d = drift_pct(faster)
    assert f"{abs(d):.1f}% faster" in w.message
    assert f"{np.median(faster[40:]):.2f} ms" in w.message and f"{np.median(faster[:40]):.2f} ms" in w.message


def test_summary_only_series_checked_by_cv_from_std_over_mean() -> None:
    # a phone series as benchmark_model reports it: CV 20% (4 / 20) > 10%
    noisy = SummaryOnly(n=50, mean_ms=20.0, std_ms=4.0, min_ms=15.0, max_ms=41.0)
    w = summary_stability_warnings(noisy)
    assert [x.code for x in w] == ["high_cv"]
    assert "CV 20.0% > 10%" in w[0].message and "tool's summary" in w[0].message
    assert "std 4.00 ms" in w[0].message and "max 41.00 ms" in w[0].message
    # the same threshold as raw samples, from the scenario
    assert summary_stability_warnings(noisy, StabilityThresholds(max_cv_pct=25.0)) == []
    quiet = SummaryOnly(n=50, mean_ms=20.0, std_ms=0.5, min_ms=19.0, max_ms=21.5)
    assert summary_stability_warnings(quiet) == []


def test_summary_without_std_is_said_unchecked_and_few_runs_flagged() -> None:
    w = summary_stability_warnings(SummaryOnly(n=5, mean_ms=20.0, std_ms=None, min_ms=None, max_ms=None))
    assert [x.code for x in w] == ["too_few", "unchecked"]
    assert "tool's summary" in w[0].message and "no standard deviation" in w[1].message
    w = summary_stability_warnings(
        SummaryOnly(n=50, mean_ms=20.0, std_ms=None, min_ms=None, max_ms=None, missing={"std": "tool too old"})
    )
    assert [x.code for x in w] == ["unchecked"] and "tool too old" in w[0].message
