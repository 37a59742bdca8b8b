"""What a device-side sampler needs from the emulated shell, the way mksh has it (issue 9 item 1)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path

import pytest

from perflab.emulator.profiles import load_profile
from perflab.emulator.runtime import PhoneRuntime
from perflab.emulator.shell import IO, Shell


class Phone:
    def __init__(self, tmp: Path) -> None:
        self.rt = PhoneRuntime.create(load_profile("pixel7"), tmp)

    def sh(self, script: str, stdin: bytes = b"") -> tuple[int, str, str]:
        out, err = bytearray(), bytearray()
        rc = Shell(self.rt).run(script, IO(out.extend, err.extend, lambda: stdin))
        return rc, out.decode(), err.decode()


@pytest.fixture
def phone(tmp_path: Path) -> Phone:
    return Phone(tmp_path)


@pytest.mark.parametrize(("expr", "value"), [
    ("1 + 2 * 3", "7"), ("(1 + 2) * 3", "9"), ("7 / 2", "3"), ("-7 / 2", "-3"), ("-7 % 3", "-1"),
    ("1 << 4 | 1", "17"), ("5 > 3 && 2 > 3", "0"), ("!0", "1"), ("~0", "-1"), ("0x10 + 1", "17"),
    ("3 > 2 ? 10 : 20", "10"), ("9223372036854775807 + 1", "-9223372036854775808"), ("", "0"),
])
def test_arithmetic(phone: Phone, expr: str, value: str) -> None:
    assert phone.sh(f"echo $(({expr}))") == (0, value + "\n", "")


def test_arithmetic_with_variables_and_assignment(phone: Phone) -> None:
    assert phone.sh("a=5; b=$((a * 2)); echo $b $(($a + b)) $((c += 3)) $c")[1] == "10 15 3 3\n"
    assert phone.sh("x=abc; echo $((x + 1))")[0] == 1
    rc, out, err = phone.sh("echo before; echo $((1 / 0)); echo after")
    assert (rc, out) == (1, "before\n") and "zero divisor" in err


def test_command_substitution(phone: Phone) -> None:
    phone.rt.fs.write_bytes("/data/local/tmp/v", b"42\n\n", 2000)
    assert phone.sh("v=$(cat /data/local/tmp/v); echo \"[$v]\"")[1] == "[42]\n"
    assert phone.sh("echo $(echo 'a   b') \"$(echo 'a   b')\"")[1] == "a b a   b\n"
    assert phone.sh("echo `echo back`tick")[1] == "backtick\n"
    assert phone.sh("x=$(false); echo $?")[1] == "1\n"
    assert phone.sh("x=1; y=$(x=2; echo $x); echo $x $y")[1] == "1 2\n"
    assert phone.sh("echo '$(id)' \"\\$(id)\"")[1] == "$(id) $(id)\n"
    assert phone.sh("echo $(echo \")\" ')') \"$(echo \"a (b\")\"")[1] == ") ) a (b\n"


def test_reserved_words_are_plain_arguments(phone: Phone) -> None:
    assert phone.sh("echo done if then fi do while")[1] == "done if then fi do while\n"
    assert phone.sh("for w in do done; do echo $w; done")[1] == "do\ndone\n"


def test_read_lines_from_a_file(phone: Phone) -> None:
    phone.rt.fs.write_bytes("/data/local/tmp/f", b"cpu  10 20 30\ncpu0 1 2 3\nlast", 2000)
    script = "n=0; while read name a b; do n=$((n + 1)); echo \"$n:$name:$a:$b\"; done < /data/local/tmp/f"
    assert phone.sh(script)[1] == "1:cpu:10:20 30\n2:cpu0:1:2 3\n"
    assert phone.sh("read -r x < /data/local/tmp/f; echo \"$x\"")[1] == "cpu  10 20 30\n"
    assert phone.sh("read a; read b; echo $b-$a", stdin=b"1\n2\n")[1] == "2-1\n"
    assert phone.sh("read x; echo $?", stdin=b"")[1] == "1\n"
    assert phone.sh("read -r x; echo \"$x\"", stdin=b"a\\b\n")[1] == "a\\b\n"
    assert phone.sh("read x; echo \"$x\"", stdin=b"a\\b\n")[1] == "ab\n"
    assert phone.sh("read -A x")[0] == 127  # mksh's array read: refused, not half-done
    assert phone.sh("IFS=: read a b", stdin=b"1:2\n")[0] == 127  # only the default IFS: refused, not mis-split
    assert phone.sh("IFS=,; x=a,b; echo $x")[0] == 127
    assert phone.sh("IFS=,; echo plain")[1] == "plain\n"


def test_sleep_with_fractions(phone: Phone) -> None:
    assert phone.sh("sleep 0.01 && sleep .01 && echo ok") == (0, "ok\n", "")
    assert phone.sh("sleep x")[0] == 1
    assert phone.sh("sleep -1")[0] == 1


def test_background_job_wait_and_status(phone: Phone) -> None:
    _rc, out, _ = phone.sh("sh -c 'exit 3' & p=$!; wait $p; echo $? $p")
    status, pid = out.split()
    assert status == "3" and pid.isdigit()
    assert phone.sh("echo a & wait; echo b")[1] == "a\nb\n"
    assert phone.sh("wait 31999; echo $?")[1] == "127\n"


def test_background_job_in_ps_and_killed(phone: Phone) -> None:
    _rc, out, _ = phone.sh("sleep 30 & echo $!; ps -A; kill $!; wait $!; echo $?")
    lines = out.splitlines()
    pid = lines[0]
    assert any(ln.split()[1] == pid and ln.split()[-1] == "sleep" for ln in lines[2:-1])
    assert lines[-1] == str(128 + signal.SIGTERM)


def run_in_thread(phone: Phone, script: str) -> tuple[threading.Thread, dict[str, object], threading.Event]:
    result: dict[str, object] = {}
    started = threading.Event()
    out = bytearray()

    def write(b: bytes) -> None:
        out.extend(b)
        started.set()

    def go() -> None:
        result["rc"] = Shell(phone.rt).run(script, IO(write, out.extend, lambda: b""))
        result["out"] = out.decode()

    t = threading.Thread(target=go)
    t.start()
    return t, result, started


def test_trap_runs_on_term_and_exit(phone: Phone) -> None:
    script = "trap 'echo bye; exit 0' TERM; trap 'echo cleanup' EXIT; echo $$; while :; do sleep 0.02; done"
    t, result, started = run_in_thread(phone, script)
    assert started.wait(30)
    # the first line is the PID; find it from the process table instead of racing the output
    sh_procs = [p for p in phone.rt.procs.snapshot() if p.name == "sh"]
    assert len(sh_procs) == 1
    sh_procs[0].deliver(signal.SIGTERM)
    t.join(30)
    assert result["rc"] == 0
    assert str(result["out"]).splitlines()[1:] == ["bye", "cleanup"]


def test_untrapped_signal_ends_the_shell_with_128_plus_signal(phone: Phone) -> None:
    t, result, started = run_in_thread(phone, "echo $$; while :; do sleep 0.02; done")
    assert started.wait(30)
    [proc] = [p for p in phone.rt.procs.snapshot() if p.name == "sh"]
    proc.deliver(signal.SIGINT)
    t.join(30)
    assert result["rc"] == 128 + signal.SIGINT
    assert phone.rt.procs.get(proc.pid) is None


def test_ignored_and_listed_traps(phone: Phone) -> None:
    assert phone.sh("trap '' INT; kill -INT $$; echo alive")[1] == "alive\n"
    assert phone.sh("trap 'echo x' INT TERM; trap")[1] == "trap -- 'echo x' INT\ntrap -- 'echo x' TERM\n"
    assert phone.sh("trap 'echo got' USR1; kill -USR1 $$; echo after")[1] == "got\nafter\n"
    assert phone.sh("trap - INT; trap")[1] == ""
    assert phone.sh("trap 'x' KILL")[0] == 1
    assert phone.sh("kill $$; echo never")[0] == 128 + signal.SIGTERM


def test_exec_keeps_the_pid(phone: Phone) -> None:
    rc, out, _ = phone.sh("sh -c 'echo $$; exec sh -c \"echo \\$\\$\"'")
    first, second = out.split()
    assert first == second and rc == 0


@pytest.mark.parametrize("script", ["(echo sub)", "cat <<EOF\nx\nEOF", "f() { :; }", "echo ${#x}", "case a in a) ;; esac",
                                    "echo $((i++))", "echo $((2 ** 3))", "exec", "wait -n", "kill %1",
                                    "echo $((1 + $(echo 2)))", "ps -o pid"])
def test_unimplemented_is_refused_loudly(phone: Phone, script: str) -> None:
    rc, out, err = phone.sh("echo first; " + script)
    assert rc == 127, (out, err)
    assert "not supported by the emulated phone" in err


def test_syntax_errors_are_2(phone: Phone) -> None:
    assert phone.sh("if true; then echo x")[0] == 2
    assert phone.sh("echo $((1 + 2)")[0] == 2


def test_exit_trap_keeps_the_status_unless_it_exits(phone: Phone) -> None:
    assert phone.sh("trap 'echo bye' EXIT; exit 3") == (3, "bye\n", "")
    assert phone.sh("trap 'exit 5' EXIT; true")[0] == 5
    assert phone.sh("trap 'exit 0' EXIT; false")[0] == 0


def test_a_trapped_signal_interrupts_wait(phone: Phone) -> None:
    t, result, started = run_in_thread(phone, "trap 'echo got' USR1; sleep 30 & j=$!; echo $$; wait $j; "
                                              "echo status=$?; kill $j")
    assert started.wait(30)
    [shell] = [p for p in phone.rt.procs.snapshot() if p.name == "sh"]
    while t.is_alive():  # until `wait` is the one interrupted (a USR1 before it just runs the trap)
        shell.deliver(signal.SIGUSR1)
        t.join(0.05)
    lines = str(result["out"]).splitlines()
    assert lines[-1] == f"status={128 + signal.SIGUSR1}" and lines[-2] == "got"
    assert result["rc"] == 0


def test_a_shell_process_cpu_time_is_its_real_cost(phone: Phone) -> None:
    """/proc/$$/stat utime of an emulated shell is the CPU time the emulator spent running it."""
    script = ("read p c s pp g sid t f a b c2 d e ut0 rest < /proc/$$/stat; i=0; "
              "while [ $i -lt 2000 ]; do read x < /proc/uptime; i=$((i + 1)); done; "
              "read p c s pp g sid t f a b c2 d e ut1 rest < /proc/$$/stat; echo $ut0 $ut1")
    rc, out, err = phone.sh(script)
    before, after = (int(x) for x in out.split())
    assert rc == 0, err
    assert after > before  # 2000 loop turns cost real CPU ticks, and they are counted


def test_break_and_continue(phone: Phone) -> None:
    assert phone.sh("for i in 1 2 3 4; do if [ $i = 3 ]; then break; fi; echo $i; done; echo after")[1] == \
        "1\n2\nafter\n"
    script = "for i in 1 2; do for j in a b c; do if [ $j = b ]; then continue 2; fi; echo $i$j; done; echo no; done"
    assert phone.sh(script)[1] == "1a\n2a\n"
    phone.rt.fs.write_bytes("/data/local/tmp/lines", b"cpu 1\ncpu0 2\nintr 3\ncpu9 4\n", 2000)
    script = "while read -r k v; do if [ $k = intr ]; then break; fi; echo $k; done < /data/local/tmp/lines; echo ok"
    assert phone.sh(script)[1] == "cpu\ncpu0\nok\n"
    _, out, err = phone.sh("break; echo $?")
    assert out == "1\n" and "can't break" in err


def test_read_with_a_delimiter_takes_many_lines_in_one_builtin(phone: Phone) -> None:
    # /proc/stat's cpu lines end at its first "i" (intr): one read, one echo per sampler tick
    rc, out, _ = phone.sh('read -r -d i cpus < /proc/stat; echo "$cpus"')
    lines = out.splitlines()
    assert rc == 0 and lines[0].startswith("cpu ") and len(lines) == 1 + phone.rt.profile.cpu_cores
    assert all(ln.split()[0] == f"cpu{i}" for i, ln in enumerate(lines[1:]))
    # -d '' reads to the end (NUL never comes): fields split across lines, status 1 at EOF
    rc, out, _ = phone.sh("read -r -d '' k1 v1 u1 k2 v2 u2 k3 v3 rest < /proc/meminfo; echo $? $k3 $v3")
    status, key, value = out.split()
    assert (status, key) == ("1", "MemAvailable:") and int(value) > 0


def test_a_fifo_held_open_is_a_fork_free_sleep(phone: Phone) -> None:
    fifo = "/data/local/tmp/w.fifo"
    rc, out, err = phone.sh(f"mkfifo {fifo} && exec 3<> {fifo} && read -t 0.2 -u3 z; echo $?")
    assert (rc, out, err) == (0, f"{128 + signal.SIGALRM}\n", "")  # timed out, as mksh reports it
    assert phone.sh(f"ls -l {fifo}")[1].startswith("p")
    # nothing hangs on a FIFO the emulator cannot serve: `<` would wait for a writer, cat too
    assert phone.sh(f"read x < {fifo}")[0] == 127
    rc, _, err = phone.sh(f"cat {fifo}")
    assert rc == 1 and "Resource temporarily unavailable" in err
    assert phone.sh("read -u5 x")[0] == 2  # no such descriptor
    assert phone.sh("exec 1> /data/local/tmp/o")[0] == 127  # the shell's own streams: refused


def test_data_written_to_the_fifo_ends_the_wait(phone: Phone) -> None:
    fifo = "/data/local/tmp/d.fifo"
    assert phone.sh(f"mkfifo {fifo}")[0] == 0
    t, result, started = run_in_thread(phone, f"exec 3<> {fifo}; echo ready; read -t 60 -u3 line; echo \"got $line $?\"")
    assert started.wait(30)
    assert phone.sh(f"echo hello > {fifo}")[0] == 0
    t.join(60)
    assert str(result["out"]).splitlines() == ["ready", "got hello 0"]


def test_a_trapped_signal_ends_a_waiting_read_at_once(phone: Phone) -> None:
    fifo = "/data/local/tmp/s.fifo"
    assert phone.sh(f"mkfifo {fifo}")[0] == 0
    script = f"trap 'echo trapped' USR1; exec 3<> {fifo}; echo $$; read -t 600 -u3 z; echo \"read $?\""
    t, result, started = run_in_thread(phone, script)
    assert started.wait(30)
    [proc] = [p for p in phone.rt.procs.snapshot() if p.name == "sh"]
    # a signal that lands before the read starts runs the trap and the read then waits: deliver
    # until the shell ends (the guard only stops a hang, it measures nothing)
    for _ in range(120):
        proc.deliver(signal.SIGUSR1)
        t.join(0.5)
        if not t.is_alive():
            break
    assert not t.is_alive()
    # the trap runs before the next command; the read ended with 128 + the signal
    lines = str(result["out"]).splitlines()[1:]
    assert lines[-1] == f"read {128 + signal.SIGUSR1}" and lines[:-1] and set(lines[:-1]) == {"trapped"}


def test_a_failed_redirection_reports_on_the_stderr_set_up_before_it(phone: Phone) -> None:
    assert phone.sh("read -r v 2>/dev/null < /sys/no/such; echo $?") == (0, "1\n", "")
    _, out, err = phone.sh("read -r v < /sys/no/such 2>/dev/null; echo $?")
    assert out == "1\n" and "can't open /sys/no/such" in err


def test_an_output_redirection_opens_its_file_once(phone: Phone) -> None:
    # a loop's output redirected once: every line lands, in order (one open, many writes)
    script = "i=0; while [ $i -lt 50 ]; do i=$((i + 1)); echo $i; done > /data/local/tmp/o; read -r a < /data/local/tmp/o; echo $a"
    assert phone.sh(script)[1] == "1\n"
    assert phone.sh("cat /data/local/tmp/o")[1] == "".join(f"{i}\n" for i in range(1, 51))


def test_rmdir_removes_empty_scratch_directories_only(phone: Phone) -> None:
    assert phone.sh("mkdir /data/local/tmp/d; rmdir /data/local/tmp/d; ls /data/local/tmp") == (0, "", "")
    rc, _, err = phone.sh("mkdir /data/local/tmp/e; touch /data/local/tmp/e/f; rmdir /data/local/tmp/e")
    assert rc == 1 and "Directory not empty" in err
    assert phone.sh("rmdir /sys/class")[0] == 1 and phone.sh("rmdir /data/local/tmp")[0] == 1
    assert phone.sh("rmdir -p /data/local/tmp/e")[0] == 127  # options: refused, not half-done


@pytest.mark.parametrize("read", [
    "read -r a b < /data/local/tmp/two", "read -r a < /data/local/tmp/none", "read -r < /data/local/tmp/two",
    "read -r a b < /data/local/tmp/empty", "read -r a b < /data/local/tmp/last", "read -r -d i a < /proc/stat",
    "read -r a b < /data/local/tmp", "read -r s1 s2 s3 < \"/proc/$$/stat\"", "read -r a < \"/proc/$nope/statm\"",
    "read -r a < /data/local/tmp/../local/tmp/two", "read -r a b < /data/local/tmp/f.fifo",
    "read -r a < /data/local/tmp/two && read -r b < /nope || echo failed",
    "read a b < /data/local/tmp/slash", "read -t 1 a < /data/local/tmp/two",
    "exec 4< /data/local/tmp/two; read -u4 a; read -u4 b", "read -u4 a",
])
def test_a_plain_read_of_a_file_is_what_the_general_path_gives(phone: Phone, read: str) -> None:
    # `read -r names < /file` runs as one step (a sampler does twenty a tick); an extra no-op
    # redirection (2>&2) sends the same command down the general path: same output, status, errors
    fs = phone.rt.fs
    fs.write_bytes("/data/local/tmp/two", b"one two three\nsecond\n", 2000)
    fs.write_bytes("/data/local/tmp/empty", b"", 2000)
    fs.write_bytes("/data/local/tmp/last", b"no newline", 2000)
    phone.sh("mkfifo /data/local/tmp/f.fifo")
    show = '; echo "$? [$a] [$b] [$REPLY] [$s1] [$s3]"'
    fs.write_bytes("/data/local/tmp/slash", b"a\\ b c\\\nd\n", 2000)
    general = read.replace(" < ", " 2>&2 < ").replace("read -u4 a", "read -u4 a 2>&2")


    def run(script: str) -> tuple[int, str, str]:  # each shell's own PID written as PID
        rc, out, err = phone.sh("echo $$; " + script + show)
        pid, _, rest = out.partition("\n")
        return rc, rest.replace(pid, "PID"), err

    fast, slow = run(read), run(general)
    assert fast == slow
    if "fifo" not in read:
        assert fast[0] == 0 and fast[1].strip()


def test_a_plain_read_in_a_job_that_is_one_command(phone: Phone) -> None:
    # a job that is one simple command becomes that command (exec): the one-step read is not used
    phone.rt.fs.write_bytes("/data/local/tmp/two", b"x y\n", 2000)
    assert phone.sh("read -r a < /data/local/tmp/two & wait $!; echo $?") == (0, "0\n", "")


def test_proc_takes_only_ascii_pids_and_arithmetic_keeps_the_ifs_refusal(phone: Phone) -> None:
    # "²" is a digit to Python's isdigit but no PID: no such file, as on a phone
    rc, out, err = phone.sh("read -r x < /proc/\u00b2/stat; echo $?; [ -d /proc/\u00b2 ]; echo $?")
    assert (rc, out) == (0, "1\n1\n") and "can't open" in err
    assert phone.sh("IFS=1; echo $((11 + 0))")[0] == 127  # unquoted $((…)) is split by IFS: refused
    assert phone.sh('IFS=1; echo "$((11 + 0))"')[1] == "11\n"  # quoted: not split


def test_a_symlink_in_the_sandbox_is_never_followed(phone: Phone, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").write_text("outside\n")
    phone.rt.fs.host_path("/data/local/tmp/link").symlink_to(tmp_path / "elsewhere")
    _, out, err = phone.sh("read -r x < /data/local/tmp/link; echo $?; cat /data/local/tmp/link")
    assert out == "1\n" and "No such file" in err and "outside" not in out


def test_exec_on_a_descriptor_closes_what_it_held(phone: Phone) -> None:
    # exec 3<> fifo three times holds one FIFO (and its wake pipe), as dup2 closes what fd 3 was
    fifo = "/data/local/tmp/x.fifo"
    assert phone.sh(f"mkfifo {fifo}")[0] == 0

    host = str(phone.rt.fs.host_path(fifo))

    def open_fds() -> int:  # this process's descriptors on the FIFO (other threads' files aside)
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # closed meanwhile
                count += os.readlink(f"/proc/self/fd/{fd}") == host
        return count

    held = {}
    for times in (1, 3):
        before = open_fds()
        t, result, started = run_in_thread(phone, f"{'; '.join([f'exec 3<> {fifo}'] * times)}; echo ready; "
                                                  "read -t 60 -u3 z; echo \"got $z\"")
        assert started.wait(30)
        held[times] = open_fds() - before
        assert phone.sh(f"echo go > {fifo}")[0] == 0
        t.join(60)
        assert str(result["out"]).splitlines() == ["ready", "got go"]
        assert open_fds() == before  # all closed when the shell ends
    assert held[3] == held[1] == 1
