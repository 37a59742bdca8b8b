"""A hostile night for phones, on emulated phones behind the real adb server: the host killed
with -9 mid-cell, a phone that comes back empty. After ``perflab devices restore`` nothing of
perflab runs on the phone; a phone that lost its files gets them again and its cells are
measured."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from support.phones import PhoneFactory
from support.waiting import wait_until

from perflab.devices.adb import Adb
from perflab.devices.android import AndroidDevice
from perflab.devices.journal import ChangeKind
from perflab.emulator.phone import EmulatedPhone
from perflab.emulator.procs import proc_cmdline
from perflab.lab.progress import Phase, QuietProgress
from perflab.lab.runner import RunOptions, run_scenario
from perflab.scenario import load_scenario
from perflab.store.runfolder import load_run
from perflab.telemetry.session import PhoneSampler

if shutil.which("adb") is None:  # .ci/run installs Debian's adb
    pytest.skip("adb is not installed", allow_module_level=True)

PERFLAB = [sys.executable, "-m", "perflab"]
STUCK_S = 120.0  # only a guard against a hang, never a speed check


def perflab_procs(phone: EmulatedPhone, workdir: str) -> list[str]:
    """What of perflab runs on the phone: a process whose command line names perflab's folder
    there (the sampler), benchmark_model, or a shell orphaned to init."""
    out = []
    for p in phone.rt.procs.snapshot():
        cmdline = proc_cmdline(p).decode(errors="replace").replace("\0", " ").strip()
        if workdir in cmdline or p.name == "benchmark_model" or (p.name == "sh" and p.ppid == 1 and not p.static):
            out.append(f"{p.pid} {cmdline}")
    return out


def sampler_gone(phone: EmulatedPhone, dev: AndroidDevice, pid: str | None, out: str) -> str:
    """Why a started sampler is not running, as far as the phone shows: the PID its start reported,
    every process, and what the script wrote."""
    procs = [f"{p.pid} {p.ppid} {p.name} {proc_cmdline(p).decode(errors='replace')!r}" for p in phone.rt.procs.snapshot()]
    return f"started as {pid}; processes {procs}; {out}: {dev.read_file(out, root=True)!r}"


def env_for(adb: Adb, state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PERFLAB_BENCHMARK_MODEL"}
    env.update(ANDROID_ADB_SERVER_PORT=str(adb.port), PERFLAB_STATE_DIR=str(state), PYTHONUNBUFFERED="1")
    return env


def devices_restore(adb: Adb, state: Path, serial: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PERFLAB, "devices", "restore", serial], capture_output=True, text=True,
                          env=env_for(adb, state), timeout=300, check=False)


# ---- 1: the sampler outlives its host; the journal knows how to stop it ------------------------


def test_a_sampler_whose_host_died_is_journaled_and_stopped_by_devices_restore(
        adb: Adb, phones: PhoneFactory, tmp_path: Path) -> None:
    phone = phones.start("pixel7")
    state = tmp_path / "state"
    dev = AndroidDevice(adb, phone.serial, state_dir=state)
    workdir = dev.config.workdir.rstrip("/")
    dev.sh(["mkdir", "-p", workdir])
    sampler = PhoneSampler(dev, 0.1, f"{workdir}/benchmark_model.pid", tmp_path / "raw.txt")
    sampler.start()
    started_pid, out = sampler.pid, sampler.out
    del sampler  # the host dies here: nothing on the host will stop it
    assert wait_until(lambda: perflab_procs(phone, workdir), STUCK_S), sampler_gone(phone, dev, started_pid, out)
    pending = AndroidDevice(adb, phone.serial, state_dir=state).journal.pending()
    assert [(c.kind, c.what) for c in pending] == [(ChangeKind.PROCESS, "telemetry sampler")]
    res = devices_restore(adb, state, phone.serial)
    assert res.returncode == 0, res.stdout + res.stderr
    assert wait_until(lambda: not perflab_procs(phone, workdir), STUCK_S), perflab_procs(phone, workdir)
    assert AndroidDevice(adb, phone.serial, state_dir=state).journal.pending() == []


def test_the_next_run_on_the_phone_stops_a_left_sampler(adb: Adb, phones: PhoneFactory, tmp_path: Path) -> None:
    phone = phones.start("pixel7")
    state = tmp_path / "state"
    dev = AndroidDevice(adb, phone.serial, state_dir=state)
    workdir = dev.config.workdir.rstrip("/")
    dev.sh(["mkdir", "-p", workdir])
    PhoneSampler(dev, 0.1, f"{workdir}/benchmark_model.pid", tmp_path / "raw.txt").start()
    assert wait_until(lambda: perflab_procs(phone, workdir), STUCK_S)
    nxt = AndroidDevice(adb, phone.serial, state_dir=state)
    nxt.prepare("next-run")  # what a run (or a --resume) does first on the phone
    try:
        assert wait_until(lambda: not perflab_procs(phone, workdir), STUCK_S), perflab_procs(phone, workdir)
    finally:
        nxt.restore()


def test_a_sampler_stopped_by_its_cell_leaves_nothing_journaled(adb: Adb, phones: PhoneFactory,
                                                                tmp_path: Path) -> None:
    phone = phones.start("pixel7")
    dev = AndroidDevice(adb, phone.serial, state_dir=tmp_path / "state")
    workdir = dev.config.workdir.rstrip("/")
    dev.sh(["mkdir", "-p", workdir])
    sampler = PhoneSampler(dev, 0.1, f"{workdir}/benchmark_model.pid", tmp_path / "raw.txt")
    sampler.start()
    assert wait_until(lambda: dev.sh(["cat", f"{workdir}/sampler.out"], check=False).stdout.count("\nT ") >= 2,
                      STUCK_S)
    timeline = sampler.stop()
    assert timeline is not None
    assert dev.journal.pending() == [] and not perflab_procs(phone, workdir)
    assert dev.read_file(f"{workdir}/sampler.pid") is None  # its PID file went with it


# ---- kill -9 of `perflab run` mid-cell, then `perflab devices restore` ------------------------------


@pytest.mark.parametrize("phase", ["idle baseline", "mid-cell"])
def test_kill_9_then_devices_restore_leaves_nothing_of_perflab_running(
        adb: Adb, phones: PhoneFactory, tmp_path: Path, phase: str) -> None:
    phone = phones.start("pixel7")
    state = tmp_path / "state"
    workdir = AndroidDevice(adb, phone.serial, state_dir=state).config.workdir.rstrip("/")
    sc = tmp_path / "k.yaml"
    sc.write_text(textwrap.dedent("""\
        name: k
        geometry: {lr_width: 240, lr_height: 136, scale: 2}
        pacing: {fps: 30, also_back_to_back: false}
        models:
          - zoo: espcn
            variants: [fp32]
        delegates: [xnnpack]
        runs: {warmup: 1, iterations: 2000}
        profiling: {op_profiling: false}
        telemetry: {idle_baseline_s: IDLE}
        inputs:
          images:
            - skimage: coffee
        """).replace("IDLE", "60" if phase == "idle baseline" else "0"))
    proc = subprocess.Popen([*PERFLAB, "run", str(sc), "--device", phone.serial, "--out", str(tmp_path / "run"),
                             "--reports-dir", str(tmp_path / "reports"), "--no-report"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env_for(adb, state))
    try:
        # idle baseline: the sampler alone; mid-cell: the sampler and benchmark_model
        def in_phase() -> bool:
            sampling = any("sampler.sh" in n for n in perflab_procs(phone, workdir))
            return sampling and (phase != "mid-cell" or bool(phone.rt.procs.by_name("benchmark_model")))

        assert wait_until(in_phase, STUCK_S * 3), perflab_procs(phone, workdir)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    time.sleep(1.0)  # what the phone does once its host is gone (adb streams closed, SIGHUP)
    assert any("sampler.sh" in n for n in perflab_procs(phone, workdir))  # it outlives its host, by design
    res = devices_restore(adb, state, phone.serial)
    assert res.returncode == 0, res.stdout + res.stderr
    assert wait_until(lambda: not perflab_procs(phone, workdir), STUCK_S), perflab_procs(phone, workdir)
    assert AndroidDevice(adb, phone.serial, state_dir=state).journal.pending() == []


# ---- 2: a phone that comes back empty gets its models again ------------------------------------


class WipeAndDropMidCell(QuietProgress):
    """Progress hook: when ``cell_id`` on ``phone`` has been timed (its model is on the phone),
    the phone drops off the bus and, while it is away, loses perflab's models and inputs (as a
    reboot that wipes /data/local/tmp, or a reflash, would)."""

    def __init__(self, phone: EmulatedPhone, cell_id: str, workdir: str) -> None:
        super().__init__(lambda rec: "")
        self.phone, self.cell_id, self.workdir = phone, cell_id, workdir
        self.wiped = False

    def phase(self, serial: str, index: int, cell_id: str, phase: str) -> None:
        super().phase(serial, index, cell_id, phase)
        if serial == self.phone.serial and cell_id == self.cell_id and phase == Phase.OUTPUTS and not self.wiped:
            self.wiped = True
            self.phone.drop(down_s=3.0)
            for folder in ("m", "in"):
                self.phone.rt.fs.remove(f"{self.workdir}/{folder}", 0, recursive=True)


def test_a_phone_back_without_its_models_gets_them_again_and_the_cell_is_measured(
        adb: Adb, phones: PhoneFactory, tmp_path: Path) -> None:
    sc = tmp_path / "wipe.yaml"
    sc.write_text(textwrap.dedent("""\
        name: wipe
        geometry: {lr_width: 240, lr_height: 136, scale: 2}
        pacing: {fps: 30, also_back_to_back: false}
        models:
          - zoo: espcn
            variants: [int8]
        delegates: [cpu]
        runs: {warmup: 1, iterations: 10}
        profiling: {op_profiling: false}
        telemetry: {idle_baseline_s: 0}
        inputs:
          images:
            - skimage: coffee
        """))
    phone = phones.start("pixel7")
    device = AndroidDevice(adb, phone.serial, state_dir=tmp_path / "state")
    progress = WipeAndDropMidCell(phone, "espcn_x2.int8.cpu", device.config.workdir.rstrip("/"))
    outcome = run_scenario(load_scenario(sc), [device], tmp_path / "run", progress=progress,
                           options=RunOptions(reconnect_wait_s=60.0))
    assert progress.wiped
    run = load_run(tmp_path / "run")
    cells = {c.cell_id: c for c in run.cells}
    assert cells["espcn_x2.int8.cpu"].status == "ok", cells["espcn_x2.int8.cpu"].reason
    assert cells["espcn_x2.int8.cpu"].latency_ms is not None and cells["espcn_x2.int8.cpu"].quality.psnr_y_db
    assert outcome.exit_code == 0
