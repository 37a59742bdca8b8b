"""The emulated phone's process table: PIDs, parents, sessions and signals, as Android has them.

Every shell (one per ``adb shell`` stream, ``sh -c``, ``su``, a background job) and every
emulated ``benchmark_model`` run is a process here with its own PID, listed by ``ps -A`` and
``pidof``, and ended by ``kill``. A process backed by a real host child (benchmark_model)
is ended by killing that child; a shell process notices its pending signals between
commands and in ``sleep``/``wait`` (see ``perflab.emulator.shell.interp``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

ROOT_UID = 0
SHELL_UID = 2000
INIT_PID = 1
ADBD_PID = 612
#: PIDs handed to new processes start here (a freshly booted phone's range) and wrap below this.
FIRST_PID = 3100
PID_MAX = 32768

#: the emulated phone's page size is the host's (its /proc/<pid>/statm counts the host child's pages)
PAGE_SIZE_BYTES = os.sysconf("SC_PAGE_SIZE")
_PAGE_KB = PAGE_SIZE_BYTES // 1024
_CLK_TCK = os.sysconf("SC_CLK_TCK")

#: Signals whose default action is to ignore them (everything else terminates, as for these tools).
DEFAULT_IGNORED = frozenset({signal.SIGCHLD, signal.SIGWINCH, signal.SIGURG, signal.SIGCONT})
#: Job-control stops: refused by ``kill`` (the emulated phone does not stop processes).
STOP_SIGNALS = frozenset({signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})

# (pid, ppid, uid, name, vsz_kb, rss_kb): what a freshly booted phone runs before anyone connects
_SYSTEM = (
    (1, 0, ROOT_UID, "init", 10904012, 9876),
    (2, 0, ROOT_UID, "[kthreadd]", 0, 0),
    (301, 1, ROOT_UID, "ueventd", 10787148, 3140),
    (428, 1, 1036, "logd", 10929384, 6436),
    (431, 1, 1000, "servicemanager", 10822584, 4552),
    (540, 1, 1000, "surfaceflinger", 11263200, 28412),
    (ADBD_PID, 1, SHELL_UID, "adbd", 10976016, 7868),
    (1152, 1, 1000, "system_server", 18025412, 312044),
)


@dataclass(eq=False)
class Proc:
    """One process. ``host`` is the real child behind an emulated native binary, if any."""

    pid: int
    ppid: int
    uid: int
    name: str
    sid: int
    vsz_kb: int = 10_880_000
    rss_kb: int = 4_200
    host: subprocess.Popen[bytes] | None = None
    #: set whenever a signal arrives (wakes ``sleep``/``wait``/the benchmark runner)
    wake: threading.Event = field(default_factory=threading.Event)
    pending: list[int] = field(default_factory=list)
    #: the signal that ended a host-backed process (its exit status is 128 + this)
    killed_by: int | None = None
    static: bool = False
    #: the command line (/proc/<pid>/cmdline), when it is more than the name: ``sh script``
    argv: tuple[str, ...] = ()
    #: CPU clock of the thread that runs this (shell) process, and its reading at the start
    cpu_clock: int | None = None
    cpu_base_s: float = 0.0
    cpu_last_s: float = 0.0
    #: write ends of pipes a waiting ``select`` watches (``read -t`` on a FIFO): a signal writes
    #: one byte to each, so the wait ends at once, as the kernel interrupts a blocked read
    _wakers: list[int] = field(default_factory=list)
    _wakers_lock: threading.Lock = field(default_factory=threading.Lock)

    def on_this_thread(self) -> None:
        """This (shell) process runs on the calling thread from now on: its CPU time is that thread's."""
        if self.cpu_clock is None:
            self.cpu_clock = time.pthread_getcpuclockid(threading.get_ident())
            self.cpu_base_s = time.clock_gettime(self.cpu_clock)

    def cpu_s(self) -> float:
        """CPU seconds this process has used: its thread's since it started (the emulator's real cost)."""
        if self.cpu_clock is not None:
            with contextlib.suppress(OSError):  # the thread has ended: its last reading stands
                self.cpu_last_s = time.clock_gettime(self.cpu_clock) - self.cpu_base_s
        return self.cpu_last_s

    def deliver(self, signo: int) -> None:
        if self.host is not None:
            if signo not in DEFAULT_IGNORED and self.killed_by is None:
                self.killed_by = signo
                with contextlib.suppress(OSError):
                    self.host.kill()
        else:
            self.pending.append(signo)
        self.wake.set()
        with self._wakers_lock:
            for fd in self._wakers:
                with contextlib.suppress(BlockingIOError):  # full: a wake-up is already waiting
                    os.write(fd, b"\0")

    def add_waker(self, fd: int) -> None:
        """Wake ``fd`` (a non-blocking pipe's write end) on every signal until ``remove_waker``."""
        with self._wakers_lock:
            self._wakers.append(fd)

    def remove_waker(self, fd: int) -> None:
        """No more writes to ``fd`` once this returns (its owner may close it)."""
        with self._wakers_lock:
            if fd in self._wakers:
                self._wakers.remove(fd)

    def take_signals(self) -> list[int]:
        taken = list(self.pending)
        del self.pending[:len(taken)]
        return taken

    def host_rss_kb(self) -> int:
        """The real resident size of the host child behind this process, else the nominal one."""
        if self.host is None:
            return self.rss_kb
        try:
            with open(f"/proc/{self.host.pid}/statm") as fh:
                pages = int(fh.read().split()[1])
        except (OSError, ValueError, IndexError):
            return self.rss_kb
        return pages * _PAGE_KB


class ProcessTable:
    """PIDs of one phone. Thread-safe; emptied (but for the system processes) by a reboot."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._procs: dict[int, Proc] = {}
        self._next = itertools.count(FIRST_PID)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._procs = {pid: Proc(pid, ppid, uid, name, sid=pid, vsz_kb=vsz, rss_kb=rss, static=True)
                           for pid, ppid, uid, name, vsz, rss in _SYSTEM}
            self._next = itertools.count(FIRST_PID)
            self._changed.notify_all()

    def _new_pid(self) -> int:
        for _ in range(PID_MAX):
            pid = next(self._next)
            if pid >= PID_MAX:
                self._next = itertools.count(FIRST_PID)
                pid = next(self._next)
            if pid not in self._procs:
                return pid
        raise RuntimeError("emulated phone: no free PID")

    def spawn(self, name: str, *, ppid: int, uid: int, sid: int | None = None) -> Proc:
        with self._lock:
            pid = self._new_pid()
            proc = Proc(pid, ppid, uid, name, sid=pid if sid is None else sid)
            self._procs[pid] = proc
            self._changed.notify_all()
            return proc

    def exit(self, proc: Proc) -> None:
        with self._lock:
            if self._procs.get(proc.pid) is proc:
                del self._procs[proc.pid]
            self._changed.notify_all()

    def changed(self) -> None:
        """A process changed in place (``exec``, its host child started): wake ``wait_until``."""
        with self._lock:
            self._changed.notify_all()

    def wait_until(self, predicate: Callable[[list[Proc]], bool], timeout_s: float) -> bool:
        """Block until ``predicate(processes)`` holds (checked at each change); False on timeout."""
        with self._lock:
            return self._changed.wait_for(
                lambda: predicate(sorted(self._procs.values(), key=lambda p: p.pid)), timeout=timeout_s)

    def get(self, pid: int) -> Proc | None:
        with self._lock:
            return self._procs.get(pid)

    def snapshot(self) -> list[Proc]:
        with self._lock:
            return sorted(self._procs.values(), key=lambda p: p.pid)

    def by_name(self, name: str) -> list[Proc]:
        return [p for p in self.snapshot() if p.name == name]

    def hangup(self, sid: int) -> None:
        """The session's terminal (its adb stream) went away: SIGHUP to each of its processes."""
        for p in self.snapshot():
            if p.sid == sid and not p.static:
                p.deliver(signal.SIGHUP)

    def kill_all(self) -> None:
        """Power off: every process dies at once (SIGKILL), host children included."""
        for p in self.snapshot():
            if not p.static:
                p.deliver(signal.SIGKILL)
        for p in self.snapshot():
            if p.host is not None:
                with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                    p.host.wait(timeout=5)


# ---------------------------------------------------------------------- /proc/<pid>/…


def _host_status(proc: Proc) -> dict[str, str]:
    """Fields of the real child's /proc/<pid>/status (memory and threads are real), else empty."""
    if proc.host is None:
        return {}
    try:
        with open(f"/proc/{proc.host.pid}/status") as fh:
            return {k: v.strip() for k, _, v in (line.partition(":") for line in fh)}
    except OSError:
        return {}


def _host_cpu_ticks(proc: Proc) -> tuple[int, int]:
    """(utime, stime) in clock ticks: the host child's, or a shell's thread CPU time (as utime)."""
    if proc.host is None:
        return round(proc.cpu_s() * _CLK_TCK), 0
    try:
        with open(f"/proc/{proc.host.pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int(fields[11]), int(fields[12])  # utime, stime (fields 14 and 15)
    except (OSError, IndexError, ValueError):
        return 0, 0


def proc_status(proc: Proc) -> bytes:
    """/proc/<pid>/status as Linux prints it (the fields a sampler reads)."""
    host = _host_status(proc)
    state = "R (running)" if proc.host is not None else "S (sleeping)"
    rss = host.get("VmRSS", f"{proc.rss_kb} kB")
    lines = [f"Name:\t{proc.name[:15]}", "Umask:\t0077", f"State:\t{state}", f"Tgid:\t{proc.pid}", "Ngid:\t0",
             f"Pid:\t{proc.pid}", f"PPid:\t{proc.ppid}", "TracerPid:\t0",
             f"Uid:\t{proc.uid}\t{proc.uid}\t{proc.uid}\t{proc.uid}",
             f"Gid:\t{proc.uid}\t{proc.uid}\t{proc.uid}\t{proc.uid}",
             f"VmPeak:\t{host.get('VmPeak', f'{proc.vsz_kb} kB'):>12}", f"VmSize:\t{host.get('VmSize', f'{proc.vsz_kb} kB'):>12}",
             f"VmHWM:\t{host.get('VmHWM', rss):>12}", f"VmRSS:\t{rss:>12}",
             f"RssAnon:\t{host.get('RssAnon', rss):>12}", f"Threads:\t{host.get('Threads', '1')}"]
    return ("\n".join(lines) + "\n").encode()


def proc_stat(proc: Proc) -> bytes:
    """/proc/<pid>/stat: pid, (comm), state, ppid, …, utime and stime (clock ticks), …, vsize, rss (pages)."""
    utime, stime = _host_cpu_ticks(proc)
    state = "R" if proc.host is not None else "S"
    rss_pages = proc.host_rss_kb() // _PAGE_KB
    fields = [str(proc.pid), f"({proc.name[:15]})", state, str(proc.ppid), str(proc.pid), str(proc.sid), "0", "-1",
              "4194560", "0", "0", "0", "0", str(utime), str(stime), "0", "0", "20", "0", "1", "0", "0",
              str(proc.vsz_kb * 1024), str(rss_pages)]
    return (" ".join(fields) + "\n").encode()


def proc_statm(proc: Proc) -> bytes:
    """/proc/<pid>/statm: size resident shared text lib data dt, in pages (resident = VmRSS)."""
    size = proc.vsz_kb // _PAGE_KB
    resident = proc.host_rss_kb() // _PAGE_KB
    return f"{size} {resident} 0 0 0 {resident} 0\n".encode()


def proc_cmdline(proc: Proc) -> bytes:
    """/proc/<pid>/cmdline: the arguments, each ended by a NUL (``sh\0/data/…/script\0``)."""
    return b"".join(arg.encode() + b"\0" for arg in (proc.argv or (proc.name,)))
