"""The unit conversions and small shared rules (perflab.core.units, perflab.analysis.timeline):
each has one home, so each is pinned once here."""

from __future__ import annotations

import pytest

from perflab.analysis.timeline import (
    cpu_busy_per_tick,
    is_rapl_package,
    parse_sampler_output,
    rapl_mw,
    rapl_package_mw_per_tick,
)
from perflab.core import units


def test_conversions_go_the_way_their_names_say() -> None:
    assert units.us_to_ms(1500.0) == 1.5
    assert units.ms_to_us(1.5) == 1500.0
    assert units.ms_to_s(250.0) == 0.25
    assert units.s_to_ms(0.25) == 250.0
    assert units.s_to_us(2.0) == 2e6
    assert units.kib_to_mib(2048.0) == 2.0
    assert units.bytes_to_mib(3 * 1024 * 1024) == 3.0
    assert units.bytes_to_kib(2048) == 2.0
    assert units.kib_to_bytes(2.0) == 2048.0
    assert units.khz_to_mhz(1_800_000.0) == 1800.0
    assert units.hz_to_mhz(585e6) == 585.0
    assert units.millidegrees_to_c(41_500.0) == 41.5
    assert units.mw_ms_to_mj(2000.0, 50.0) == 100.0
    assert units.period_ms_to_hz(50.0) == 20.0


def test_frame_budget_is_1000_over_fps_and_none_when_not_paced() -> None:
    assert units.frame_budget_ms(30.0) == pytest.approx(33.333, abs=1e-3)
    assert units.frame_budget_ms(None) is None
    assert units.frame_budget_ms(0.0) is None


def test_battery_scales() -> None:
    assert units.battery_ma_per_raw(1000.0, -1) == -1.0  # a mA kernel that reads negative while discharging
    assert units.volts_per_raw(1000.0) == 1e-3  # voltage_now in mV


def test_cpu_busy_per_tick_skips_intervals_where_no_tick_passed() -> None:
    lines = ["T 1.0", "cpu cpu 10 0 10 80 0 0 0", "T 2.0", "cpu cpu 10 0 10 80 0 0 0",
             "T 3.0", "cpu cpu 40 0 10 100 0 0 0"]
    tl = parse_sampler_output(lines)
    assert cpu_busy_per_tick(tl) == [(3.0, 60.0)]


def test_rapl_power_drops_a_wrapped_counter_and_adds_packages_only() -> None:
    assert rapl_mw((0.0, 1_000_000.0), (1.0, 3_000_000.0)) == 2000.0  # 2 J in 1 s = 2 W
    assert rapl_mw((0.0, 5.0), (1.0, 1.0)) is None  # wrapped
    assert rapl_mw((1.0, 1.0), (1.0, 5.0)) is None  # no time passed
    assert is_rapl_package("intel-rapl:1") and not is_rapl_package("intel-rapl:0:1")
    tl = parse_sampler_output(["T 0.0", "rapl intel-rapl:0 0", "rapl intel-rapl:1 0", "rapl intel-rapl:0:0 0",
                               "T 1.0", "rapl intel-rapl:0 1000000", "rapl intel-rapl:1 500000",
                               "rapl intel-rapl:0:0 900000"])
    assert rapl_package_mw_per_tick(tl) == [(1.0, 1500.0)]
