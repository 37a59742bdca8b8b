"""Emulated phones behind the REAL adb server (Debian adb), on a private server port."""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import threading
import time
from pathlib import Path

import adbutils
import pytest
from support.phones import PhoneFactory

from perflab.emulator import EmulatedPhone, Faults
from perflab.emulator.testing import adb_env


@pytest.fixture(scope="module")
def phone(module_phones: PhoneFactory) -> EmulatedPhone:
    return module_phones.start("pixel7")


def cli(adb_server: adbutils.AdbClient, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["adb", *args], env=adb_env(adb_server), capture_output=True, text=True, timeout=timeout,
                          check=False)


def state_of(adb_server: adbutils.AdbClient, serial: str) -> str | None:
    return {d.serial: d.state for d in adb_server.list()}.get(serial)


def wait_state(adb_server: adbutils.AdbClient, serial: str, want: set[str | None], timeout_s: float) -> str | None:
    deadline = time.monotonic() + timeout_s
    st = state_of(adb_server, serial)
    while st not in want and time.monotonic() < deadline:
        time.sleep(0.2)
        st = state_of(adb_server, serial)
    return st


def test_adb_devices_lists_the_phone_once(adb_server: adbutils.AdbClient, phone: EmulatedPhone) -> None:
    out = cli(adb_server, "devices", "-l").stdout.splitlines()
    assert out[0] == "List of devices attached"
    mine = [ln for ln in out[1:] if ln.split()[:1] == [phone.serial]]
    assert len(mine) == 1
    assert mine[0].split()[1] == "device"
    assert "model:Pixel_7" in mine[0] and "product:panther" in mine[0]
    assert not any(ln.startswith("emulator-") for ln in out)


def test_shell_v2_exit_codes_and_stderr(adb_server: adbutils.AdbClient, phone: EmulatedPhone) -> None:
    d = adb_server.device(phone.serial)
    r = d.shell2("echo out; echo err >&2; exit 3", v2=True)
    assert (r.returncode, r.stdout, r.stderr) == (3, "out\n", "err\n")
    p = cli(adb_server, "-s", phone.serial, "shell", "ls /nope; echo ok")
    assert p.returncode == 0 and p.stdout == "ok\n" and "No such file" in p.stderr
    assert cli(adb_server, "-s", phone.serial, "shell", "exit 42").returncode == 42


def test_legacy_shell_merges_streams(adb_server: adbutils.AdbClient, phone: EmulatedPhone) -> None:
    d = adb_server.device(phone.serial)
    assert d.shell("echo a; echo b >&2; echo c", rstrip=False) == "a\nb\nc\n"
    p = cli(adb_server, "-s", phone.serial, "exec-out", "getprop ro.board.platform")
    assert p.stdout == "gs201\n"


def test_getprop_and_features(adb_server: adbutils.AdbClient, phone: EmulatedPhone) -> None:
    d = adb_server.device(phone.serial)
    assert d.getprop("ro.product.model") == "Pixel 7"
    assert d.shell("getprop ro.perflab.emulated") == "1"
    feats = adb_server.device(phone.serial).get_features()
    assert "shell_v2" in feats and "delayed_ack" not in feats


def test_push_pull_5mb_checksums(adb_server: adbutils.AdbClient, phone: EmulatedPhone, tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    assert cli(adb_server, "-s", phone.serial, "push", str(src), "/data/local/tmp/big.bin").returncode == 0
    d = adb_server.device(phone.serial)
    assert d.shell("sha256sum /data/local/tmp/big.bin").split()[0] == digest
    back = tmp_path / "back.bin"
    assert cli(adb_server, "-s", phone.serial, "pull", "/data/local/tmp/big.bin", str(back)).returncode == 0
    assert hashlib.sha256(back.read_bytes()).hexdigest() == digest
    # adbutils' own sync client (STAT/SEND/RECV)
    d.sync.push(data, "/data/local/tmp/big2.bin")
    assert hashlib.sha256(d.sync.read_bytes("/data/local/tmp/big2.bin")).hexdigest() == digest
    names = [e.path for e in d.sync.list("/data/local/tmp")]
    assert "big.bin" in names and "big2.bin" in names


def test_push_to_readonly_fails_cleanly(adb_server: adbutils.AdbClient, phone: EmulatedPhone, tmp_path: Path) -> None:
    src = tmp_path / "x"
    src.write_bytes(b"x")
    p = cli(adb_server, "-s", phone.serial, "push", str(src), "/system/bin/x")
    assert p.returncode != 0
    assert "Permission denied" in p.stdout + p.stderr


def test_dumpsys_battery_over_adb(adb_server: adbutils.AdbClient, phone: EmulatedPhone) -> None:
    out = adb_server.device(phone.serial).shell("dumpsys battery")
    assert out.startswith("Current Battery Service state:")
    assert "  level: " in out and "  Charge counter: " in out


def test_injection_safe_quoting(adb_server: adbutils.AdbClient, phone: EmulatedPhone) -> None:
    d = adb_server.device(phone.serial)
    for name in ["a;reboot", "$(id)", "b`reboot`", "c && reboot"]:
        path = f"/data/local/tmp/{name}"
        d.sync.push(b"payload", path)
        r = d.shell2(f"cat {shlex.quote(path)}", v2=True)
        assert (r.returncode, r.stdout) == (0, "payload")
    r = d.shell2("id; cat <<EOF", v2=True)  # refused whole, before its first command runs
    assert r.returncode == 127 and "not supported" in r.stderr and "uid=" not in r.stdout
    assert phone.reboots == 0 and state_of(adb_server, phone.serial) == "device"


def test_concurrent_streams(adb_server: adbutils.AdbClient, phone: EmulatedPhone) -> None:
    d = adb_server.device(phone.serial)
    results: dict[int, str] = {}

    def work(i: int) -> None:
        results[i] = d.shell(f"sleep 0.5; echo {i}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: str(i) for i in range(4)}


def test_fault_drop_after_commands_goes_offline_and_comes_back(phones: PhoneFactory,
                                                               adb_server: adbutils.AdbClient) -> None:
    faults = Faults(drop_after_commands=2, down_for_s=1.0)
    p = phones.start("galaxy_s23", faults=faults)
    d = adb_server.device(p.serial)
    d.shell("echo 1 > /data/local/tmp/keep")
    assert d.shell("echo two") == "two"
    with pytest.raises(adbutils.AdbError):
        d.shell("echo three")
    assert wait_state(adb_server, p.serial, {"offline", None}, 10) in ("offline", None)
    # the server retries on its own once the phone listens again (after down_for_s);
    # `adb wait-for-device` returns when it is back
    assert cli(adb_server, "-s", p.serial, "wait-for-device", timeout=120).returncode == 0
    assert state_of(adb_server, p.serial) == "device"
    assert d.shell("cat /data/local/tmp/keep") == "1"


def test_reboot_keeps_state(phones: PhoneFactory, adb_server: adbutils.AdbClient) -> None:
    p = phones.start("redmi_note12pro", faults=Faults(reboot_down_s=1.0))
    d = adb_server.device(p.serial)
    d.shell("echo kept > /data/local/tmp/f")
    cli(adb_server, "-s", p.serial, "reboot", timeout=20)
    assert p.wait_for_reboots(1, timeout_s=60)
    assert cli(adb_server, "-s", p.serial, "wait-for-device", timeout=120).returncode == 0
    assert state_of(adb_server, p.serial) == "device"
    assert d.shell("cat /data/local/tmp/f") == "kept"


def test_slow_transfer_and_missing_node(phones: PhoneFactory, adb_server: adbutils.AdbClient) -> None:
    faults = Faults(transfer_bytes_per_s=400_000, missing_nodes=("/sys/class/kgsl/kgsl-3d0/gpubusy",))
    p = phones.start("galaxy_s23", faults=faults)
    d = adb_server.device(p.serial)
    data = os.urandom(200_000)
    t0 = time.monotonic()
    d.sync.push(data, "/data/local/tmp/slow.bin")
    assert time.monotonic() - t0 >= 0.3  # paced at 400 kB/s: a lower bound, not a speed goal
    assert d.shell("md5sum /data/local/tmp/slow.bin").split()[0] == hashlib.md5(data).hexdigest()
    r = d.shell2("cat /sys/class/kgsl/kgsl-3d0/gpubusy", v2=True)
    assert r.returncode == 1 and "No such file or directory" in r.stderr


def test_loopback_only_and_port_rules() -> None:
    with pytest.raises(Exception, match="5554-5585"):
        EmulatedPhone.start("pixel7", port=5560)
    with EmulatedPhone.start("pixel7") as p:
        assert p.port not in range(5554, 5586)
        lsock = p.adbd._lsock
        assert lsock is not None and lsock.getsockname()[0] == "127.0.0.1"
