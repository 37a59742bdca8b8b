"""Clock alignment on synthetic data with a known true offset."""

from __future__ import annotations

import numpy as np
import pytest

from perflab.emulator.meters import StepLoad, periodic_steps
from perflab.telemetry.clock import (
    ClockError,
    RoundTrip,
    align_by_correlation,
    align_by_markers,
    offset_from_round_trips,
    rising_edges,
)

TRUE_OFFSET_S = 1234.5678


def test_min_rtt_offset_is_within_its_uncertainty() -> None:
    rng = np.random.default_rng(7)
    trips = []
    for k in range(50):
        send = 100.0 + k * 0.5
        up, down = rng.exponential(0.004), rng.exponential(0.006)  # asymmetric, like adb
        trips.append(RoundTrip(send, send + up + TRUE_OFFSET_S, send + up + down))
    trips.append(RoundTrip(200.0, 5.0, 199.0))  # receive before send: ignored
    est = offset_from_round_trips(trips)
    assert est.n_round_trips == 50
    assert est.rtt_s == pytest.approx(min(t.rtt_s for t in trips[:50]))
    assert est.uncertainty_s == pytest.approx(est.rtt_s / 2)
    assert abs(est.offset_s - TRUE_OFFSET_S) <= est.uncertainty_s
    assert est.device_to_host_s(est.host_to_device_s(42.0)) == pytest.approx(42.0)
    with pytest.raises(ClockError):
        offset_from_round_trips([RoundTrip(2.0, 1.0, 1.0)])


# inference bursts at 30 fps with irregular widths (so the pattern has one best lag)
_rng = np.random.default_rng(3)
_STEPS = tuple(
    s.__class__(s.start_s, s.start_s + float(_rng.uniform(0.008, 0.02)), s.amps)
    for s in periodic_steps(0.5, 1 / 30, 0.01, 0.4, 60)
)
LOAD = StepLoad(supply_volts=3.9, base_amps=0.15, steps=_STEPS)


def test_correlation_finds_the_meter_lag_and_reports_a_small_residual() -> None:
    true_lag_s = 0.2371  # t_device = t_meter + lag
    t_dev = np.arange(0.0, 3.0, 0.001)
    reference = LOAD.amps(t_dev)  # the device's own record of when it worked
    t_meter = np.arange(-0.5, 3.0, 0.0005)
    noise = np.random.default_rng(5).normal(0, 0.01, t_meter.shape)
    measured = LOAD.amps(t_meter + true_lag_s) + noise
    al = align_by_correlation(t_dev, reference, t_meter, measured, max_lag_s=0.5, resolution_s=0.001)
    assert al.lag_s == pytest.approx(true_lag_s, abs=0.001)
    assert al.correlation > 0.9 and al.residual_fraction < 0.2
    assert 0.005 < al.residual_rms < 0.03  # the 10 mA noise plus edge interpolation, not the 400 mA steps

    unrelated = np.random.default_rng(6).normal(0.3, 0.1, t_meter.shape)
    bad = align_by_correlation(t_dev, reference, t_meter, unrelated, max_lag_s=0.5, resolution_s=0.001)
    assert bad.correlation < 0.3 and bad.residual_fraction > 0.9


def test_flat_reference_cannot_align() -> None:
    t = np.arange(0.0, 1.0, 0.01)
    with pytest.raises(ClockError):
        align_by_correlation(t, np.ones_like(t), t, t, max_lag_s=0.1, resolution_s=0.01)


def test_marker_edges_give_the_lag() -> None:
    true_lag_s = -0.0423
    t_meter = np.arange(0.0, 3.0, 1e-5)
    logic = LOAD.logic(t_meter + true_lag_s)
    edges = rising_edges(t_meter, logic, 0.5)
    assert edges.size == 60
    ref_edges = np.array([s.start_s for s in LOAD.steps])
    al = align_by_markers(ref_edges, edges, max_lag_s=0.1)
    assert al.lag_s == pytest.approx(true_lag_s, abs=2e-5)
    assert al.n_pairs == edges.size and al.residual_rms_s < 2e-5
