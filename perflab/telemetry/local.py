"""The `local` sampler: the same line format as the phone's script, read from this machine.

A thread reads /proc (CPU ticks, MemAvailable, the measured process's VmRSS), cpufreq, thermal
zones, hwmon temperatures and powercap RAPL where the host has them, every ``interval_s``, on
``time.monotonic()`` — the clock the host worker's own markers use. A source the host does
not have is said once (``E`` line) with the reason, so it shows as missing, never as zero.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from perflab.analysis.timeline import Timeline, parse_sampler_output

PROC = Path("/proc")
SYS = Path("/sys")


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def find_pid(match: str, proc: Path = PROC) -> int | None:
    """The newest process whose command line contains ``match`` (e.g. a workload's workdir)."""
    best: tuple[float, int] | None = None
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if match in cmd and int(d.name) != os.getpid():
            started = d.stat().st_mtime
            if best is None or started > best[0]:
                best = (started, int(d.name))
    return best[1] if best else None


class HostSources:
    """Which optional host sources exist, found once (sysfs globbing is not free)."""

    def __init__(self, sys_root: Path = SYS) -> None:
        self.freqs = sorted(sys_root.glob("devices/system/cpu/cpu[0-9]*/cpufreq/scaling_cur_freq"))
        self.zones = sorted(sys_root.glob("class/thermal/thermal_zone[0-9]*"))
        self.hwmon = sorted(sys_root.glob("class/hwmon/hwmon[0-9]*/temp[0-9]*_input"))
        self.rapl = sorted(p for p in sys_root.glob("class/powercap/intel-rapl:*/energy_uj"))

    def missing_lines(self) -> list[str]:
        out = []
        if not self.freqs:
            out.append("E freq this machine exposes no cpufreq (scaling_cur_freq) nodes")
        if not self.zones and not self.hwmon:
            out.append("E tz this machine has no thermal zones (/sys/class/thermal) and no hwmon temperatures")
        if not self.rapl:
            out.append("E rapl this machine has no powercap RAPL counters (/sys/class/powercap/intel-rapl:*)")
        out.append("E bat this machine has no battery (no /sys/class/power_supply battery): no current or energy")
        out.append("E gpu no GPU load source on this machine")
        return out


def _proc_lines(pid: int | None) -> list[str]:
    lines = [f"cpu {line}" for line in (_read(PROC / "stat") or "").splitlines() if line.startswith("cpu")]
    if pid is not None:
        lines += [f"rss {line.split()[1]}" for line in (_read(PROC / str(pid) / "status") or "").splitlines()
                  if line.startswith("VmRSS:")]
    lines += [f"mem {line.split()[1]}" for line in (_read(PROC / "meminfo") or "").splitlines()
              if line.startswith("MemAvailable:")]
    return lines


def _sys_lines(sources: HostSources) -> list[str]:
    lines = []
    for p in sources.freqs:
        if (v := _read(p)) is not None:
            lines.append(f"freq {p.parent.parent.name} {v.strip()}")
    for z in sources.zones:
        name, temp = _read(z / "type"), _read(z / "temp")
        if name and temp:
            lines.append(f"tz {name.strip()} {temp.strip()}")
    for h in sources.hwmon:
        if temp := _read(h):
            lines.append(f"tz {h.parent.name}.{h.name.removesuffix('_input')} {temp.strip()}")
    for r in sources.rapl:
        if energy := _read(r):
            lines.append(f"rapl {r.parent.name} {energy.strip()}")
    return lines


def sample_once(sources: HostSources, pid: int | None, now_s: float, self_cpu_s: float) -> list[str]:
    """One tick of sampler lines."""
    return [f"T {now_s:.3f}", *_proc_lines(pid), *_sys_lines(sources), f"self {self_cpu_s * 100:.0f} 0 100"]


class LocalSampler:
    """Samples this machine in a thread until ``stop()``; raw lines also go to ``raw_path``."""

    def __init__(self, interval_s: float, pid_match: str, raw_path: Path,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.pid_match = pid_match
        self.raw_path = raw_path
        self.clock = clock
        self._stop = threading.Event()
        self._lines: list[str] = []
        self._thread = threading.Thread(target=self._loop, name="sampler-local", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        sources = HostSources()
        self._lines.extend(sources.missing_lines())
        pid: int | None = None
        next_s = self.clock()
        while not self._stop.is_set():
            if pid is None or not (PROC / str(pid)).exists():
                pid = find_pid(self.pid_match)
            self._lines.extend(sample_once(sources, pid, self.clock(), time.thread_time()))
            next_s += self.interval_s
            self._stop.wait(max(0.0, next_s - self.clock()))

    def stop(self) -> Timeline:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.raw_path.parent.mkdir(parents=True, exist_ok=True)
        self.raw_path.write_text("\n".join(self._lines) + "\n", encoding="utf-8")
        return parse_sampler_output(self._lines)
