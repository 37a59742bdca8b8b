"""The emulated phone's physics as a pure step function, driven with plain numbers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from perflab.emulator import physics as ph
from perflab.emulator.profiles import available_profiles, load_profile


def _params() -> ph.PhysicsParams:
    return ph.PhysicsParams.from_profile(load_profile("pixel7"))


def test_all_profiles_load() -> None:
    names = available_profiles()
    assert {"pixel7", "galaxy_s23", "redmi_note12pro"} <= set(names)
    for n in names:
        prof = load_profile(n)
        assert prof.props["ro.product.model"]
        assert prof.thermal_zones


def test_step_is_deterministic() -> None:
    p = _params()
    s0 = ph.initial_state(p, 50.0)
    a = ph.step(s0, ph.Load(cpu_core_s=8.0), p, 10.0)
    b = ph.step(s0, ph.Load(cpu_core_s=8.0), p, 10.0)
    assert a == b


def test_heats_under_load_and_cools_to_ambient() -> None:
    p = _params()
    s = replace(ph.initial_state(p, 50.0), usb_present=False)
    idle = ph.step(s, ph.Load(), p, 60.0)
    hot = ph.step(s, ph.Load(cpu_core_s=4.0 * 60.0), p, 60.0)
    assert hot.soc_temp_c > idle.soc_temp_c + 5.0
    assert hot.skin_temp_c > idle.skin_temp_c
    cooled = ph.step(hot, ph.Load(), p, 3600.0)
    assert abs(cooled.soc_temp_c - (p.ambient_c + p.idle_power_w * (1 / p.soc_to_skin_w_per_k
                                                                     + 1 / p.skin_to_ambient_w_per_k))) < 0.5


def test_charging_vs_suspended_vs_unplugged() -> None:
    p = _params()
    s = ph.initial_state(p, 50.0)
    charging = ph.step(s, ph.Load(cpu_core_s=1.0), p, 10.0)
    assert charging.battery_current_ua > 0
    assert charging.charge_uah > s.charge_uah
    suspended = ph.step(replace(s, charging_suspended=True), ph.Load(cpu_core_s=1.0), p, 10.0)
    assert suspended.battery_current_ua < 0
    assert suspended.charge_uah < s.charge_uah
    # the battery carries the load: more work, more current
    busy = ph.step(replace(s, charging_suspended=True), ph.Load(cpu_core_s=40.0, gpu_busy_s=10.0), p, 10.0)
    assert busy.battery_current_ua < suspended.battery_current_ua
    assert busy.gpu_busy_fraction == 1.0
    assert busy.energy_from_battery_j > suspended.energy_from_battery_j


def test_charge_counter_integrates_current() -> None:
    p = _params()
    s = replace(ph.initial_state(p, 50.0), charging_suspended=True)
    after = ph.step(s, ph.Load(cpu_core_s=10.0), p, 10.0)
    expected_uah = after.battery_current_ua * 10.0 / 3600.0
    assert abs((after.charge_uah - s.charge_uah) - expected_uah) < abs(expected_uah) * 0.05


def test_voltage_sags_under_load() -> None:
    p = _params()
    s = replace(ph.initial_state(p, 50.0), charging_suspended=True)
    light = ph.step(s, ph.Load(), p, 1.0)
    heavy = ph.step(s, ph.Load(cpu_core_s=8.0), p, 1.0)
    assert heavy.voltage_uv < light.voltage_uv


def test_a_step_carries_every_field_it_does_not_compute() -> None:
    # _substep names every field of the state; the two it does not compute are carried over.
    # A field added to PhysicsState later must be added there too (else it would be reset).
    from dataclasses import fields

    params = _params()
    st = replace(ph.initial_state(params, 50.0), usb_present=False, charging_suspended=True)
    after = ph.step(st, ph.Load(0.1, 0.05), params, 0.1)
    assert after.usb_present is False and after.charging_suspended is True
    computed = {"time_s", "charge_uah", "soc_temp_c", "skin_temp_c", "battery_temp_c", "battery_current_ua",
                "voltage_uv", "power_w", "cpu_busy_cores", "gpu_busy_fraction", "cpu_busy_ticks",
                "cpu_idle_ticks", "energy_from_battery_j"}
    assert {f.name for f in fields(ph.PhysicsState)} == computed | {"usb_present", "charging_suspended"}
    assert after.time_s == st.time_s + 0.1 and after.power_w > 0


def test_the_cpu_and_gpu_zones_read_the_soc_plus_a_hot_spot_of_the_load(tmp_path: Path) -> None:
    """A phone's CPU zone runs hotter than its SoC node by the load on its cores (``cpu_hotspot_c_per_core``
    for every two busy cores, at most four counted), its GPU zone by the GPU's busy fraction; the SoC
    and skin zones read their nodes. (test_sustained's heating phone turns the hot spot off.)"""
    from perflab.emulator.runtime import PhoneRuntime

    rt = PhoneRuntime.create(load_profile("pixel7"), tmp_path)
    pp = rt.profile.physics
    st = replace(ph.initial_state(rt.physics.params, 50), soc_temp_c=40.0, skin_temp_c=33.0,
                 cpu_busy_cores=3.0, gpu_busy_fraction=0.5)
    assert rt.temp_for("soc", st) == 40.0 and rt.temp_for("skin", st) == 33.0
    assert rt.temp_for("cpu", st) == 40.0 + pp.cpu_hotspot_c_per_core * 1.5
    assert rt.temp_for("cpu", replace(st, cpu_busy_cores=8.0)) == 40.0 + pp.cpu_hotspot_c_per_core * 2.0
    assert rt.temp_for("cpu", replace(st, cpu_busy_cores=0.0)) == 40.0
    assert rt.temp_for("gpu", st) == 40.0 + pp.gpu_hotspot_c_at_full_load * 0.5
    assert pp.cpu_hotspot_c_per_core > 0 and pp.gpu_hotspot_c_at_full_load > 0
