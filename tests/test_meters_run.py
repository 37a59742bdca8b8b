"""External meters inside `perflab run`: which meter measures which device, power from the meter
with its source and confidence (battery counters kept beside), and a meter that fails.

The pure parts use plain data; the runs use real parts: an emulated phone behind the real adb
server (Debian's adb, private port) and an emulated PPK2 on a real pty, read by the real driver.
"""

from __future__ import annotations

import shutil
import textwrap
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from support.phones import PhoneFactory

from perflab.analysis.timeline import Timeline
from perflab.devices.local import LocalDevice
from perflab.lab.meters import (
    CellMeter,
    MeterOutcome,
    MeterPlan,
    conclude,
    meter_part,
    meter_plan,
    meter_record,
    unmatched_meter_warnings,
)
from perflab.lab.parts import Part, merge
from perflab.scenario.schema import MeterSpec, Telemetry
from perflab.store.results import WarningRecord
from perflab.telemetry.energy import integrate
from perflab.telemetry.meters.recorder import MeterRecording

# -- which meter, pure ---------------------------------------------------------------------------


def test_a_meter_is_matched_by_serial_or_is_the_only_devices() -> None:
    local = LocalDevice()
    named = MeterSpec(type="ppk2", port="/dev/ttyACM0", device="local")
    other = MeterSpec(type="um34c", port="/dev/rfcomm0", device="R5CT")
    plan = meter_plan(local, [other, named], n_devices=2)
    assert plan is not None and plan.port == "/dev/ttyACM0" and plan.placement == "bypass"
    assert plan.label == "external meter (ppk2, bypass supply)"
    unnamed = MeterSpec(type="um25c", port="socket://127.0.0.1:9")
    one = meter_plan(local, [unnamed], n_devices=1)
    assert one is not None and one.placement == "usb" and one.label == "external meter (um25c, USB inline)"
    assert meter_plan(local, [unnamed], n_devices=2) is None  # ambiguous: used for none, and said so
    warned = unmatched_meter_warnings([unnamed, other], ["local", "127.0.0.1:4000"])
    assert [w.code for w in warned] == ["meter_unused", "meter_unused"]
    assert "telemetry.meter.device" in warned[0].message and "R5CT" in warned[1].message


def test_the_scenario_takes_one_meter_or_a_list() -> None:
    assert Telemetry.model_validate({"meter": {"type": "scpi", "port": "/dev/ttyUSB0"}}).meter_specs()[0].type == "scpi"
    two = Telemetry.model_validate({"meter": [{"type": "ppk2", "port": "/dev/pts/3", "device": "a"},
                                              {"type": "um34c", "port": "/dev/pts/4", "device": "b"}]})
    assert [m.device for m in two.meter_specs()] == ["a", "b"]
    with pytest.raises(ValueError):
        Telemetry.model_validate({"meter": {"type": "fluke", "port": "/dev/ttyUSB0"}})
    with pytest.raises(ValueError):
        Telemetry.model_validate({"meter": {"type": "ppk2", "port": "/dev/tty\nUSB0"}})


# -- fields from a recording, pure ----------------------------------------------------------------


def _recording(amps: float, volts: float, n: int = 101, *, reason: str | None = None) -> MeterRecording:
    t: npt.NDArray[np.float64] = np.linspace(100.0, 101.0, n)
    return MeterRecording(meter="ppk2", clock="host monotonic", t_s=t, amps=np.full(n, amps), volts=np.full(n, volts),
                          missing_reason=reason)


def _with_meter(fields: dict[str, Any], missing: dict[str, str], o: MeterOutcome, *, emulated: bool,
                fps: float | None, latency_mean_ms: float | None
                ) -> tuple[dict[str, Any], dict[str, str], list[WarningRecord]]:
    """The sampler's part (these fields), then the meter's, merged as a cell merges its parts."""
    sampled = Part(telemetry=fields, missing=missing)
    p = merge([sampled, meter_part(sampled, o, emulated=emulated, fps=fps, latency_mean_ms=latency_mean_ms)])
    return dict(p.telemetry), dict(p.missing), list(p.warnings)


def _outcome(plan: MeterPlan, rec: MeterRecording, window: tuple[float, float]) -> MeterOutcome:
    return MeterOutcome(plan, rec, None, window, "test window", energy=integrate(rec.t_s, rec.amps, rec.volts,
                                                                                  start_s=window[0], end_s=window[1]))


def test_power_comes_from_a_bypass_meter_with_high_confidence_and_battery_figures_kept_beside() -> None:
    plan = MeterPlan("ppk2", "/dev/pts/9", "bypass", 0.1, None, "scenario telemetry.meter")
    fields: dict[str, Any] = {"current_ma": 180.0, "power_mw": 700.0, "energy_mj": 350.0,
                              "power_source": "emulated battery counters (not charging)", "power_confidence": "medium"}
    missing: dict[str, str] = {}
    warnings: list[WarningRecord] = []
    fields, missing, warnings = _with_meter(fields, missing, _outcome(plan, _recording(0.25, 4.0), (100.2, 100.7)),
                                            emulated=True, fps=30.0, latency_mean_ms=None)
    assert fields["power_source"] == "emulated external meter (ppk2, bypass supply)"
    assert fields["power_confidence"] == "high"
    assert fields["power_mw"] == pytest.approx(1000.0) and fields["current_ma"] == pytest.approx(250.0)
    assert fields["energy_mj"] == pytest.approx(500.0)  # 1 W over 0.5 s
    assert fields["mj_per_frame"] == pytest.approx(1000.0 / 30.0)
    assert fields["battery_power_mw"] == 700.0 and fields["battery_power_source"].startswith("emulated battery")
    assert fields["meter"].energy_mj == pytest.approx(500.0)
    assert [w.code for w in warnings] == ["power_sources_disagree"]  # 1000 mW vs 700 mW, both shown


def test_a_usb_inline_meter_is_medium_and_says_it_measures_the_charger_path() -> None:
    plan = MeterPlan("um34c", "/dev/rfcomm0", "usb", 0.1, None, "device config pixel7")
    fields, _, warnings = _with_meter({}, {}, _outcome(plan, _recording(0.5, 5.0), (100.0, 101.0)), emulated=False,
                                      fps=None, latency_mean_ms=20.0)
    assert fields["power_source"] == "external meter (um34c, USB inline), not checked against the battery current"
    assert fields["power_confidence"] == "low"  # no battery current read to check the battery was idle
    assert fields["mj_per_frame"] == pytest.approx(2500.0 * 0.02)
    assert [w.code for w in warnings] == ["meter_usb"] and "charger path" in warnings[0].message


def test_a_meter_that_gave_nothing_leaves_the_battery_figures_and_says_why() -> None:
    plan = MeterPlan("ppk2", "/dev/pts/9", "bypass", 0.1, None, "scenario telemetry.meter")
    fields = {"power_mw": 700.0, "power_source": "battery counters (not charging)", "power_confidence": "medium"}
    missing: dict[str, str] = {}
    warnings: list[WarningRecord] = []
    fields, missing, warnings = _with_meter(fields, missing,
                                            MeterOutcome(plan, None, "[/dev/pts/9] no such port", None, "none"),
                                            emulated=False, fps=30.0, latency_mean_ms=None)
    assert fields["power_source"] == "battery counters (not charging)" and fields["power_mw"] == 700.0
    assert "no such port" in missing["meter"] and warnings[0].code == "meter_missing"


def test_the_window_and_the_meters_lag_against_the_devices_load_are_recorded(tmp_path: Path) -> None:
    """On `local` the sampler's clock is the host's (offset 0 ± 0): the window maps unchanged; a
    meter whose current follows the device's load 150 ms late shows lag −0.15 s (t_device =
    t_meter + lag) with a small residual, reported, not applied."""
    tick_s = 0.1
    ticks = np.arange(100.0, 106.0, tick_s)
    busy_frac = (np.floor((ticks - 100.0) / 0.7) % 2).astype(float)  # load on/off every 0.7 s
    total = np.arange(ticks.size) * 800  # 8 cores × 100 ticks/s × 0.1 s
    busy = np.concatenate(([0.0], np.cumsum(busy_frac[1:] * 800)))
    tl = Timeline(cpu_ticks={"cpu": [(float(t), (int(b), int(n))) for t, b, n in zip(ticks, busy, total, strict=True)]},
                  ticks=[float(t) for t in ticks])
    mid = (ticks[1:] + ticks[:-1]) / 2
    t_m = np.arange(100.0, 106.0, 0.001)
    load_at = np.interp(t_m - 0.15, mid, busy_frac[1:])
    rec = MeterRecording(meter="ppk2", clock="host monotonic", t_s=t_m, amps=0.1 + 0.3 * load_at,
                         volts=np.full(t_m.size, 3.7))
    plan = MeterPlan("ppk2", "/dev/pts/9", "bypass", 0.1, None, "scenario telemetry.meter")
    cm = CellMeter(plan)
    out = conclude(plan, cm, rec, device=LocalDevice(), tl=tl, device_window=(101.0, 105.0),
                   host_bracket=(100.5, 105.5), raw_path=tmp_path / "m.txt", raw_rel="m.txt")
    assert out.window == (101.0, 105.0) and out.offset is not None and out.offset.uncertainty_s == 0.0
    assert out.window_source.startswith("the measured process's lifetime")
    assert out.alignment is not None and out.alignment.lag_s == pytest.approx(-0.15, abs=0.03)
    assert out.alignment.correlation > 0.9 and out.alignment.residual_fraction < 0.5
    assert out.energy is not None and out.energy.duration_s == pytest.approx(4.0)
    rec_fields = meter_record(out, emulated=False)
    assert rec_fields.lag_s == out.alignment.lag_s and rec_fields.raw_file == "m.txt"
    assert (tmp_path / "m.txt").read_text().startswith("# t_s(host monotonic) amps volts")
    # no process window: the host bracket, said so
    out2 = conclude(plan, cm, rec, device=LocalDevice(), tl=tl, device_window=None, host_bracket=(100.5, 105.5),
                    raw_path=None, raw_rel=None)
    assert out2.window == (100.5, 105.5) and "host-side bracket" in out2.window_source


def test_a_meter_on_a_port_that_does_not_exist_is_missing_with_its_reason(tmp_path: Path) -> None:
    cm = CellMeter(MeterPlan("ppk2", str(tmp_path / "ttyACM9"), "bypass", 0.1, None, "scenario telemetry.meter"))
    cm.start()
    assert cm.stop() is None
    assert cm.why is not None and "ttyACM9" in cm.why and "scenario telemetry.meter" in cm.why


# -- in runs on an emulated phone -----------------------------------------------------------------

if shutil.which("adb") is not None:
    from perflab.devices.adb import Adb
    from perflab.devices.android import AndroidDevice
    from perflab.emulator.meters import LiveLoad, Ppk2Emulator
    from perflab.lab.runner import run_scenario
    from perflab.scenario import load_scenario
    from perflab.store.runfolder import load_run

needs_adb = pytest.mark.skipif(shutil.which("adb") is None, reason="adb is not installed")


def scenario(tmp_path: Path, telemetry: str, models: str = "[fp32]", extra: str = "") -> Path:
    sc = tmp_path / "meter.yaml"
    sc.write_text(textwrap.dedent(f"""\
        name: meter
        geometry: {{lr_width: 120, lr_height: 68, scale: 2}}
        pacing: {{fps: 30, also_back_to_back: false}}
        models:
          - zoo: espcn
            variants: {models}
        delegates: [cpu]
        runs: {{warmup: 1, iterations: 30}}
        profiling: {{op_profiling: false}}
        telemetry: {telemetry}
        inputs:
          images:
            - skimage: coffee
        """) + extra)
    return sc


class UnplugAfter:
    """A load that pulls the meter's cable (from another thread) once the stream has run
    ``after_s`` seconds: a meter unplugged mid-cell."""

    def __init__(self, inner: LiveLoad, after_s: float) -> None:
        self.inner, self.after_s = inner, after_s
        self.meter: Ppk2Emulator | None = None
        self.pulled = threading.Event()

    def _check(self, t: npt.NDArray[np.float64]) -> None:
        m = self.meter
        if m is not None and m.streaming and not self.pulled.is_set() and t.size \
                and float(np.max(t)) - m.stream_t0_s > self.after_s:
            self.pulled.set()
            threading.Thread(target=m.unplug, daemon=True).start()

    def amps(self, t_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        self._check(np.asarray(t_s))
        return self.inner.amps(t_s)

    def volts(self, t_s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return self.inner.volts(t_s)

    def logic(self, t_s: npt.NDArray[np.float64]) -> npt.NDArray[np.uint8]:
        return self.inner.logic(t_s)

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        return self.inner.energy_j(t0_s, t1_s)

    def charge_c(self, t0_s: float, t1_s: float) -> float:
        return self.inner.charge_c(t0_s, t1_s)


@needs_adb
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_meter_unplugged_mid_cell_is_missing_with_its_reason_and_the_run_goes_on(phones: PhoneFactory, adb: Adb,
                                                                                     tmp_path: Path) -> None:
    phone = phones.start(profile="pixel7")
    drv = phone.rt.physics
    load = UnplugAfter(LiveLoad(lambda: drv.state.power_w, supply_volts=3.9), after_s=0.3)
    with Ppk2Emulator(load, block_when_full=True) as em:
        load.meter = em
        sc = scenario(tmp_path, f'{{idle_baseline_s: 0, meter: {{type: ppk2, port: "{em.path}"}}}}')
        device = AndroidDevice(adb, phone.serial, state_dir=tmp_path / "state")
        outcome = run_scenario(load_scenario(sc), [device], tmp_path / "run")
        assert load.pulled.is_set()
    run = load_run(tmp_path / "run")
    assert outcome.exit_code == 0
    first, second = run.cells  # bicubic, then espcn: both measured
    assert [c.status for c in run.cells] == ["ok", "ok"]
    for c in (first, second):
        assert c.latency_ms is not None and c.latency_ms.mean is not None  # the cell's other measurements stand
        assert c.quality.psnr_y_db is not None
        m = c.telemetry.meter
        assert m is not None and m.type == "ppk2" and m.energy_mj is None
        assert c.telemetry.power_source is None or "meter" not in c.telemetry.power_source
        assert any(w.code == "meter_missing" for w in c.warnings)
    # mid-cell: the stream ended with the driver's reason, what came before was kept
    assert first.telemetry.meter is not None and "stream" in first.telemetry.meter.missing
    assert first.telemetry.meter.n_samples and first.telemetry.meter.n_samples > 0
    assert "cover only" in first.telemetry.meter.missing["energy_mj"]
    # the next cell: the port is gone, the meter could not be opened
    assert second.telemetry.meter is not None and em.path in second.telemetry.meter.missing["meter"]


@needs_adb
@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("suspend", [True, False], ids=["charging-suspended", "charging"])
def test_a_usb_inline_meter_is_not_the_consumption_of_a_charging_or_battery_powered_phone(
        phones: PhoneFactory, adb: Adb, tmp_path: Path, suspend: bool) -> None:
    """Charging suspended, the battery carries the load and the USB meter reads about nothing;
    charging, it reads the charge current too: either way the battery counters stay the source
    and the meter's reading is shown beside (issue 22: ΔmA +0.32 from the meter vs +43.5)."""
    from perflab.devices.android import TuningOptions
    from perflab.devices.config import load_device_config
    from perflab.emulator.meters import UmEmulator, usb_load

    shipped = Path(__file__).resolve().parent.parent / "perflab" / "data" / "device_configs" / "pixel7.yaml"
    phone = phones.start(profile="pixel7")
    with UmEmulator(usb_load(phone.rt.physics), "um34c", reply_delay_s=0.005) as em:
        cfg = tmp_path / "pixel7.yaml"
        cfg.write_text(shipped.read_text() + f'\nmeter: {{type: um34c, port: "{em.path}"}}\n')
        device = AndroidDevice(adb, phone.serial, config=load_device_config(cfg), state_dir=tmp_path / "state",
                               tuning=TuningOptions(suspend_charging=suspend))
        sc = scenario(tmp_path, "{idle_baseline_s: 0}")  # the scenario names no meter
        outcome = run_scenario(load_scenario(sc), [device], tmp_path / "run")
    assert outcome.exit_code == 0
    for c in load_run(tmp_path / "run").cells:
        t = c.telemetry
        assert t.meter is not None and t.meter.placement == "usb" and t.meter.power_mw is not None, t.meter
        assert t.power_source is not None
        if t.charging is None and t.current_ma == t.meter.current_ma:  # the sampler read no battery: unchecked
            assert t.power_confidence == "low" and "not checked against the battery current" in t.power_source
            continue
        assert bool(t.charging) is not suspend
        assert t.power_source.startswith("emulated battery counters")
        assert t.power_confidence == ("medium" if suspend else "low") and t.power_mw != t.meter.power_mw
        assert any(w.code == "meter_not_consumption" for w in c.warnings), [w.code for w in c.warnings]
        assert not any(w.code == "meter_usb" for w in c.warnings)
        assert any("charger path" in n for n in t.meter.notes)


def test_battery_lines_with_charging_suspended_are_parsed() -> None:
    """With charging suspended the status is "Not charging" (a space): the battery figures kept
    beside a meter's need those lines."""
    from perflab.analysis.timeline import parse_sampler_output

    tl = parse_sampler_output(["T 1.00", "bat -132976 4120141 3484414 250 Not charging",
                               "T 1.10", "bat -133010 4120100 3484410 250 Discharging"])
    assert [v for _, v in tl.bat_current_raw] == [-132976.0, -133010.0]
    assert [s for _, s in tl.bat_status] == ["Not charging", "Discharging"] and tl.garbage_lines == 0


def test_a_meter_of_another_type_on_the_port_is_missing_with_what_answered() -> None:
    from perflab.emulator.meters import UmEmulator, constant_load

    with UmEmulator(constant_load(5.0, 0.5), "um34c", reply_delay_s=0.0) as em:
        cm = CellMeter(MeterPlan("ppk2", em.path, "bypass", 0.1, None, "device config pixel7"))
        cm.start()
        assert cm.stop() is None
    assert cm.why is not None and cm.why.startswith(f"ppk2 meter on {em.path} (device config pixel7): ")
    assert "um34c" in cm.why.lower()


# -- power sources ranked and cross-checked (issue 22, item 4), pure -------------------------------


def test_a_usb_meter_on_a_charging_phone_is_never_its_consumption() -> None:
    plan = MeterPlan("um34c", "/dev/rfcomm0", "usb", 0.1, None, "device config pixel7")
    battery = {"current_ma": -180.0, "power_mw": -700.0, "charging": True,
               "power_source": "emulated battery counters while charging", "power_confidence": "low"}
    fields, _, warnings = _with_meter(dict(battery), {}, _outcome(plan, _recording(0.5, 5.0), (100.0, 101.0)),
                                      emulated=True, fps=30.0, latency_mean_ms=None)
    assert fields["power_source"] == battery["power_source"] and fields["power_confidence"] == "low"
    assert fields["current_ma"] == -180.0 and fields["power_mw"] == -700.0  # the meter's 2500 mW is not used
    assert fields["meter"].power_mw == pytest.approx(2500.0)  # kept beside, in the meter's record
    w = [w for w in warnings if w.code == "meter_not_consumption"]
    assert w and "charging" in w[0].message and "2500 mW" in w[0].message and "-700 mW" in w[0].message


def test_a_usb_meter_with_the_battery_discharging_is_not_used_and_with_it_idle_it_is() -> None:
    plan = MeterPlan("um34c", "/dev/rfcomm0", "usb", 0.1, None, "device config pixel7")
    suspended = {"current_ma": 400.0, "power_mw": 1560.0, "charging": False,
                 "power_source": "battery counters (not charging)", "power_confidence": "medium"}
    fields, _, warnings = _with_meter(dict(suspended), {}, _outcome(plan, _recording(0.001, 5.0), (100.0, 101.0)),
                                      emulated=False, fps=30.0, latency_mean_ms=None)
    assert fields["power_mw"] == 1560.0 and fields["power_source"] == suspended["power_source"]
    assert [w.code for w in warnings] == ["meter_not_consumption"] and "discharging" in warnings[0].message
    idle = {**suspended, "current_ma": 3.0, "power_mw": 12.0}
    fields, _, warnings = _with_meter(dict(idle), {}, _outcome(plan, _recording(0.4, 5.0), (100.0, 101.0)),
                                      emulated=False, fps=30.0, latency_mean_ms=None)
    assert fields["power_source"] == "external meter (um34c, USB inline)" and fields["power_mw"] == pytest.approx(2000.0)
    assert [w.code for w in warnings] == ["meter_usb"]


def test_a_bypass_meter_and_battery_counters_that_disagree_are_both_shown_and_said() -> None:
    plan = MeterPlan("ppk2", "/dev/pts/9", "bypass", 0.1, None, "scenario telemetry.meter")
    battery = {"current_ma": 500.0, "power_mw": 2000.0, "charging": False,
               "power_source": "battery counters (not charging)", "power_confidence": "medium"}
    fields, _, warnings = _with_meter(dict(battery), {}, _outcome(plan, _recording(0.25, 4.0), (100.0, 101.0)),
                                      emulated=False, fps=30.0, latency_mean_ms=None)
    assert fields["power_mw"] == pytest.approx(1000.0) and fields["battery_power_mw"] == 2000.0
    (w,) = [w for w in warnings if w.code == "power_sources_disagree"]
    assert "1000 mW" in w.message and "2000 mW" in w.message
    agree = {**battery, "power_mw": 1050.0}
    _, _, warnings = _with_meter(dict(agree), {}, _outcome(plan, _recording(0.25, 4.0), (100.0, 101.0)),
                                 emulated=False, fps=30.0, latency_mean_ms=None)
    assert not warnings
