"""The sampler's line format, battery conventions and window summaries (pure), and the local
sampler against real processes on this machine."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from perflab.analysis.timeline import parse_sampler_output, zone_temp_c
from perflab.telemetry.battery import counter_slope_ua, decide_convention
from perflab.telemetry.local import LocalSampler
from perflab.telemetry.summary import StreamConfig, process_window, summarize_window


def battery_run(n: int, *, dt_s: float = 1.0, current_ma: float = 500.0, unit: str = "ua", sign: int = -1,
                volts: float = 3.8, status: str = "Discharging", rss_from: int = 0) -> list[str]:
    """Sampler output of a phone drawing ``current_ma`` for ``n`` ticks, as its kernel reports it."""
    raw = current_ma * (1000.0 if unit == "ua" else 1.0) * sign
    charge_uah = 3_000_000.0
    lines: list[str] = []
    for k in range(n):
        t = 100.0 + k * dt_s
        lines += [f"T {t:.2f}", f"cpu cpu {100 * k} 0 {10 * k} {50 * k} 0 0 0 0 0 0",
                  f"bat {raw:.0f} {volts * 1e6:.0f} {charge_uah:.0f} 312 {status}", f"tz skin {35000 + 10 * k}"]
        if k >= rss_from:
            lines.append(f"rss {2048 + k}")
        charge_uah -= current_ma * 1000.0 * dt_s / 3600.0
    return lines


def test_parser_reads_every_record_and_counts_garbage() -> None:
    tl = parse_sampler_output([
        "E gpu /sys/kernel/gpu/gpu_busy is not readable", "P 4242", "T 12.50",
        "cpu cpu 10 0 5 80 5 0 0 0 0 0", "cpu cpu0 5 0 2 40 3 0 0 0 0 0", "freq policy0 1804000",
        "gpu kgsl 25000 100000", "gpu kgsl 0 0", "gpu pct 37%", "gpufreq 585000000", "rss 4096", "mem 2097152",
        "tz G3D 41000", "tz disabled -273000", "bat -512000 3850000 2900000 305 Discharging", "self 12 3 100",
        "rapl intel-rapl:0 123456", "this is not a sampler line", "rss not-a-number",
    ])
    assert tl.ticks == [12.5] and tl.garbage_lines == 2 and tl.sampler_pid == 4242
    assert tl.missing == {"gpu": "/sys/kernel/gpu/gpu_busy is not readable"}
    assert tl.cpu_ticks["cpu"] == [(12.5, (15, 100))] and "cpu0" in tl.cpu_ticks
    assert [v for _, v in tl.gpu_busy_pct] == [25.0, 37.0]  # "0 0" (GPU off) gives no sample
    assert tl.temp_c == {"G3D": [(12.5, 41.0)]}  # a disabled zone's -273000 is dropped
    assert tl.bat_current_raw == [(12.5, -512000.0)] and tl.bat_temp_c == [(12.5, 30.5)]
    assert tl.self_cpu_s == [(12.5, 0.15)] and tl.rapl_uj["intel-rapl:0"] == [(12.5, 123456.0)]


def test_zone_units() -> None:
    assert zone_temp_c(41000) == 41.0 and zone_temp_c(41) == 41 and zone_temp_c(-273000) is None


@pytest.mark.parametrize(("unit", "sign"), [("ua", -1), ("ua", 1), ("ma", -1), ("ma", 1)])
def test_unit_and_sign_from_the_charge_counter(unit: str, sign: int) -> None:
    tl = parse_sampler_output(battery_run(120, unit=unit, sign=sign))
    conv = decide_convention([v for _, v in tl.bat_current_raw], t_s=[t for t, _ in tl.bat_charge_uah],
                             charge_uah=[v for _, v in tl.bat_charge_uah])
    assert conv.ua_per_unit == (1.0 if unit == "ua" else 1000.0) and conv.discharge_sign == sign
    assert "charge counter" in conv.how
    assert conv.discharge_ma(tl.bat_current_raw[0][1]) == pytest.approx(500.0)


def test_config_overrides_and_the_fallback_heuristic_say_so() -> None:
    conv = decide_convention([-480.0, -520.0], configured_unit="ma", configured_sign=-1)
    assert conv.ua_per_unit == 1000.0 and "device config" in conv.how
    guess = decide_convention([-480_000.0, -520_000.0])  # no counter movement: magnitude + kernel ABI
    assert guess.ua_per_unit == 1.0 and guess.discharge_sign == -1 and "guessed" in guess.how and "assumed" in guess.how
    assert counter_slope_ua([0, 1, 2], [100.0, 100.0, 100.0]) is None


def test_energy_from_battery_counters_over_60_s_at_1_hz_is_within_5_percent() -> None:
    tl = parse_sampler_output(battery_run(61, dt_s=1.0, current_ma=500.0))
    s = summarize_window(tl, StreamConfig())
    assert s.energy is not None and s.current_ma == pytest.approx(500.0, rel=0.05)
    truth_mj = 500e-3 * 3.8 * 60.0 * 1000.0
    assert s.energy.mj == pytest.approx(truth_mj, rel=0.05)
    assert s.power_mw == pytest.approx(1900.0, rel=0.05) and s.charging is False
    assert s.temp_zone == "skin" and s.temp_max_c == pytest.approx(35.6)


def test_window_is_where_the_process_lived_and_charging_is_flagged() -> None:
    tl = parse_sampler_output(battery_run(30, rss_from=10, status="Charging"))
    assert process_window(tl) == (110.0, 129.0)
    s = summarize_window(tl, StreamConfig(current_unit="ua", discharge_sign=-1))
    assert s.start_s == 110.0 and s.charging is True and s.cpu_busy_pct == pytest.approx(110 / 160 * 100)
    assert s.rss_peak_mb == pytest.approx((2048 + 29) / 1024)


def test_no_process_no_window_with_reason() -> None:
    s = summarize_window(parse_sampler_output(["T 1", "mem 100"]), StreamConfig())
    assert s.start_s is None and "window" in s.missing


def test_local_sampler_follows_a_real_process(tmp_path: Path) -> None:
    marker = f"perflab-test-{time.monotonic_ns()}"
    sampler = LocalSampler(0.05, marker, tmp_path / "raw.txt")
    sampler.start()
    code = "import time\nx = bytearray(64 * 2**20)\nt = time.monotonic()\nwhile time.monotonic() - t < 0.6: pass"
    subprocess.run([sys.executable, "-c", code, marker], check=True)
    tl = sampler.stop()
    s = summarize_window(tl, StreamConfig())
    assert s.rss_peak_mb is not None and s.rss_peak_mb > 64  # the process's bytearray is in its RSS
    assert s.cpu_busy_pct is not None and 0 < s.cpu_busy_pct <= 100
    assert s.mem_avail_min_mb is not None and s.mem_avail_min_mb > 0
    assert s.sampler_cpu_pct is not None
    assert (tmp_path / "raw.txt").read_text().startswith("E ")  # what this host lacks is said first
    assert "current_ma" in s.missing  # no battery here: missing with the reason, never zero
