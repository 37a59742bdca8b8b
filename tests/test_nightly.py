"""The in-process nightly on emulated phones behind real adb servers, one per emulated host.

A night over two hosts (a phone that drops mid-run and comes back, a phone found by selector, a
phone whose cells all fail, a serial that is not attached) plus a third host whose adb server is
down: the night goes on where it can, quarantines what keeps failing, records why, and every
phone is restored. A rerun measures nothing twice; a night killed mid-cell is finished by the
rerun; a unit past its job timeout is stopped and its phone restored.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

if shutil.which("adb") is None:  # .ci/run installs Debian's adb
    pytest.skip("adb is not installed", allow_module_level=True)

from support.rack import write_scenario
from support.waiting import wait_until

from perflab.devices.adb import Adb
from perflab.devices.android import AndroidDevice
from perflab.emulator.adbd import Faults
from perflab.emulator.phone import EmulatedPhone, connect_to_adb_server
from perflab.emulator.testing import private_adb_server
from perflab.lab.nightly import UnitOptions, UnitStatus, read_outcomes, run_night, unit_folder, unit_runs
from perflab.lab.rack import load_rack, resolve_devices
from perflab.store.runfolder import load_run
from perflab.store.sql import SqlStore

PERFLAB = str(Path(sys.executable).with_name("perflab"))
PIXEL_KNOB = "/sys/devices/platform/google,charger/charge_disable"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Journals and locks of this test only; no benchmark_model from the environment."""
    monkeypatch.setenv("PERFLAB_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("PERFLAB_BENCHMARK_MODEL", raising=False)
    return tmp_path / "state"


@pytest.fixture(scope="module")
def adb_servers() -> Iterator[tuple[Adb, Adb]]:
    with private_adb_server() as a1, private_adb_server() as a2:
        yield Adb(port=a1.port, timeout_s=20.0, backoff_s=0.2), Adb(port=a2.port, timeout_s=20.0, backoff_s=0.2)


def knob(adb: Adb, serial: str, state: Path) -> str | None:
    return AndroidDevice(adb, serial, state_dir=state).read_file(PIXEL_KNOB, root=True)


def pending(adb: Adb, serial: str) -> list[object]:
    return list(AndroidDevice(adb, serial).journal.pending())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_night_over_two_hosts_goes_on_where_it_can(adb_servers: tuple[Adb, Adb], tmp_path: Path, state: Path) -> None:
    a1, a2 = adb_servers
    light, light2 = write_scenario(tmp_path, "light"), write_scenario(tmp_path, "light2")
    down_port = closed_port()
    with (EmulatedPhone.start(profile="pixel7", faults=Faults(drop_after_commands=25, down_for_s=2.0)) as flaky,
          EmulatedPhone.start(profile="galaxy_s23") as steady,
          EmulatedPhone.start(profile="pixel7", provisioned=False) as broken):
        connect_to_adb_server(flaky, a1.client)
        connect_to_adb_server(steady, a2.client)
        connect_to_adb_server(broken, a2.client)
        knob_before = knob(a1, flaky.serial, state)
        rack = tmp_path / "rack.yaml"
        rack.write_text(f"""\
name: two-hosts
hosts:
  h1: {{adb: "127.0.0.1:{a1.port}"}}
  h2: {{adb: "127.0.0.1:{a2.port}"}}
  h3: {{adb: "127.0.0.1:{down_port}"}}
devices:
  - {{serial: "{flaky.serial}", host: h1}}
  - {{serial: "127.0.0.1:1", host: h1}}
  - {{serial: "{broken.serial}", host: h2, limits: {{max_consecutive_failures: 1}}}}
  - {{select: {{soc: SM8550}}, host: h2}}
  - {{serial: "127.0.0.1:2", host: h3}}
scenarios: [{light}, {light2}]
limits: {{retry_backoff_s: 0.2, attempts: 3, reconnect_wait_s: 120, health_check_timeout_s: 3}}
quarantine: {{after_failed_health_checks: 2}}
""")
        loaded = load_rack(rack)
        res = resolve_devices(loaded, timeout_s=5.0)
        assert {d.serial: d.host for d in res.devices} == {
            flaky.serial: "h1", "127.0.0.1:1": "h1", broken.serial: "h2", steady.serial: "h2"}
        said: list[str] = []
        store = tmp_path / "reports" / "perflab.sqlite"
        summary = run_night(loaded, res, "n1", tmp_path / "reports",
                            options=UnitOptions(store_url=str(store), after_failed_health_checks=2, echo=said.append))
        got = {(o.serial, o.scenario): o for o in summary.outcomes}
        assert len(got) == 8
        for sc in ("light", "light2"):  # the phone that dropped came back and finished; the selected one too
            for serial in (flaky.serial, steady.serial):
                assert got[(serial, sc)].status == UnitStatus.OK, got[(serial, sc)]
                assert got[(serial, sc)].cells == {"ok": 2} and got[(serial, sc)].store == "indexed"
        assert any(f"[{flaky.serial}] dropped; waiting" in line for line in said), said
        ghost = got[("127.0.0.1:1", "light")]
        assert ghost.status == UnitStatus.QUARANTINED and ghost.attempt == 2
        assert ghost.reason is not None and ghost.reason.startswith("health check failed (2 in a row)")
        assert got[("127.0.0.1:1", "light2")].status == UnitStatus.QUARANTINED
        assert "quarantined earlier tonight" in (got[("127.0.0.1:1", "light2")].reason or "")
        bad = got[(broken.serial, "light")]
        assert bad.status == UnitStatus.QUARANTINED and "1 failed cells in a row" in (bad.reason or "")
        assert bad.cells == {"failed": 1, "interrupted": 1}  # the second cell was not started
        assert got[(broken.serial, "light2")].status == UnitStatus.QUARANTINED
        problems = {(p.host, p.serial): p.reason for p in summary.problems}  # the host, and its phone not run
        assert set(problems) == {("h3", None), ("h3", "127.0.0.1:2")}
        assert all(f"adb server 127.0.0.1:{down_port} of host h3 is not answering" in r for r in problems.values())
        assert summary.exit_code == 1
        on_disk = json.loads((tmp_path / "reports" / "nightly" / "n1" / "nightly.json").read_text())
        assert on_disk["units_by_status"] == {"ok": 4, "quarantined": 4} and on_disk["exit_code"] == 1
        with SqlStore(store) as db:
            assert len(db.run_ids()) == 5  # four ok units and the broken phone's one run
        # every phone is left as it was found
        assert knob(a1, flaky.serial, state) == knob_before
        for adb, serial in ((a1, flaky.serial), (a2, steady.serial), (a2, broken.serial)):
            assert pending(adb, serial) == []

        # a rerun of the night measures nothing twice
        first = {k: load_run(Path(o.folder or "")) for k, o in got.items() if o.status == UnitStatus.OK}
        again = run_night(loaded, resolve_devices(loaded, timeout_s=5.0), "n1", tmp_path / "reports",
                          options=UnitOptions(store_url=str(store), after_failed_health_checks=2))
        for o in again.outcomes:
            if (o.serial, o.scenario) in first:
                assert o.status == UnitStatus.OK and o.reason == "already measured (not run again)"
                before = first[(o.serial, o.scenario)]
                after = load_run(Path(o.folder or ""))
                assert after.run_id == before.run_id
                assert [c.started_utc for c in after.cells] == [c.started_utc for c in before.cells]
            else:
                assert o.status == UnitStatus.QUARANTINED  # still out for the rest of the night
        assert len(read_outcomes(tmp_path / "reports" / "nightly" / "n1")) == 8


def one_phone_rack(tmp_path: Path, adb: Adb, serial: str, scenario: Path, limits: str = "{}") -> Path:
    rack = tmp_path / "rack.yaml"
    rack.write_text(f"name: one\nhosts: {{h: {{adb: '127.0.0.1:{adb.port}'}}}}\ndevices: [{{serial: '{serial}'}}]\n"
                    f"scenarios: [{scenario}]\nlimits: {limits}\n")
    return rack


def slow_scenario(tmp_path: Path, pause_s: float) -> Path:
    sc = write_scenario(tmp_path, "slow")
    sc.write_text(sc.read_text().replace("cooldown: {max_start_temp_c: 90, wait_timeout_s: 5}",
                                         f"cooldown: {{max_start_temp_c: 90, wait_timeout_s: 5, between_cells_s: {pause_s}}}"))
    return sc


def test_night_killed_mid_unit_is_finished_by_a_rerun(adb_servers: tuple[Adb, Adb], tmp_path: Path,
                                                      state: Path) -> None:
    adb = adb_servers[0]
    sc = slow_scenario(tmp_path, 3.0)  # a pause after the first cell: the night is killed in it
    env = dict(os.environ, PERFLAB_STATE_DIR=str(state))
    with EmulatedPhone.start(profile="pixel7") as phone:
        connect_to_adb_server(phone, adb.client)
        before = knob(adb, phone.serial, state)
        rack = one_phone_rack(tmp_path, adb, phone.serial, sc)
        argv = [PERFLAB, "nightly", str(rack), "--night", "n2", "--reports-dir", str(tmp_path / "reports"),
                "--no-report", "--quiet"]
        folder = unit_folder(tmp_path / "reports" / "nightly" / "n2", "slow", phone.serial)

        def first_cell_done() -> bool:
            try:
                return [c.status for c in load_run(folder).cells] == ["ok"]
            except Exception:  # noqa: BLE001 - not written yet
                return False

        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert wait_until(first_cell_done, 300), "the first cell was never recorded"
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait(60)
        kept = load_run(folder).cells[0]
        assert knob(adb, phone.serial, state) != before  # the killed night left the phone tuned
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        run = load_run(folder)
        assert [c.status for c in run.cells] == ["ok", "ok"]
        assert run.cells[0].started_utc == kept.started_utc  # the finished cell was not measured again
        assert knob(adb, phone.serial, state) == before and pending(adb, phone.serial) == []


def test_unit_past_its_job_timeout_is_stopped_and_its_phone_restored(adb_servers: tuple[Adb, Adb], tmp_path: Path,
                                                                     state: Path) -> None:
    adb = adb_servers[1]
    sc = slow_scenario(tmp_path, 600.0)  # the pause would last far past the job's limit
    with EmulatedPhone.start(profile="pixel7") as phone:
        connect_to_adb_server(phone, adb.client)
        before = knob(adb, phone.serial, state)
        loaded = load_rack(one_phone_rack(tmp_path, adb, phone.serial, sc, "{job_timeout_s: 2, attempts: 1}"))
        summary = run_night(loaded, resolve_devices(loaded), "n3", tmp_path / "reports", options=UnitOptions())
        (o,) = summary.outcomes
        assert o.status == UnitStatus.FAILED and o.reason == "job timed out after 2 s (limits.job_timeout_s)"
        assert o.cells.get("interrupted", 0) >= 1
        assert summary.exit_code == 1
        assert knob(adb, phone.serial, state) == before and pending(adb, phone.serial) == []


def test_phone_rebooting_mid_unit(adb_servers: tuple[Adb, Adb], tmp_path: Path, state: Path) -> None:
    """A phone that reboots between two cells (tuning and processes lost, off the bus for a while)
    is waited for, tuned again, and its unit finishes; it is left as it was found."""
    import threading

    adb = adb_servers[0]
    sc = slow_scenario(tmp_path, 3.0)
    with EmulatedPhone.start(profile="pixel7") as phone:
        connect_to_adb_server(phone, adb.client)
        before = knob(adb, phone.serial, state)
        loaded = load_rack(one_phone_rack(tmp_path, adb, phone.serial, sc, "{reconnect_wait_s: 120}"))
        folder = unit_folder(tmp_path / "reports" / "nightly" / "n4", "slow", phone.serial)

        def reboot_after_first_cell() -> None:
            def first_done() -> bool:
                try:
                    return len(load_run(folder).cells) == 1
                except Exception:  # noqa: BLE001 - not written yet
                    return False

            if wait_until(first_done, 300):
                phone.reboot(down_s=2.0)

        rebooter = threading.Thread(target=reboot_after_first_cell, daemon=True)
        rebooter.start()
        summary = run_night(loaded, resolve_devices(loaded), "n4", tmp_path / "reports", options=UnitOptions())
        rebooter.join(10)
        (o,) = summary.outcomes
        assert phone.reboots == 1
        assert o.status == UnitStatus.OK and o.cells == {"ok": 2}, o
        assert knob(adb, phone.serial, state) == before and pending(adb, phone.serial) == []


def test_a_unit_whose_page_fails_is_ok_with_its_report_failed(adb_servers: tuple[Adb, Adb], tmp_path: Path,
                                                              state: Path) -> None:
    """Rendering a unit's page fails after its cells were measured and stored: the unit is "ok,
    report failed" (never failed, never pending), its line says how to rebuild the page, and the
    same night run again renders it without measuring anything."""
    import threading

    adb = adb_servers[1]
    sc = slow_scenario(tmp_path, 3.0)
    with EmulatedPhone.start(profile="pixel7") as phone:
        connect_to_adb_server(phone, adb.client)
        loaded = load_rack(one_phone_rack(tmp_path, adb, phone.serial, sc))
        folder = unit_folder(tmp_path / "reports" / "nightly" / "n5", "slow", phone.serial)

        def block_the_page() -> None:  # index.html a folder: the page cannot be written
            def first_done() -> bool:
                try:
                    return len(load_run(folder).cells) == 1
                except Exception:  # noqa: BLE001 - not written yet
                    return False

            if wait_until(first_done, 300):
                (folder / "index.html").mkdir()

        blocker = threading.Thread(target=block_the_page, daemon=True)
        blocker.start()
        store = str(tmp_path / "store.sqlite")
        options = UnitOptions(store_url=store, render=True)
        summary = run_night(loaded, resolve_devices(loaded), "n5", tmp_path / "reports", options=options)
        blocker.join(10)
        (o,) = summary.outcomes
        assert o.status == UnitStatus.OK and o.cells == {"ok": 2} and o.store == "indexed", o
        assert o.report is not None and o.report.startswith("not rendered:"), o
        assert summary.exit_code == 0
        lines = list(summary.lines(unit_runs(summary.outcomes)))
        line = next(x for x in lines if phone.serial in x)
        assert "slow: ok, report failed (2 ok)" in line and f"perflab report {folder}" in line, line
        cells = [x for x in lines if x.startswith(f"      {phone.serial} (EMULATED) ")]  # the answer per cell
        assert len(cells) == 2 and all(": ok · " in x and " · real time " in x for x in cells), lines
        (stored,) = read_outcomes(tmp_path / "reports" / "nightly" / "n5")
        assert stored.report == o.report
        with SqlStore(store) as s:
            assert s.run_ids() == [o.run_id]

        (folder / "index.html").rmdir()
        r = subprocess.run([PERFLAB, "report", str(folder)], capture_output=True, text=True, timeout=300, check=False)
        assert r.returncode == 0 and (folder / "index.html").is_file(), r.stdout + r.stderr
        (stored,) = read_outcomes(tmp_path / "reports" / "nightly" / "n5")
        assert stored.report == "rendered"  # the page was rebuilt: the unit's record says so

        (folder / "index.html").unlink()
        again = run_night(loaded, resolve_devices(loaded), "n5", tmp_path / "reports", options=options)
        (o2,) = again.outcomes
        assert o2.status == UnitStatus.OK and o2.reason == "already measured (not run again)" and o2.report == "rendered"
        assert o2.run_id == o.run_id and (folder / "index.html").is_file()


def test_a_unit_left_pending_when_no_job_is_open_is_failed() -> None:
    from perflab.lab.nightly import UnitOutcome, settle

    units = [UnitOutcome("s1", "h", "sc", UnitStatus.PENDING), UnitOutcome("s2", "h", "sc", UnitStatus.OK)]
    assert settle(units, jobs_open=1) == units  # still queued or running: really pending
    settled = settle(units, jobs_open=0)
    assert [u.status for u in settled] == [UnitStatus.FAILED, UnitStatus.OK]
    assert settled[0].reason is not None and "ended without recording an outcome" in settled[0].reason
