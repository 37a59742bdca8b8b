"""Battery conventions on emulated phones behind the real adb server: the unit and sign each phone's kernel
really uses (its emulator profile: pixel7 µA / −1, galaxy_s23 mA / −1, redmi_note12pro µA / +1) are what the
run stores — decided from the data where the device config states nothing (the ``generic`` config), taken
from the phone's own config where it does — and the report's raw-current plot applies the stored numbers."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

if shutil.which("adb") is None:  # .ci/run installs Debian's adb
    pytest.skip("adb is not installed", allow_module_level=True)

from support.phones import PhoneFactory

from perflab.analysis.timeline import parse_sampler_output
from perflab.cli import app
from perflab.core.paths import ConfigKind, config_files
from perflab.devices.adb import Adb
from perflab.devices.android import AndroidDevice
from perflab.devices.config import load_device_config
from perflab.emulator.profiles import load_profile
from perflab.lab.runner import run_scenario
from perflab.report import timelines
from perflab.report.html import read_timeline, timeline_views
from perflab.report.runfolder import load_run_folder
from perflab.report.view_common import anchor_for
from perflab.scenario import load_scenario
from perflab.tracing.runexport import BatteryScale, run_chrome_trace

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SCENARIO = """\
    name: conventions
    geometry: {lr_width: 120, lr_height: 68, scale: 2}
    pacing: {fps: 30, also_back_to_back: false}
    models:
      - zoo: espcn
        variants: [fp32]
    delegates: [cpu]
    runs: {warmup: 1, iterations: 20}
    profiling: {op_profiling: false}
    telemetry: {idle_baseline_s: 1.5}
    inputs:
      images:
        - skimage: coffee
    """


def test_stored_convention_is_each_phones_real_one_and_the_report_applies_it(phones: PhoneFactory, adb: Adb,
                                                                             tmp_path: Path) -> None:
    generic = load_device_config(config_files(ConfigKind.DEVICE_CONFIGS)["generic"])
    profiles = ("pixel7", "galaxy_s23", "redmi_note12pro")
    # pixel7 with its own config (which states µA / −1: the override); the other two with the generic config, whose
    # kernel-ABI values are defaults, so the data has to find mA (galaxy_s23) and +1 (redmi_note12pro)
    use_generic = {"galaxy_s23", "redmi_note12pro"}
    started = {name: phones.start(profile=name) for name in profiles}
    devices = []
    for name, phone in started.items():
        devices.append(AndroidDevice(adb, phone.serial, state_dir=tmp_path / "state",
                                     config=generic if name in use_generic else None))
    sc = tmp_path / "conventions.yaml"
    sc.write_text(textwrap.dedent(SCENARIO))
    outcome = run_scenario(load_scenario(sc), devices, tmp_path / "run")
    assert outcome.exit_code == 0
    folder = load_run_folder(tmp_path / "run")  # what the report reads: the stored run alone
    run = folder.run
    by_serial = {phone.serial: name for name, phone in started.items()}
    views = {v.anchor: v for v in timeline_views(folder)}
    assert len(run.cells) == 6
    for cell in run.cells:
        name = by_serial[cell.device.serial]
        truth = load_profile(name).battery
        want_ua = 1000.0 if truth.current_unit == "ma" else 1.0
        t = cell.telemetry
        conv = t.convention
        assert conv is not None, (name, cell.cell_id, t.missing)
        assert (conv.ua_per_unit, conv.discharge_sign, conv.uv_per_unit) == (want_ua, truth.discharge_sign, 1.0), \
            (name, conv)
        if name in use_generic:
            assert conv.unit_source == "charge_counter" and conv.sign_source in ("charge_counter", "load_step"), conv
            assert conv.counter_n is not None and conv.counter_n >= 3 and conv.counter_r is not None
        else:
            assert conv.unit_source == conv.sign_source == "config" and not conv.disagreements
        assert t.current_convention == conv.how
        # the sampler's achieved rate is stored beside the asked one
        assert t.sample_rate_hz is not None and t.sample_rate_hz > 0 and t.sample_max_gap_ms is not None
        # the report's raw-current plot: raw × the stored numbers, whose mean over the window is the stored mean
        assert t.timeline_file is not None and t.current_ma  # negative on a phone that charges (not rooted)
        tl = read_timeline(folder.path, t.timeline_file)
        assert not isinstance(tl, str)
        dt = timelines.build_device_timeline([timelines.Segment(cell.cell_id, cell.artifact_key, tl, conv)])
        assert dt is not None
        cur = next(s for s in dt.streams if s.unit == "mA")
        assert cur.segments == [[(x - dt.t0_s, v * conv.ma_per_raw) for x, v in tl.bat_current_raw]]
        win = dt.windows[0]
        in_win = [v for x, v in cur.segments[0] if win.start_s <= x <= win.end_s]
        assert float(np.mean(in_win)) == pytest.approx(t.current_ma, rel=0.25)  # sampled mean vs integral
    for idle in run.idle:
        name = by_serial[idle.serial]
        truth = load_profile(name).battery
        assert idle.convention is not None
        assert idle.convention.discharge_sign == truth.discharge_sign
        assert idle.convention.ua_per_unit == (1000.0 if truth.current_unit == "ma" else 1.0)
    for name, phone in started.items():
        view = views["timeline-" + anchor_for(phone.serial)[5:]]
        truth = load_profile(name).battery
        unit = "mA" if truth.current_unit == "ma" else "µA"
        assert view.figure is not None and all(s != "battery current" for s, _ in view.missing), view.missing
        assert any(f"current_now in {unit}" in n and f"{truth.discharge_sign:+d} while discharging" in n
                   for n in view.notes), view.notes

    # the run export's counters use the same stored numbers: battery mA = raw × ma_per_raw, per file
    out = tmp_path / "run.json"
    r = CliRunner().invoke(app, ["trace", "export", str(tmp_path / "run"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["otherData"]["battery_not_scaled"] == {}
    cell = next(c for c in run.cells if by_serial[c.device.serial] == "galaxy_s23")
    assert cell.telemetry.timeline_file is not None and cell.telemetry.convention is not None
    tl = read_timeline(folder.path, cell.telemetry.timeline_file)
    assert not isinstance(tl, str)
    pid = next(e["pid"] for e in doc["traceEvents"] if e["ph"] == "M" and e["args"]["name"] ==
               f"telemetry: {Path(cell.telemetry.timeline_file).stem}")
    ma = [e["args"]["value"] for e in doc["traceEvents"] if e["pid"] == pid and e["name"] == "battery mA"]
    assert ma == [round(v * cell.telemetry.convention.ma_per_raw, 6) for _, v in tl.bat_current_raw]
    assert max(abs(v) for v in ma) > 500  # mA, not µA read as mA (galaxy_s23's node is mA)


def test_run_export_scales_battery_only_by_a_stored_convention() -> None:
    """Pure: with a stored scale the export has battery mA and V; without one it exports no battery counters and
    says why, rather than assuming µA/µV."""
    tl = parse_sampler_output(["T 1.0", "bat 850 3870 3000000 300 Discharging", "T 1.1",
                               "bat 900 3860 2999990 300 Discharging"])
    doc: Any = json.loads(json.dumps(run_chrome_trace([], [("cell", tl)],
                                                      battery={"cell": BatteryScale(ma_per_raw=1.0, v_per_raw=1e-3)})))
    vals = {(e["name"], e["ts"]): e["args"]["value"] for e in doc["traceEvents"] if e["ph"] == "C"}
    assert vals[("battery mA", 1e6)] == 850.0 and vals[("battery V", 1.1e6)] == 3.86
    bare: Any = json.loads(json.dumps(run_chrome_trace([], [("cell", tl)])))
    assert "no battery convention" in bare["otherData"]["battery_not_scaled"]["cell"]
    assert bare["otherData"]["skipped"] == {"telemetry cell": "no counter samples"}  # nothing else was sampled
