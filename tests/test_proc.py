"""/proc parsers on real-format text and on this machine's real /proc."""

from __future__ import annotations

from pathlib import Path

import pytest

from perflab.core.proc import (
    busy_pct,
    parse_cpu_model,
    parse_proc_stat_cpu,
    parse_status_kb,
    read_cpu_times,
)

STAT = """cpu  4705 356 584 3699 23 23 0 0 0 0
cpu0 1393280 32966 572056 13343292 6130 0 17875 0 23933 0
intr 1462898 ...
"""


def test_proc_stat_busy_excludes_idle_and_iowait() -> None:
    t = parse_proc_stat_cpu(STAT)
    assert t.total_ticks == 4705 + 356 + 584 + 3699 + 23 + 23
    assert t.busy_ticks == t.total_ticks - 3699 - 23
    later = parse_proc_stat_cpu("cpu  4805 356 584 3799 23 23 0 0 0 0\n")
    assert busy_pct(t, later) == pytest.approx(50.0)
    assert busy_pct(t, t) is None
    with pytest.raises(ValueError):
        parse_proc_stat_cpu("cpu0 1 2 3 4\n")


def test_status_and_cpuinfo() -> None:
    status = "Name:\tpython\nVmHWM:\t  123456 kB\nVmRSS:\t   99999 kB\n"
    assert parse_status_kb(status, "VmHWM") == 123456
    assert parse_status_kb(status, "VmSwap") is None
    assert parse_cpu_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"


def test_this_machine() -> None:
    t = read_cpu_times()
    assert t.total_ticks > t.busy_ticks > 0
    assert parse_status_kb(Path("/proc/self/status").read_text(), "VmHWM")
