"""Sustained runs and heat: throttling judged from the part timeline (pure), and a sustained run
on an emulated phone whose physics heats fast (a physics knob), stored beside the burst."""

from __future__ import annotations

import dataclasses
import json
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from support.phones import PhoneFactory

from perflab.analysis.thermal_zones import zone_role_name
from perflab.lab.costs import sustained_applies, sustained_warnings
from perflab.rules.sustained import throttle_analysis
from perflab.scenario.plan import CellSpec
from perflab.scenario.schema import Delegate, Sustained, Variant
from perflab.store.results import SustainedPart

CFG = Sustained(duration_s=600, fps=30, chunks=10, freq_drop_pct=10, latency_drift_pct=10)


def parts(freqs: list[float], busy: list[float], lat: list[float]) -> list[SustainedPart]:
    return [SustainedPart(index=i, start_s=60.0 * i, end_s=60.0 * (i + 1), latency_mean_ms=lat[i], temp_c=30.0 + i,
                          cpu_freq_mhz=freqs[i], device_cpu_busy_pct=busy[i]) for i in range(len(freqs))]


def test_a_clock_capped_while_the_load_stays_is_throttling_with_the_numbers() -> None:
    p = parts([2400.0] * 5 + [1800.0] * 5, [60.0] * 10, [10.0] * 10)
    out, missing, warnings = throttle_analysis(p, CFG)
    assert out["throttled"] is True
    assert out["cpu_freq_early_mhz"] == 2400.0 and out["cpu_freq_late_mhz"] == 1800.0
    assert [w.code for w in warnings] == ["throttling"]
    assert "2400 MHz" in warnings[0].message and "1800 MHz" in warnings[0].message and "−25.0%" in warnings[0].message
    assert out["temp_end_c"] == 39.0 and out["temp_max_c"] == 39.0
    assert "gpu_freq" in missing  # no GPU clock timeline: said, not guessed


def test_a_clock_that_falls_with_the_load_is_not_throttling() -> None:
    p = parts([2400.0] * 5 + [1800.0] * 5, [60.0] * 5 + [20.0] * 5, [10.0] * 10)
    out, _, warnings = throttle_analysis(p, CFG)
    assert out["throttled"] is False and not warnings


def test_late_latency_drift_is_throttling_even_without_clocks() -> None:
    p = [SustainedPart(index=i, start_s=i, end_s=i + 1, latency_mean_ms=10.0 + (3.0 if i >= 8 else 0.0))
         for i in range(10)]
    out, missing, warnings = throttle_analysis(p, CFG)
    assert out["latency_early_ms"] == 10.0 and out["latency_late_ms"] == 13.0
    assert out["latency_drift_pct"] == pytest.approx(30.0) and out["throttled"] is True
    assert [w.code for w in warnings] == ["latency_drift"] and "+30.0%" in warnings[0].message
    assert "cpu_freq" in missing and "temp_c" in missing


def test_one_part_decides_nothing() -> None:
    out, missing, _ = throttle_analysis([SustainedPart(index=0, start_s=0, end_s=1, latency_mean_ms=5.0)], CFG)
    assert out["throttled"] is None and "throttled" in missing


def test_selected_models_run_sustained_with_their_baseline() -> None:
    def cell(name: str, zoo: str, baseline: bool = False) -> CellSpec:
        return CellSpec(model_name=name, variant=Variant.FP32, delegate=Delegate.CPU, baseline=baseline, zoo=zoo,
                        path=None, scale=2)

    cfg = Sustained(duration_s=10, models=["espcn"])
    assert sustained_applies(cfg, cell("espcn_x2", "espcn"))
    assert sustained_applies(cfg, cell("bicubic_x2", "bicubic", baseline=True))
    assert not sustained_applies(cfg, cell("fsrcnn_x2", "fsrcnn"))
    assert sustained_applies(Sustained(duration_s=10), cell("fsrcnn_x2", "fsrcnn"))


def test_a_sustained_model_the_scenario_lacks_is_a_run_warning() -> None:
    cell = CellSpec(model_name="espcn_x2", variant=Variant.FP32, delegate=Delegate.CPU, baseline=False, zoo="espcn",
                    path=None, scale=2)
    warned = sustained_warnings(Sustained(duration_s=10, models=["espcn", "fsrcnn"]), [cell])
    assert [w.code for w in warned] == ["sustained_unknown_model"] and "'fsrcnn'" in warned[0].message
    assert sustained_warnings(None, [cell]) == []


# -- on an emulated phone that heats fast --------------------------------------------------------

if shutil.which("adb") is not None:
    from perflab.devices.adb import Adb
    from perflab.devices.android import AndroidDevice
    from perflab.lab.runner import run_scenario
    from perflab.scenario import load_scenario
    from perflab.store.runfolder import load_run


@pytest.mark.skipif(shutil.which("adb") is None, reason="adb is not installed")
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_sustained_run_on_a_heating_emulated_phone_has_a_timeline_beside_the_burst(phones: PhoneFactory, adb: Adb,
                                                                                    tmp_path: Path) -> None:
    sc = tmp_path / "sustained.yaml"
    sc.write_text(textwrap.dedent("""\
        name: sustained
        geometry: {lr_width: 120, lr_height: 68, scale: 2}
        pacing: {fps: 30, also_back_to_back: false}
        models:
          - zoo: espcn
            variants: [fp32]
        delegates: [cpu]
        runs: {warmup: 1, iterations: 10}
        profiling: {op_profiling: false}
        telemetry: {idle_baseline_s: 0}
        sustained: {duration_s: 2, chunks: 4, models: [espcn]}
        inputs:
          images:
            - skimage: coffee
        """))
    phone = phones.start(profile="pixel7")
    drv = phone.rt.physics
    # the knob: tiny heat capacities, a skin that sheds heat slowly — minutes of heating in seconds
    drv.params = dataclasses.replace(drv.params, soc_heat_capacity_j_per_k=0.5, soc_to_skin_w_per_k=2.0,
                                     skin_heat_capacity_j_per_k=1.0, skin_to_ambient_w_per_k=0.05,
                                     battery_to_skin_w_per_k=2.0, battery_heat_capacity_j_per_k=1.0)
    # and no hot spot: the CPU zone reads the SoC node, not the SoC plus 1 °C per core busy over the
    # physics' last step (a few ms when reads come close together: 0-2 cores, a ±2 °C swing
    # at each part's end that hid the 1-2 °C of heating once, beside another test worker)
    rt = phone.rt
    rt.profile = rt.profile.model_copy(update={"physics": rt.profile.physics.model_copy(
        update={"cpu_hotspot_c_per_core": 0.0})})
    device = AndroidDevice(adb, phone.serial, state_dir=tmp_path / "state")
    outcome = run_scenario(load_scenario(sc), [device], tmp_path / "run")
    assert outcome.exit_code == 0
    run = load_run(tmp_path / "run")  # stored, not only in memory
    assert [c.cell_id for c in run.cells] == ["bicubic_x2.fp32.cpu", "espcn_x2.fp32.cpu"]
    for c in run.cells:
        s = c.sustained
        assert s is not None, c.cell_id
        assert [p.index for p in s.parts] == [0, 1, 2, 3]
        assert s.fps == 30.0 and s.iterations == 4 * 15  # 2 s at 30 fps in 4 parts
        assert all(p.latency_mean_ms is not None and p.latency_mean_ms > 0 for p in s.parts)
        assert all(b.start_s >= a.end_s for a, b in zip(s.parts, s.parts[1:], strict=False))
        temps = [p.temp_c for p in s.parts if p.temp_c is not None]
        assert len(temps) == 4
        # one sensor for the whole run, named: the sampler's CPU zone (not the skin the cool-down gate reads)
        assert s.temp_zone is not None and zone_role_name(s.temp_zone) == "cpu", s.temp_zone
        assert s.temp_start_c is not None and s.temp_end_c is not None and s.temp_end_c > s.temp_start_c
        # heating over the run: the physics sheds heat slower than the SoC makes it (the SoC node follows the
        # load within a quarter second, so neighbouring parts may swap by a tenth; the trend may not)
        assert temps[-1] > temps[0] + 0.5
        # burst beside sustained
        assert c.latency_ms is not None and s.burst_latency_mean_ms == c.latency_ms.mean
        assert s.latency_early_ms is not None and s.latency_late_ms is not None and s.latency_drift_pct is not None
        # the emulated phone does not cap its clocks: no throttling found from them; without a
        # sampler clock timeline that is said, not guessed
        assert "cpu_freq" in s.missing or (s.cpu_freq_early_mhz is not None
                                           and not any(w.code == "throttling" for w in c.warnings))
    raw = json.loads((tmp_path / "run" / "results.json").read_text())
    assert raw["cells"][1]["sustained"]["parts"][3]["index"] == 3


@pytest.mark.skipif(shutil.which("adb") is None, reason="adb is not installed")
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_clocks_capped_late_in_a_sustained_run_are_reported_as_throttling(phones: PhoneFactory, adb: Adb,
                                                                          tmp_path: Path) -> None:
    """A thermal governor stand-in on the emulated phone: its cpufreq nodes report 60% of their
    clock during the last two parts of each sustained run. The parts are told apart by an event,
    not by time: each opens the (emulated) meter once, one metadata request per open."""
    from perflab.emulator.fs import VNode
    from perflab.emulator.meters import PhysicsLoad, Ppk2Emulator

    phone = phones.start(profile="pixel7")
    with Ppk2Emulator(PhysicsLoad(phone.rt.physics, supply_volts=3.7), block_when_full=True) as em:
        def capped() -> bool:  # per cell: open 1 = the burst, opens 2–5 = sustained parts 0–3
            return (em.metadata_requests - 1) % 5 in (3, 4)

        for path, node in list(phone.rt.fs.vnodes.items()):
            if path.endswith("/scaling_cur_freq"):
                def read(orig: Callable[[], bytes] = node.read) -> bytes:
                    khz = int(orig().decode().strip())
                    return f"{khz * 6 // 10 if capped() else khz}\n".encode()

                phone.rt.fs.add_node(path, VNode(read))
        sc = tmp_path / "throttle.yaml"
        # the parts' CPU busy is read from /proc/stat ticks (10 ms each): at 120×68 a 0.5 s part
        # held ~8 ticks, and a neighbour's burst on a 2-core host (the suite under pytest -n 2,
        # 2026-12-07) put the late parts below 80% of the early ones' busy, which the rule reads
        # as the load falling (no throttling). 240×136 and 1 s parts: ~60 ticks a part
        sc.write_text(textwrap.dedent(f"""\
            name: throttle
            geometry: {{lr_width: 240, lr_height: 136, scale: 2}}
            pacing: {{fps: 30, also_back_to_back: false}}
            models:
              - zoo: espcn
                variants: [fp32]
            delegates: [cpu]
            runs: {{warmup: 1, iterations: 10}}
            profiling: {{op_profiling: false}}
            telemetry: {{idle_baseline_s: 0, meter: {{type: ppk2, port: "{em.path}", vdd_mv: 3700}}}}
            sustained: {{duration_s: 4, chunks: 4}}
            inputs:
              images:
                - skimage: coffee
            """))
        device = AndroidDevice(adb, phone.serial, state_dir=tmp_path / "state")
        outcome = run_scenario(load_scenario(sc), [device], tmp_path / "run")
        assert em.metadata_requests == 10  # 2 cells × (burst + 4 parts)
    assert outcome.exit_code == 0
    for c in load_run(tmp_path / "run").cells:
        s = c.sustained
        assert s is not None and s.cpu_freq_early_mhz is not None and s.cpu_freq_late_mhz is not None
        assert s.cpu_freq_late_mhz == pytest.approx(0.6 * s.cpu_freq_early_mhz, rel=0.01)
        assert [p.power_source for p in s.parts] == ["emulated external meter (ppk2, bypass supply)"] * 4
        assert s.throttled is True, (c.cell_id, [(p.cpu_freq_mhz, p.device_cpu_busy_pct) for p in s.parts])
        w = next((w for w in c.warnings if w.code == "throttling"), None)
        assert w is not None, ([(p.cpu_freq_mhz, p.device_cpu_busy_pct) for p in s.parts], c.warnings)
        assert "CPU clock fell" in w.message and "−40.0%" in w.message
