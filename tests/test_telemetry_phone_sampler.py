"""The sampler perflab pushes to phones, run on an emulated phone behind the real adb server:
every stream read with builtins, nothing forked per tick, the FIFO wait and its fallback."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support.phones import PhoneFactory

from perflab.devices.adb import Adb
from perflab.devices.android import AndroidDevice
from perflab.emulator import EmulatedPhone
from perflab.telemetry.session import PhoneSampler

STUCK_S = 120.0


@pytest.fixture(scope="module")
def phone(module_phones: PhoneFactory) -> EmulatedPhone:
    return module_phones.start("pixel7")


@pytest.fixture
def device(adb: Adb, phone: EmulatedPhone, tmp_path: Path) -> AndroidDevice:
    dev = AndroidDevice(adb, phone.serial, state_dir=tmp_path / "state")
    dev.sh(["mkdir", "-p", dev.config.workdir], check=True, timeout_s=20)
    return dev


def ticks_so_far(dev: AndroidDevice, out: str) -> int:
    res = dev.dev.shell(f"grep -c '^T ' {out}", timeout_s=20, check=False)
    return int(res.stdout.strip() or 0)


def wait_for_ticks(dev: AndroidDevice, out: str, n: int) -> None:
    deadline = time.monotonic() + STUCK_S  # only a guard against a hang, never a speed check
    while ticks_so_far(dev, out) < n:
        assert time.monotonic() < deadline, "the sampler stopped ticking"
        dev.dev.shell("sleep 0.2", timeout_s=20)


def watch_a_process(dev: AndroidDevice) -> tuple[str, str]:
    """A live process on the phone and the PID file the sampler watches it by, as in a cell."""
    watched = dev.dev.shell("sleep 100000 > /dev/null 2>&1 & echo $!", timeout_s=20, check=True).stdout.split()[-1]
    pid_file = f"{dev.config.workdir.rstrip('/')}/benchmark_model.pid"
    dev.dev.push_bytes(f"{watched}\n".encode(), pid_file, mode=0o644, timeout_s=20)
    return watched, pid_file


def test_the_pushed_sampler_reads_every_stream_and_forks_nothing(device: AndroidDevice, phone: EmulatedPhone,
                                                                 tmp_path: Path) -> None:
    watched, pid_file = watch_a_process(device)
    sampler = PhoneSampler(device, 0.05, pid_file, tmp_path / "raw.txt")
    sampler.start()
    assert sampler.pid is not None
    wait_for_ticks(device, sampler.out, 5)
    # nothing forked per tick: the sampler has no child process, and waits on its FIFO
    children = [p for p in phone.rt.procs.snapshot() if p.ppid == int(sampler.pid)]
    assert children == []
    assert device.dev.shell(f"ls -l {sampler.fifo}", timeout_s=20, check=True).stdout.startswith("p")
    status = device.dev.shell(f"cat /proc/{watched}/status", timeout_s=20, check=True).stdout
    vm_rss_kb = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS:"))
    tl = sampler.stop()
    device.sh(["kill", watched], check=False, timeout_s=20)
    assert tl.garbage_lines == 0 and "wait" not in tl.missing
    assert len(tl.ticks) >= 5 and tl.sampler_pid == int(sampler.pid)
    cores = phone.rt.profile.cpu_cores
    assert set(tl.cpu_ticks) == {"cpu", *(f"cpu{i}" for i in range(cores))}
    assert set(tl.freq_khz) == {p.rstrip("/").rsplit("/", 1)[-1] for p in device.config.cpufreq.policies}
    assert tl.temp_c and tl.gpu_busy_pct and tl.mem_avail_kb and tl.bat_current_raw and tl.bat_status
    # the watched process's RSS every tick, from statm pages x the page size = its VmRSS
    assert len(tl.rss_kb) >= 5
    assert {kb for _, kb in tl.rss_kb} == {float(vm_rss_kb)}
    assert tl.self_cpu_s and tl.self_cpu_s[-1][1] >= tl.self_cpu_s[0][1]
    # killed by PID: the process is gone and its TERM trap removed the FIFO
    assert phone.rt.procs.get(int(sampler.pid)) is None
    assert device.dev.shell(f"ls {sampler.fifo}", timeout_s=20, check=False).exit_code != 0


def test_without_a_fifo_the_sampler_sleeps_and_says_so(device: AndroidDevice, tmp_path: Path) -> None:
    sampler = PhoneSampler(device, 0.05, f"{device.config.workdir.rstrip('/')}/none.pid", tmp_path / "raw.txt")
    device.sh(["mkdir", "-p", sampler.fifo], check=True, timeout_s=20)  # mkfifo cannot make it
    try:
        sampler.start()
        wait_for_ticks(device, sampler.out, 3)
        tl = sampler.stop()
    finally:
        device.sh(["rm", "-r", sampler.fifo], check=False, timeout_s=20)
    assert "wait" in tl.missing and "sleep" in tl.missing["wait"]
    assert len(tl.ticks) >= 3 and tl.garbage_lines == 0 and not tl.rss_kb  # no process to watch


def test_a_node_that_vanishes_mid_run_is_printed_empty_not_stale(device: AndroidDevice, phone: EmulatedPhone,
                                                                  tmp_path: Path) -> None:
    # every printed variable is emptied at the tick's start: once the battery's current_now is
    # gone and the watched process has ended, later ticks carry neither (no last-tick value)
    watched, pid_file = watch_a_process(device)
    node = phone.rt.profile.battery.supply_dir.rstrip("/") + "/current_now"
    sampler = PhoneSampler(device, 0.05, pid_file, tmp_path / "raw.txt")
    sampler.start()
    try:
        wait_for_ticks(device, sampler.out, 3)
        phone.rt.fs.hide(node)
        device.sh(["kill", watched], check=True, timeout_s=20)
        n = ticks_so_far(device, sampler.out)
        wait_for_ticks(device, sampler.out, n + 4)
        tl = sampler.stop()
    finally:
        phone.rt.fs.hidden.discard(node)
    assert tl.garbage_lines == 0
    late = set(tl.ticks[-2:])  # surely after the hide and the kill (the tick in flight may not be)
    early = set(tl.ticks[:3])
    assert early <= {t for t, _ in tl.bat_current_raw} and early <= {t for t, _ in tl.rss_kb}
    assert not late & {t for t, _ in tl.bat_current_raw} and not late & {t for t, _ in tl.rss_kb}
    assert late <= {t for t, _ in tl.bat_voltage_uv}  # the other battery nodes still read
