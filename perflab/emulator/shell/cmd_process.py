"""Processes: ps, pidof, kill, reboot."""

from __future__ import annotations

import posixpath
import signal
from typing import TYPE_CHECKING

from perflab.emulator.fs import ROOT_UID
from perflab.emulator.procs import STOP_SIGNALS, Proc
from perflab.emulator.shell.cmd_builtins import parse_signal
from perflab.emulator.shell.errors import Unsupported
from perflab.emulator.shell.registry import command, err
from perflab.emulator.shell.streams import IO

if TYPE_CHECKING:
    from perflab.emulator.shell.interp import Shell


def _parse_kill_args(args: list[str]) -> tuple[int, list[str]]:
    """(signal, pids) from ``-9``, ``-KILL``, ``-SIGINT``, ``-s INT``, ``-s 2``; ValueError names a bad one."""
    signo = int(signal.SIGTERM)
    pids: list[str] = []
    it = iter(args)
    for a in it:
        if a == "--":
            pids.extend(it)
        elif a == "-s":
            spec = next(it, "")
            found = parse_signal(spec)
            if not found:
                raise ValueError(spec)
            signo = found
        elif a.startswith("-") and len(a) > 1 and not pids:
            found = parse_signal(a[1:])
            if not found:
                raise ValueError(a[1:])
            signo = found
        else:
            pids.append(a)
    return signo, pids


@command("kill")
def _kill(sh: Shell, args: list[str], io: IO) -> int:
    if args[:1] == ["-l"]:
        raise Unsupported("kill -l")
    try:
        signo, pids = _parse_kill_args(args)
    except ValueError as exc:
        err(io, f"kill: unknown signal '{exc}'")
        return 1
    if signo in STOP_SIGNALS:
        raise Unsupported(f"kill -{signal.Signals(signo).name.removeprefix('SIG')} (stopping processes)")
    if not pids:
        err(io, "usage: kill [-s SIGNAL | -SIGNAL] PID...")
        return 2
    status = 0
    for p in pids:
        if p.startswith(("%", "-")) or p == "0":
            raise Unsupported(f"kill {p} (jobs and process groups)")
        proc = sh.rt.procs.get(int(p)) if p.isdigit() else None
        if proc is None:
            err(io, f"kill: {p}: No such process")
            status = 1
        elif proc.static or (sh.uid != ROOT_UID and proc.uid != sh.uid):
            err(io, f"kill: {p}: Operation not permitted")
            status = 1
        else:
            proc.deliver(signo)
    if sh.proc is not None and sh.proc.pending:
        sh.check_cancel()  # kill $$: the shell notices its own signal at once
    return status


@command("pidof")
def _pidof(sh: Shell, args: list[str], io: IO) -> int:
    names = {posixpath.basename(a) for a in args if not a.startswith("-")}
    found = [str(p.pid) for p in reversed(sh.rt.procs.snapshot()) if p.name in names]
    if found:
        io.out((" ".join(found) + "\n").encode())
        return 0
    return 1


_PS_HEADER = "USER           PID  PPID     VSZ    RSS WCHAN            ADDR S NAME"
_USERS = {0: "root", 1000: "system", 1036: "logd", 2000: "shell"}


def ps_line(proc: Proc) -> str:
    """One toybox ``ps -A`` row."""
    user = _USERS.get(proc.uid, f"u0_a{proc.uid % 100000}" if proc.uid >= 10000 else str(proc.uid))
    state = "R" if proc.host is not None else "S"
    wchan = "0" if proc.host is not None else "do_sys_poll" if proc.static else "do_wait"
    return (f"{user:<10} {proc.pid:>7} {proc.ppid:>5} {proc.vsz_kb:>7} {proc.host_rss_kb():>6} {wchan:<16} "
            f"{0:>4} {state} {proc.name}")


@command("ps")
def _ps(sh: Shell, args: list[str], io: IO) -> int:
    wanted: set[int] | None = None
    it = iter(args)
    for a in it:
        if a in ("-A", "-e"):
            continue
        if a == "-p":
            wanted = {int(x) for x in next(it, "").split(",") if x.isdigit()}
        elif a.isdigit():
            wanted = (wanted or set()) | {int(a)}
        else:
            raise Unsupported(f"ps {a}")
    rows = [ps_line(p) for p in sh.rt.procs.snapshot() if wanted is None or p.pid in wanted]
    io.out(("\n".join([_PS_HEADER, *rows]) + "\n").encode())
    return 0 if wanted is None or len(rows) > 0 else 1


@command("reboot")
def reboot_now(sh: Shell, args: list[str], io: IO) -> int:
    if sh.rt.request_reboot is None:
        raise Unsupported("reboot")
    sh.rt.request_reboot(0.2)
    sh.sleep(30)  # the phone goes down under this command
    return 0
