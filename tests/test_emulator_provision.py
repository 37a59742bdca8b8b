"""Emulated phones come provisioned like lab phones: benchmark_model already at the configured path."""

from __future__ import annotations

from pathlib import Path

import adbutils
import pytest
from support.phones import PhoneFactory

from perflab.devices.config import config_for
from perflab.emulator import EmulatedPhone, available_profiles
from perflab.emulator.provision import BENCHMARK_MODEL_PATH
from perflab.emulator.runtime import PhoneRuntime

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "perflab" / "zoo" / "weights" / "bicubic_x2_fp32.tflite"


@pytest.mark.parametrize("profile", available_profiles())
def test_the_device_config_names_the_provisioned_path(profile: str, tmp_path: Path) -> None:
    with EmulatedPhone.start(profile, state_dir=tmp_path) as phone:
        cfg = config_for(phone.rt.props).config
        assert cfg.benchmark_model.remote_path == BENCHMARK_MODEL_PATH, cfg.name
        st = phone.rt.fs.stat(cfg.benchmark_model.remote_path)
        assert st is not None and st.mode & 0o777 == 0o755


def test_provisioned_tool_runs_over_adb_and_a_pushed_one_replaces_it(phones: PhoneFactory,
                                                                      adb_server: adbutils.AdbClient,
                                                                      tmp_path: Path) -> None:
    phone = phones.start("galaxy_s23")
    d = adb_server.device(phone.serial)
    assert d.shell2(f"test -x {BENCHMARK_MODEL_PATH}", v2=True).returncode == 0
    d.sync.push(str(MODEL), "/data/local/tmp/model.tflite")
    run = f"{BENCHMARK_MODEL_PATH} --graph=/data/local/tmp/model.tflite --num_runs=2 --warmup_runs=0 " \
          "--min_secs=0 --warmup_min_secs=0"
    r = d.shell2(run + " 2>&1", v2=True, timeout=120)
    assert r.returncode == 0 and "perflab emulated benchmark_model" in r.output
    own = tmp_path / "benchmark_model"
    own.write_bytes(b"\x7fELF the lab's own build\n")
    d.sync.push(str(own), BENCHMARK_MODEL_PATH, mode=0o755)
    assert d.shell(f"cat {BENCHMARK_MODEL_PATH}") == "\x7fELF the lab's own build"
    r = d.shell2(run + " 2>&1", v2=True, timeout=120)
    assert r.returncode == 0 and "perflab emulated benchmark_model" in r.output


def test_a_bare_runtime_is_not_provisioned(tmp_path: Path) -> None:
    from perflab.emulator.profiles import load_profile

    rt = PhoneRuntime.create(load_profile("pixel7"), tmp_path)
    assert not rt.fs.exists(BENCHMARK_MODEL_PATH)
    with EmulatedPhone.start("pixel7", state_dir=tmp_path / "p", provisioned=False) as phone:
        assert not phone.rt.fs.exists(BENCHMARK_MODEL_PATH)
