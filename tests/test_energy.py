"""Energy integration on plain numbers against exact truths."""

from __future__ import annotations

import numpy as np
import pytest

from perflab.emulator.meters import LiveLoad, PeriodicLoad, SampledLoad, StepLoad, periodic_steps
from perflab.telemetry.energy import EnergyError, Gap, integrate, integrate_period_averages


def test_constant_load_irregular_sampling() -> None:
    rng = np.random.default_rng(1)
    t = np.sort(np.concatenate(([0.0, 10.0], rng.uniform(0, 10, 200))))
    w = integrate(t, np.full(t.shape, 0.1), 4.0)
    assert w.mean_ma == pytest.approx(100.0)
    assert w.mean_mw == pytest.approx(400.0)
    assert w.mah == pytest.approx(100.0 * 10 / 3600)
    assert w.mwh == pytest.approx(400.0 * 10 / 3600)
    assert w.mj == pytest.approx(4000.0)
    assert w.mj_per_frame(300) == pytest.approx(4000.0 / 300)
    assert w.mj_per_frame(0) is None
    # 300 frames at 30 fps in 10 s: an hour of video costs 3600 s of this load
    assert w.mah_per_hour_of_video(300, 30.0) == pytest.approx(100.0)


def test_window_edges_are_interpolated() -> None:
    t = np.array([0.0, 1.0, 2.0, 3.0])
    amps = np.array([0.0, 1.0, 2.0, 3.0])  # I = t
    w = integrate(t, amps, 1.0, start_s=0.5, end_s=2.5)
    assert w.mj == pytest.approx((2.5**2 - 0.5**2) / 2 * 1e3)
    assert w.gaps == () and w.covered_fraction == 1.0
    assert w.n_samples == 2


def test_gaps_are_flagged_and_bridged() -> None:
    t = np.concatenate((np.arange(0, 1, 0.01), np.arange(2, 3, 0.01)))
    w = integrate(t, np.full(t.shape, 0.2), 3.0, start_s=-0.5, end_s=3.0)
    assert w.mean_ma == pytest.approx(200.0)
    starts = [g.start_s for g in w.gaps]
    assert starts[0] == -0.5 and w.gaps[1] == Gap(pytest.approx(0.99), 2.0)  # type: ignore[arg-type]
    assert w.gaps[-1].end_s == 3.0
    assert w.covered_fraction == pytest.approx(1 - (0.5 + 1.01 + 0.01) / 3.5, abs=1e-6)


def test_bad_samples_raise_energy_error() -> None:
    with pytest.raises(EnergyError):
        integrate([0.0], [1.0], 1.0)
    with pytest.raises(EnergyError):
        integrate([0.0, 2.0, 1.0], [1.0, 1.0, 1.0], 1.0)
    with pytest.raises(EnergyError):
        integrate([0.0, 1.0], [1.0, 1.0], [1.0, 2.0, 3.0])
    with pytest.raises(EnergyError):
        integrate([0.0, 1.0], [1.0, 1.0], 1.0, start_s=1.0, end_s=1.0)


def _gauge(load: StepLoad, t_s: np.ndarray, average_s: float) -> np.ndarray:
    """What a fuel gauge reports at ``t_s``: the load's mean over the preceding ``average_s``."""
    return np.array([load.charge_c(t - average_s, t) / average_s for t in t_s])


@pytest.mark.parametrize("rate_hz", [1.0, 2.0, 5.0, 10.0])
def test_battery_counter_rates_within_5_percent_over_60_s(rate_hz: float) -> None:
    # 30 fps SR bursts over an idle floor, with a heavier stretch in the middle of the cell
    steps = periodic_steps(0.0, 1 / 30, 0.011, 0.35, 1800) + periodic_steps(20.0, 1 / 30, 0.02, 0.3, 450)
    load = StepLoad(supply_volts=3.85, base_amps=0.21, steps=steps)
    rng = np.random.default_rng(int(rate_hz * 10))
    t = np.arange(0.0, 60.0 + 1e-9, 1 / rate_hz) + rng.uniform(-0.05, 0.05) / rate_hz  # jittered poll
    t = np.clip(t, 0.0, 60.0)
    t[0], t[-1] = 0.0, 60.0
    amps = _gauge(load, t, average_s=1.0)
    w = integrate(t, amps, 3.85, start_s=0.0, end_s=60.0)
    truth_mj = load.energy_j(0.0, 60.0) * 1e3
    assert w.mj == pytest.approx(truth_mj, rel=0.05)


def test_periodic_load_truth_matches_its_steps() -> None:
    periodic = PeriodicLoad(3.9, 0.1, 0.4, 1 / 30, 0.012, first_s=0.25, count=50)
    steps = StepLoad(3.9, 0.1, periodic_steps(0.25, 1 / 30, 0.012, 0.4, 50))
    t = np.linspace(0.0, 2.5, 25_001)
    assert np.array_equal(periodic.amps(t), steps.amps(t))
    for t0, t1 in [(0.0, 2.5), (0.26, 0.27), (0.3, 1.7001), (1.9, 3.0)]:
        assert periodic.energy_j(t0, t1) == pytest.approx(steps.energy_j(t0, t1), rel=1e-9)


def test_sampled_load_truth_is_exact_for_linear_pieces() -> None:
    load = SampledLoad((0.0, 1.0, 3.0), (0.0, 1.0, 1.0), (4.0, 4.0, 2.0))
    assert load.charge_c(0.0, 3.0) == pytest.approx(0.5 + 2.0)
    # P = I*V: 4t on [0,1] -> 2; then V falls linearly 4 -> 2 at I = 1 -> 6
    assert load.energy_j(0.0, 3.0) == pytest.approx(8.0)
    assert load.energy_j(0.5, 2.0) == pytest.approx(4 * (1 - 0.25) / 2 + (4 + 3) / 2)
    with pytest.raises(ValueError):
        SampledLoad((1.0, 0.0), (1.0, 1.0), (1.0, 1.0))


def test_live_load_never_rewrites_what_it_served() -> None:
    power = {"w": 1.0}
    load = LiveLoad(lambda: power["w"], supply_volts=2.0)
    assert load.amps(np.array([0.0, 1.0])).tolist() == [0.5, 0.5]
    power["w"] = 3.0
    # an overlapping query (a meter averaging over a window): served times keep their value
    assert load.amps(np.array([0.5, 1.0, 1.5, 2.0])).tolist() == [0.5, 0.5, 1.5, 1.5]
    assert load.energy_j(0.0, 2.0) == pytest.approx(1.0 * 1.5 + 3.0 * 0.5)
    assert load.charge_c(0.0, 2.0) == pytest.approx((1.5 + 1.5) / 2.0)


def test_period_averages() -> None:
    w = integrate_period_averages(5.0, 0.5, [0.1, 0.3], [4.0, 4.0])
    assert (w.start_s, w.end_s) == (5.0, 6.0)
    assert w.mean_ma == pytest.approx(200.0) and w.mj == pytest.approx(800.0)
    with pytest.raises(EnergyError):
        integrate_period_averages(0.0, 0.0, [1.0], 1.0)
