"""The emulated phone's clock (perflab.emulator.benchmark_model.clock): each thread reads its
own scheduler wait through a file it keeps open, and a thread's end closes it."""

from __future__ import annotations

import os
import threading

from perflab.emulator.benchmark_model import clock


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_each_thread_reads_its_own_wait_and_closes_its_file_when_it_ends() -> None:
    clock.now_s()  # the main thread's file is opened once and kept
    before = _open_fds()
    seen: list[tuple[float, float, float]] = []

    def work() -> None:
        # a thread that never waited for a CPU reads (close to) zero; the main thread has
        # waited for many ms in this busy test process by now, and that is not this thread's
        start = clock.waited_s()
        with open("/proc/thread-self/schedstat", encoding="ascii") as fh:
            own = int(fh.read().split()[1]) / 1e9
        t0 = clock.now_s()
        clock.spend(0.002)
        seen.append((start, own, clock.now_s() - t0))

    for _ in range(20):
        t = threading.Thread(target=work)
        t.start()
        t.join()
    assert _open_fds() == before  # 20 threads, no file left open
    for start, own, spent_s in seen:
        assert start <= own  # its own wait, read before the file it opened itself
        assert own - start < 0.5
        assert spent_s >= 0.002  # the delay is spent on the phone's clock, never short


def test_hidden_host_work_is_off_the_clock_and_a_cost_is_spent_to_its_deadline() -> None:
    """A layer on an emulated accelerator: the host's computing of it is hidden (the clock reads
    as if it had not happened) and the layer's cost is spun to its deadline on the phone's clock,
    the reading that passed it returned."""
    t0 = clock.now_s()
    clock.hide(0.5)  # as if the host had just computed a layer for 0.5 s
    assert clock.now_s() < t0 - 0.4
    begin = clock.now_s()
    end = clock.spend_until(begin + 0.003)
    assert end >= begin + 0.003 and clock.now_s() >= end
    assert clock.spend_until(begin) >= end  # a deadline already passed returns at once
