"""Processes on the emulated phone, seen and ended through the REAL adb server, as on Android.

The host cancels a running cell by PID: ``sh -c 'echo $$; exec benchmark_model …'`` prints
the PID the tool then has; ``kill``/``kill -9``/``kill -s INT`` end it, its output stops and
its ``adb shell`` returns 128+signal.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import adbutils
import pytest
from support.phones import PhoneFactory

from perflab.emulator import EmulatedPhone
from perflab.emulator.provision import BENCHMARK_MODEL_PATH
from perflab.emulator.testing import adb_env

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "perflab" / "zoo" / "weights" / "bicubic_x2_fp32.tflite"
TMP = "/data/local/tmp"
PS_HEADER = ["USER", "PID", "PPID", "VSZ", "RSS", "WCHAN", "ADDR", "S", "NAME"]


@pytest.fixture(scope="module")
def phone(module_phones: PhoneFactory, adb_server: adbutils.AdbClient) -> EmulatedPhone:
    p = module_phones.start("pixel7")
    adb_server.device(p.serial).sync.push(str(MODEL), f"{TMP}/model.tflite")
    return p


@pytest.fixture(autouse=True)
def no_leftover_tool(phone: EmulatedPhone) -> Iterator[None]:
    """A failed test must not leave its benchmark_model running into the next one."""
    yield
    for proc in phone.rt.procs.snapshot():
        if proc.host is not None:
            proc.deliver(signal.SIGKILL)


def ps_rows(d: adbutils.AdbDevice) -> list[list[str]]:
    lines = d.shell("ps -A").splitlines()
    assert lines[0].split() == PS_HEADER
    return [ln.split() for ln in lines[1:]]


#: a safety net for waits on events (never reached unless something is broken), not a speed goal
STUCK_S = 120.0


def tool_running(phone: EmulatedPhone, pid: int | None = None) -> None:
    """Wait (on the process table's change events) until a benchmark_model child runs."""
    assert phone.rt.procs.wait_until(
        lambda ps: any(p.host is not None and (pid is None or p.pid == pid) for p in ps), STUCK_S)


def no_tool_running(phone: EmulatedPhone) -> None:
    assert phone.rt.procs.wait_until(lambda ps: all(p.host is None for p in ps), STUCK_S)


class Streamed:
    """``adb shell CMD`` running in the background, stdout collected line by line."""

    def __init__(self, adb_server: adbutils.AdbClient, serial: str, command: str) -> None:
        self.proc = subprocess.Popen(["adb", "-s", serial, "shell", command], env=adb_env(adb_server),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.first = threading.Event()
        self._more = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._more:
                self.lines.append(line.rstrip("\n"))
                self._more.notify_all()
            self.first.set()
        self.first.set()

    def wait_lines(self, n: int) -> None:
        with self._more:
            assert self._more.wait_for(lambda: len(self.lines) >= n, timeout=STUCK_S), self.lines

    def wait(self) -> int:
        rc = self.proc.wait(timeout=120)
        self.reader.join(30)
        return rc


LONG_RUN = f"--graph={TMP}/model.tflite --num_threads=1 --warmup_runs=0 --warmup_min_secs=0 " \
           "--num_runs=100000 --min_secs=0 --max_secs=600 --run_delay=0.05"


def test_ps_lists_android_processes_in_toybox_format(adb_server: adbutils.AdbClient, phone: EmulatedPhone) -> None:
    d = adb_server.device(phone.serial)
    rows = ps_rows(d)
    names = {r[-1]: r for r in rows}
    assert names["init"][1:3] == ["1", "0"] and names["init"][0] == "root"
    assert "adbd" in names and "system_server" in names
    # the shell that runs `ps` is a process of its own, a child of adbd
    mine = d.shell("echo $$; ps -A").splitlines()
    me = next(r.split() for r in mine[2:] if r.split()[1] == mine[0])
    assert me[0] == "shell" and me[2] == names["adbd"][1] and me[-1] == "sh"
    assert d.shell("pidof init") == "1"


@pytest.mark.parametrize(("kill_args", "signo"), [("", signal.SIGTERM), ("-9", signal.SIGKILL),
                                                  ("-s INT", signal.SIGINT), ("-2", signal.SIGINT),
                                                  ("-15", signal.SIGTERM), ("-s TERM", signal.SIGTERM)])
def test_kill_by_pid_ends_the_benchmark(adb_server: adbutils.AdbClient, phone: EmulatedPhone, kill_args: str,
                                        signo: int) -> None:
    d = adb_server.device(phone.serial)
    run = Streamed(adb_server, phone.serial, f"sh -c {shlex.quote(f'echo $$; exec {BENCHMARK_MODEL_PATH} {LONG_RUN}')}")
    assert run.first.wait(STUCK_S) and run.lines, "no PID printed"
    pid = run.lines[0]
    assert pid.isdigit()
    tool_running(phone, int(pid))
    assert d.shell("pidof benchmark_model") == pid  # the tool runs under the printed PID
    row = next(r for r in ps_rows(d) if r[1] == pid)
    assert row[-1] == "benchmark_model" and row[0] == "shell"
    assert int(row[4]) > 2_000  # RSS in kB: the real child's (a Python process), not a made-up number
    run.wait_lines(4)  # the tool printed its first lines

    r = d.shell2(f"kill {kill_args} {pid}".replace("  ", " "), v2=True)
    assert r.returncode == 0, r.output
    assert run.wait() == 128 + signo
    seen = len(run.lines)
    assert d.shell2("pidof benchmark_model", v2=True).returncode == 1
    assert not any(r[1] == pid for r in ps_rows(d))
    assert not phone.rt.processes  # the host child behind it was killed and reaped
    assert len(run.lines) == seen


def test_benchmark_without_exec_is_a_child_and_the_script_goes_on(adb_server: adbutils.AdbClient,
                                                                   phone: EmulatedPhone) -> None:
    d = adb_server.device(phone.serial)
    script = f"echo $$; {BENCHMARK_MODEL_PATH} {LONG_RUN} >/dev/null; echo status=$?"
    run = Streamed(adb_server, phone.serial, script)
    assert run.first.wait(STUCK_S)
    shell_pid = run.lines[0]
    tool_running(phone)
    pid = d.shell("pidof benchmark_model")
    assert pid != shell_pid
    row = next(r for r in ps_rows(d) if r[1] == pid)
    assert row[2] == shell_pid  # its parent is the shell
    status = dict(ln.split(":\t", 1) for ln in d.shell(f"cat /proc/{pid}/status").splitlines())
    assert status["Name"] == "benchmark_model" and status["PPid"] == shell_pid
    assert int(status["VmRSS"].split()[0]) > 2_000  # the real child's resident memory, in kB
    stat = d.shell(f"cat /proc/{pid}/stat").split()
    assert stat[0] == pid and stat[1] == "(benchmark_model)" and stat[3] == shell_pid
    assert int(stat[13]) + int(stat[14]) >= 0 and int(stat[23]) > 0  # utime+stime ticks, rss pages
    d.shell(f"kill -9 {pid}")
    assert run.wait() == 0
    assert run.lines[-1] == f"status={128 + signal.SIGKILL}"


def test_kill_errors(adb_server: adbutils.AdbClient, phone: EmulatedPhone) -> None:
    d = adb_server.device(phone.serial)
    r = d.shell2("kill 31999", v2=True)
    assert r.returncode == 1 and "No such process" in r.stderr
    r = d.shell2("kill 1", v2=True)
    assert r.returncode == 1 and "Operation not permitted" in r.stderr
    r = d.shell2("kill -s BOGUS 1", v2=True)
    assert r.returncode == 1 and "unknown signal" in r.stderr
    r = d.shell2("kill -STOP 1", v2=True)
    assert r.returncode == 127 and "not supported" in r.stderr


def test_background_job_is_listed_and_killable(adb_server: adbutils.AdbClient, phone: EmulatedPhone) -> None:
    d = adb_server.device(phone.serial)
    run = Streamed(adb_server, phone.serial, "sleep 300 & echo $!; wait $!; echo waited=$?")
    assert run.first.wait(STUCK_S)
    job = run.lines[0]
    row = next(r for r in ps_rows(d) if r[1] == job)
    assert row[-1] == "sleep"
    d.shell(f"kill {job}")
    assert run.wait() == 0
    assert run.lines[-1] == f"waited={128 + signal.SIGTERM}"
    assert not any(r[1] == job for r in ps_rows(d))


def test_closing_the_stream_hangs_up_the_session(adb_server: adbutils.AdbClient, phone: EmulatedPhone) -> None:
    d = adb_server.device(phone.serial)
    run = Streamed(adb_server, phone.serial, f"echo $$; exec {BENCHMARK_MODEL_PATH} {LONG_RUN}")
    assert run.first.wait(STUCK_S)
    pid = run.lines[0]
    tool_running(phone, int(pid))
    run.proc.kill()  # the host's adb client goes away: the stream closes
    run.wait()
    no_tool_running(phone)  # hung up
    assert d.shell2("pidof benchmark_model", v2=True).returncode == 1
    assert not phone.rt.processes


def test_a_sampler_script_streams_until_killed(adb_server: adbutils.AdbClient, phone: EmulatedPhone) -> None:
    """The shape of issue 9's device-side sampler: builtins only, trap, read from /proc, fractional sleep."""
    d = adb_server.device(phone.serial)
    script = ("trap 'echo stopped; exit 0' TERM INT\n"
              "echo $$\n"
              "while :; do\n"
              "  read cpu user nice system idle rest < /proc/stat\n"
              "  read up _ < /proc/uptime\n"
              "  echo \"$up $((user + nice + system)) $idle\"\n"
              "  sleep 0.1\n"
              "done\n")
    d.sync.push(script.encode(), f"{TMP}/sampler.sh")
    run = Streamed(adb_server, phone.serial, f"sh {TMP}/sampler.sh")
    assert run.first.wait(STUCK_S)
    pid = run.lines[0]
    run.wait_lines(4)  # three samples
    assert any(r[1] == pid and r[-1] == "sh" for r in ps_rows(d))
    d.shell(f"kill -s TERM {pid}")
    assert run.wait() == 0
    assert run.lines[-1] == "stopped"
    for line in run.lines[1:-1]:
        up, busy, idle = line.split()
        assert float(up) > 0 and int(busy) >= 0 and int(idle) >= 0


def test_a_job_that_ignores_sighup_outlives_its_adb_shell(adb_server: adbutils.AdbClient, phone: EmulatedPhone) -> None:
    """What a background sampler relies on, as on a phone: a job started by `adb shell … &` keeps
    running after that shell returns, and can be killed later by its PID. When the host closes
    the stream first (a cable pull, Ctrl-C on `adb shell`), the session gets SIGHUP: a job that
    ignores it (`trap '' HUP`, what nohup does) survives, one that does not ends."""
    d = adb_server.device(phone.serial)
    loop = "while :; do echo tick >> {out}; sleep 0.05; done"
    ignoring = "trap '' HUP\n" + loop.format(out=TMP + "/kept")
    kept = int(d.shell(f"sh -c {shlex.quote(ignoring)} > /dev/null 2>&1 & echo $!").strip())
    before = d.shell(f"cat {TMP}/kept").count("tick")
    after = d.shell(f"sleep 0.5; cat {TMP}/kept").count("tick")  # the phone's own clock passes
    assert after > before and phone.rt.procs.get(kept) is not None  # it goes on after its shell returned
    # a session the host hangs up on: its plain job ends, its SIGHUP-ignoring job goes on
    script = (f"sh -c {shlex.quote(loop.format(out=TMP + '/plain'))} > /dev/null 2>&1 & echo plain $!; "
              f"sh -c {shlex.quote(ignoring.replace('/kept', '/kept2'))} > /dev/null 2>&1 & echo kept $!; sleep 100")
    session = Streamed(adb_server, phone.serial, script)
    session.wait_lines(2)
    pids = dict(ln.split() for ln in session.lines[:2])
    session.proc.kill()  # the host closes the stream first
    plain, kept2 = int(pids["plain"]), int(pids["kept"])
    assert phone.rt.procs.wait_until(lambda ps: all(p.pid != plain for p in ps), STUCK_S)
    assert phone.rt.procs.get(kept2) is not None
    for pid in (kept, kept2):
        d.shell(f"kill {pid}")
        assert phone.rt.procs.wait_until(lambda ps, pid=pid: all(p.pid != pid for p in ps), STUCK_S)


def test_a_job_started_after_trap_ignore_hup_inherits_it(adb_server: adbutils.AdbClient,
                                                         phone: EmulatedPhone) -> None:
    """An ignored signal stays ignored in the processes a shell starts (the kernel keeps SIG_IGN
    across fork and exec): `trap '' HUP; sh job &` starts a job that the session's hangup cannot
    end, though the job never sets a trap of its own — what perflab's sampler start relies on,
    since the host may close the stream before the job has run its first line."""
    loop = "while :; do echo tick >> {out}; sleep 0.05; done"
    script = (f"sh -c {shlex.quote(loop.format(out=TMP + '/plain3'))} > /dev/null 2>&1 & echo plain $!; "
              f"trap '' HUP; sh -c {shlex.quote(loop.format(out=TMP + '/inherited'))} > /dev/null 2>&1 & "
              "echo inherited $!; sleep 100")
    session = Streamed(adb_server, phone.serial, script)
    session.wait_lines(2)
    pids = {k: int(v) for k, v in (ln.split() for ln in session.lines[:2])}
    session.proc.kill()  # the host closes the stream first
    assert phone.rt.procs.wait_until(lambda ps: all(p.pid != pids["plain"] for p in ps), STUCK_S)
    assert phone.rt.procs.get(pids["inherited"]) is not None
    d = adb_server.device(phone.serial)
    d.shell(f"kill {pids['inherited']}")  # still ended by a signal it does not ignore
    assert phone.rt.procs.wait_until(lambda ps: all(p.pid != pids["inherited"] for p in ps), STUCK_S)
