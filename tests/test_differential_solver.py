"""The differential profiler's solver on synthetic variants with known per-layer costs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from perflab.analysis.stats import spearman
from perflab.errors import MeasurementError
from perflab.tracing.differential import (
    BOOTSTRAP_N,
    VariantRounds,
    VariantTiming,
    solve_layers,
    solve_robust,
    sum_check,
    too_wide,
    unreliable_reason,
    unresolved_layers,
    variant_timing,
    wide_layers,
)

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


# ---- the robust path: rounds, medians, non-negative least squares, bootstrap intervals


def _rounds(counts: Sequence[tuple[int, ...]], noise_ms: float, rounds: int, seed: int = 3,
            outlier_ms: float = 0.0) -> list[VariantRounds]:
    """One value per round per variant; with ``outlier_ms`` every variant has one round slowed
    that much (a disturbed tool run on a busy host)."""
    rng = np.random.default_rng(seed)
    out = []
    for j, c in enumerate(counts):
        true = float(np.dot(c, TRUE_MS))
        vals = list(true + np.abs(rng.normal(0.0, noise_ms, rounds)))
        if outlier_ms:
            vals[int(rng.integers(rounds))] += outlier_ms
        out.append(VariantRounds(f"v{j}", c, tuple(vals)))
    return out


def test_robust_solve_covers_the_truth_and_ignores_one_disturbed_round_per_variant() -> None:
    sol = solve_robust(_rounds(_prefix_counts(5), noise_ms=0.05, rounds=7, outlier_ms=20.0), NAMES, seed=1)
    assert sol.n_boot == BOOTSTRAP_N and len(sol.intervals_ms) == 5
    for layer, (lo, hi), true in zip(sol.layers, sol.intervals_ms, TRUE_MS, strict=True):
        assert lo <= layer.cost_ms <= hi
        assert abs(layer.cost_ms - true) <= 0.1 * true + 0.1, (layer, true)  # a mean would be off by ~3 ms


def test_robust_solve_never_returns_a_negative_cost() -> None:
    """A layer whose true cost is 0, measured with noise: least squares goes negative about half
    the time; the non-negative fit and every bootstrap resample stay at or above 0."""
    counts = _prefix_counts(5)
    rng = np.random.default_rng(7)
    truth = [2.0, 0.0, 3.0, 0.0, 1.0]
    variants = [VariantRounds(f"v{j}", c, tuple(float(np.dot(c, truth)) + rng.normal(0.0, 0.3, 5)))
                for j, c in enumerate(counts)]
    sol = solve_robust(variants, NAMES, seed=2)
    assert all(c.cost_ms >= 0.0 for c in sol.layers)
    assert all(lo >= 0.0 for lo, _ in sol.intervals_ms)


def test_stopping_rule_judges_interval_width_against_the_stated_target() -> None:
    noisy = solve_robust(_rounds(_prefix_counts(5), noise_ms=1.0, rounds=4), NAMES)
    quiet = solve_robust(_rounds(_prefix_counts(5), noise_ms=0.005, rounds=4), NAMES)
    whole = sum(TRUE_MS)
    assert wide_layers(noisy, whole)  # 1 ms noise on 0.4–7 ms layers: not narrow enough yet
    assert wide_layers(quiet, whole) == []
    # the floor: a tiny layer is narrow enough at 1% of the whole model even when 5% of itself is less
    assert wide_layers(quiet, whole, target_pct=0.0, floor_pct=100.0) == []


def test_a_failed_sum_check_gives_the_reason_with_its_figures() -> None:
    sol = solve_robust(_rounds(_prefix_counts(5), noise_ms=0.01, rounds=3), NAMES)
    assert unreliable_reason(sum_check(sol, sum(TRUE_MS))) is None
    why = unreliable_reason(sum_check(sol, sum(TRUE_MS) * 1.5))
    assert why is not None and "sum check failed" in why and "-33.3%" in why and "±10%" in why


def test_a_spread_too_wide_for_any_number_makes_the_layers_unreliable_with_the_figures() -> None:
    """Rounds that scatter more than the costs can carry (1.5 ms on 0.4–7 ms layers, 3 rounds):
    the sum can still check out, but no layer's 95% interval is within ±10% of its cost, so the
    solution is unreliable and says which layers, their intervals and the bound; quiet rounds
    give none."""
    noisy = solve_robust(_rounds(_prefix_counts(5), noise_ms=1.5, rounds=3), NAMES, seed=3)
    quiet = solve_robust(_rounds(_prefix_counts(5), noise_ms=0.01, rounds=3), NAMES, seed=3)
    whole = sum(TRUE_MS)
    assert too_wide(quiet, whole) == []
    assert unreliable_reason(sum_check(quiet, whole), quiet) is None
    assert unresolved_layers(quiet, whole) == {}
    wide = too_wide(noisy, whole)
    assert len(wide) == len(NAMES)
    why = unreliable_reason(sum_check(noisy, noisy.sum_ms), noisy)  # the sum itself checks out
    assert why is not None and why.startswith("no layer resolved: ") and "sum check" not in why
    assert "95% " in why and "±10%" in why and wide[0] in why
    # the bound: a looser one accepts the same rounds
    assert too_wide(noisy, whole, limit_pct=1000.0, floor_pct=0.0) == []


def test_an_unresolved_layer_is_marked_alone_and_the_resolved_ones_stay_numbers() -> None:
    """Only the whole-model prefix scatters (its rounds ~0.6 ms apart): ``tail``, the layer that
    variant separates from the others, gets an interval too wide for a number and its reason with
    the figures; the other four are resolved, and the solution as a whole is not unreliable (one
    noisy variant must not unmake every row)."""
    rng = np.random.default_rng(5)
    variants = []
    for j, c in enumerate(_prefix_counts(5)):
        true = float(np.dot(c, TRUE_MS))
        noise = 0.6 if j == 4 else 0.005
        variants.append(VariantRounds(f"v{j}", c, tuple(true + np.abs(rng.normal(0.0, noise, 8)))))
    sol = solve_robust(variants, NAMES, seed=4)
    whole = sum(TRUE_MS)
    bad = unresolved_layers(sol, whole)
    assert set(bad) == {"tail"}, bad
    assert bad["tail"].startswith("not resolved: tail ") and "95% " in bad["tail"] and "±10%" in bad["tail"]
    assert unreliable_reason(sum_check(sol, whole), sol) is None
    for layer, true in zip(sol.layers[:4], TRUE_MS[:4], strict=True):
        assert abs(layer.cost_ms - true) <= 0.1 * true, (layer, true)


def test_the_lower_quartile_holds_where_a_third_of_the_rounds_are_slow() -> None:
    """A third of each variant's 9 rounds slowed by 20–60% (what the 2-core CI host did to the
    variants of a 42 ms model): the lower quartile keeps every layer within 5% of the truth with
    intervals narrow enough for a number, where the median's bootstrap lands on the slow rounds."""
    rng = np.random.default_rng(11)
    variants = []
    for j, c in enumerate(_prefix_counts(5)):
        true = float(np.dot(c, TRUE_MS))
        vals = true + np.abs(rng.normal(0.0, 0.01, 9))
        slow = rng.choice(9, size=3, replace=False)
        vals[slow] *= 1.0 + rng.uniform(0.2, 0.6, 3)
        variants.append(VariantRounds(f"v{j}", c, tuple(vals)))
    sol = solve_robust(variants, NAMES, seed=6)
    whole = sum(TRUE_MS)
    for layer, true in zip(sol.layers, TRUE_MS, strict=True):
        assert abs(layer.cost_ms - true) <= 0.05 * true + 0.02, (layer, true)
    assert unresolved_layers(sol, whole) == {}
