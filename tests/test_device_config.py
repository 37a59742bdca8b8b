"""Device configs, adb/getprop/thermal parsers, the host journal and the device lock (no phone)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.phones import PhoneFactory

from perflab.core.paths import (
    ENV_CONFIG_DIR,
    ConfigKind,
    config_files,
    packaged_dir,
    user_config_dir,
    user_dir,
)
from perflab.devices.adb import parse_devices_l, quote_argv
from perflab.devices.android import parse_getprop, parse_thermal_dump
from perflab.devices.config import (
    CurrentUnit,
    GpuFormat,
    config_for,
    load_all,
    load_device_config,
)
from perflab.devices.journal import Change, ChangeKind, Journal, journaled_serials
from perflab.devices.lock import DeviceLock
from perflab.devices.probe import guess_current, zone_role
from perflab.errors import DeviceBusyError, DeviceError, DeviceGoneError, UserInputError
from perflab.workloads.phone import decode_output, raw_tensor_bytes


@pytest.fixture(autouse=True)
def _own_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets an empty user config folder, never the developer's ~/.config/perflab."""
    folder = tmp_path / "user-config"
    monkeypatch.setenv(ENV_CONFIG_DIR, str(folder))
    return folder


# ---- configs ----------------------------------------------------------------------------------


def test_shipped_configs_load_and_match_the_emulator_profiles() -> None:
    configs = {c.config.name: c.config for c in load_all()}
    assert {"generic", "pixel7", "galaxy_s23", "redmi_note12pro"} <= set(configs)
    assert configs["galaxy_s23"].battery.current_unit is CurrentUnit.MA
    assert configs["redmi_note12pro"].battery.discharge_sign == 1
    assert configs["galaxy_s23"].gpu is not None and configs["galaxy_s23"].gpu.format is GpuFormat.KGSL_GPUBUSY
    assert configs["pixel7"].thermal.gate_zone() == "quiet_therm"
    # each profile's model prop selects its config; anything else gets generic
    import yaml

    for prof in sorted(packaged_dir(ConfigKind.EMULATOR_PROFILES).glob("*.yaml")):
        props = yaml.safe_load(prof.read_text())["props"]
        assert config_for(props).config.name == prof.stem
    assert config_for({"ro.product.model": "Nokia 3310"}).config.name == "generic"


def test_user_config_folder_precedence() -> None:
    home = Path("~/.config/perflab").expanduser()
    assert user_config_dir({}) == home
    assert user_config_dir({"XDG_CONFIG_HOME": "/x/cfg"}) == Path("/x/cfg/perflab")
    assert user_config_dir({"XDG_CONFIG_HOME": "relative/cfg"}) == home  # the XDG spec: ignore relative
    assert user_config_dir({"XDG_CONFIG_HOME": "/x/cfg", ENV_CONFIG_DIR: "/y/mine"}) == Path("/y/mine")
    assert user_dir(ConfigKind.EMULATOR_PROFILES, {ENV_CONFIG_DIR: "/y"}) == Path("/y/emulator_profiles")


def test_packaged_defaults_are_inside_the_package() -> None:
    import perflab

    package = Path(perflab.__file__).resolve().parent
    for kind in ConfigKind:
        assert packaged_dir(kind).resolve().is_relative_to(package)
    assert set(config_files(ConfigKind.DEVICE_CONFIGS)) >= {"generic", "pixel7"}
    assert set(config_files(ConfigKind.EMULATOR_PROFILES)) >= {"pixel7", "galaxy_s23", "redmi_note12pro"}


def test_user_config_replaces_the_shipped_one_and_matches_first(_own_config_dir: Path) -> None:
    mine = _own_config_dir / "device_configs"
    mine.mkdir(parents=True)
    # same file name as a shipped config: replaces it
    (mine / "pixel7.yaml").write_text("name: pixel7\ndescription: mine\nmatch:\n  props: {ro.product.model: Pixel 7}\n")
    # a new name that sorts after every shipped one but matches the same phone: still chosen first
    (mine / "zz_galaxy.yaml").write_text("name: zz_galaxy\nmatch:\n  props: {ro.product.model: SM-S911B}\n")
    configs = {c.config.name: c for c in load_all()}
    assert configs["pixel7"].config.description == "mine" and configs["pixel7"].file == mine / "pixel7.yaml"
    assert config_for({"ro.product.model": "Pixel 7"}).file == mine / "pixel7.yaml"
    assert config_for({"ro.product.model": "SM-S911B"}).config.name == "zz_galaxy"
    assert config_for({"ro.product.model": "Nokia 3310"}).config.name == "generic"  # shipped generic stays


def test_user_emulator_profile_replaces_the_shipped_one(_own_config_dir: Path) -> None:
    import yaml

    from perflab.emulator.profiles import available_profiles, load_profile

    shipped = yaml.safe_load((packaged_dir(ConfigKind.EMULATOR_PROFILES) / "pixel7.yaml").read_text())
    shipped["description"] = "my tweaked pixel"
    mine = _own_config_dir / "emulator_profiles"
    mine.mkdir(parents=True)
    (mine / "pixel7.yaml").write_text(yaml.safe_dump(shipped))
    (mine / "lab_phone.yaml").write_text(yaml.safe_dump({**shipped, "name": "lab_phone"}))
    assert load_profile("pixel7").description == "my tweaked pixel"
    assert {"pixel7", "lab_phone", "galaxy_s23"} <= set(available_profiles())
    with pytest.raises(UserInputError) as ei:
        load_profile("nokia3310")
    assert "lab_phone" in str(ei.value) and str(mine) in str(ei.value)


def test_profile_errors_name_file_line_field(_own_config_dir: Path) -> None:
    import yaml

    from perflab.emulator.profiles import load_profile

    shipped = yaml.safe_load((packaged_dir(ConfigKind.EMULATOR_PROFILES) / "pixel7.yaml").read_text())
    shipped["battery"]["discharge_sign"] = 2
    mine = _own_config_dir / "emulator_profiles"
    mine.mkdir(parents=True)
    bad = mine / "bad.yaml"
    bad.write_text(yaml.safe_dump(shipped, sort_keys=False))
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if "discharge_sign" in text)
    with pytest.raises(UserInputError) as ei:
        load_profile("bad")
    assert str(ei.value).startswith(f"{bad}:{line}: battery.discharge_sign"), str(ei.value)


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "phone.yaml"
    p.write_text(textwrap.dedent(text))
    return p


@pytest.mark.parametrize(
    ("body", "where", "what"),
    [
        ("name: x\nbattery:\n  discharge_sign: 2\n", ":3: battery.discharge_sign", "Input should be"),
        ("name: x\ncolour: blue\n", ":2: colour", "unknown field"),
        ("name: x\ncharging_knob:\n  path: /sys/a;reboot\n  enable_value: '0'\n  disable_value: '1'\n",
         ":3: charging_knob.path", "pattern"),
        ("name: x\nthermal:\n  zones: [{type: BIG}]\n  cooldown_zone: SMALL\n", ":2: thermal", "cooldown_zone"),
        ("name: 'bad name'\n", ":1: name", "pattern"),
    ],
)
def test_config_errors_name_file_line_field(tmp_path: Path, body: str, where: str, what: str) -> None:
    p = _write(tmp_path, body)
    with pytest.raises(UserInputError) as ei:
        load_device_config(p)
    msg = str(ei.value)
    assert msg.startswith(str(p) + where), msg
    assert what in msg


def test_benchmark_host_path_is_relative_to_the_config(tmp_path: Path) -> None:
    p = _write(tmp_path, "name: x\nbenchmark_model:\n  host_path: bin/benchmark_model\n")
    assert load_device_config(p).benchmark_host_path() == tmp_path / "bin" / "benchmark_model"


# ---- parsers ---------------------------------------------------------------------------------------


def test_parse_devices_l() -> None:
    text = (
        "List of devices attached\n"
        "UYT5T18414003349       device usb:1114112X product:ALP-AL00 model:ALP_AL00 device:HWALP transport_id:23\n"
        "127.0.0.1:34381        device product:panther model:Pixel_7 device:panther transport_id:33\n"
        "RQCWB06ZY2X            unauthorized usb:3-5.3.2 transport_id:27\n"
        "emulator-5554          offline transport_id:2\n"
        "0123456789ABCDEF       no permissions (user in plugdev group; are your udev rules wrong?); see "
        "[http://developer.android.com/tools/device.html] usb:1-1 transport_id:4\n"
    )
    e = parse_devices_l(text)
    assert [(x.serial, x.state) for x in e] == [
        ("UYT5T18414003349", "device"), ("127.0.0.1:34381", "device"), ("RQCWB06ZY2X", "unauthorized"),
        ("emulator-5554", "offline"), ("0123456789ABCDEF", "no permissions"),
    ]
    assert e[0].tags["model"] == "ALP_AL00" and e[0].tags["devpath"] == "usb:1114112X"
    assert e[1].tags["transport_id"] == "33"
    assert parse_devices_l("serial1\tdevice\nserial2\tunauthorized\n")[1].state == "unauthorized"


def test_parse_getprop_and_quote() -> None:
    props = parse_getprop(
        "[ro.product.model]: [Pixel 8 Pro]\n[gsm.operator.alpha]: [Test Carrier,]\n"
        "[ro.board.platform]: [zuma]\nnot a prop line\n[weird]: [a]: [b]]\n"
    )
    assert props["ro.product.model"] == "Pixel 8 Pro"
    assert props["gsm.operator.alpha"] == "Test Carrier,"
    assert props["weird"] == "a]: [b]"
    assert quote_argv(["cat", "/data/a;reboot", "$(id)"]) == "cat '/data/a;reboot' '$(id)'"


def test_parse_thermal_dump() -> None:
    text = (
        "@@ /sys/class/thermal/thermal_zone0\nBIG\n@t\n45123\n"
        "@@ /sys/class/thermal/thermal_zone1\nbroken\n@t\n"  # temp unreadable (EINVAL)
        "@@ /sys/class/thermal/thermal_zone2\ncelsius-zone\n@t\n37\n"
        "@@ /sys/class/thermal/thermal_zone3\ndisabled\n@t\n-273000\n"
    )
    z = parse_thermal_dump(text)
    assert [(r.type, r.temp_c) for r in z] == [("BIG", 45.123), ("broken", None), ("celsius-zone", 37.0),
                                               ("disabled", None)]


def test_raw_tensor_roundtrip_quantized() -> None:
    import numpy as np

    frame = np.linspace(0, 1, 2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3)
    raw = raw_tensor_bytes(frame, np.dtype(np.uint8), 1 / 255.0, 0)
    assert len(raw) == 18
    back = decode_output(raw, (1, 2, 3, 3), np.dtype(np.uint8), 1 / 255.0, 0)
    assert back.shape == (2, 3, 3) and np.allclose(back, frame, atol=1 / 255.0)
    f32 = decode_output(raw_tensor_bytes(frame, np.dtype(np.float32), 0.0, 0), (1, 2, 3, 3),
                        np.dtype(np.float32), 0.0, 0)
    assert np.array_equal(f32, frame)
    with pytest.raises(Exception, match="expected 72"):
        decode_output(raw, (1, 2, 3, 3), np.dtype(np.float32), 0.0, 0)


def test_probe_guesses() -> None:
    assert guess_current(-412000, "Discharging")[:2] == (CurrentUnit.UA, -1)
    assert guess_current(1104003, "Discharging")[:2] == (CurrentUnit.UA, 1)  # SM8250 fg habit
    assert guess_current(-1753000, "Charging")[:2] == (CurrentUnit.UA, 1)
    assert guess_current(441, "Discharging")[:2] == (CurrentUnit.MA, 1)
    assert guess_current(0, "Full")[1] is None
    assert zone_role("quiet_therm").value == "skin" and zone_role("gpuss-0-usr").value == "gpu"
    assert zone_role("cpu-1-4-usr").value == "cpu" and zone_role("q6-hvx-usr").value == "npu"
    assert zone_role("mtktsbattery").value == "battery" and zone_role("xyz").value == "other"


# ---- journal ------------------------------------------------------------------------------------------


def test_journal_restores_in_reverse_and_marks_done(tmp_path: Path) -> None:
    j = Journal("127.0.0.1:40001", tmp_path)
    a = j.record(ChangeKind.SETTING, "global/stay_on_while_plugged_in", "0", "2", run_id="r1")
    b = j.record(ChangeKind.WRITE_FILE, "/sys/x/charge_disable", "0", "1", run_id="r1", root=True)
    c = j.record(ChangeKind.SCREEN, "screen", "on", "off", run_id="r1")
    assert [x.id for x in j.pending()] == [a.id, b.id, c.id]
    assert journaled_serials(tmp_path) == ["127.0.0.1:40001"]
    undone: list[Change] = []
    assert [x.id for x in j.restore(undone.append)] == [c.id, b.id, a.id]
    assert [x.id for x in undone] == [c.id, b.id, a.id]
    assert j.pending() == [] and journaled_serials(tmp_path) == []
    j.compact()
    assert not j.path.exists()


def test_journal_survives_a_torn_line_and_keeps_failures(tmp_path: Path) -> None:
    j = Journal("SER1", tmp_path)
    a = j.record(ChangeKind.WRITE_FILE, "/sys/a", "x", "y", root=True, what="pin governor")
    b = j.record(ChangeKind.WRITE_FILE, "/sys/b", "p", "q", root=True)
    with j.path.open("a") as fh:
        fh.write('{"op": "change", "id": "torn')  # a crash mid-write
    def undo(ch: Change) -> None:
        if ch.id == b.id:
            raise DeviceError("SER1", "write failed", command="printf")

    with pytest.raises(DeviceError, match="could not undo 1 change"):
        j.restore(undo)
    assert [x.id for x in j.pending()] == [b.id]  # a was undone, b stays journaled
    del a

    def gone(ch: Change) -> None:
        raise DeviceGoneError("SER1", "unplugged")

    with pytest.raises(DeviceGoneError):
        j.restore(gone)
    assert len(j.pending()) == 1


# ---- lock ----------------------------------------------------------------------------------------------


def test_lock_contention_in_process_and_across_processes(tmp_path: Path) -> None:
    first = DeviceLock("127.0.0.1:40001", tmp_path)
    with first:
        with pytest.raises(DeviceBusyError, match="in use by perflab process pid"):
            DeviceLock("127.0.0.1:40001", tmp_path).acquire()
        code = (
            "import sys; from pathlib import Path\n"
            "from perflab.devices.lock import DeviceLock\nfrom perflab.errors import DeviceBusyError\n"
            f"try:\n    DeviceLock('127.0.0.1:40001', Path({str(tmp_path)!r})).acquire()\n"
            "except DeviceBusyError as e:\n    print(e); sys.exit(3)\n"
        )
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
        assert res.returncode == 3, res.stderr
        assert "in use by perflab process pid" in res.stdout
        DeviceLock("other-serial", tmp_path).acquire()  # other phones are free
    with DeviceLock("127.0.0.1:40001", tmp_path) as again:
        assert again.held


# ---- probe writes into the user config folder ------------------------------------------------------


@pytest.mark.skipif(shutil.which("adb") is None, reason="adb is not installed (.ci/run installs Debian's adb)")
def test_probe_writes_into_the_user_config_folder(phones: PhoneFactory, tmp_path: Path,
                                                  perflab_cmd: list[str]) -> None:
    from perflab.emulator.testing import adb_env

    from_env, from_flag = tmp_path / "from-env", tmp_path / "from-flag"
    phone = phones.start(profile="pixel7")
    env = {**adb_env(phones.server), ENV_CONFIG_DIR: str(from_env)}
    # run in a folder of its own: nothing may land in the working directory or the checkout
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    probe = ["devices", "probe", phone.serial]
    flag = subprocess.run([*perflab_cmd, "--config-dir", str(from_flag), *probe], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    plain = subprocess.run([*perflab_cmd, *probe], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    again = subprocess.run([*perflab_cmd, *probe], cwd=cwd, env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert flag.returncode == 0, flag.stderr
    written = from_flag / "device_configs" / "panther.yaml"  # --config-dir beats $PERFLAB_CONFIG_DIR
    assert f"wrote {written}" in flag.stdout
    assert load_device_config(written).config.match.props == {"ro.product.model": "Pixel 7"}
    assert plain.returncode == 0, plain.stderr
    assert f"wrote {from_env / 'device_configs' / 'panther.yaml'}" in plain.stdout
    assert again.returncode == 2 and "exists; pass --force" in again.stderr  # one line, no traceback
    assert "Traceback" not in again.stderr
    assert list((tmp_path / "cwd").iterdir()) == []
