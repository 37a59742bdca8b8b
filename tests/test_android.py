"""AndroidDevice against emulated phones behind a real adb server (Debian's adb, private port).

Everything here goes through the real adb server and the adb wire protocol: shell v2 exit
codes, sync push/pull with sha256 on both ends, the journal and restore, the lock, a phone
that drops off mid-command, and benchmark_model runs (the emulated phone runs its emulated
tool for the placeholder binary we push) whose outputs are compared with the host's LiteRT.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

if shutil.which("adb") is None:  # .ci/run installs Debian's adb
    pytest.skip("adb is not installed", allow_module_level=True)

from support.phones import PhoneFactory
from support.waiting import wait_until

from perflab.core.types import ModelArtifact, ProfileResult, SeriesMode, TimingRequest
from perflab.devices.adb import Adb
from perflab.devices.android import AndroidDevice, discover_devices, open_device
from perflab.devices.base import Device, DeviceKind
from perflab.devices.config import load_device_config
from perflab.emulator.adbd import Faults
from perflab.emulator.phone import EmulatedPhone
from perflab.errors import (
    DeviceBusyError,
    DeviceError,
    DeviceGoneError,
    DeviceNotReadyError,
    DeviceTimeoutError,
    ModelError,
    UserInputError,
)
from perflab.workloads import workload_for
from perflab.workloads.phone import PhoneWorkload

WEIGHTS = Path(__file__).resolve().parents[1] / "perflab" / "zoo" / "weights"
KNOB = "/sys/devices/platform/google,charger/charge_disable"
GOV0 = "/sys/devices/system/cpu/cpufreq/policy0/scaling_governor"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def phone(module_phones: PhoneFactory) -> EmulatedPhone:
    return module_phones.start(profile="pixel7")


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The user-supplied benchmark_model; here a placeholder the emulated phone runs its tool for."""
    p = tmp_path_factory.mktemp("bin") / "benchmark_model"
    p.write_text("#!/system/bin/sh\n# placeholder for the user's benchmark_model binary\n")
    return p


@pytest.fixture
def device(adb: Adb, phone: EmulatedPhone, binary: Path, tmp_path: Path) -> Iterator[AndroidDevice]:
    d = AndroidDevice(adb, phone.serial, benchmark_binary=binary, state_dir=tmp_path / "state")
    yield d
    try:
        d.restore()
    finally:
        d.close()


@pytest.fixture
def workload(device: AndroidDevice, tmp_path: Path) -> PhoneWorkload:
    w = workload_for(device, tmp_path / "work")
    assert isinstance(w, PhoneWorkload)
    return w


def when(condition: Callable[[], bool], action: Callable[[], None]) -> threading.Thread:
    """Run ``action`` once ``condition()`` holds (checked by a watcher thread): faults are
    injected after the event they wait for, never after a guessed delay. An event that never
    comes (2 min, a guard against a hang) injects nothing: the test then fails on what it expected."""
    def watch() -> None:
        if wait_until(condition, timeout_s=120, poll_s=0.01):
            action()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def artifact(tmp_path: Path, name: str, variant: str = "uint8") -> ModelArtifact:
    src = WEIGHTS / f"bicubic_x2_{variant}.tflite"
    dst = tmp_path / name
    shutil.copy(src, dst)
    data = dst.read_bytes()
    return ModelArtifact(name="bicubic_x2", family="bicubic", variant=variant, scale=2, path=dst,
                         sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


# ---- identity ---------------------------------------------------------------------------------


def test_info_of_emulated_phones(phones: PhoneFactory, adb: Adb, device: AndroidDevice) -> None:
    assert isinstance(device, Device)
    info = device.info()
    assert info.kind is DeviceKind.EMULATED
    assert (info.model, info.soc, info.sdk, info.abi, info.rooted) == ("Pixel 7", "GS201", 34, "arm64-v8a", True)
    assert info.fingerprint and info.fingerprint.startswith("google/panther/")
    assert info.extra["device_config"] == "pixel7"
    galaxy = phones.start(profile="galaxy_s23")
    g = AndroidDevice(adb, galaxy.serial).info()
    assert (g.model, g.soc, g.rooted, g.kind) == ("SM-S911B", "SM8550", False, DeviceKind.EMULATED)
    serials = {d.serial for d in discover_devices(adb)}
    assert {galaxy.serial, device.serial} <= serials


def test_temperature_from_the_configured_zone(device: AndroidDevice) -> None:
    r = device.temperature()
    assert r.temp_c is not None and 0.0 < r.temp_c < 100.0
    assert r.source is not None and "quiet_therm" in r.source
    cd = device.wait_for_cooldown(max_temp_c=200.0, timeout_s=5.0)
    assert cd.reached and cd.start_temp_c is not None and cd.waited_s < 5.0


# ---- shell, push, pull ---------------------------------------------------------------------------


def test_failing_command_raises_with_context(device: AndroidDevice) -> None:
    with pytest.raises(DeviceError) as ei:
        device.dev.shell(["sh", "-c", "echo to-out; echo to-err >&2; exit 3"])
    e = ei.value
    assert (e.serial, e.exit_code, e.stdout.strip(), e.stderr.strip()) == (device.serial, 3, "to-out", "to-err")
    assert e.command is not None and "exit 3" in e.command
    res = device.dev.shell(["sh", "-c", "exit 5"], check=False)
    assert res.exit_code == 5


def test_push_pull_verified_by_sha256(device: AndroidDevice, tmp_path: Path) -> None:
    data = np.random.default_rng(3).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    remote = "/data/local/tmp/perflab/blob.bin"
    device.sh(["mkdir", "-p", "/data/local/tmp/perflab"])
    sha = device.dev.push_bytes(data, remote)
    assert sha == hashlib.sha256(data).hexdigest() == device.dev.sha256(remote)
    assert device.dev.pull_bytes(remote) == data
    local = tmp_path / "back.bin"
    assert device.dev.pull(remote, local) == sha and local.read_bytes() == data
    assert device.dev.stat(remote) is not None and device.dev.stat(remote + ".nope") is None
    with pytest.raises(DeviceError, match=r"pull of .* failed"):
        device.dev.pull_bytes("/data/local/tmp/perflab/does-not-exist")


@pytest.mark.parametrize("name", ["a;reboot", "$(id)", "`id`", "x' && id '"])
def test_hostile_names_reach_the_phone_literally(device: AndroidDevice, phone: EmulatedPhone, name: str) -> None:
    reboots = phone.reboots
    remote = f"/data/local/tmp/perflab/{name}"
    device.sh(["mkdir", "-p", "/data/local/tmp/perflab"])
    device.dev.push_bytes(b"payload", remote)
    assert name in device.sh(["ls", "/data/local/tmp/perflab"]).stdout.splitlines()
    assert device.sh(["cat", remote]).stdout == "payload"
    assert "uid=" not in device.sh(["echo", name]).stdout  # nothing was substituted
    assert phone.reboots == reboots
    device.sh(["rm", "-f", remote])


# ---- benchmark_model ---------------------------------------------------------------------------------


def test_run_timing_with_a_hostile_model_name(device: AndroidDevice, workload: PhoneWorkload,
                                              phone: EmulatedPhone, tmp_path: Path) -> None:
    art = artifact(tmp_path, "a;reboot $(id).tflite")
    frame = np.random.default_rng(1).random((24, 32, 3), dtype=np.float32)
    req = TimingRequest(mode=SeriesMode.BACK_TO_BACK, fps=None, warmup=2, iterations=6, threads=2,
                        delegate="cpu", timeout_s=120, lr_width=32, lr_height=24, input_frame=frame)
    r = workload.run_timing(art, req)
    assert r.summary is not None and r.summary.count == 6 and r.summary.mean_ms > 0
    assert r.samples_ms is None and "samples_ms" in r.missing
    assert r.init_ms is not None and r.first_ms is not None
    assert any("emulated" in w for w in r.warnings)
    # the file with that literal name is on the phone, pushed once (by sha256), and no reboot happened
    listing = device.sh(["ls", f"/data/local/tmp/perflab/m/{art.sha256[:16]}"]).stdout.splitlines()
    assert listing == ["a;reboot $(id).tflite"]
    assert phone.reboots == 0
    r2 = workload.run_timing(art, TimingRequest(mode=SeriesMode.PACED, fps=50.0, warmup=1, iterations=3, threads=1,
                                              delegate="gpu", timeout_s=120, lr_width=32, lr_height=24))
    assert r2.summary is not None and r2.summary.count == 3
    assert any("GPU delegate" in line for line in r2.delegate_info)


def test_run_outputs_match_the_host_interpreter(workload: PhoneWorkload, tmp_path: Path) -> None:
    from perflab.zoo.infer import upscale

    rng = np.random.default_rng(2)
    frames = [rng.random((24, 32, 3), dtype=np.float32), rng.random((16, 20, 3), dtype=np.float32)]
    for variant in ("fp32", "uint8"):
        art = artifact(tmp_path, f"bicubic_{variant}.tflite", variant)
        outs = workload.run_outputs(art, frames, 2, "cpu", 120)
        assert [o.shape for o in outs] == [(48, 64, 3), (32, 40, 3)]
        for f, o in zip(frames, outs, strict=True):
            assert o.dtype == np.float32 and float(o.min()) >= 0.0 and float(o.max()) <= 1.0
            ref = upscale(art.path, f)
            tol = 1e-4 if variant == "fp32" else 2.0 / 255.0
            assert float(np.abs(o - ref).max()) <= tol


def test_run_profile_is_a_separate_pass(workload: PhoneWorkload, tmp_path: Path) -> None:
    art = artifact(tmp_path, "bicubic.tflite", "fp32")
    prof = workload.run_profile(art, 2, "cpu", 120)
    assert isinstance(prof, ProfileResult) and prof.layers and prof.source.startswith("emulated ")
    assert "CONV_2D" in [layer.node_type for layer in prof.layers]
    assert prof.total_ms is not None and prof.total_ms > 0


def test_run_profile_runs_at_the_geometry_it_is_given(workload: PhoneWorkload) -> None:
    """A per-layer pass profiles at its own LR size. Without one, a pass that ran before any
    timing run of the model profiled the zoo model's own input shape, 1×1 pixels, and set those
    rows beside a differential measured at the cell's size."""
    from perflab.zoo.registry import get_artifact

    art = get_artifact("espcn", 2, "fp32")

    def conv_ms(width: int, height: int) -> float:
        prof = workload.run_profile(art, 1, "cpu", 120, lr_width=width, lr_height=height)
        assert isinstance(prof, ProfileResult), prof
        return sum(r.avg_ms for r in prof.layers if r.node_type == "CONV_2D")

    small, big = conv_ms(16, 8), conv_ms(128, 64)
    assert big > 8 * small, (small, big)  # 64 times the pixels (the 1x1 model: the same time twice)


def test_missing_benchmark_model_fails_once_before_the_first_cell(adb: Adb, phone: EmulatedPhone,
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERFLAB_BENCHMARK_MODEL", raising=False)
    cfg = tmp_path / "nobin.yaml"
    cfg.write_text("name: nobin\nbenchmark_model:\n  remote_path: /data/local/tmp/perflab-none/benchmark_model\n")
    dev = open_device(phone.serial, adb, config=load_device_config(cfg))  # reachable: opening is fine
    with pytest.raises(DeviceNotReadyError, match="benchmark_model is not on the phone") as ei:
        workload_for(dev, tmp_path / "work").check_ready()
    msg = str(ei.value)
    assert ei.value.serial == phone.serial
    for needed in ("benchmark_model.host_path", "benchmark_model.remote_path", "PERFLAB_BENCHMARK_MODEL",
                   "docs/android.md", str(cfg)):
        assert needed in msg
    missing_host = tmp_path / "nowhere" / "benchmark_model"
    monkeypatch.setenv("PERFLAB_BENCHMARK_MODEL", str(missing_host))
    with pytest.raises(DeviceNotReadyError, match="host copy not found on this machine"):
        workload_for(dev, tmp_path / "work").check_ready()
    with pytest.raises(UserInputError, match=r"unknown device serial '127\.0\.0\.1:1'"):
        open_device("127.0.0.1:1", adb)


def test_a_provisioned_phone_needs_no_host_copy(adb: Adb, phone: EmulatedPhone, binary: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The binary already at the configured remote path is used as it is: no env var, no push."""
    monkeypatch.delenv("PERFLAB_BENCHMARK_MODEL", raising=False)
    remote = "/data/local/tmp/perflab-provisioned/benchmark_model"
    cfg = tmp_path / "provisioned.yaml"
    cfg.write_text(f"name: provisioned\nbenchmark_model:\n  remote_path: {remote}\n")
    dev = AndroidDevice(adb, phone.serial, config=load_device_config(cfg), state_dir=tmp_path / "state")
    dev.sh(["mkdir", "-p", "/data/local/tmp/perflab-provisioned"])
    dev.dev.push(binary, remote, mode=0o755)
    mtime = dev.dev.stat(remote)
    w = workload_for(dev, tmp_path / "work")
    w.check_ready()
    art = artifact(tmp_path, "m.tflite", "fp32")
    r = w.run_timing(art, TimingRequest(mode=SeriesMode.BACK_TO_BACK, fps=None, warmup=0, iterations=2, threads=1,
                                        delegate="cpu", timeout_s=120, lr_width=8, lr_height=8))
    assert r.summary is not None and r.summary.count == 2
    assert dev.dev.stat(remote) == mtime  # not pushed again


def test_adb_port_from_the_environment_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from perflab.devices.adb import adb_server_port

    assert adb_server_port({}) == 5037 and adb_server_port({"ANDROID_ADB_SERVER_PORT": "5099"}) == 5099
    for bad in ("abc", "0", "70000", "-1", "12ab"):
        with pytest.raises(UserInputError, match="ANDROID_ADB_SERVER_PORT"):
            adb_server_port({"ANDROID_ADB_SERVER_PORT": bad})
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", "abc")
    with pytest.raises(UserInputError, match="not a TCP port number"):
        Adb()
    # adbutils reads the variable when it is imported: the CLI still answers with one line
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "perflab", "devices", "list"], capture_output=True, text=True,
                         env=dict(os.environ, ANDROID_ADB_SERVER_PORT="abc"), check=False)
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    assert res.stderr.strip().splitlines()[-1:] == [
        "perflab: error: ANDROID_ADB_SERVER_PORT='abc' is not a TCP port number (1-65535)"]


def test_old_binary_without_output_filepath_fails_clearly(device: AndroidDevice, tmp_path: Path) -> None:
    """An older benchmark_model ignores --output_filepath with a warning; we must notice."""
    from perflab.formats.benchmark_output import parse_output
    from perflab.workloads.benchmark_model import check_output

    fixture = Path(__file__).parent / "fixtures" / "benchmark_model" / "err_unconsumed_output_filepath.txt"
    out = parse_output(fixture.read_text().split("# ---\n", 1)[1])
    with pytest.raises(ModelError, match="does not know --output_filepath"):
        check_output(out, required_flags=("--output_filepath",))


# ---- prepare / restore / journal / lock ---------------------------------------------------------------


def test_prepare_journals_then_restore_after_a_crash(adb: Adb, phone: EmulatedPhone, binary: Path,
                                                     tmp_path: Path) -> None:
    state = tmp_path / "state"
    before = (device_read(adb, phone, KNOB), device_read(adb, phone, GOV0))
    assert before == ("0", "schedutil")
    crashed = AndroidDevice(adb, phone.serial, benchmark_binary=binary, state_dir=state)
    crashed.prepare("run-1")
    assert device_read(adb, phone, KNOB) == "1" and device_read(adb, phone, GOV0) == "performance"
    assert crashed.screen_state() == "off"
    kinds = [c.what for c in crashed.journal.pending()]
    assert kinds[:2] == ["keep awake on USB", "suspend charging"] and "screen off" in kinds
    # every journal line was written before the change, with the old value
    lines = [json.loads(x) for x in crashed.journal.path.read_text().splitlines()]
    assert {ln["target"]: ln["old"] for ln in lines if ln["op"] == "change"}[KNOB] == "0"
    crashed.close()  # the process "dies": no restore; the lock goes with it

    # a later `perflab devices restore SERIAL` (same state dir) puts everything back
    from typer.testing import CliRunner

    from perflab.cli.devices import app

    env = {"PERFLAB_STATE_DIR": str(state), "ANDROID_ADB_SERVER_PORT": str(adb.port)}
    res = CliRunner().invoke(app, ["restore", phone.serial], env=env)
    assert res.exit_code == 0, res.output
    assert f"{phone.serial}: restored" in res.output
    assert (device_read(adb, phone, KNOB), device_read(adb, phone, GOV0)) == before
    assert AndroidDevice(adb, phone.serial, state_dir=state).screen_state() == "on"
    assert AndroidDevice(adb, phone.serial, state_dir=state).journal.pending() == []
    res2 = CliRunner().invoke(app, ["restore"], env=env)
    assert res2.exit_code == 0 and "nothing to restore" in res2.output


def device_read(adb: Adb, phone: EmulatedPhone, path: str) -> str | None:
    return AndroidDevice(adb, phone.serial).read_file(path, root=True)


def test_lock_keeps_a_second_process_off_the_phone(adb: Adb, phone: EmulatedPhone, binary: Path,
                                                   tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = AndroidDevice(adb, phone.serial, benchmark_binary=binary, state_dir=state)
    second = AndroidDevice(adb, phone.serial, benchmark_binary=binary, state_dir=state)
    first.prepare("run-a")
    try:
        with pytest.raises(DeviceBusyError, match="in use by perflab process"):
            second.prepare("run-b")
        assert second.journal.pending() == first.journal.pending()  # second changed nothing
    finally:
        first.restore()
        first.close()
    second.prepare("run-b")
    second.restore()
    second.close()


def test_not_rooted_phone_is_not_tuned(phones: PhoneFactory, adb: Adb, binary: Path,
                                       tmp_path: Path) -> None:
    galaxy = phones.start(profile="galaxy_s23")
    d = AndroidDevice(adb, galaxy.serial, benchmark_binary=binary, state_dir=tmp_path / "s")
    d.prepare("run-x")
    assert [c.what for c in d.journal.pending()] == ["keep awake on USB"]  # no root: nothing else
    d.restore()
    d.close()
    assert d.journal.pending() == []


# ---- a phone that goes away ---------------------------------------------------------------------------------


def test_disconnect_mid_command_is_device_gone(phones: PhoneFactory, adb: Adb, binary: Path,
                                               tmp_path: Path) -> None:
    p = phones.start(profile="pixel7", faults=Faults())
    d = AndroidDevice(adb, p.serial, benchmark_binary=binary, state_dir=tmp_path / "s")
    d.prepare("run-gone")
    marker = p.rt.fs.host_path("/data/local/tmp/perflab/started")
    # the phone drops once the command has started on it (it would run for 20 s): the
    # error is DeviceGoneError, not a timeout and not the command's own exit
    dropper = when(marker.exists, lambda: p.drop(down_s=3.0))
    with pytest.raises(DeviceGoneError) as ei:
        d.dev.shell("echo started > /data/local/tmp/perflab/started; sleep 20", timeout_s=30,
                    idempotent=False)
    assert ei.value.serial == p.serial
    dropper.join()
    if adb.state(p.serial) == "offline":  # the server keeps listing it, offline, until it returns
        with pytest.raises(UserInputError, match="is offline"):
            open_device(p.serial, adb)
    # it comes back: wait_online connects the network serial again (the server would retry
    # an offline one only every ~10 s); then the runner's restore succeeds
    assert d.wait_online(timeout_s=60)
    assert adb.state(p.serial) == "device"
    assert not AndroidDevice(adb, "127.0.0.1:1").wait_online(timeout_s=0)  # nothing listens there
    d.restore()
    assert d.read_file(KNOB, root=True) == "0"
    # and mid-benchmark: a paced run that would take a minute loses its phone once the
    # tool runs on it
    art = artifact(tmp_path, "m.tflite", "fp32")
    req = TimingRequest(mode=SeriesMode.PACED, fps=30.0, warmup=0, iterations=1800, threads=1,
                        delegate="cpu", timeout_s=120, lr_width=8, lr_height=8)
    w = workload_for(d, tmp_path / "work")
    w.check_ready()
    dropper = when(lambda: bool(p.rt.processes), lambda: p.drop(down_s=0.5))
    with pytest.raises(DeviceGoneError):
        w.run_timing(art, req)
    dropper.join()
    d.close()


def test_cancel_kills_the_tool_on_the_phone(workload: PhoneWorkload, phone: EmulatedPhone,
                                            tmp_path: Path) -> None:
    """cancel() from another thread kills the running benchmark_model and the call raises
    RunInterrupted; later calls raise it at once."""
    from perflab.errors import RunInterrupted

    art = artifact(tmp_path, "long.tflite", "fp32")
    workload.check_ready()
    assert workload._s.pid_exec  # the emulated shell, like Android's, execs under the PID it echoed: kill by PID
    req = TimingRequest(mode=SeriesMode.PACED, fps=10.0, warmup=0, iterations=3000, threads=1,
                        delegate="cpu", timeout_s=600, lr_width=8, lr_height=8)
    seen: list[int] = []

    def cancel_when_running() -> None:
        seen.extend(phone.rt.processes)
        workload.cancel()

    canceller = when(lambda: bool(phone.rt.processes), cancel_when_running)
    with pytest.raises(RunInterrupted):
        workload.run_timing(art, req)
    canceller.join()
    assert seen
    for pid in seen:  # the emulated tool's host process was killed and reaped
        assert pid not in phone.rt.processes
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(RunInterrupted):
        workload.run_timing(art, req)


def test_deadline_is_a_typed_timeout(device: AndroidDevice) -> None:
    with pytest.raises(DeviceTimeoutError) as ei:
        device.dev.shell(["sleep", "5"], timeout_s=0.5, idempotent=False)
    assert ei.value.serial == device.serial


def test_cli_list_json(adb: Adb, phone: EmulatedPhone) -> None:
    from typer.testing import CliRunner

    from perflab.cli.devices import app

    res = CliRunner().invoke(app, ["list", "--json"], env={"ANDROID_ADB_SERVER_PORT": str(adb.port)})
    assert res.exit_code == 0, res.output
    rows = {r["serial"]: r for r in json.loads(res.output)}
    row = rows[phone.serial]
    assert (row["state"], row["kind"], row["model"], row["soc"], row["sdk"], row["rooted"]) == (
        "device", "emulated", "Pixel 7", "GS201", 34, True)
    assert os.environ.get("ANDROID_ADB_SERVER_PORT") != str(adb.port)  # CliRunner restores env


def test_probe_drafts_a_valid_config(adb: Adb, phone: EmulatedPhone, tmp_path: Path) -> None:
    from perflab.devices.probe import probe, write_probe

    result = probe(AndroidDevice(adb, phone.serial))
    path = write_probe(result, tmp_path / "probed.yaml")
    cfg = load_device_config(path).config
    assert cfg.match.props == {"ro.product.model": "Pixel 7"}
    assert cfg.charging_knob is not None and cfg.charging_knob.path == KNOB
    assert {z.type for z in cfg.thermal.zones} >= {"BIG", "G3D", "quiet_therm"}
    assert cfg.gpu is not None and cfg.gpu.busy_path.endswith("mali/utilization")
    assert len(cfg.cpufreq.policies) == 3 and cfg.root.value == "su_c"
    assert path.read_text().startswith("# Drafted by `perflab devices probe`")
    with pytest.raises(UserInputError, match="exists"):
        write_probe(result, path)

    from typer.testing import CliRunner

    from perflab.cli.devices import app

    out = tmp_path / "cli.yaml"
    res = CliRunner().invoke(app, ["probe", phone.serial, "--output", str(out)],
                             env={"ANDROID_ADB_SERVER_PORT": str(adb.port)})
    assert res.exit_code == 0, res.output
    assert load_device_config(out).config.name == "panther"
    res = CliRunner().invoke(app, ["probe", "no-such-serial", "--output", str(out)],
                             env={"ANDROID_ADB_SERVER_PORT": str(adb.port)})
    assert res.exit_code == 2 and "unknown device serial 'no-such-serial'" in res.output
