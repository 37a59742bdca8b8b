"""Start and stop a cell's sampler on a device; read back its timeline.

``open_sampler(device, …)`` returns a Sampler: on `local` a thread reading this machine
(:mod:`perflab.telemetry.local`); on a phone one pushed shell script run in the background
(``sampler.sh``), killed by its PID at the end and its output pulled back. Both give the same
raw lines (kept in the run folder) and the same Timeline.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Protocol

from perflab.analysis.timeline import Timeline, parse_sampler_output
from perflab.devices.android import AndroidDevice
from perflab.devices.base import Device
from perflab.devices.config import GpuFormat
from perflab.devices.local import LocalDevice
from perflab.errors import DeviceError, MeasurementError
from perflab.telemetry.local import LocalSampler
from perflab.telemetry.summary import StreamConfig

_STOP_TIMEOUT_S = 15.0


class SamplerError(MeasurementError):
    """The sampler could not be started or read back (the cell goes on without telemetry)."""


class Sampler(Protocol):
    def start(self) -> None: ...

    def stop(self) -> Timeline: ...


def stream_config(device: Device) -> StreamConfig:
    """How to read this device's raw streams (units, sign, the headline thermal zone)."""
    if not isinstance(device, AndroidDevice):
        return StreamConfig()
    cfg = device.config
    return StreamConfig(
        gpu_freq_unit=cfg.gpu.freq_unit if cfg.gpu else "hz",
        current_unit=cfg.battery.current_unit.value if cfg.battery.current_unit is not None else None,
        discharge_sign=cfg.battery.discharge_sign,
        voltage_unit=cfg.battery.voltage_unit,
        temp_zone=cfg.thermal.gate_zone(),
    )


_SCRIPT_HEAD = """\
# perflab device sampler: one long-lived process per cell, started in the background by
# perflab and killed by its PID. It reads sysfs and procfs with shell builtins only (read,
# echo, test, mksh's builtin sleep): no process is forked per sample. Its lines follow
# perflab/telemetry/samples.py. Written for this device by perflab (paths quoted). It ignores
# SIGHUP (as nohup would) so that it outlives the adb shell that started it.
trap 'exit 0' TERM INT
trap '' HUP
echo "P $$"
"""

_SCRIPT_TICK = """\
  read -r up rest < /proc/uptime
  echo "T $up"
  while read -r name rest && [ "$name" != intr ]; do echo "cpu $name $rest"; done < /proc/stat
"""


def _node_checks(nodes: dict[str, str]) -> list[str]:
    """Say once which configured nodes cannot be read (the stream is then missing, with why)."""
    return [f"if [ ! -r {shlex.quote(path)} ]; then echo {shlex.quote(f'E {stream} {path} is not readable')}; fi"
            for stream, path in nodes.items() if path]


def sampler_script(device: AndroidDevice, interval_s: float, pid_file: str) -> str:
    """The sampler for this device: its nodes unrolled into the loop (each path shell-quoted),
    so the script needs no case, brace groups or parameter operators: plain POSIX sh."""
    q = shlex.quote
    cfg = device.config
    bat = cfg.battery
    wanted = {z.type for z in cfg.thermal.zones}
    zones = [z for z in device.thermal_zones() if not wanted or z.type in wanted]
    lines = [_SCRIPT_HEAD.rstrip("\n")]
    if cfg.gpu is None:
        lines.append("echo 'E gpu no GPU load node configured for this device'")
    else:
        lines += _node_checks({"gpu": cfg.gpu.busy_path, "gpufreq": cfg.gpu.freq_path or ""})
    bat_nodes = {"bat": bat.node(bat.current_now), "bat_voltage": bat.node(bat.voltage_now),
                 "bat_charge": bat.node(bat.charge_counter) if bat.charge_counter else "",
                 "bat_temp": bat.node(bat.temp) if bat.temp else "", "bat_status": bat.node(bat.status)}
    lines += _node_checks(bat_nodes)
    if not zones:
        lines.append("echo 'E tz no thermal zone of the device config was found on the phone'")
    if not cfg.cpufreq.policies:
        lines.append("echo 'E freq no cpufreq policies in the device config'")
    lines.append("while :; do")
    lines.append(_SCRIPT_TICK.rstrip("\n"))
    # each node: `read … && echo …` (two builtins; nothing printed when the node is empty).
    # An unreadable node was reported once above; its read fails silently (2>/dev/null first).
    for pol in cfg.cpufreq.policies:
        pol = pol.rstrip("/")
        lines.append(f"  read -r v 2>/dev/null < {q(pol + '/scaling_cur_freq')} && "
                     f"echo \"freq {pol.rsplit('/', 1)[-1]} $v\"")
    if cfg.gpu is not None:
        kind = {GpuFormat.KGSL_GPUBUSY: "kgsl", GpuFormat.MTK_GED: "ged", GpuFormat.PERCENT: "pct"}[cfg.gpu.format]
        lines.append(f"  g2=; g3=; read -r g1 g2 g3 2>/dev/null < {q(cfg.gpu.busy_path)} && "
                     f"echo \"gpu {kind} $g1 $g2 $g3\"")
        if cfg.gpu.freq_path:
            lines.append(f"  read -r v rest 2>/dev/null < {q(cfg.gpu.freq_path)} && echo \"gpufreq $v\"")
    lines += [
        f"  pid=; read -r pid 2>/dev/null < {q(pid_file)}",
        "  if [ -n \"$pid\" ] && [ -r \"/proc/$pid/status\" ]; then",
        "    while read -r k v u && [ \"$k\" != VmRSS: ]; do :; done < \"/proc/$pid/status\"; "
        "[ \"$k\" = VmRSS: ] && echo \"rss $v\"",
        "  fi",
        "  while read -r k v u && [ \"$k\" != MemAvailable: ]; do :; done < /proc/meminfo; "
        "[ \"$k\" = MemAvailable: ] && echo \"mem $v\"",
    ]
    for z in zones:
        lines.append(f"  read -r v 2>/dev/null < {q(z.zone + '/temp')} && echo \"tz {z.type} $v\"")
    reads = []
    for var, key in (("c", "bat"), ("vo", "bat_voltage"), ("ch", "bat_charge"), ("te", "bat_temp"), ("st", "bat_status")):
        path = bat_nodes[key]
        # a missing or empty node prints "x", so the line keeps its five fields
        reads.append(f"read -r {var} 2>/dev/null < {q(path)} && [ -n \"${var}\" ] || {var}=x" if path else f"{var}=x")
    lines += [f"  {r}" for r in reads]
    lines += [
        '  echo "bat $c $vo $ch $te $st"',
        '  read -r s1 s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 s12 s13 ut stt rest < "/proc/$$/stat"',
        '  echo "self $ut $stt 100"',
        f"  sleep {interval_s:.3f}",
        "done",
    ]
    return "\n".join(lines) + "\n"


class PhoneSampler:
    """sampler.sh in the background on the phone; killed by PID; output pulled back."""

    def __init__(self, device: AndroidDevice, interval_s: float, pid_file: str, raw_path: Path) -> None:
        self.device = device
        self.interval_s = interval_s
        self.pid_file = pid_file
        self.raw_path = raw_path
        base = device.config.workdir.rstrip("/")
        self.script = f"{base}/sampler.sh"
        self.out = f"{base}/sampler.out"
        self.pid: str | None = None

    def start(self) -> None:
        dev = self.device
        try:
            dev.dev.push_bytes(sampler_script(dev, self.interval_s, self.pid_file).encode(), self.script, mode=0o755,
                               timeout_s=dev.timeout_s)
            cmd = f"sh {shlex.quote(self.script)} > {shlex.quote(self.out)} 2>&1 & echo $!"
            res = dev.dev.shell(cmd, timeout_s=dev.timeout_s, check=True)
        except DeviceError as exc:
            raise SamplerError(f"[{dev.serial}] the sampler could not be started: {exc}") from exc
        pid = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
        if not pid.isdigit():
            raise SamplerError(f"[{dev.serial}] the sampler did not report its PID (got {res.stdout.strip()!r})")
        self.pid = pid

    def stop(self) -> Timeline:
        dev = self.device
        try:
            if self.pid is not None:
                dev.sh(["kill", self.pid], check=False, timeout_s=_STOP_TIMEOUT_S)
            data = dev.dev.pull_bytes(self.out, timeout_s=max(dev.timeout_s, 60.0))
        except DeviceError as exc:
            raise SamplerError(f"[{dev.serial}] the sampler's output could not be read: {exc}") from exc
        text = data.decode("utf-8", errors="replace")
        self.raw_path.parent.mkdir(parents=True, exist_ok=True)
        self.raw_path.write_text(text, encoding="utf-8")
        return parse_sampler_output(text.splitlines())


def open_sampler(device: Device, *, interval_s: float, raw_path: Path, workdir: Path,
                 pid_file: str | None = None) -> Sampler:
    """The sampler for ``device``: the local thread (watching processes launched from
    ``workdir``) or the phone script (watching the PID the workload writes to ``pid_file``)."""
    if isinstance(device, LocalDevice):
        return LocalSampler(interval_s, str(workdir), raw_path)
    if isinstance(device, AndroidDevice):
        if pid_file is None:
            pid_file = f"{device.config.workdir.rstrip('/')}/benchmark_model.pid"
        return PhoneSampler(device, interval_s, pid_file, raw_path)
    raise SamplerError(f"no sampler for a device of type {type(device).__name__}")
