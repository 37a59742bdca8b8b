"""Change points over a nightly history and flaky cells: found where they are, not in noise."""

from __future__ import annotations

import numpy as np
import pytest

from perflab.analysis.changepoint import detect_change_points, flaky_cells, noise_sigma, status_flips


def _noise(seed: int, n: int, level: float = 20.0, sigma: float = 0.4) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(0.0, sigma, n)


def test_a_step_is_found_at_its_night_with_its_size() -> None:
    x = np.r_[_noise(1, 10), _noise(2, 10, 24.0)]
    (cp,) = detect_change_points(x.tolist())
    assert cp.index == 10
    assert cp.before == pytest.approx(20.0, abs=0.4) and cp.after == pytest.approx(24.0, abs=0.4)
    assert cp.change_pct == pytest.approx(20.0, abs=3.0) and cp.p_value < 1e-6


def test_two_steps_up_and_back() -> None:
    x = np.r_[_noise(3, 8), _noise(4, 8, 24.0), _noise(5, 8)]
    assert [c.index for c in detect_change_points(x.tolist())] == [8, 16]


def test_calibration_false_steps_in_noise_and_power_on_real_steps() -> None:
    """The rates the module text states: ~1% of pure-noise histories get a false step; a 5σ step
    is found at its night in ≥ 95%."""
    false_steps = sum(len(detect_change_points(_noise(s, 30).tolist())) for s in range(200))
    assert false_steps <= 6
    found = sum([c.index for c in detect_change_points(np.r_[_noise(s, 10), _noise(s + 1000, 10, 22.0)].tolist())]
                == [10] for s in range(100))
    assert found >= 93


def test_one_bad_night_is_not_a_step_and_short_or_flat_histories_have_none() -> None:
    x = _noise(6, 30)
    x[15] = 30.0
    assert detect_change_points(x.tolist()) == []
    assert detect_change_points([20.0] * 5) == []
    assert detect_change_points([20.0] * 12) == []
    flat_step = detect_change_points([20.0] * 6 + [25.0] * 6)  # no noise at all: still a step
    assert [c.index for c in flat_step] == [6]


def test_noise_sigma_ignores_a_step() -> None:
    x = np.r_[_noise(7, 20, sigma=0.5), _noise(8, 20, 30.0, sigma=0.5)]
    assert noise_sigma(x.tolist()) == pytest.approx(0.5, rel=0.35)  # the step does not inflate it
    assert float(np.std(x)) > 4.0


def test_flaky_cells_flip_a_step_does_not() -> None:
    history = {
        ("emu-1", "espcn.fp32.gpu"): ["ok", "failed", "ok", "ok", "failed", "ok"],
        ("emu-1", "espcn.fp32.cpu"): ["ok", "ok", "ok", "failed", "failed", "failed"],  # broke once: a regression
        ("emu-2", "espcn.fp32.cpu"): ["ok"] * 6,
        ("emu-2", "bicubic.fp32.cpu"): ["ok", "skipped", "ok", "ok", "ok", "ok"],
    }
    flaky = flaky_cells(history)
    assert [(f.key, f.flips, f.not_ok) for f in flaky] == [
        (("emu-1", "espcn.fp32.gpu"), 4, 2), (("emu-2", "bicubic.fp32.cpu"), 2, 1)]
    assert status_flips(history[("emu-1", "espcn.fp32.cpu")]) == 1
    assert flaky_cells(history, min_flips=3)[0].statuses == tuple(history[("emu-1", "espcn.fp32.gpu")])
