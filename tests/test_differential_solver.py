"""The differential profiler's solver on synthetic variants with known per-layer costs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from perflab.analysis.stats import spearman
from perflab.errors import MeasurementError
from perflab.tracing.differential import VariantTiming, solve_layers, sum_check, variant_timing

TRUE_MS = [1.5, 7.0, 0.8, 3.2, 0.4]
NAMES = ["head", "body0", "body1", "out", "tail"]


def _prefix_counts(p: int) -> list[tuple[int, ...]]:
    return [tuple(1 if i < k else 0 for i in range(p)) for k in range(1, p + 1)]


def _timings(counts: Sequence[tuple[int, ...]], noise_ms: float, n: int = 30, seed: int = 1,
             drift_ms: list[float] | None = None) -> list[VariantTiming]:
    rng = np.random.default_rng(seed)
    out = []
    for j, c in enumerate(counts):
        true = float(np.dot(c, TRUE_MS)) + (drift_ms[j] if drift_ms else 0.0)
        samples = true + rng.normal(0.0, noise_ms, n)
        out.append(variant_timing(f"v{j}", c, list(samples)))
    return out


def test_prefix_variants_recover_known_costs_within_their_uncertainty() -> None:
    sol = solve_layers(_timings(_prefix_counts(5), noise_ms=0.2), NAMES)
    for layer, true in zip(sol.layers, TRUE_MS, strict=True):
        assert layer.se_ms > 0
        assert abs(layer.cost_ms - true) < 4 * layer.se_ms, (layer, true)
    assert sol.dof == 0 and sol.birge == 1.0
    assert abs(sol.sum_ms - sum(TRUE_MS)) < 4 * sol.sum_se_ms


def test_duplicates_overdetermine_and_shrink_the_uncertainty_of_their_layer() -> None:
    prefixes = _prefix_counts(5)
    dups: list[tuple[int, ...]] = [(1, 2, 1, 1, 1), (1, 1, 2, 1, 1), (1, 2, 1, 1, 1), (1, 1, 2, 1, 1)]
    only = solve_layers(_timings(prefixes, 0.2), NAMES)
    both = solve_layers(_timings(prefixes + dups, 0.2), NAMES)
    assert both.dof == 4
    assert both.layers[1].se_ms < only.layers[1].se_ms
    for layer, true in zip(both.layers, TRUE_MS, strict=True):
        assert abs(layer.cost_ms - true) < 4 * layer.se_ms


def test_inconsistent_variants_inflate_the_uncertainty_birge_ratio() -> None:
    prefixes = _prefix_counts(5)
    dups: list[tuple[int, ...]] = [(1, 2, 1, 1, 1), (1, 1, 2, 1, 1)]
    drift = [0.0] * 5 + [3.0, -3.0]  # the duplicates disagree with the prefixes by 3 ms
    sol = solve_layers(_timings(prefixes + dups, 0.05, drift_ms=drift), NAMES)
    assert sol.birge > 3
    assert max(abs(r) for r in sol.residuals_ms) > 0.5


def test_unidentified_layer_is_an_error_not_a_guess() -> None:
    counts: list[tuple[int, ...]] = [(1, 1, 0, 0, 0), (1, 1, 1, 0, 0), (1, 1, 1, 1, 0), (1, 1, 1, 1, 1)]  # head and body0 never apart
    with pytest.raises(MeasurementError, match="identify"):
        solve_layers(_timings(counts, 0.1), NAMES)


def test_sum_check_against_whole_model() -> None:
    sol = solve_layers(_timings(_prefix_counts(5), 0.05), NAMES)
    ok = sum_check(sol, whole_model_ms=sum(TRUE_MS))
    assert ok.ok and abs(ok.diff_pct) < 2
    bad = sum_check(sol, whole_model_ms=sum(TRUE_MS) * 1.3)
    assert not bad.ok and bad.diff_pct == pytest.approx((sol.sum_ms / (sum(TRUE_MS) * 1.3) - 1) * 100)


def test_variant_timing_is_robust_to_one_outlier() -> None:
    t = variant_timing("v", (1,), [10.0] * 19 + [500.0])
    assert t.time_ms == 10.0 and t.n == 20


def test_spearman() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2]) is None
    assert spearman([1, 1, 1], [1, 2, 3]) is None


def test_low_quantile_ignores_runs_slowed_by_other_load() -> None:
    rng = np.random.default_rng(2)
    clean = 10.0 + rng.normal(0.0, 0.05, 60)
    disturbed = np.where(rng.random(60) < 0.5, clean + rng.uniform(0.0, 5.0, 60), clean)  # half the runs preempted
    t = variant_timing("v", (1,), list(disturbed), quantile_pct=10.0)
    assert abs(t.time_ms - 10.0) < 0.1 and 0 < t.se_ms < 0.2
    assert variant_timing("v", (1,), list(disturbed)).time_ms > 10.3  # the median is pulled up
