"""The sampler's line format, battery conventions and window summaries (pure), and the local
sampler against real processes on this machine."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from perflab.analysis.timeline import parse_sampler_output, process_window, zone_temp_c
from perflab.lab.costs import convention_record, convention_warnings, sampler_rate_warnings
from perflab.telemetry.battery import ConventionSource, counter_slope_ua, decide_convention
from perflab.telemetry.local import LocalSampler
from perflab.telemetry.summary import StreamConfig, summarize_window


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


def test_phone_script_lines_by_name_and_raw_proc_stat_read_like_the_per_line_form() -> None:
    # what sampler.sh prints (one read per group) and the per-line form give the same timeline
    grouped = parse_sampler_output([
        "T 5.00", "cpu  10 0 5 80 5 0 0 0 0 0", "cpu0 5 0 2 40 3 0 0 0 0 0",
        "freq policy0=1804000 policy4= policy6=2850000", "tz G3D=41000 skin= disabled=-273000",
        "bat c=-512000 v=3850000 ch= te=305 st=Not charging", "self 12 3 4 1 100", "mem MemAvailable: 2097152",
        "gpu pct", "gpu kgsl 0 0", "gpufreq", "rss", "mem", "self 100",  # not read this tick: printed empty
    ])
    per_line = parse_sampler_output([
        "T 5.00", "cpu cpu 10 0 5 80 5 0 0 0 0 0", "cpu cpu0 5 0 2 40 3 0 0 0 0 0",
        "freq policy0 1804000", "freq policy6 2850000", "tz G3D 41000",
        "bat -512000 3850000 x 305 Not charging", "self 16 4 100", "mem 2097152",
    ])
    assert grouped.garbage_lines == per_line.garbage_lines == 0
    for attr in ("cpu_ticks", "freq_khz", "temp_c", "bat_current_raw", "bat_voltage_uv", "bat_charge_uah",
                 "bat_temp_c", "bat_status", "self_cpu_s", "mem_avail_kb", "gpu_busy_pct"):
        assert getattr(grouped, attr) == getattr(per_line, attr), attr
    assert grouped.bat_status == [(5.0, "Not charging")] and grouped.self_cpu_s == [(5.0, 0.2)]
    assert not grouped.gpu_freq_raw and not grouped.rss_kb
    bad = parse_sampler_output(["T 1", "freq policy0=abc", "tz =41000", "bat c=1 v=2", "self 1 2 3 4",
                                "mem MemFree: 12", "gpu what"])
    assert bad.garbage_lines == 6 and not bad.freq_khz and not bad.temp_c and not bad.mem_avail_kb


def test_zone_units() -> None:
    assert zone_temp_c(41000) == 41.0 and zone_temp_c(41) == 41 and zone_temp_c(-273000) is None


@pytest.mark.parametrize(("unit", "sign"), [("ua", -1), ("ua", 1), ("ma", -1), ("ma", 1)])
def test_unit_and_sign_from_the_charge_counter(unit: str, sign: int) -> None:
    tl = parse_sampler_output(battery_run(120, unit=unit, sign=sign))
    conv = decide_convention(tl.bat_current_raw, charge=tl.bat_charge_uah, voltage=[v for _, v in tl.bat_voltage_uv])
    assert conv.ua_per_unit == (1.0 if unit == "ua" else 1000.0) and conv.discharge_sign == sign
    assert conv.unit_source is ConventionSource.CHARGE_COUNTER and conv.sign_source is ConventionSource.CHARGE_COUNTER
    assert conv.counter is not None and conv.counter.slope_ua == pytest.approx(-500_000.0, rel=1e-4)
    assert conv.counter.r < -0.99 and conv.counter.n == 120 and conv.n == 120
    assert conv.uv_per_unit == 1.0 and conv.voltage_source is ConventionSource.HEURISTIC  # 3.8e6 → µV
    assert "charge counter" in conv.how and not conv.disagreements
    assert conv.discharge_ma(tl.bat_current_raw[0][1]) == pytest.approx(500.0)
    # the stored record carries the same numbers, and the summary computed current with them
    rec = convention_record(conv)
    assert (rec.ua_per_unit, rec.discharge_sign, rec.uv_per_unit) == (conv.ua_per_unit, sign, 1.0)
    assert rec.unit_source == "charge_counter" and rec.counter_n == 120 and rec.counter_slope_ua is not None
    s = summarize_window(tl, StreamConfig())
    assert s.convention == conv and s.current_ma == pytest.approx(500.0, rel=0.01)


def load_step_run(*, unit: str, sign: int, idle_ma: float = 150.0, busy_ma: float = 900.0) -> list[str]:
    """A phone whose charge counter does not move (coarse gauge): at rest, then the measured process runs (CPU
    busy, more current), then at rest again — a known load step."""
    lines: list[str] = []
    busy = idle = 0
    for k in range(30):
        loaded = 10 <= k < 20
        busy += 90 if loaded else 5
        idle += 10 if loaded else 95
        ma = busy_ma if loaded else idle_ma
        raw = ma * (1000.0 if unit == "ua" else 1.0) * sign
        lines += [f"T {50 + 0.1 * k:.2f}", f"cpu cpu {busy} 0 0 {idle} 0 0 0 0", f"bat {raw:.0f} 3850 4000000 300 Discharging"]
        if loaded:
            lines.append("rss 4096")
    return lines


@pytest.mark.parametrize(("unit", "sign"), [("ua", -1), ("ua", 1), ("ma", -1), ("ma", 1)])
def test_sign_from_a_load_step_when_the_counter_does_not_move(unit: str, sign: int) -> None:
    tl = parse_sampler_output(load_step_run(unit=unit, sign=sign))
    s = summarize_window(tl, StreamConfig())
    conv = s.convention
    assert conv is not None and conv.counter is None  # the counter stood still: no slope
    assert conv.discharge_sign == sign and conv.sign_source is ConventionSource.LOAD_STEP
    assert conv.load is not None and conv.load.n == 29 and abs(conv.load.r) > 0.9
    assert conv.ua_per_unit == (1.0 if unit == "ua" else 1000.0) and conv.unit_source is ConventionSource.HEURISTIC
    assert conv.uv_per_unit == 1000.0  # 3850 → mV, from its magnitude
    assert s.current_ma == pytest.approx(900.0) and s.voltage_v == pytest.approx(3.85)


def test_config_overrides_and_the_fallback_heuristic_say_so() -> None:
    steady = [(0.0, -480.0), (1.0, -520.0)]
    conv = decide_convention(steady, configured_unit="ma", configured_sign=-1, configured_voltage_unit="mv")
    assert (conv.ua_per_unit, conv.discharge_sign, conv.uv_per_unit) == (1000.0, -1, 1000.0)
    assert {conv.unit_source, conv.sign_source, conv.voltage_source} == {ConventionSource.CONFIG}
    assert "device config" in conv.how and not conv.disagreements
    guess = decide_convention([(0.0, -480_000.0), (1.0, -520_000.0)])  # no counter, no load: magnitude + kernel ABI
    assert guess.ua_per_unit == 1.0 and guess.discharge_sign == -1 and "guessed" in guess.how and "assumed" in guess.how
    assert guess.unit_source is ConventionSource.HEURISTIC and guess.sign_source is ConventionSource.HEURISTIC
    assert counter_slope_ua([0, 1, 2], [100.0, 100.0, 100.0]) is None


@pytest.mark.parametrize(("unit", "sign"), [("ua", 1), ("ma", -1)])
def test_a_config_the_data_contradicts_wins_and_is_warned_about(unit: str, sign: int) -> None:
    """An explicit config is an override: used as it is, and where the charge counter says otherwise the run
    carries a battery_convention warning with the numbers."""
    tl = parse_sampler_output(battery_run(120, unit=unit, sign=sign))
    wrong_unit = "ma" if unit == "ua" else "ua"
    conv = decide_convention(tl.bat_current_raw, charge=tl.bat_charge_uah, configured_unit=wrong_unit,
                             configured_sign=-sign)
    assert conv.ua_per_unit == (1000.0 if wrong_unit == "ma" else 1.0) and conv.discharge_sign == -sign
    assert len(conv.disagreements) == 2 and "charge counter" in conv.disagreements[0]
    warnings = convention_warnings(conv)
    assert [w.code for w in warnings] == ["battery_convention"] * 2 and "check it" in warnings[1].message


def test_sampler_rate_and_gaps_are_measured_and_warned_about() -> None:
    """Asked 10 Hz: a sampler that ticked at 10 Hz is quiet; one that stalled for a second in the window, or ran
    at 5 Hz, is a warning with the numbers."""
    def ticks(ts: list[float]) -> list[str]:
        return [x for t in ts for x in (f"T {t:.3f}", "rss 100")]
    even = summarize_window(parse_sampler_output(ticks([i * 0.1 for i in range(21)])), StreamConfig())
    assert even.sample_rate_hz == pytest.approx(10.0) and even.sample_max_gap_ms == pytest.approx(100.0)
    assert sampler_rate_warnings(even.sample_rate_hz, even.sample_max_gap_ms, 100.0) == []
    stalled = summarize_window(parse_sampler_output(ticks([0.0, 0.1, 0.2, 1.3, 1.4, 1.5])), StreamConfig())
    assert stalled.sample_max_gap_ms == pytest.approx(1100.0) and stalled.sample_ticks == 6
    w = sampler_rate_warnings(stalled.sample_rate_hz, stalled.sample_max_gap_ms, 100.0)
    assert [x.code for x in w] == ["sampler_rate", "sampler_stall"]  # 3.3 Hz and an 11× gap
    assert "1100 ms" in w[1].message and "11.0×" in w[1].message
    slow = summarize_window(parse_sampler_output(ticks([i * 0.2 for i in range(11)])), StreamConfig())
    assert [x.code for x in sampler_rate_warnings(slow.sample_rate_hz, slow.sample_max_gap_ms, 100.0)] == [
        "sampler_rate"]  # 5 Hz of 10, gaps only 2×
    one = summarize_window(parse_sampler_output(ticks([0.0, 0.0])), StreamConfig())
    assert one.sample_rate_hz is None


def test_energy_from_battery_counters_over_60_s_at_1_hz_is_within_5_percent() -> None:
    tl = parse_sampler_output(battery_run(61, dt_s=1.0, current_ma=500.0))
    s = summarize_window(tl, StreamConfig())
    assert s.energy is not None and s.current_ma == pytest.approx(500.0, rel=0.05)
    truth_mj = 500e-3 * 3.8 * 60.0 * 1000.0
    assert s.energy.mj == pytest.approx(truth_mj, rel=0.05)
    assert s.power_mw == pytest.approx(1900.0, rel=0.05) and s.charging is False
    # the only zone is the skin: Δ°C falls back to the battery's temperature, named; the skin is its own figure
    assert s.temp_zone == "battery (power_supply temp)" and s.temp_max_c == pytest.approx(31.2)
    assert s.skin_zone == "skin" and s.skin_max_c == pytest.approx(35.6)


def test_temperature_is_the_soc_zone_and_the_skin_its_own_figure() -> None:
    """Δ°C comes from the CPU zone whatever the order the zones are listed in (the config's gate zone is the
    skin: it is not the cost's sensor); the skin is a second, named figure; no CPU/SoC zone and no battery
    temperature: missing with the zones that were read."""
    zones = [f"tz quiet_therm={30000 + 10 * k} battery=29000 tsens_tz_sensor1={36000 + 100 * k} "
             f"cpu-1-0={38000 + 125 * k}" for k in range(5)]
    lines = [x for k in range(5) for x in (f"T {k}", zones[k], "rss 100")]
    s = summarize_window(parse_sampler_output(lines), StreamConfig(temp_zone="quiet_therm"))
    assert (s.temp_zone, s.temp_start_c, s.temp_max_c) == ("cpu-1-0", 38.0, 38.5)
    assert (s.skin_zone, s.skin_start_c, s.skin_max_c) == ("quiet_therm", 30.0, pytest.approx(30.04))
    soc_only = [ln.replace("cpu-1-0", "gpuss-0") for ln in lines]
    assert summarize_window(parse_sampler_output(soc_only), StreamConfig()).temp_zone == "tsens_tz_sensor1"
    skin_only = summarize_window(parse_sampler_output(
        [x for k in range(3) for x in (f"T {k}", "tz quiet_therm=30000", "rss 100")]), StreamConfig())
    assert s.missing.get("skin_c") is None and skin_only.temp_max_c is None
    assert skin_only.missing["temp_c"] == "no CPU/SoC thermal zone among quiet_therm and no battery temperature"


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
