"""Soak: one emulated phone behind the real adb server takes 1000 shell commands and 3 reboots
without leaking threads or memory; a reboot really takes the phone down; run-time properties
do not survive it (only ``persist.*`` and the profile's)."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import adbutils
import pytest
from support.phones import PhoneFactory

from perflab.emulator import EmulatedPhone, Faults, connect_to_adb_server
from perflab.emulator.profiles import load_profile
from perflab.emulator.runtime import PhoneRuntime
from perflab.emulator.testing import adb_env

COMMANDS = 1000
REBOOTS = 3
#: allowed growth of this process's resident memory over the soak (allocator noise, not a leak)
RSS_TOLERANCE_KB = 16 * 1024


def rss_kb() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4


def settle_threads(limit: int) -> int:
    """Stream threads end just after their stream: wait (bounded) for the count to come down."""
    deadline = time.monotonic() + 30
    while threading.active_count() > limit and time.monotonic() < deadline:
        time.sleep(0.05)
    return threading.active_count()


def reboot_and_wait(adb_server: adbutils.AdbClient, phone: EmulatedPhone) -> None:
    """``adb reboot`` then ``adb wait-for-device``: it may return only once the phone went down and came back."""
    before = phone.reboots
    env = adb_env(adb_server)
    subprocess.run(["adb", "-s", phone.serial, "reboot"], env=env, check=True, timeout=60, capture_output=True)
    assert not phone.adbd.up  # off the bus before `adb reboot` returned
    waiter = subprocess.Popen(["adb", "-s", phone.serial, "wait-for-device"], env=env)
    # the server would retry the TCP phone by itself after ~10 s; a fresh `adb connect` asks it now
    assert phone.wait_for_reboots(before + 1, timeout_s=120)  # down for reboot_down_s, then it boots
    assert waiter.poll() is None, "wait-for-device returned while the phone was still going down"
    adb_server.disconnect(phone.serial)
    connect_to_adb_server(phone, adb_server, timeout_s=60)
    assert waiter.wait(timeout=60) == 0
    assert phone.reboots == before + 1  # counted when it boots, before adb can see it again


@pytest.mark.slow  # a soak: 1000 adb commands and 3 reboots
def test_1000_commands_and_3_reboots_leak_nothing(phones: PhoneFactory, adb_server: adbutils.AdbClient) -> None:
    phone = phones.start("pixel7", faults=Faults(reboot_down_s=0.3))
    d = adb_server.device(phone.serial)
    for i in range(20):  # warm-up: first connections, imports, caches
        d.shell(f"echo {i}")
    threads0 = settle_threads(threading.active_count())
    rss0 = rss_kb()
    per_round = COMMANDS // (REBOOTS + 1)
    done = 0
    for rnd in range(REBOOTS + 1):
        for i in range(per_round):
            n = done + i
            assert d.shell(f"echo {n} $(({n} * 2))") == f"{n} {n * 2}"
        done += per_round
        assert settle_threads(threads0) <= threads0, [t.name for t in threading.enumerate()]
        if rnd < REBOOTS:
            reboot_and_wait(adb_server, phone)
            d = adb_server.device(phone.serial)
    assert done == COMMANDS and phone.reboots == REBOOTS
    assert settle_threads(threads0) <= threads0
    assert rss_kb() - rss0 < RSS_TOLERANCE_KB


def test_reboot_keeps_persist_props_and_drops_run_time_ones(phones: PhoneFactory,
                                                            adb_server: adbutils.AdbClient) -> None:
    phone = phones.start("pixel7", faults=Faults(reboot_down_s=0.3))
    d = adb_server.device(phone.serial)
    model = d.shell("getprop ro.product.model")
    assert d.shell2("setprop debug.perflab.x 1 && setprop persist.debug.perflab.y 2 && "
                    "su -c 'setprop sys.perflab.z 3'", v2=True).returncode == 0
    assert d.shell("getprop debug.perflab.x; getprop sys.perflab.z").split() == ["1", "3"]
    d.shell("sleep 300 >/dev/null 2>&1 &")
    assert d.shell("pidof sleep") != ""
    reboot_and_wait(adb_server, phone)
    d = adb_server.device(phone.serial)
    assert d.shell("getprop debug.perflab.x") == "" and d.shell("getprop sys.perflab.z") == ""
    assert d.shell("getprop persist.debug.perflab.y") == "2"
    assert d.shell("getprop ro.product.model") == model
    assert d.shell("getprop sys.boot_completed") == "1"
    assert d.shell2("pidof sleep", v2=True).returncode == 1  # processes do not survive a reboot


def test_power_off_resets_the_process_table(tmp_path: Path) -> None:
    rt = PhoneRuntime.create(load_profile("galaxy_s23"), tmp_path)
    proc = rt.procs.spawn("sh", ppid=1, uid=2000)
    rt.props["debug.x"] = "1"
    rt.props["persist.y"] = "2"
    rt.power_off()
    assert rt.procs.get(proc.pid) is None and rt.procs.get(1) is not None
    assert "debug.x" not in rt.props and rt.props["persist.y"] == "2"
