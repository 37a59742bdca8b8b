"""A phone's headline latency from its timing pass (perflab.lab.phone_timing), end to end on
emulated phones behind the real adb server: on a rooted, debuggable phone the timed run is
traced and its ATrace invoke sections are the series' samples (median, p90, p99, samples.csv),
so real time is judged by p90; on a phone that cannot be traced (not rooted) the series keeps
the tool's mean, says why, and the verdict says "mean"."""

from __future__ import annotations

import csv
import shutil
import textwrap
from pathlib import Path

import pytest

if shutil.which("adb") is None:
    pytest.skip("adb is not installed", allow_module_level=True)

from support.phones import PhoneFactory

from perflab.devices.adb import Adb
from perflab.devices.android import AndroidDevice
from perflab.lab.runner import run_scenario
from perflab.scenario import load_scenario
from perflab.store.runfolder import load_run

pytestmark = pytest.mark.timeout(900)
T = "/sys/kernel/tracing"


def _scenario(tmp_path: Path) -> Path:
    sc = tmp_path / "p90.yaml"
    sc.write_text(textwrap.dedent("""\
        name: p90
        geometry: {lr_width: 96, lr_height: 64, scale: 2}
        pacing: {fps: 30, also_back_to_back: false}
        models:
          - zoo: espcn
            variants: [int8]
        delegates: [cpu]
        runs: {warmup: 2, iterations: 20}
        profiling: {op_profiling: false}
        inputs:
          images:
            - skimage: coffee
        """))
    return sc


def test_rooted_phone_latency_p90_from_the_timing_pass(phones: PhoneFactory, adb: Adb, tmp_path: Path) -> None:
    state = tmp_path / "state"
    rooted, retail = phones.start(profile="pixel7"), phones.start(profile="galaxy_s23")
    dev = AndroidDevice(adb, rooted.serial, state_dir=state)
    before = {p: dev.read_file(f"{T}/{p}", root=True) for p in ("tracing_on", "buffer_size_kb", "trace_clock")}
    prop_before = dev.sh(["getprop", "debug.tflite.trace"]).stdout.strip()
    devices = [AndroidDevice(adb, s, state_dir=state) for s in (rooted.serial, retail.serial)]
    outcome = run_scenario(load_scenario(_scenario(tmp_path)), devices, tmp_path / "run")
    assert outcome.exit_code == 0
    run = load_run(tmp_path / "run")
    by = {(c.device.serial, c.cell_id): c for c in run.cells}
    cell = by[(rooted.serial, "espcn_x2.int8.cpu")]
    lat = cell.latency_ms
    assert cell.status == "ok" and lat is not None
    # the samples are the timed run's own invoke sections, and the tool's count of them
    assert lat.source.startswith("raw samples: ATrace invoke sections of the timed run"), lat.source
    assert lat.n == 20 and lat.p90 is not None and lat.median is not None and lat.p99 is not None
    assert lat.median <= lat.p90 <= lat.p99 and "p90" not in lat.missing
    assert cell.realtime is not None and cell.realtime.statistic == "p90" and cell.realtime.value_ms == lat.p90
    trace = tmp_path / "run" / "traces" / f"{cell.artifact_key.replace('/', '_').replace(':', '_')}.paced.timing.trace"
    assert trace.is_file() and "Invoke" in trace.read_text()
    with (tmp_path / "run" / "samples.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if cell.artifact_key in r.values()]
    assert len(rows) == 20
    # every change the capture made is undone
    assert {p: dev.read_file(f"{T}/{p}", root=True) for p in before} == before
    assert dev.sh(["getprop", "debug.tflite.trace"]).stdout.strip() == prop_before
    assert AndroidDevice(adb, rooted.serial, state_dir=state).journal.pending() == []
    # the retail phone cannot be traced: the tool's mean, the reason, and the weaker rule named
    other = by[(retail.serial, "espcn_x2.int8.cpu")]
    olat = other.latency_ms
    assert other.status == "ok" and olat is not None and olat.source == "tool summary" and olat.p90 is None
    assert "not rooted" in olat.missing["p90"], olat.missing
    assert other.realtime is not None and other.realtime.statistic == "mean"
    assert "a weaker test" in other.realtime.rule and "not rooted" in other.realtime.rule, other.realtime.rule
