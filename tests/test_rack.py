"""Rack files: validated like scenarios (one line, file:line: field, exit 2), limits merged per
device, advice for an adb server open to a network, and a host whose adb server is down."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perflab.errors import DeviceGoneError, DeviceTimeoutError, RunInterrupted, StoreError, UserInputError
from perflab.lab.queue import STORE_ATTEMPTS, UnitRetry
from perflab.lab.rack import EffectiveLimits, load_rack, queue_name, rack_warnings, resolve_devices

REPO = Path(__file__).resolve().parent.parent
PERFLAB = str(Path(sys.executable).with_name("perflab"))
SCENARIO = REPO / "scenarios" / "light.yaml"


def write(tmp_path: Path, text: str, name: str = "rack.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).replace("SCENARIO", str(SCENARIO)))
    return p


GOOD = """\
    name: lab-a
    hosts:
      bench1: {adb: 127.0.0.1:5037}
      bench2: {adb: "127.0.0.1:5038"}
    devices:
      - serial: R5CT10ABCDE
        host: bench1
        limits: {max_consecutive_failures: 1, job_timeout_s: 60.5}
      - select: {model: Pixel 7, tag: flagship}
        host: bench2
    tags: {R5CT10ABCDE: [flagship]}
    scenarios: [SCENARIO]
    limits: {attempts: 2, retry_backoff_s: 1.5}
    quarantine: {after_failed_health_checks: 3}
    """


def test_good_rack_loads_with_merged_limits(tmp_path: Path) -> None:
    loaded = load_rack(write(tmp_path, GOOD))
    rack = loaded.rack
    assert list(rack.hosts) == ["bench1", "bench2"]
    assert rack.hosts["bench2"].adb_port == 5038 and rack.hosts["bench2"].adb_host == "127.0.0.1"
    assert [s.scenario.name for s in loaded.scenarios] == ["light"]
    first, second = (loaded.limits_for(d) for d in rack.devices)
    # the device's own value, then the rack's, then the defaults
    assert (first.max_consecutive_failures, first.job_timeout_s, first.attempts, first.retry_backoff_s) == (1, 60.5, 2, 1.5)
    assert (second.max_consecutive_failures, second.attempts) == (3, 2)
    assert second.job_timeout_s == EffectiveLimits.merge().job_timeout_s
    assert rack.quarantine.after_failed_health_checks == 3
    assert rack_warnings(loaded) == []
    assert queue_name("bench1") == "perflab.host.bench1"


@pytest.mark.parametrize(("text", "line", "field", "words"), [
    ("name: x\nhosts: {h: {adb: 'nohost'}}\ndevices: [{serial: A}]\nscenarios: [SCENARIO]\n", 2, "hosts.h.adb",
     "HOST:PORT"),
    ("name: x\nhosts: {h: {adb: '127.0.0.1:70000'}}\ndevices: [{serial: A}]\nscenarios: [SCENARIO]\n", 2,
     "hosts.h.adb", "port 1-65535"),
    ("name: x\nhosts: {h: {}}\ndevices:\n  - serial: A\n    host: nope\nscenarios: [SCENARIO]\n", 5,
     "devices[0].host", "unknown host 'nope'"),
    ("name: x\nhosts: {h: {}, g: {adb: '127.0.0.1:6000'}}\ndevices:\n  - serial: A\nscenarios: [SCENARIO]\n", 4,
     "devices[0]", "which host"),
    ("name: x\nhosts: {h: {}}\ndevices:\n  - serial: A\n  - serial: A\nscenarios: [SCENARIO]\n", 5,
     "devices[1].serial", "listed twice"),
    ("name: x\nhosts: {h: {}}\ndevices:\n  - {serial: A, select: {model: M}}\nscenarios: [SCENARIO]\n", 4,
     "devices[0]", "either serial or select"),
    ("name: x\nhosts: {h: {}}\ndevices:\n  - select: {}\nscenarios: [SCENARIO]\n", 4, "devices[0].select",
     "at least one of model, soc, tag"),
    ("name: x\nhosts: {h: {}}\ndevices:\n  - select: {tag: lab}\nscenarios: [SCENARIO]\n", 4,
     "devices[0].select.tag", "no serial has the tag"),
    ("name: x\nhosts: {h: {}}\ndevices: [{serial: A}]\nscenarios: [missing.yaml]\n", 4, "scenarios[0]",
     "scenario file not found"),
    ("name: x\nhosts: {h: {}}\ndevices: [{serial: A}]\nscenarios: [SCENARIO, SCENARIO]\n", 4, "scenarios[1]",
     "two scenarios are named"),
    ("name: x\nhosts: {h: {}}\ndevices: [{serial: A}]\nscenarios: [SCENARIO]\nlimits: {attempts: 0}\n", 5,
     "limits.attempts", "greater than or equal to 1"),
    ("name: x\nhosts: {h: {}}\ndevices: [{serial: A}]\nscenarios: [SCENARIO]\nlimits: {job_timeout_s: '1h'}\n",
     5, "limits.job_timeout_s", "valid number"),
    ("name: x\nhosts: {h: {}}\ndevices: [{serial: A}]\nscenarios: [SCENARIO]\nquarantin: {}\n", 5, "quarantin",
     "unknown field"),
    (("name: x\nhosts: {a: {adb: '127.0.0.1:6000'}, b: {adb: '127.0.0.1:6000'}}\ndevices: [{serial: A, host: a}]\n"
     "scenarios: [SCENARIO]\n"), 2, "hosts.b.adb", "same adb server"),
    ("name: x\nhosts: {h: {}}\ndevices: [{serial: 'A;rm -rf /'}]\nscenarios: [SCENARIO]\n", 3, "devices[0].serial",
     "pattern"),
    ("name: x\nhosts: {h: {}}\nhosts: {g: {}}\n", 3, "hosts", "duplicate key"),
])
def test_bad_rack_is_one_line_with_file_line_field(tmp_path: Path, text: str, line: int, field: str,
                                                    words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UserInputError) as err:
        load_rack(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}:{line}: {field}: "), msg
    assert words in msg, msg


def test_rack_check_cli(tmp_path: Path) -> None:
    good = write(tmp_path, GOOD)
    r = subprocess.run([PERFLAB, "rack", "check", str(good)], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert "rack lab-a: 2 host(s), 2 device entries, 1 scenario(s), 2 cells per phone" in r.stdout
    assert "devices[1] on bench2: select model=Pixel 7, tag=flagship" in r.stdout
    bad = write(tmp_path, "name: x\nhosts: {h: {}}\ndevices:\n  - serial: A\n    host: nope\nscenarios: [SCENARIO]\n",
                "bad.yaml")
    r = subprocess.run([PERFLAB, "rack", "check", str(bad)], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"perflab: error: {bad}:5: devices[0].host: unknown host 'nope' (hosts: h)"]
    assert "Traceback" not in r.stderr


def test_adb_server_open_to_a_network_is_advised_against(tmp_path: Path) -> None:
    loaded = load_rack(write(tmp_path, """\
        name: x
        hosts: {far: {adb: '10.1.2.3:5037'}, near: {adb: 'localhost:5038'}}
        devices: [{serial: A, host: far}]
        scenarios: [SCENARIO]
        """))
    (warning,) = rack_warnings(loaded)
    assert warning.startswith(f"{loaded.file}:2: hosts.far.adb: 10.1.2.3:5037 is not a loopback address")
    assert "ssh -N -L 5037:localhost:5037 far" in warning


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_host_whose_adb_server_is_down_is_a_problem_not_an_error(tmp_path: Path) -> None:
    port = _closed_port()  # nothing listens there any more
    loaded = load_rack(write(tmp_path, f"""\
        name: x
        hosts: {{down: {{adb: '127.0.0.1:{port}'}}}}
        devices:
          - {{serial: A1}}
          - select: {{model: Pixel 7}}
        scenarios: [SCENARIO]
        """))
    res = resolve_devices(loaded, timeout_s=2.0)
    assert res.devices == []
    reasons = {(p.entry, p.serial): p.reason for p in res.problems}
    assert f"adb server 127.0.0.1:{port} of host down is not answering" in reasons[(None, None)]
    assert reasons[(0, "A1")].startswith("not run: adb server")
    assert reasons[(1, None)].startswith("devices[1] select: not resolved: adb server")


def test_a_host_that_is_down_starts_no_adb_server_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """adbutils answers a refused connection with ``adb start-server`` on this machine's default
    port (whatever host was asked): asking a rack host that is down must not leave a server here."""
    mine = _closed_port()  # this machine's "default" port for the check: never the user's 5037
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(mine))
    loaded = load_rack(write(tmp_path, f"""\
        name: x
        hosts: {{down: {{adb: '127.0.0.1:{_closed_port()}'}}}}
        devices:
          - {{serial: A1}}
        scenarios: [SCENARIO]
        """))
    try:
        res = resolve_devices(loaded, timeout_s=2.0)
        assert res.devices == [] and res.problems
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", mine)) != 0, f"an adb server was started on {mine}"
    finally:  # what a failure left behind goes
        subprocess.run(["adb", "-P", str(mine), "kill-server"], capture_output=True, timeout=30, check=False)


def test_retry_decision_backs_off_on_transport_errors_only() -> None:
    limits = EffectiveLimits.merge().as_dict() | {"attempts": 3, "retry_backoff_s": 2.0}
    kwargs = {"limits": limits}
    gone = DeviceGoneError("S", "gone")
    assert UnitRetry.decide(gone, 0, kwargs) == 2.0  # after the 1st try
    assert UnitRetry.decide(DeviceTimeoutError("S", "slow"), 1, kwargs) == 4.0  # after the 2nd: doubled
    assert UnitRetry.decide(gone, 2, kwargs) is None  # the 3rd was the last
    assert UnitRetry.decide(ValueError("bug"), 0, kwargs) is None  # not a transport error: no retry
    assert UnitRetry.decide(UserInputError("bad"), 0, kwargs) is None
    assert UnitRetry.decide(RunInterrupted("worker stopping"), 7, kwargs) == 0.0  # back to the queue at once
    # measured, but the database was away: tried again (to record it) past the phone's attempts
    assert UnitRetry.decide(StoreError("db away"), 5, kwargs) == 60.0
    assert UnitRetry.decide(StoreError("db away"), STORE_ATTEMPTS - 1, kwargs) is None


def test_shipped_example_rack_is_valid() -> None:
    loaded = load_rack(REPO / "racks" / "example.yaml")
    assert loaded.rack.name == "lab-a" and [s.scenario.name for s in loaded.scenarios] == ["540p30"]
    assert rack_warnings(loaded) == []  # it reaches its second host through a tunnel's local end
