"""The nightly through a real PostgreSQL task queue (procrastinate), one worker per emulated host.

Two hosts (two real adb servers on 127.0.0.1), four emulated phones, one of them faulty (it drops
off the bus mid-run). A worker is SIGKILLed mid-unit and started again: its job is put back and
resumes from its run folder, the night completes, every phone is restored and every run is in the
shared results store. The database going away mid-night: the units in flight finish into their run
folders and say what they could not record; when it is back, the worker takes up the queue again.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

if shutil.which("adb") is None:  # .ci/run installs Debian's adb
    pytest.skip("adb is not installed", allow_module_level=True)

from support.postgres import PrivatePostgres, pg_bindir, private_postgres
from support.rack import write_scenario
from support.waiting import wait_until

from perflab.devices.adb import Adb
from perflab.devices.android import AndroidDevice
from perflab.emulator.adbd import Faults
from perflab.emulator.phone import EmulatedPhone, connect_to_adb_server
from perflab.emulator.testing import private_adb_server
from perflab.errors import StoreError
from perflab.lab.nightly import UnitStatus, night_dir, read_outcomes, unit_folder
from perflab.lab.queue import open_jobs, rack_sha256, read_units
from perflab.lab.rack import load_rack
from perflab.store.results import RunRecord
from perflab.store.runfolder import load_run
from perflab.store.sql import SqlStore

if pg_bindir() is None:  # .ci/run installs Debian's postgresql
    pytest.skip("PostgreSQL is not installed", allow_module_level=True)
pytest.importorskip("procrastinate", reason="the task queue (pip install procrastinate)")

PERFLAB = str(Path(sys.executable).with_name("perflab"))
PIXEL_KNOB = "/sys/devices/platform/google,charger/charge_disable"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture
def pg() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


def knob(adb: Adb, serial: str, state: Path) -> str | None:
    return AndroidDevice(adb, serial, state_dir=state).read_file(PIXEL_KNOB, root=True)


def scenario(tmp_path: Path, pause_s: float) -> Path:
    """The light scenario with a pause after each cell: a window to kill a worker (or the
    database) between a unit's first and second cell."""
    sc = write_scenario(tmp_path, "light")
    sc.write_text(sc.read_text().replace("cooldown: {max_start_temp_c: 90, wait_timeout_s: 5}",
                                         f"cooldown: {{max_start_temp_c: 90, wait_timeout_s: 5, between_cells_s: {pause_s}}}"))
    return sc


class Workers:
    """`perflab worker` processes, their output in files (shown when a test fails)."""

    def __init__(self, tmp_path: Path, url: str, env: dict[str, str]) -> None:
        self.tmp_path, self.url, self.env = tmp_path, url, env
        self.procs: list[tuple[subprocess.Popen[bytes], IO[bytes], Path]] = []

    def reports(self, host: str) -> Path:
        return self.tmp_path / f"reports-{host}"

    def start(self, host: str, *extra: str, report: bool = False) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"worker-{host}-{len(self.procs)}.log"
        out = log.open("wb")
        proc = subprocess.Popen(
            [PERFLAB, "worker", "--host", host, "--db", self.url, "--reports-dir", str(self.reports(host)),
             "--report" if report else "--no-report", "--heartbeat-s", "0.5", "--stalled-s", "3", *extra],
            env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((proc, out, log))
        return proc

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}" for _, _, log in self.procs)

    def stop(self) -> list[int | None]:
        codes = []
        for proc, out, _ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                codes.append(proc.wait(120))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(None)
            out.close()
        return codes


def first_cell_only(folder: Path) -> RunRecord | None:
    try:
        run = load_run(folder)
    except Exception:  # noqa: BLE001 - not written yet
        return None
    return run if [c.status.value for c in run.cells] == ["ok"] else None


def test_night_through_the_queue_survives_a_killed_worker(pg: PrivatePostgres, tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k != "PERFLAB_BENCHMARK_MODEL"} | {"PERFLAB_STATE_DIR": str(state)}
    sc = scenario(tmp_path, 3.0)
    with (private_adb_server() as c1, private_adb_server() as c2,
          EmulatedPhone.start(profile="pixel7", faults=Faults(drop_after_commands=25, down_for_s=2.0)) as flaky,
          EmulatedPhone.start(profile="pixel7") as p2,
          EmulatedPhone.start(profile="galaxy_s23") as p3,
          EmulatedPhone.start(profile="galaxy_s23") as p4):
        a1, a2 = Adb(port=c1.port, backoff_s=0.2), Adb(port=c2.port, backoff_s=0.2)
        for phone, client in ((flaky, c1), (p2, c1), (p3, c2), (p4, c2)):
            connect_to_adb_server(phone, client)
        knobs = {s: knob(a1, s, state) for s in (flaky.serial, p2.serial)}
        rack = tmp_path / "rack.yaml"
        rack.write_text(f"""\
name: queued
hosts:
  h1: {{adb: "127.0.0.1:{c1.port}"}}
  h2: {{adb: "127.0.0.1:{c2.port}"}}
devices:
  - {{serial: "{flaky.serial}", host: h1}}
  - {{serial: "{p2.serial}", host: h1}}
  - {{select: {{model: SM-S911B}}, host: h2}}
scenarios: [{sc}]
limits: {{retry_backoff_s: 0.5, reconnect_wait_s: 120}}
""")
        workers = Workers(tmp_path, pg.url, env)
        night = subprocess.Popen([PERFLAB, "nightly", str(rack), "--db", pg.url, "--night", "q1", "--wait",
                                  "--reports-dir", str(tmp_path / "reports")], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        sha = rack_sha256(load_rack(rack))
        try:
            def queued() -> bool:
                try:
                    return open_jobs(pg.url, "q1", sha) >= 2  # both hosts' plan jobs
                except StoreError:  # the queue's tables are not there yet
                    return False

            assert wait_until(queued, 300)  # the night is queued
            doomed = workers.start("h1")
            # as a CI job would: it ends when its host's share is done; its two phones' reports are
            # rendered at once (one thread per unit)
            workers.start("h2", "--until-idle", report=True)
            folders = {s: unit_folder(night_dir(workers.reports("h1"), "q1"), "light", s) for s in knobs}
            half: dict[str, RunRecord] = {}

            def a_unit_half_done() -> bool:
                half.update({s: r for s, f in folders.items() if (r := first_cell_only(f)) is not None})
                return bool(half)

            assert wait_until(a_unit_half_done, 400), workers.logs()
            doomed.send_signal(signal.SIGKILL)  # mid-unit: the job stays 'doing' with a silent worker
            doomed.wait(30)
            workers.start("h1")  # its successor puts the job back; the unit resumes
            out, _ = night.communicate(timeout=600)
        finally:
            if night.poll() is None:
                night.kill()
            codes = workers.stop()
        assert night.returncode == 0, out + workers.logs()
        assert codes[1:] == [0, 143], workers.logs()  # h2 ended on its own; h1's successor stops on SIGTERM
        for serial in (flaky.serial, p2.serial, p3.serial, p4.serial):
            assert f"{serial} light: ok (2 ok)" in out, out
        for serial, run in half.items():  # the killed worker's finished cell was not measured again
            resumed = load_run(folders[serial])
            assert [c.status.value for c in resumed.cells] == ["ok", "ok"]
            assert resumed.cells[0].started_utc == run.cells[0].started_utc and resumed.run_id == run.run_id
        units = read_units(pg.url, "q1", "queued")
        assert {(u.serial, u.status) for u in units} == {(s, UnitStatus.OK) for s in
                                                         (flaky.serial, p2.serial, p3.serial, p4.serial)}
        assert all(u.store == "indexed" for u in units)
        assert {u.serial: u.report for u in units} == {flaky.serial: None, p2.serial: None, p3.serial: "rendered",
                                                        p4.serial: "rendered"}
        for serial in (p3.serial, p4.serial):
            assert (unit_folder(night_dir(workers.reports("h2"), "q1"), "light", serial) / "index.html").is_file()
        logs = "".join(log.read_text(errors="replace") for _, _, log in workers.procs)
        # one line per unit as it starts and as it ends, with its outcome
        for serial in (flaky.serial, p2.serial, p3.serial, p4.serial):
            assert f"start {serial} light (try 1/" in logs and f"done {serial} light: ok (2 ok)" in logs, logs
        with SqlStore(pg.url) as store:
            assert len(store.run_ids()) == 4
        assert open_jobs(pg.url, "q1", sha) == 0
        # every phone is left as it was found, the dropped one and the one whose worker was killed too
        for serial, before in knobs.items():
            assert knob(a1, serial, state) == before
        for adb, serial in ((a1, flaky.serial), (a1, p2.serial), (a2, p3.serial), (a2, p4.serial)):
            assert AndroidDevice(adb, serial, state_dir=state).journal.pending() == []


def test_database_going_away_mid_night(pg: PrivatePostgres, tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k != "PERFLAB_BENCHMARK_MODEL"} | {"PERFLAB_STATE_DIR": str(state)}
    sc = scenario(tmp_path, 3.0)
    with (private_adb_server() as client, EmulatedPhone.start(profile="pixel7") as p1,
          EmulatedPhone.start(profile="pixel7") as p2):
        adb = Adb(port=client.port, backoff_s=0.2)
        for phone in (p1, p2):
            connect_to_adb_server(phone, client)
        knobs = {s: knob(adb, s, state) for s in (p1.serial, p2.serial)}
        rack = tmp_path / "rack.yaml"
        rack.write_text(f"name: dbaway\nhosts: {{h: {{adb: '127.0.0.1:{client.port}'}}}}\n"
                        f"devices: [{{serial: '{p1.serial}'}}, {{serial: '{p2.serial}'}}]\nscenarios: [{sc}]\n")
        r = subprocess.run([PERFLAB, "nightly", str(rack), "--db", pg.url, "--night", "d1"], env=env,
                           capture_output=True, text=True, timeout=300, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        workers = Workers(tmp_path, pg.url, env)
        try:
            workers.start("h")
            night = night_dir(workers.reports("h"), "d1")
            folders = [unit_folder(night, "light", s) for s in knobs]
            assert wait_until(lambda: all(first_cell_only(f) for f in folders), 400), workers.logs()
            pg.stop("immediate")  # the database goes away with both units in flight

            def both_recorded() -> bool:
                return len([o for o in read_outcomes(night) if o.status != UnitStatus.PENDING]) == 2

            assert wait_until(both_recorded, 400), workers.logs()
            for o in read_outcomes(night):  # the units went on, and say what they could not do
                assert o.status == UnitStatus.OK and o.cells == {"ok": 2}, o
                assert o.store is not None and o.store.startswith("not indexed"), o
            assert wait_until(lambda: "unreachable" in workers.logs(), 120), workers.logs()  # it says why it waits
            pg.start()
            sha = rack_sha256(load_rack(rack))

            def night_done() -> bool:
                try:
                    return open_jobs(pg.url, "d1", sha) == 0 and all(
                        u.status == UnitStatus.OK and u.store == "indexed" for u in read_units(pg.url, "d1", "dbaway"))
                except Exception:  # noqa: BLE001 - the server is still starting
                    return False

            assert wait_until(night_done, 400), workers.logs()
        finally:
            codes = workers.stop()
        assert codes == [143], workers.logs()
        assert "database back; taking up the queue again" in workers.logs()
        r = subprocess.run([PERFLAB, "nightly", str(rack), "--db", pg.url, "--night", "d1", "--wait", "--no-queue",
                            "--reports-dir", str(tmp_path / "reports")], env=env, capture_output=True, text=True,
                           timeout=300, check=False)  # the night's summary, queueing nothing
        assert r.returncode == 0, r.stdout + r.stderr
        assert "queued" not in r.stdout and r.stdout.count(" light: ok (2 ok)") == 2, r.stdout
        with SqlStore(pg.url) as store:
            assert len(store.run_ids()) == 2
        for serial, before in knobs.items():
            assert knob(adb, serial, state) == before
            assert AndroidDevice(adb, serial, state_dir=state).journal.pending() == []


def test_host_whose_adb_server_is_down_through_the_queue(pg: PrivatePostgres, tmp_path: Path) -> None:
    """Its worker's plan job is retried with backoff, then the host is recorded unreachable; the
    night ends (exit 1) and says why."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])  # nothing listens there once closed
    rack = tmp_path / "rack.yaml"
    rack.write_text(f"name: down\nhosts: {{h: {{adb: '127.0.0.1:{port}'}}}}\ndevices: [{{serial: A1}}, "
                    f"{{select: {{model: Pixel 7}}}}]\nscenarios: [{write_scenario(tmp_path)}]\n"
                    "limits: {attempts: 2, retry_backoff_s: 0.2}\n")
    env = dict(os.environ, PERFLAB_STATE_DIR=str(tmp_path / "state"))
    r = subprocess.run([PERFLAB, "nightly", str(rack), "--db", pg.url, "--night", "x1"], env=env,
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    workers = Workers(tmp_path, pg.url, env)
    worker = workers.start("h", "--until-idle")
    try:
        assert worker.wait(300) == 0, workers.logs()  # it ends once the retried plan job gave up
    finally:
        workers.stop()
    r = subprocess.run([PERFLAB, "nightly", str(rack), "--db", pg.url, "--night", "x1", "--wait", "--no-queue",
                        "--reports-dir", str(tmp_path / "reports")], env=env, capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"h: not run: adb server 127.0.0.1:{port} of host h is not answering" in r.stdout, r.stdout
    (unit,) = {u.status for u in read_units(pg.url, "x1", "down")}
    assert unit == UnitStatus.UNREACHABLE


def test_a_unit_whose_job_breaks_is_failed_with_why_never_pending(pg: PrivatePostgres, tmp_path: Path) -> None:
    """A unit job that ends on an unexpected error (here: its outcome file cannot be written, the
    night's units/ is a file) records the unit failed with the error before the job fails: the
    night's summary and the worker's line say why, and the unit is never left "pending"."""
    env = {k: v for k, v in os.environ.items() if k != "PERFLAB_BENCHMARK_MODEL"} | {
        "PERFLAB_STATE_DIR": str(tmp_path / "state")}
    with private_adb_server() as client, EmulatedPhone.start(profile="pixel7") as phone:
        connect_to_adb_server(phone, client)
        rack = tmp_path / "rack.yaml"
        rack.write_text(f"name: broken\nhosts: {{h: {{adb: '127.0.0.1:{client.port}'}}}}\n"
                        f"devices: [{{serial: '{phone.serial}'}}]\nscenarios: [{write_scenario(tmp_path)}]\n")
        r = subprocess.run([PERFLAB, "nightly", str(rack), "--db", pg.url, "--night", "x2"], env=env,
                           capture_output=True, text=True, timeout=300, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        workers = Workers(tmp_path, pg.url, env)
        units = night_dir(workers.reports("h"), "x2") / "units"
        units.parent.mkdir(parents=True)
        units.write_text("not a folder\n")
        worker = workers.start("h", "--until-idle")
        try:
            assert worker.wait(400) == 0, workers.logs()
        finally:
            workers.stop()
    r = subprocess.run([PERFLAB, "nightly", str(rack), "--db", pg.url, "--night", "x2", "--wait", "--no-queue",
                        "--reports-dir", str(tmp_path / "reports")], env=env, capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    line = next(x for x in r.stdout.splitlines() if phone.serial in x)
    assert "light: failed — internal error: FileExistsError" in line, r.stdout
    (unit,) = read_units(pg.url, "x2", "broken")
    assert unit.status == UnitStatus.FAILED and (unit.reason or "").startswith("internal error: FileExistsError")
    log = "".join(p.read_text(errors="replace") for _, _, p in workers.procs)
    assert f"done {phone.serial} light: failed — internal error: FileExistsError" in log, log


def test_two_workers_of_one_host_never_drive_one_phone(pg: PrivatePostgres, tmp_path: Path) -> None:
    """Two workers on one host's queue, one unit at a time each, two phones with three scenarios
    each: the workers share the phones' units, and one phone's units never overlap (the queue's
    lock per phone; a second driver would also hit the phone's lock file and fail its unit)."""
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if k != "PERFLAB_BENCHMARK_MODEL"} | {"PERFLAB_STATE_DIR": str(state)}
    scs = []
    for i in (1, 2, 3):
        sc = scenario(tmp_path, 1.0)
        scs.append(sc.rename(tmp_path / f"light{i}.yaml"))
        scs[-1].write_text(scs[-1].read_text().replace("name: light", f"name: light{i}", 1))
    with (private_adb_server() as client, EmulatedPhone.start(profile="pixel7") as p1,
          EmulatedPhone.start(profile="pixel7") as p2):
        for phone in (p1, p2):
            connect_to_adb_server(phone, client)
        rack = tmp_path / "rack.yaml"
        rack.write_text(f"name: shared\nhosts: {{h: {{adb: '127.0.0.1:{client.port}'}}}}\n"
                        f"devices: [{{serial: '{p1.serial}'}}, {{serial: '{p2.serial}'}}]\n"
                        f"scenarios: [{', '.join(str(p) for p in scs)}]\n")
        r = subprocess.run([PERFLAB, "nightly", str(rack), "--db", pg.url, "--night", "s1"], env=env,
                           capture_output=True, text=True, timeout=300, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        workers = Workers(tmp_path, pg.url, env)
        try:
            for _ in range(2):  # one reports folder for both: they are one host
                workers.start("h", "--concurrency", "1", "--until-idle")
            assert [p.wait(600) for p, _, _ in workers.procs] == [0, 0], workers.logs()
        finally:
            workers.stop()
        night = night_dir(workers.reports("h"), "s1")
        outcomes = read_outcomes(night)
        assert len(outcomes) == 6 and all(o.status == UnitStatus.OK for o in outcomes), outcomes
        for serial in (p1.serial, p2.serial):
            runs = sorted((load_run(Path(o.folder or "")) for o in outcomes if o.serial == serial),
                          key=lambda run: run.started_utc)
            for before, after in itertools.pairwise(runs):
                assert before.finished_utc is not None and after.started_utc >= before.finished_utc
