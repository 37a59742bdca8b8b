"""Recording a meter beside a workload: energy on the host clock, and a meter that fails mid-run
ends the stream with its reason while the samples so far are kept."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from support.waiting import wait_until

from perflab.emulator.meters import PeriodicLoad, Ppk2Emulator, ScpiEmulator, StepLoad, UmEmulator
from perflab.telemetry.meters.drivers import MeterType, Ppk2Meter, ScpiMeter, UmMeter
from perflab.telemetry.meters.recorder import MeterRecorder

LOAD = PeriodicLoad(supply_volts=3.9, base_amps=0.2, burst_amps=0.4, period_s=1 / 30, width_s=0.012)


def _wait_until(predicate: Callable[[], bool]) -> None:
    """The recorder's progress, awaited (a minute: a guard against a hang, not a speed check)."""
    assert wait_until(predicate, timeout_s=60, poll_s=0.02), "the meter stopped streaming"


def test_ppk2_recording_energy_matches_truth() -> None:
    with Ppk2Emulator(LOAD, block_when_full=True) as em, Ppk2Meter(em.path) as meter:
        rec = MeterRecorder(meter, interval_s=0.02, vdd_mv=3900)
        rec.start()
        _wait_until(lambda: meter.decoder.samples_decoded >= 50_000)
        got = rec.stop()
    assert got.complete and got.meter == "ppk2" and got.samples_lost == 0
    w = got.energy()
    # the recording's time axis is the host's; the truth is over the same number of samples
    n = got.t_s.shape[0]
    truth_j = LOAD.energy_j(em.stream_t0_s, em.stream_t0_s + (n - 1) * 1e-5)
    assert w.mj == pytest.approx(truth_j * 1e3, rel=0.01)


def test_polled_um_recording_and_unplug_keeps_samples_with_reason() -> None:
    steady = StepLoad(5.0, 0.5)
    with UmEmulator(steady, "um34c", reply_delay_s=0.0) as em, UmMeter(em.path, MeterType.UM34C) as meter:
        rec = MeterRecorder(meter, interval_s=0.01)
        rec.start()
        _wait_until(lambda: em.polls >= 5)
        em.unplug()
        rec.ended.wait()
        got = rec.stop()
    assert not got.complete and got.missing_reason is not None
    assert got.t_s.shape[0] >= 5
    assert got.energy().mean_mw == pytest.approx(2500.0)
    assert "USB VBUS" in got.notes[0]


def test_elog_recording() -> None:
    with ScpiEmulator(LOAD, "n6705c") as em, ScpiMeter(em.path) as meter:
        rec = MeterRecorder(meter, interval_s=0.05, elog_period_s=0.002)
        rec.start()
        _wait_until(lambda: em.elog_fetched >= 200)
        got = rec.stop()
    assert got.complete and got.t_s.shape[0] >= 200
    assert got.energy().mean_ma == pytest.approx(1e3 * LOAD.charge_c(0, 3.0) / 3.0, rel=0.05)


def test_ppk2_loss_beyond_the_counter_is_noted() -> None:
    with Ppk2Emulator(LOAD, block_when_full=True) as em, Ppk2Meter(em.path) as meter:
        rec = MeterRecorder(meter, interval_s=0.02, vdd_mv=3900)
        rec.start()
        _wait_until(lambda: meter.decoder.samples_decoded >= 20_000)
        em.drop_samples(50_000)  # 0.5 s gone: the counter sees 50000 mod 64 = 16
        _wait_until(lambda: meter.decoder.samples_lost > 0 and meter.decoder.samples_decoded >= 40_000)
        got = rec.stop()
    assert got.samples_lost == 50_000 % 64
    assert got.notes and "modulo 64" in got.notes[0]


def test_ppk2_without_loss_has_no_clock_note() -> None:
    with Ppk2Emulator(LOAD, block_when_full=True) as em, Ppk2Meter(em.path) as meter:
        rec = MeterRecorder(meter, interval_s=0.02, vdd_mv=3900)
        rec.start()
        _wait_until(lambda: meter.decoder.samples_decoded >= 30_000)
        got = rec.stop()
    assert em.samples_dropped == 0 and got.notes == ()


class _LaggingLoad(PeriodicLoad):
    """A load whose power is known only ``lag_s`` behind real time (like the phone's physics on a
    busy host): the emulated PPK2 sends each sample only once it is known."""

    lag_s = 0.3

    def settle(self, now_s: float) -> float:
        return now_s - self.lag_s


# 0.3 s: samples still in flight at the stop; 1.6 s: behind by more than the recorder waits for
# a silent stream, but still delivering (a loaded host catching up), so drained on, and a
# steady lag is not an unseen loss
@pytest.mark.parametrize("lag_s", [0.3, 1.6])
def test_ppk2_stop_drains_a_stream_behind_it_while_it_delivers(lag_s: float) -> None:
    load = _LaggingLoad(supply_volts=3.9, base_amps=0.2, burst_amps=0.4, period_s=1 / 30, width_s=0.012)
    load.lag_s = lag_s
    with Ppk2Emulator(load, block_when_full=True) as em, Ppk2Meter(em.path) as meter:
        rec = MeterRecorder(meter, interval_s=0.02, vdd_mv=3900)
        rec.start()
        _wait_until(lambda: meter.decoder.samples_decoded >= 30_000)
        end_s = time.monotonic()  # the workload's window ends here; its last lag_s is still to come
        got = rec.stop()
    assert got.complete and got.samples_lost == 0 and got.notes == ()
    w = got.energy(float(got.t_s[0]), end_s)
    assert w.covered_fraction == pytest.approx(1.0) and w.gaps == ()


class _StallingLoad(PeriodicLoad):
    """A load whose power stops being known at ``frozen_s`` (a phone model that hung): the
    emulated PPK2 goes silent there."""

    frozen_s = float("inf")

    def settle(self, now_s: float) -> float:
        return min(now_s, self.frozen_s)


def test_ppk2_stream_that_goes_silent_is_given_up_and_says_how_far_behind() -> None:
    load = _StallingLoad(supply_volts=3.9, base_amps=0.2, burst_amps=0.4, period_s=1 / 30, width_s=0.012)
    with Ppk2Emulator(load, block_when_full=True) as em, Ppk2Meter(em.path) as meter:
        rec = MeterRecorder(meter, interval_s=0.02, vdd_mv=3900)
        rec.start()
        _wait_until(lambda: meter.decoder.samples_decoded >= 30_000)
        load.frozen_s = em.now_s()
        _wait_until(lambda: em.now_s() - load.frozen_s > 0.5)  # half a second the stream never sends
        got = rec.stop()
    assert got.complete and got.samples_lost == 0
    assert len(got.notes) == 1 and "behind the stop" in got.notes[0] and "not covered" in got.notes[0]
    behind_s = float(got.notes[0].split("still ")[1].split(" s ")[0])
    assert behind_s >= 0.5
