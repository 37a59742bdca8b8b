"""/proc parsers (pure) and tiny readers for the local machine, shared by the local device,
the host worker and telemetry (neutral ground: stdlib only).

formats.md §5: /proc/stat's first line is "cpu user nice system idle iowait irq softirq steal
guest guest_nice" in USER_HZ ticks; busy = total − idle − iowait.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuTimes:
    busy_ticks: int
    total_ticks: int


def parse_proc_stat_cpu(text: str) -> CpuTimes:
    for line in text.splitlines():
        if line.startswith("cpu "):
            vals = [int(v) for v in line.split()[1:]]
            # guest and guest_nice are already included in user and nice
            vals = vals[:8]
            total = sum(vals)
            idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
            return CpuTimes(busy_ticks=total - idle, total_ticks=total)
    raise ValueError("no aggregate 'cpu ' line in /proc/stat")


def busy_pct(before: CpuTimes, after: CpuTimes) -> float | None:
    """System-wide busy share between two readings, in percent of all cores."""
    dt = after.total_ticks - before.total_ticks
    if dt <= 0:
        return None
    return 100.0 * (after.busy_ticks - before.busy_ticks) / dt


def read_cpu_times(root: Path = Path("/proc")) -> CpuTimes:
    return parse_proc_stat_cpu((root / "stat").read_text())


def parse_status_kb(text: str, key: str) -> int | None:
    """Value in kB of a /proc/<pid>/status key such as VmHWM or VmRSS."""
    for line in text.splitlines():
        if line.startswith(key + ":"):
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                return int(parts[1])
    return None


def parse_cpu_model(cpuinfo: str) -> str | None:
    for line in cpuinfo.splitlines():
        if line.lower().startswith(("model name", "hardware", "processor\t: arm")) and ":" in line:
            return line.split(":", 1)[1].strip()
    return None
