"""Processes: ps, pidof, kill, reboot."""

from __future__ import annotations

import posixpath
import signal
from typing import TYPE_CHECKING

from perflab.emulator.shell.errors import Cancelled, Unsupported
from perflab.emulator.shell.registry import command, err
from perflab.emulator.shell.streams import IO

if TYPE_CHECKING:
    from perflab.emulator.shell.interp import Shell


@command("kill")
def _kill(sh: Shell, args: list[str], io: IO) -> int:
    sig = signal.SIGTERM
    pids: list[str] = []
    for a in args:
        if a.startswith("-") and len(a) > 1:
            name = a[1:].upper()
            if name.isdigit():
                sig = signal.Signals(int(name))
            elif name == "S":
                continue
            else:
                sig = signal.Signals[name if name.startswith("SIG") else "SIG" + name]
        else:
            pids.append(a)
    status = 0
    for p in pids:
        proc = sh.rt.processes.get(int(p)) if p.isdigit() else None
        if proc is None:
            err(io, f"kill: pid {p}: No such process")
            status = 1
            continue
        proc.send_signal(sig)
    return status


@command("pidof")
def _pidof(sh: Shell, args: list[str], io: IO) -> int:
    found = [str(pid) for pid, p in sh.rt.processes.items() if p.poll() is None
             and any(posixpath.basename(getattr(p, "device_name", "")) == a for a in args)]
    if found:
        io.out((" ".join(found) + "\n").encode())
        return 0
    return 1


@command("ps")
def _ps(sh: Shell, args: list[str], io: IO) -> int:
    io.out(b"USER           PID  PPID     VSZ    RSS WCHAN            ADDR S NAME\n")
    io.out(b"root             1     0 10904012  9876 0                   0 S init\n")
    for pid, p in sorted(sh.rt.processes.items()):
        if p.poll() is None:
            io.out(f"shell        {pid:5d}  1000  120000  40000 0                   0 R "
                   f"{getattr(p, 'device_name', 'benchmark_model')}\n".encode())
    return 0


@command("reboot")
def reboot_now(sh: Shell, args: list[str], io: IO) -> int:
    if sh.rt.request_reboot is None:
        raise Unsupported("reboot")
    sh.rt.request_reboot(0.2)
    if sh.cancel.wait(30):
        raise Cancelled()
    return 0
