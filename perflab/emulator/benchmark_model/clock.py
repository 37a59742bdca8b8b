"""The emulated phone's clock: the host's monotonic time less the time the host's other load
kept the tool's thread waiting for a CPU.

A phone's benchmark_model has the phone's cores; the emulated one shares the host's with
whatever else runs there (on a 2-core host beside two busy processes it gets a third of a
core or less). Linux counts, per thread, the time it was runnable but not running
(``/proc/thread-self/schedstat``, second field, ns: the scheduler's ``run_delay``); taking it
off the monotonic clock leaves the time the thread computed, slept or waited for something
of its own, which is what the same work takes on a phone with cores to itself. Everything
the emulated tool times (each invoke, each op's segment, the kernel trace's sections) is on
this clock, so a busy host slows the tests' wall time but not the phone's numbers. Where
schedstat cannot be read, the clock is the plain monotonic one (and the numbers then carry
the host's load).

Reading the clock must cost little on the phone's own clock: every op's segment reads it
twice and a spun delay ends on a reading. Each thread keeps its schedstat file open and
re-reads it in place (``pread``, ~6 µs); opening it for every reading cost ~60 µs of the
phone's time under load, and a spun delay overshot by up to one reading, so every delayed op
measured 0.1–0.3 ms over its delay on a busy host."""

from __future__ import annotations

import os
import threading
import time

_SCHEDSTAT = "/proc/thread-self/schedstat"
#: the host's own work for layers an emulated accelerator runs (:func:`hide`), off the clock
_hidden_s = 0.0


class _OpenFile:
    """One thread's schedstat file descriptor (None: it cannot be opened), closed when the
    thread's state goes (its thread ended)."""

    def __init__(self) -> None:
        try:
            self.fd: int | None = os.open(_SCHEDSTAT, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self.fd = None

    def __del__(self) -> None:
        if self.fd is not None:
            os.close(self.fd)


class _PerThread(threading.local):
    file: _OpenFile | None = None


_LOCAL = _PerThread()


def _schedstat_fd() -> int | None:
    """This thread's schedstat file, opened once per thread (``thread-self`` names the thread
    that opens it); None where it cannot be opened."""
    if _LOCAL.file is None:
        _LOCAL.file = _OpenFile()
    return _LOCAL.file.fd


def waited_s() -> float:
    """The calling thread's total time runnable but not running (s); 0 when unknown."""
    fd = _schedstat_fd()
    if fd is None:
        return 0.0
    try:
        return int(os.pread(fd, 128, 0).split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def now_s() -> float:
    """The phone's clock for the calling thread (s): monotonic, less the time spent waiting
    for a CPU. Differences of it are durations on the phone; it is not an absolute time. The
    wait is read either side of the monotonic clock and the reading repeated when they differ
    (the thread was preempted in between, and one of the two readings would be off by the
    whole wait), so the clock never runs backwards nor ahead of the host's."""
    for _ in range(100):
        before = waited_s()
        mono = time.monotonic()
        if waited_s() == before:
            return mono - before - _hidden_s
    return time.monotonic() - waited_s() - _hidden_s


def spend(delay_s: float) -> None:
    """Spend an injected delay of ``delay_s`` on the phone's clock inside the current segment,
    spinning to the deadline: a delay stands for a layer that computes longer, and a busy
    thread is what a phone shows then. Sleeping most of it let the host's caches and the
    interpreter's idle workers go cold, so the *next* layer's own work ran slower and was
    measured as its delay (c2 +12-15% after c1's 15 ms sleep, on every attempt). Time the
    host's other load takes from the spinning thread is waiting for a CPU, off the clock.

    The spin watches the monotonic clock (a few hundred ns a reading) for what is left of the
    delay and only then reads the phone's clock again: the phone's clock never runs faster than
    the monotonic one, so the spin cannot pass the deadline by more than one reading of it."""
    deadline = now_s() + delay_s
    while True:
        left_s = deadline - now_s()
        if left_s <= 0:
            return
        until = time.monotonic() + left_s
        while time.monotonic() < until:
            pass


def hide(seconds: float) -> None:
    """Take ``seconds`` the host just spent off the phone's clock: the host computing a layer
    that the phone runs on an accelerator whose per-layer cost the profile sets
    (:mod:`.handover`). The emulator must compute the layer's outputs, but that is the
    emulator's work, not the phone's; the layer then lasts its cost, spent (:func:`spend_until`).
    Nothing may be stamped between the reading the hidden time began at and this call."""
    global _hidden_s
    _hidden_s += max(0.0, seconds)


def spend_until(deadline_s: float) -> float:
    """Spin until the phone's clock reads ``deadline_s`` (nothing when it already has) and
    return the reading that passed it: an op that lasts at least its cost on the processor the
    phone runs it on, a hand-over that lasts its cost (:mod:`.handover`). Like :func:`spend`,
    the spin watches the monotonic clock for what is left and only then reads the phone's."""
    while True:
        now = now_s()
        left_s = deadline_s - now
        if left_s <= 0:
            return now
        until = time.monotonic() + left_s
        while time.monotonic() < until:
            pass
