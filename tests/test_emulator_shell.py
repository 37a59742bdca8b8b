"""The emulated phone's restricted shell, run directly on a phone runtime (no adb)."""

from __future__ import annotations

import hashlib
import shlex
from pathlib import Path

import pytest

from perflab.emulator.profiles import load_profile
from perflab.emulator.runtime import PhoneRuntime
from perflab.emulator.shell import IO, Shell, tokenize


class Phone:
    def __init__(self, tmp: Path, profile: str = "pixel7") -> None:
        self.rt = PhoneRuntime.create(load_profile(profile), tmp)

    def sh(self, script: str, uid: int = 2000, stdin: bytes = b"") -> tuple[int, str, str]:
        out, err = bytearray(), bytearray()
        rc = Shell(self.rt, uid=uid).run(script, IO(out.extend, err.extend, lambda: stdin))
        return rc, out.decode(), err.decode()


@pytest.fixture
def phone(tmp_path: Path) -> Phone:
    return Phone(tmp_path)


@pytest.mark.parametrize("text", ["a b c", "'a b' c", '"a  b" \'c d\'', "a\\ b", '"x\\"y"', "''", 'a"b"c'])
def test_plain_quoting_splits_like_shlex(text: str) -> None:
    words = tokenize(text)
    assert ["".join(s.text for s in w.segs) for w in words] == shlex.split(text)  # type: ignore[union-attr]


def test_sequences_and_exit_codes(phone: Phone) -> None:
    assert phone.sh("true && echo a; false || echo b; false && echo never") == (1, "a\nb\n", "")
    assert phone.sh("false; echo $?")[1] == "1\n"
    assert phone.sh("exit 7")[0] == 7
    assert phone.sh("! false")[0] == 0


def test_unknown_command_is_127(phone: Phone) -> None:
    rc, _out, err = phone.sh("frobnicate")
    assert rc == 127 and "frobnicate: inaccessible or not found" in err


@pytest.mark.parametrize("script", ["(cd /)", "cat <<EOF", "logcat -d", "echo ${x:-d}", "f() { id; }",
                                    "case x in esac", "echo $((i++))", "exec >/data/local/tmp/f", "echo $(id; (cd /))",
                                    "read -N 4 x", "wait %1", "kill -STOP 1", "echo $@"])
def test_unsupported_constructs_are_refused(phone: Phone, script: str) -> None:
    rc, out, err = phone.sh(script)
    assert rc == 127
    assert "not supported by the emulated phone" in err
    assert "uid=" not in out


def test_quoted_injection_is_literal(phone: Phone) -> None:
    for name in ["a;reboot", "$(id)", "`id`", "x && rm -rf ~ | reboot", "q'uote"]:
        path = "/data/local/tmp/" + name
        rc, out, err = phone.sh(f"echo hello > {shlex.quote(path)} && cat {shlex.quote(path)}")
        assert (rc, out) == (0, "hello\n"), err
        assert phone.rt.fs.host_path(path).read_text() == "hello\n"
    assert phone.rt.fs.is_dir("/data/local/tmp")


def test_redirections(phone: Phone) -> None:
    rc, out, err = phone.sh("ls /nope 2>&1 >/dev/null; ls /nope 2>/dev/null; echo x > /data/local/tmp/f; "
                            "echo y >> /data/local/tmp/f; cat < /data/local/tmp/f")
    assert out == "ls: /nope: No such file or directory\nx\ny\n"
    assert err == ""
    rc, out, err = phone.sh("echo hi > /system/bin/x")
    assert rc == 1 and "can't create /system/bin/x" in err


def test_pipes_and_text_tools(phone: Phone) -> None:
    assert phone.sh("getprop | grep ro.product.model")[1] == "[ro.product.model]: [Pixel 7]\n"
    assert phone.sh("printf '%s=%d\\n' a 1 b 2 | tail -n 1")[1] == "b=2\n"
    assert phone.sh("echo abc | wc -c")[1] == "4\n"


def test_files_checksums_and_stat(phone: Phone) -> None:
    data = b"perflab\n" * 100
    phone.rt.fs.host_path("/data/local/tmp/blob").write_bytes(data)
    _rc, out, _ = phone.sh("sha256sum /data/local/tmp/blob; md5sum /data/local/tmp/blob; stat -c %s /data/local/tmp/blob")
    lines = out.splitlines()
    assert lines[0] == f"{hashlib.sha256(data).hexdigest()}  /data/local/tmp/blob"
    assert lines[1].startswith(hashlib.md5(data).hexdigest())
    assert lines[2] == str(len(data))
    assert phone.sh("mkdir -p /data/local/tmp/a/b && cp /data/local/tmp/blob /data/local/tmp/a/b/ && "
                    "mv /data/local/tmp/a/b/blob /data/local/tmp/a/c && ls /data/local/tmp/a")[1] == "b\nc\n"
    assert phone.sh("rm -rf /data/local/tmp/a && test -e /data/local/tmp/a; echo $?")[1] == "1\n"


def test_exec_permissions(phone: Phone) -> None:
    phone.sh("echo 'echo from script; exit 4' > /data/local/tmp/s.sh")
    rc, _, err = phone.sh("/data/local/tmp/s.sh")
    assert rc == 126 and "Permission denied" in err
    assert phone.sh("chmod +x /data/local/tmp/s.sh && /data/local/tmp/s.sh") == (4, "from script\n", "")
    rc, _, err = phone.sh("/data/local/tmp/nothere")
    assert rc == 127 and "not found" in err
    assert phone.sh("cd /data/local/tmp && sh s.sh")[1] == "from script\n"


def test_loops_and_if(phone: Phone) -> None:
    out = phone.sh("for z in /sys/class/thermal/thermal_zone*; do cat $z/type; done")[1].split()
    assert out[:3] == ["BIG", "MID", "LITTLE"]
    assert phone.sh("i=0; while [ $i != 3 ]; do echo $i; i=$((i + 1)); done") == (0, "0\n1\n2\n", "")
    assert phone.sh("if [ -d /data/local/tmp ]; then echo yes; else echo no; fi")[1] == "yes\n"


def test_su_on_rooted_and_unrooted(tmp_path: Path) -> None:
    rooted = Phone(tmp_path / "a", "pixel7")
    assert rooted.sh("su -c id")[1].startswith("uid=0(root)")
    assert rooted.sh("su 0 sh -c 'whoami'")[1] == "root\n"
    plain = Phone(tmp_path / "b", "galaxy_s23")
    rc, _, err = plain.sh("su -c id")
    assert rc == 127 and "su: inaccessible or not found" in err


def test_charging_knob_needs_root_and_changes_physics(phone: Phone) -> None:
    knob = phone.rt.profile.battery.charging_knob.path
    rc, _, err = phone.sh(f"echo 1 > {knob}")
    assert rc == 1 and "Permission denied" in err
    assert "status: 2" in phone.sh("dumpsys battery")[1]
    assert phone.sh(f"su -c 'echo 1 > {knob}' && cat {knob}")[1] == "1\n"
    assert "status: 4" in phone.sh("dumpsys battery")[1]
    assert phone.rt.physics.state.charging_suspended
    assert phone.sh("cat /sys/class/power_supply/battery/status")[1] == "Not charging\n"


def test_dumpsys_battery_format(phone: Phone) -> None:
    out = phone.sh("dumpsys battery")[1].splitlines()
    assert out[0] == "Current Battery Service state:"
    keys = [ln.split(":")[0].strip() for ln in out[1:]]
    for k in ["AC powered", "USB powered", "Max charging current", "Charge counter", "status", "health",
              "level", "scale", "voltage", "temperature", "technology"]:
        assert k in keys
    phone.sh("cmd battery unplug")
    out2 = phone.sh("dumpsys battery")[1]
    assert "(UPDATES STOPPED -- use 'reset' to restart)" in out2 and "USB powered: false" in out2
    phone.sh("dumpsys battery reset")
    assert "UPDATES STOPPED" not in phone.sh("dumpsys battery")[1]


def test_dumpsys_thermalservice_format(phone: Phone) -> None:
    out = phone.sh("dumpsys thermalservice")[1]
    assert "Thermal Status: 0" in out
    section = out.split("Current temperatures from HAL:\n")[1].split("Current cooling devices")[0]
    assert "\tTemperature{mValue=" in section and "mName=VIRTUAL-SKIN" in section


def test_sysfs_units_and_signs(tmp_path: Path) -> None:
    for name in ("pixel7", "galaxy_s23", "redmi_note12pro"):
        p = Phone(tmp_path / name, name)
        knob = p.rt.profile.battery.charging_knob
        p.rt.set_knob(knob.disable_value.encode())  # discharging: battery carries the load
        cur = int(p.sh(f"cat {p.rt.profile.battery.supply_dir}/current_now")[1])
        b = p.rt.profile.battery
        assert (cur > 0) == (b.discharge_sign > 0), name
        assert (abs(cur) < 10_000) == (b.current_unit == "ma"), name
        temp_mc = int(p.sh("cat /sys/class/thermal/thermal_zone0/temp")[1])
        assert 15_000 < temp_mc < 60_000


def test_missing_node_fault(phone: Phone) -> None:
    phone.rt.fs.hide("/sys/class/thermal/thermal_zone3")
    rc, _, err = phone.sh("cat /sys/class/thermal/thermal_zone3/temp")
    assert rc == 1 and "No such file or directory" in err
    assert "thermal_zone3" not in phone.sh("ls /sys/class/thermal")[1]


def test_settings_svc_input(phone: Phone) -> None:
    assert phone.sh("settings put global stay_on_while_plugged_in 7 && settings get global "
                    "stay_on_while_plugged_in")[1] == "7\n"
    phone.sh("svc power stayon false")
    assert phone.rt.stay_on == "false"
    phone.sh("input keyevent KEYCODE_SLEEP")
    assert not phone.rt.screen_on
    assert "mWakefulness=Asleep" in phone.sh("dumpsys power")[1]


def test_cpufreq_governor_root_only(phone: Phone) -> None:
    node = "/sys/devices/system/cpu/cpufreq/policy0/scaling_governor"
    assert phone.sh(f"cat {node}")[1] == "schedutil\n"
    assert phone.sh(f"echo performance > {node}")[0] == 1
    assert phone.sh(f"su -c 'echo performance > {node}'; cat /sys/devices/system/cpu/cpu1/cpufreq/scaling_governor")[1] \
        == "performance\n"
