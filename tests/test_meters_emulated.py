"""Meter drivers against emulated meters on real pseudo-terminals, opened by pyserial exactly as
a /dev/ttyACM0 would be. Energy is checked against each source's exact ground truth."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
from support.waiting import wait_until

from perflab.emulator.meters import (
    LiveLoad,
    PeriodicLoad,
    Ppk2Emulator,
    ScpiEmulator,
    Step,
    StepLoad,
    UmEmulator,
)
from perflab.emulator.meters.pty import PtyPort
from perflab.telemetry.clock import align_by_correlation, align_by_markers, rising_edges
from perflab.telemetry.energy import integrate, integrate_period_averages
from perflab.telemetry.meters import (
    MeterGarbageError,
    MeterGoneError,
    MeterNotAnsweringError,
    MeterPortError,
    WrongMeterError,
)
from perflab.telemetry.meters.drivers import MeterType, Ppk2Meter, ScpiMeter, UmMeter, open_meter
from perflab.telemetry.meters.ppk2 import chunks_to_series
from perflab.telemetry.meters.scpi import ElogField, ElogRecord

# 30 fps paced inference: 12 ms bursts of +420 mA on 180 mA idle, at 3.9 V
BURSTS = PeriodicLoad(supply_volts=3.9, base_amps=0.18, burst_amps=0.42, period_s=1 / 30, width_s=0.012, first_s=0.01)
STEADY = StepLoad(supply_volts=5.06, base_amps=0.734)


@pytest.fixture
def silent_port() -> Iterator[PtyPort]:
    port = PtyPort()
    yield port
    port.close()


def _pause() -> None:
    time.sleep(0.02)


def test_ppk2_energy_within_1_percent_of_truth() -> None:
    with Ppk2Emulator(BURSTS, block_when_full=True) as em, Ppk2Meter(em.path) as meter:
        assert meter.calibration.hw == 9173
        meter.start(vdd_mv=3900)
        chunks = meter.read_samples(60_000)
        meter.stop()
        t_s, amps = chunks_to_series(chunks)
        measured = integrate(t_s, amps, 3.9)
        truth_j = BURSTS.energy_j(em.stream_t0_s + t_s[0], em.stream_t0_s + t_s[-1])
        assert measured.mj == pytest.approx(truth_j * 1e3, rel=0.01)
        assert meter.summary.samples_lost == 0 and meter.summary.garbage_bytes == 0
        assert measured.gaps == ()
        # the burst marker rides on logic bit 0, in step with the current
        logic = np.concatenate([c.logic for c in chunks])
        assert np.all(amps[logic == 1] > 0.5) and np.all(amps[logic == 0] < 0.2)


def test_ppk2_dropped_samples_and_garbage_are_counted() -> None:
    with Ppk2Emulator(BURSTS, block_when_full=True) as em, Ppk2Meter(em.path) as meter:
        meter.start(vdd_mv=3900)
        meter.read_samples(5_000)
        em.drop_samples(17)
        meter.read_samples(5_000)
        em.inject_garbage(b"\x5a\xa5\x00")
        meter.read_samples(5_000)
        s = meter.summary
        assert s.samples_lost == 17
        assert s.garbage_bytes == 3
        assert meter.decoder.gaps[0].lost_samples == 17
        assert em.samples_dropped == 17


def test_ppk2_unplug_mid_run_is_meter_gone() -> None:
    with Ppk2Emulator(BURSTS) as em, Ppk2Meter(em.path) as meter:
        meter.start()
        meter.read_samples(2_000)
        em.unplug()
        with pytest.raises(MeterGoneError):
            for _ in range(1000):
                meter.poll()
                _pause()


def test_um_readings_follow_the_source() -> None:
    with UmEmulator(STEADY, "um25c", reply_delay_s=0.002) as em, UmMeter(em.path, MeterType.UM25C) as meter:
        r = meter.read()
        assert r.volts == pytest.approx(5.06) and r.amps == pytest.approx(0.734)
        assert r.watts == pytest.approx(5.06 * 0.734, abs=0.001)
        # on a busy host the first reply can come after the driver's repoll (0.6 s): the garbage
        # must go before the next poll's reply, not before the late answer to that repoll
        assert wait_until(lambda: em.replies == em.polls, timeout_s=30)
        em.garbage_before_reply = b"\x01\x02\xff\x09"
        again = meter.read()
        assert again.amps == pytest.approx(0.734) and meter.decoder.garbage_bytes == 4
        assert em.polls == 2 + meter.repolls


def test_um_counters_integrate_the_source() -> None:
    with UmEmulator(StepLoad(5.0, 2.0), "um34c", reply_delay_s=0.0) as em, UmMeter(em.path, MeterType.UM34C) as meter:
        first = meter.read()
        assert wait_until(lambda: meter.read().groups[0].energy_mwh >= first.groups[0].energy_mwh + 2,
                          timeout_s=60, poll_s=0.02)  # 10 W: 2 mWh in about a second
        assert meter.read().record_energy_mwh >= 2  # 2 A is over the 0.10 A record threshold


def test_um_model_mismatch_is_wrong_meter() -> None:
    with UmEmulator(STEADY, "um25c", reply_delay_s=0.0) as em, UmMeter(em.path, MeterType.UM34C) as meter:
        with pytest.raises(WrongMeterError) as info:
            meter.read()
        assert info.value.found == "um25c"


@pytest.mark.parametrize(
    ("emulator", "configured", "found"),
    [
        (lambda: UmEmulator(STEADY, "um34c", reply_delay_s=0.0), MeterType.SCPI, "um34c"),
        (lambda: Ppk2Emulator(STEADY), MeterType.UM34C, "ppk2"),
        (lambda: ScpiEmulator(STEADY, "n6705c"), MeterType.PPK2, "scpi:N6705C"),
        (lambda: UmEmulator(STEADY, "um24c", reply_delay_s=0.0), MeterType.PPK2, "um24c"),
    ],
)
def test_wrong_meter_type_names_what_answers(emulator, configured: MeterType, found: str) -> None:  # type: ignore[no-untyped-def]
    with emulator() as em:
        with pytest.raises(WrongMeterError) as info:
            meter = open_meter(em.path, configured, timeout_s=0.3)
            try:
                meter.read_once()
            finally:
                meter.close()
        assert info.value.found == found


@pytest.mark.parametrize("meter_type", list(MeterType))
def test_silent_port_is_not_answering(silent_port: PtyPort, meter_type: MeterType) -> None:
    with pytest.raises(MeterNotAnsweringError):
        meter = open_meter(silent_port.path, meter_type, timeout_s=0.2)
        try:
            meter.read_once()
        finally:
            meter.close()


def test_garbage_replies_are_garbage() -> None:
    with UmEmulator(STEADY, "um34c", reply_delay_s=0.0) as em, UmMeter(em.path, MeterType.UM34C, timeout_s=0.3) as meter:
        em.reply_garbage = bytes(range(0x20, 0x7F)) * 2
        with pytest.raises(MeterGarbageError):
            meter.read()


def test_missing_port_is_port_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MeterPortError):
        open_meter(str(tmp_path / "ttyACM9"), MeterType.UM34C)


@pytest.mark.parametrize(("model", "family"), [("66319d", "keysight-66319"), ("dp832", "rigol-dp800"),
                                               ("n6705c", "keysight-n6705")])
def test_scpi_polled_reading(model: str, family: str) -> None:
    with ScpiEmulator(STEADY, model) as em, ScpiMeter(em.path) as meter:
        got = meter.read_once()
        assert got["family"] == family
        assert (got["volts"], got["amps"]) == (pytest.approx(5.06), pytest.approx(0.734))
        if model == "66319d":
            assert "SYST:REM" in em.commands


@pytest.mark.parametrize("real", [True, False])
def test_scpi_elog_energy_within_1_percent_of_truth(real: bool) -> None:
    period_s = 0.005
    with ScpiEmulator(BURSTS, "n6705c") as em, ScpiMeter(em.path) as meter:
        meter.start_elog(period_s, voltage=True, real=real)
        records: list[ElogRecord] = []
        deadline = time.monotonic() + 60  # a guard against a hang only: 80 records take 0.4 s
        while len(records) < 80:
            assert time.monotonic() < deadline, f"only {len(records)} ELOG records in 60 s"
            records += meter.fetch_elog(1000)
            _pause()
        elog_t0_s = em.elog_t0_s  # before ABOR:ELOG clears it
        meter.stop_elog()
        assert elog_t0_s is not None
        amps = [r.amps for r in records]
        volts = [r.values[ElogField.VOLT_AVG] for r in records]
        measured = integrate_period_averages(0.0, period_s, amps, volts)
        truth_j = BURSTS.energy_j(elog_t0_s, elog_t0_s + len(records) * period_s)
        assert measured.mj == pytest.approx(truth_j * 1e3, rel=0.01)
        assert [r.index for r in records] == list(range(len(records)))


def test_scpi_unplug_mid_run_is_meter_gone() -> None:
    with ScpiEmulator(STEADY, "n6705c") as em, ScpiMeter(em.path) as meter:
        meter.read()
        em.unplug()
        with pytest.raises(MeterGoneError):
            for _ in range(1000):
                meter.read()


@pytest.mark.parametrize(
    ("make", "meter_type"),
    [
        (lambda: UmEmulator(STEADY, "um34c", reply_delay_s=0.0, transport="tcp"), MeterType.UM34C),
        (lambda: ScpiEmulator(STEADY, "dp832", transport="tcp"), MeterType.SCPI),
        (lambda: Ppk2Emulator(STEADY, transport="tcp"), MeterType.PPK2),
    ],
)
def test_socket_urls_work_like_ports(make, meter_type: MeterType) -> None:  # type: ignore[no-untyped-def]
    with make() as em:
        assert em.path.startswith("socket://127.0.0.1:")
        meter = open_meter(em.path, meter_type)
        try:
            reading = meter.read_once()
            assert reading["amps"] == pytest.approx(0.734, rel=0.002)
            em.unplug()
            with pytest.raises(MeterGoneError):
                for _ in range(1000):
                    meter.read_once()
                    _pause()
        finally:
            meter.close()


def test_ppk2_stream_aligns_to_the_load_schedule() -> None:
    """The meter's clock starts at AVERAGE_START; the schedule is on the emulator's clock.
    Correlation of the measured current and the marker edges both recover that offset."""
    rng = np.random.default_rng(11)
    starts = np.cumsum(rng.uniform(0.02, 0.05, 40))
    steps = tuple(Step(float(s), float(s + rng.uniform(0.004, 0.012)), 0.3) for s in starts)
    load = StepLoad(supply_volts=3.9, base_amps=0.05, steps=steps)
    with Ppk2Emulator(load, block_when_full=True) as em, Ppk2Meter(em.path) as meter:
        meter.start(vdd_mv=3900)
        chunks = meter.read_samples(100_000)
        truth_lag_s = em.stream_t0_s
    t_meter, amps = chunks_to_series(chunks)
    t_ref = np.arange(0.0, float(starts[-1]) + 0.05, 0.001)
    span = float(t_meter[-1])
    ok = (t_ref >= truth_lag_s - 0.5) & (t_ref <= truth_lag_s + span + 0.5)
    al = align_by_correlation(t_ref[ok], load.amps(t_ref[ok]), t_meter[::10], amps[::10],
                              max_lag_s=truth_lag_s + 0.5, resolution_s=0.0005)
    assert al.lag_s == pytest.approx(truth_lag_s, abs=0.0005)
    assert al.correlation > 0.95
    edges = rising_edges(t_meter, np.concatenate([c.logic for c in chunks]) & 1, 0.5)
    marks = align_by_markers([s.start_s for s in steps], edges, max_lag_s=truth_lag_s + 0.5)
    assert marks.lag_s == pytest.approx(truth_lag_s, abs=2e-5)
    assert marks.n_pairs == edges.size > 5


def test_ppk2_left_streaming_by_a_previous_session_opens_cleanly() -> None:
    with Ppk2Emulator(STEADY) as em:
        crashed = Ppk2Meter(em.path)
        crashed.start()
        crashed.read_samples(3_000)
        crashed.port.close()  # gone without AVERAGE_STOP: the meter keeps streaming
        with Ppk2Meter(em.path) as meter:
            assert meter.calibration.hw == 9173
            meter.start()
            assert meter.read_once()["amps"] == pytest.approx(0.734, rel=0.002)


def test_um_polls_again_when_the_meter_eats_a_command() -> None:
    with UmEmulator(STEADY, "um34c", reply_delay_s=0.0) as em, UmMeter(em.path, MeterType.UM34C, timeout_s=2.0) as meter:
        meter.read()
        em.eat_next = 1
        second = meter.read()  # eaten, then polled again
        assert second.amps == pytest.approx(0.734)
        assert em.eaten == 1 and meter.repolls == 1


def test_live_load_energy_within_1_percent_of_what_was_fed() -> None:
    """A load read live (as from the emulated phone's physics) through an emulated PPK2."""
    state = {"watts": 0.8}
    load = LiveLoad(lambda: state["watts"], supply_volts=3.9)
    with Ppk2Emulator(load, block_when_full=True) as em, Ppk2Meter(em.path) as meter:
        meter.start(vdd_mv=3900)
        chunks = meter.read_samples(20_000)
        state["watts"] = 2.4  # the workload starts
        chunks += meter.read_samples(30_000)
        state["watts"] = 1.2
        chunks += meter.read_samples(20_000)
    t_s, amps = chunks_to_series(chunks)
    measured = integrate(t_s, amps, 3.9)
    truth_j = load.energy_j(em.stream_t0_s + t_s[0], em.stream_t0_s + t_s[-1])
    assert measured.mj == pytest.approx(truth_j * 1e3, rel=0.01)
    assert float(np.max(amps)) == pytest.approx(2.4 / 3.9, rel=0.01)
