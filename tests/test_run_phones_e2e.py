"""`perflab run` on emulated phones behind the real adb server (Debian's adb, private port).

The issue's bar: two emulated phones run scenarios/540p30.yaml end to end with --device all;
a phone that drops mid-run loses no completed cell, the other phone goes on, and the dropped
phone is restored when it comes back.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

if shutil.which("adb") is None:  # .ci/run installs Debian's adb
    pytest.skip("adb is not installed", allow_module_level=True)

from support.phones import PhoneFactory

from perflab.devices.adb import Adb
from perflab.devices.android import AndroidDevice, TuningOptions
from perflab.emulator.phone import EmulatedPhone, connect_to_adb_server
from perflab.lab.progress import QuietProgress
from perflab.lab.runner import RunOptions, run_scenario
from perflab.scenario import load_scenario
from perflab.store.results import CellRecord
from perflab.store.runfolder import load_run

REPO = Path(__file__).resolve().parent.parent
PERFLAB = str(Path(sys.executable).with_name("perflab"))
PIXEL_KNOB = "/sys/devices/platform/google,charger/charge_disable"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user-supplied benchmark_model: a placeholder the emulated phones run their tool for."""
    p = tmp_path_factory.mktemp("bin") / "benchmark_model"
    p.write_text("#!/system/bin/sh\n# placeholder for the user's benchmark_model\n")
    return p


def read(adb: Adb, serial: str, path: str, state: Path) -> str | None:
    return AndroidDevice(adb, serial, state_dir=state).read_file(path, root=True)


def test_two_emulated_phones_run_540p30(phones: PhoneFactory, adb: Adb, tmp_path: Path) -> None:
    state = tmp_path / "state"
    p1, p2 = phones.start(profile="pixel7"), phones.start(profile="galaxy_s23")
    # --device all takes every phone the (session's) server lists: only this test's two
    for other in {d.serial for d in adb.client.list()} - {p1.serial, p2.serial}:
        adb.client.disconnect(other)
    knob_before = read(adb, p1.serial, PIXEL_KNOB, state)
    # no PERFLAB_BENCHMARK_MODEL: emulated phones come provisioned like lab phones, their
    # tool already at the device config's remote path (the README's emulated flow)
    env = {k: v for k, v in os.environ.items() if k != "PERFLAB_BENCHMARK_MODEL"}
    env.update(ANDROID_ADB_SERVER_PORT=str(adb.port), PERFLAB_STATE_DIR=str(state))
    out = tmp_path / "run"
    r = subprocess.run(
        [PERFLAB, "run", str(REPO / "scenarios" / "540p30.yaml"), "--device", "all", "--out", str(out),
         "--reports-dir", str(tmp_path / "reports")],
        capture_output=True, text=True, env=env, timeout=1400, check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    run = load_run(out)
    assert {d.serial for d in run.devices} == {p1.serial, p2.serial}
    assert all(d.kind == "emulated" for d in run.devices)
    per_device: dict[str, dict[str, CellRecord]] = {}
    for c in run.cells:
        per_device.setdefault(c.device.serial, {})[c.cell_id] = c
    for serial, cells in per_device.items():
        assert set(cells) == {
            f"{m}.{d}" for m in ("bicubic_x2.fp32", "espcn_x2.fp32", "espcn_x2.int8") for d in ("xnnpack", "gpu")
        }
        for c in cells.values():
            assert c.status == "ok", (serial, c.cell_id, c.reason)
            assert c.emulated and c.device.kind == "emulated"
            assert any(w.code == "emulated" for w in c.warnings)
            assert c.latency_ms is not None and c.latency_ms.mean is not None and c.latency_ms.n == 30
            if serial == p1.serial:  # the rooted pixel: per-run samples from the timed run's trace
                assert c.latency_ms.source.startswith("raw samples: ATrace") and c.latency_ms.p90 is not None
            else:  # the retail galaxy cannot be traced: the tool's summary, and why
                assert c.latency_ms.source == "tool summary" and "not rooted" in c.latency_ms.missing["p90"]
            assert c.quality.computed_on is not None and serial in c.quality.computed_on
            assert c.layers is not None and c.layers.rows  # the separate op-profiling pass
        gpu = cells["espcn_x2.fp32.gpu"]
        assert gpu.layers is not None and [r.node_type for r in gpu.layers.rows] == ["TfLiteGpuDelegateV2"]
        assert any(d.kind == "applied" and "GPU" in (d.delegate or "") for d in gpu.delegates), gpu.delegates
        for d in ("xnnpack", "gpu"):
            sr, bic = cells[f"espcn_x2.fp32.{d}"], cells[f"bicubic_x2.fp32.{d}"]
            assert sr.quality.psnr_y_db > bic.quality.psnr_y_db  # type: ignore[operator]
    html = (out / "index.html").read_text()
    assert "EMULATED" in html and p1.serial in html and p2.serial in html
    # every phone is left as it was found
    assert read(adb, p1.serial, PIXEL_KNOB, state) == knob_before
    for serial in (p1.serial, p2.serial):
        assert AndroidDevice(adb, serial, state_dir=state).journal.pending() == []


class DropAfterFirstCell(QuietProgress):
    """Progress hook: after ``phone``'s first cell is stored, it falls off the bus for ``down_s``."""

    def __init__(self, phone: EmulatedPhone, down_s: float) -> None:
        super().__init__(lambda rec: "")
        self.phone, self.down_s = phone, down_s
        self.dropped: list[str] = []

    def cell_done(self, rec: CellRecord) -> None:
        super().cell_done(rec)
        if rec.device.serial == self.phone.serial and not self.dropped:
            self.dropped.append(rec.cell_id)
            self.phone.drop(down_s=self.down_s)


def drop_scenario(tmp_path: Path) -> Path:
    sc = tmp_path / "drop.yaml"
    sc.write_text(textwrap.dedent("""\
        name: drop
        geometry: {lr_width: 240, lr_height: 136, scale: 2}
        pacing: {fps: 30, also_back_to_back: false}
        models:
          - zoo: espcn
            variants: [int8, fp32]
        delegates: [cpu]
        runs: {warmup: 1, iterations: 10}
        profiling: {op_profiling: false}
        inputs:
          images:
            - skimage: coffee
        """))
    return sc


@pytest.mark.parametrize("back_in_time", [True, False])
def test_phone_dropping_mid_run(phones: PhoneFactory, adb: Adb, binary: Path, tmp_path: Path,
                                back_in_time: bool) -> None:
    """A phone that drops is waited for: back within the wait, its remaining cells run (the
    dropped cell once more); not back, they fail with the reason. The other phone goes on, and
    the dropped phone is restored when it is back."""
    loaded = load_scenario(drop_scenario(tmp_path))
    state = tmp_path / "state"
    tuning = TuningOptions(stay_awake=True, suspend_charging=True, pin_governor=True)
    flaky, steady = phones.start(profile="pixel7"), phones.start(profile="pixel7")
    knob_before = read(adb, flaky.serial, PIXEL_KNOB, state)
    devices = [AndroidDevice(adb, s, benchmark_binary=binary, state_dir=state, tuning=tuning)
               for s in (flaky.serial, steady.serial)]
    progress = DropAfterFirstCell(flaky, down_s=3.0)
    options = RunOptions(reconnect_wait_s=60.0 if back_in_time else 0.5)
    outcome = run_scenario(loaded, devices, tmp_path / "run", progress=progress, options=options)
    run = load_run(tmp_path / "run")  # what is on disk, not what is in memory
    flaky_cells = [c for c in run.cells if c.device.serial == flaky.serial]
    steady_cells = [c for c in run.cells if c.device.serial == steady.serial]
    assert [c.cell_id for c in flaky_cells] == ["bicubic_x2.fp32.cpu", "espcn_x2.int8.cpu", "espcn_x2.fp32.cpu"]
    assert flaky_cells[0].cell_id == progress.dropped[0] and flaky_cells[0].status == "ok"
    assert flaky_cells[0].latency_ms is not None and flaky_cells[0].quality.psnr_y_db is not None
    assert [c.status for c in steady_cells] == ["ok", "ok", "ok"]  # the other phone went on
    if back_in_time:
        assert outcome.exit_code == 0
        assert all(c.status == "ok" for c in flaky_cells), [c.reason for c in flaky_cells]
    else:
        assert outcome.exit_code == 1
        assert all(c.status == "failed" for c in flaky_cells[1:])
        assert "not back within" in (flaky_cells[2].reason or "")
        connect_to_adb_server(flaky, adb.client)
        AndroidDevice(adb, flaky.serial, state_dir=state).restore()  # what `perflab devices restore` does
    # the flaky phone is left as it was found
    assert read(adb, flaky.serial, PIXEL_KNOB, state) == knob_before
    assert AndroidDevice(adb, flaky.serial, state_dir=state).journal.pending() == []
    raw = json.loads((tmp_path / "run" / "results.json").read_text())
    assert len(raw["cells"]) == 6


def test_sigint_on_an_emulated_phone_leaves_it_as_found_and_resume_finishes(phones: PhoneFactory, adb: Adb,
                                                                            tmp_path: Path) -> None:
    """Ctrl-C after the first cell on a tuned phone: the running tool and the sampler are killed
    on the phone, charging and governors come back, the run folder is final, and --resume
    measures the rest."""
    sc = tmp_path / "stop.yaml"
    sc.write_text(textwrap.dedent("""\
        name: stop
        geometry: {lr_width: 240, lr_height: 136, scale: 2}
        pacing: {fps: 30, also_back_to_back: false}
        models:
          - zoo: espcn
            variants: [fp32, int8]
        delegates: [xnnpack]
        runs: {warmup: 1, iterations: 150}
        profiling: {op_profiling: false}
        telemetry: {idle_baseline_s: 1}
        tuning: {stay_awake: true, suspend_charging: true, pin_governor: true}
        inputs:
          images:
            - skimage: coffee
        """))
    state = tmp_path / "state"
    governors = [f"/sys/devices/system/cpu/cpufreq/policy{n}/scaling_governor" for n in (0, 4, 6)]
    phone = phones.start(profile="pixel7")
    before = {p: read(adb, phone.serial, p, state) for p in [PIXEL_KNOB, *governors]}
    assert all(v for v in before.values()), before  # every knob is there to be changed and restored
    env = {k: v for k, v in os.environ.items() if k != "PERFLAB_BENCHMARK_MODEL"}
    env.update(ANDROID_ADB_SERVER_PORT=str(adb.port), PERFLAB_STATE_DIR=str(state), PYTHONUNBUFFERED="1")
    out = tmp_path / "run"
    args = [PERFLAB, "run", str(sc), "--device", phone.serial, "--out", str(out), "--reports-dir",
            str(tmp_path / "reports")]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    for line in proc.stdout:
        if "bicubic_x2.fp32.xnnpack: ok" in line:
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    run = load_run(out)
    assert run.stop is not None and run.exit_code == 130 and run.finished_utc is not None
    assert [c.status for c in run.cells] == ["ok", "interrupted", "interrupted"]
    # the phone is exactly as found: tuning undone, nothing of perflab's left running
    after = {p: read(adb, phone.serial, p, state) for p in [PIXEL_KNOB, *governors]}
    assert after == before
    assert AndroidDevice(adb, phone.serial, state_dir=state).journal.pending() == []
    names = {p.name for p in phone.rt.procs.snapshot()}
    assert "benchmark_model" not in names
    assert not [p for p in phone.rt.procs.snapshot() if p.name == "sh" and p.ppid == 1]  # no orphaned sampler
    r = subprocess.run([PERFLAB, "run", "--resume", str(out), "--reports-dir", str(tmp_path / "reports")],
                       capture_output=True, text=True, env=env, timeout=900, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    done = load_run(out)
    assert done.complete and [c.status for c in done.cells] == ["ok", "ok", "ok"]
    assert {p: read(adb, phone.serial, p, state) for p in [PIXEL_KNOB, *governors]} == before
