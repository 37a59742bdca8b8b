"""An emulated meter fed by the emulated phone's physics, read through the real driver: the
metered energy is the SoC model's energy (its step history integrated exactly) within 1%."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from support.timing import measure_until_within

from perflab.emulator.meters import PhysicsLoad, Ppk2Emulator
from perflab.emulator.meters.physics_load import usb_power_w
from perflab.emulator.physics import Load, PhysicsDriver, PhysicsParams, initial_state
from perflab.emulator.profiles import load_profile
from perflab.telemetry.meters.drivers import Ppk2Meter
from perflab.telemetry.meters.recorder import MeterRecorder, MeterRecording


def driver() -> PhysicsDriver:
    params = PhysicsParams.from_profile(load_profile("pixel7"))
    return PhysicsDriver(params, initial_state(params, 80.0))


def _metered_against_truth() -> tuple[float, float, MeterRecording, int]:
    """Bursts of work for 1.5 s on a fresh phone model, metered: (metered mJ, the model's exact mJ over
    the same window, the recording, how many distinct power levels the model went through)."""
    drv = driver()
    load = PhysicsLoad(drv, supply_volts=3.7)
    done = threading.Event()

    def work() -> None:  # bursts of CPU work, as paced inference gives the model
        k = 0
        while not done.is_set():
            drv.add_work(Load(cpu_core_s=0.02 if k % 3 == 0 else 0.0, gpu_busy_s=0.01 if k % 5 == 0 else 0.0))
            k += 1
            done.wait(0.01)

    with Ppk2Emulator(load, block_when_full=True) as em, Ppk2Meter(em.path) as meter:
        rec = MeterRecorder(meter, interval_s=0.05, vdd_mv=3700)
        rec.start()
        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        t_a = time.monotonic() + 0.2
        while time.monotonic() < t_a + 1.5:
            done.wait(0.05)
        t_b = time.monotonic()
        done.set()
        worker.join()
        rec.ended.wait(0.2)  # a tail, as a run keeps: the stream trails the model by up to 20 ms
        recording = rec.stop()
    assert recording.complete, recording.missing_reason
    measured = recording.energy(t_a, t_b)
    assert measured.covered_fraction == 1.0
    levels = len({round(w, 6) for _, _, w in drv.power_history()})
    return measured.mj, load.soc_energy_j(t_a, t_b) * 1000.0, recording, levels


@pytest.mark.timeout(300)
def test_a_ppk2_fed_by_the_physics_measures_the_soc_energy_within_1_percent() -> None:
    # the emulated stream is paced by the host's clock: a busy host can disturb one attempt (it was
    # 1.7% off at load 9), never all three; the 1% bound is not widened
    mj, truth_mj, recording, levels = measure_until_within(
        _metered_against_truth,
        lambda r: [] if abs(r[0] - r[1]) <= 0.01 * r[1] else [f"{r[0]:.1f} mJ metered, {r[1]:.1f} mJ true"])
    assert levels > 3  # the power really varied
    assert mj == pytest.approx(truth_mj, rel=0.01)
    assert np.allclose(recording.volts, 3.7)


def test_the_truth_is_refused_outside_the_history() -> None:
    drv = driver()
    load = PhysicsLoad(drv)
    drv.advance(force=True)  # one step now (plain reads this soon after the start share the start)
    t0, t1, _ = drv.power_history()[0]
    with pytest.raises(ValueError):
        load.soc_energy_j(t0 - 1.0, t1)


def test_a_usb_meter_sees_the_charger_path() -> None:
    st = initial_state(PhysicsParams.from_profile(load_profile("pixel7")), 50.0)
    charging = replace(st, power_w=2.0, battery_current_ua=500_000.0, voltage_uv=4_000_000.0)
    assert usb_power_w(charging) == pytest.approx(4.0)  # the load plus 2 W into the battery
    suspended = replace(st, power_w=2.0, battery_current_ua=-500_000.0, voltage_uv=4_000_000.0,
                        charging_suspended=True)
    assert usb_power_w(suspended) == pytest.approx(0.0)  # the battery carries it all
    full = replace(st, power_w=2.0, battery_current_ua=0.0, voltage_uv=4_300_000.0)
    assert usb_power_w(full) == pytest.approx(2.0)  # on USB, battery idle: the meter sees the load alone


def test_the_usb_meter_follows_the_load_while_charging() -> None:
    """Issue 22: the emulated USB meter read the charge current × V whatever the load. The charger
    supplies the load and the charge current: more load, more on the meter, the battery's the same."""
    from perflab.emulator import physics as ph

    p = PhysicsParams.from_profile(load_profile("pixel7"))
    s = ph.initial_state(p, 50.0)
    idle = ph.step(s, ph.Load(), p, 1.0)
    busy = ph.step(s, ph.Load(cpu_core_s=4.0), p, 1.0)
    assert usb_power_w(busy) - usb_power_w(idle) == pytest.approx(busy.power_w - idle.power_w, rel=1e-6)
    assert busy.power_w > idle.power_w and busy.battery_current_ua == pytest.approx(idle.battery_current_ua)
