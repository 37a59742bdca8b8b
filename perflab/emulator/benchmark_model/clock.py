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
the host's load)."""

from __future__ import annotations

import time

_SCHEDSTAT = "/proc/thread-self/schedstat"


def waited_s() -> float:
    """The calling thread's total time runnable but not running (s); 0 when unknown."""
    try:
        with open(_SCHEDSTAT, encoding="ascii") as fh:
            return int(fh.read().split()[1]) / 1e9
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
            return mono - before
    return time.monotonic() - waited_s()


def spend(delay_s: float) -> None:
    """Spend an injected delay of ``delay_s`` on the phone's clock inside the current segment,
    spinning to the deadline: a delay stands for a layer that computes longer, and a busy
    thread is what a phone shows then. Sleeping most of it let the host's caches and the
    interpreter's idle workers go cold, so the *next* layer's own work ran slower and was
    measured as its delay (c2 +12-15% after c1's 15 ms sleep, on every attempt). Time the
    host's other load takes from the spinning thread is waiting for a CPU, off the clock."""
    deadline = now_s() + delay_s
    while now_s() < deadline:
        pass
