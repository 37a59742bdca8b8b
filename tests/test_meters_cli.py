"""``perflab meter read`` and ``perflab meter emulate`` as a user runs them."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from perflab.emulator.meters import PeriodicLoad, Ppk2Emulator, ScpiEmulator, StepLoad, UmEmulator
from perflab.emulator.meters.base import EmulatedMeter

CMD = [sys.executable, "-m", "perflab", "meter"]
LOAD = StepLoad(supply_volts=5.06, base_amps=0.734)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CMD, *args], check=False, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("make", "meter_type", "fields"),
    [
        (lambda: UmEmulator(LOAD, "um34c", reply_delay_s=0.0), "um34c", {"temperature_c", "groups"}),
        (lambda: UmEmulator(LOAD, "um25c", reply_delay_s=0.0), "um25c", {"load_resistance_ohm"}),
        (lambda: UmEmulator(LOAD, "um24c", reply_delay_s=0.0), "um24c", {"charging_mode"}),
        (lambda: ScpiEmulator(LOAD, "66319d"), "scpi", {"model", "family"}),
        (lambda: Ppk2Emulator(LOAD), "ppk2", {"current_ua", "samples_lost"}),
    ],
)
def test_read_once_json(make, meter_type: str, fields: set[str]) -> None:  # type: ignore[no-untyped-def]
    em: EmulatedMeter
    with make() as em:
        res = _run("read", em.path, "--type", meter_type, "--once", "--json")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1
    reading = json.loads(lines[0])
    # a PPK2 in source mode supplies the DUT itself (3.7 V unless told otherwise)
    assert reading["volts"] == pytest.approx(3.7 if meter_type == "ppk2" else 5.06, abs=0.01)
    assert reading["amps"] == pytest.approx(0.734, rel=0.002)
    assert fields <= set(reading)
    if meter_type in ("ppk2", "scpi"):
        assert reading["emulated"] is True  # the emulators say so where the protocol has room


def test_ppk2_vdd_option() -> None:
    with Ppk2Emulator(LOAD) as em:
        res = _run("read", em.path, "--type", "ppk2", "--once", "--json", "--vdd-mv", "4200")
        assert em.vdd_mv == 4200
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["volts"] == pytest.approx(4.2)
    res = _run("read", "/nonexistent", "--type", "um34c", "--vdd-mv", "4200")
    assert res.returncode == 2 and "--vdd-mv" in res.stderr


def test_read_lines_for_a_duration() -> None:
    with UmEmulator(LOAD, "um34c", reply_delay_s=0.0) as em:
        res = _run("read", em.path, "--type", "um34c", "--duration-s", "0.3", "--interval-s", "0.1")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) >= 2 and all(" V " in line and " A " in line for line in lines)


def test_bad_port_and_type_are_one_line_exit_2(tmp_path: Path) -> None:
    res = _run("read", str(tmp_path / "ttyUSB7"), "--type", "um34c", "--once")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "ttyUSB7" in res.stderr and "Traceback" not in res.stderr
    res = _run("read", str(tmp_path / "x"), "--type", "monsoon", "--once")
    assert res.returncode == 2 and res.stderr.strip().splitlines() == [
        "perflab: error: --type: 'monsoon' is not one of scpi|ppk2|um34c|um25c|um24c"]
    with UmEmulator(LOAD, "um34c", reply_delay_s=0.0) as em:
        res = _run("read", em.path, "--type", "scpi", "--once", "--timeout-s", "0.3")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "um34c answers here" in res.stderr


def test_emulate_prints_a_port_that_reads() -> None:
    proc = subprocess.Popen([*CMD, "emulate", "--type", "ppk2", "--idle-ma", "50", "--burst-ma", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("EMULATED ppk2 on /dev/")
        path = first.split(" on ")[1].split()[0]
        res = _run("read", path, "--type", "ppk2", "--once", "--json")
        assert res.returncode == 0, res.stderr
        assert json.loads(res.stdout)["current_ua"] == pytest.approx(50_000, rel=0.002)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode == 0


def test_periodic_source_is_what_emulate_uses() -> None:
    load = PeriodicLoad(3.9, 0.18, 0.4, 1 / 30, 0.012)
    assert load.charge_c(0.0, 1.0) == pytest.approx(0.18 + 0.4 * 30 * 0.012)


def test_port_guesses_from_usb_identity() -> None:
    from perflab.telemetry.meters.discover import PortInfo, guess

    ppk2 = PortInfo("/dev/ttyACM1", 0x1915, 0xC00A, "1-1.2:1.1", "PPK2")
    shell = PortInfo("/dev/ttyACM2", 0x1915, 0xC00A, "1-1.2:1.3", "PPK2")
    other_nordic = PortInfo("/dev/ttyACM3", 0x1915, 0xC00A, "1-1.4:1.1", "nRF52 Connectivity")
    assert guess(ppk2).meter == "ppk2"
    assert guess(shell).meter is None and "debug" in guess(shell).note
    assert guess(other_nordic).meter is None
    assert guess(PortInfo("/dev/rfcomm0")).meter == "um (bluetooth)"
    assert guess(PortInfo("/dev/ttyUSB0", 0x0403, 0x6001)).meter == "serial adapter"
    assert guess(PortInfo("/dev/ttyS0")).meter is None


def test_list_command_runs_here() -> None:
    res = _run("list", "--json")
    assert res.returncode == 0, res.stderr
    assert isinstance(json.loads(res.stdout), list)
