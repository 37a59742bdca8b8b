"""Start and stop a cell's sampler on a device; read back its timeline.

``open_sampler(device, …)`` returns a Sampler: on `local` a thread reading this machine
(:mod:`perflab.telemetry.local`); on a phone one pushed shell script run in the background
(``sampler.sh``), killed by its PID at the end and its output pulled back. Both give the same
raw lines (kept in the run folder) and the same Timeline.
"""

from __future__ import annotations

import shlex
from importlib.resources import files
from pathlib import Path
from typing import Protocol

from perflab.devices.android import AndroidDevice
from perflab.devices.base import Device
from perflab.devices.config import GpuFormat
from perflab.devices.local import LocalDevice
from perflab.errors import DeviceError, MeasurementError
from perflab.telemetry.local import LocalSampler
from perflab.telemetry.samples import Timeline, parse_sampler_output
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


def sampler_script(device: AndroidDevice, interval_s: float, pid_file: str) -> str:
    """sampler.sh with this device's nodes filled in (each value shell-quoted)."""
    cfg = device.config
    bat = cfg.battery
    zones = device.thermal_zones()
    wanted = {z.type for z in cfg.thermal.zones}
    zone_args = " ".join(f"{z.type}={z.zone}" for z in zones if not wanted or z.type in wanted)
    gpu_fmt = {GpuFormat.KGSL_GPUBUSY: "kgsl_gpubusy", GpuFormat.MTK_GED: "mtk_ged", GpuFormat.PERCENT: "percent"}
    values = {
        "INTERVAL_S": f"{interval_s:.3f}",
        "PIDFILE": pid_file,
        "GPU_FMT": gpu_fmt[cfg.gpu.format] if cfg.gpu else "",
        "GPU_BUSY": cfg.gpu.busy_path if cfg.gpu else "",
        "GPU_FREQ": (cfg.gpu.freq_path or "") if cfg.gpu else "",
        "BAT_CUR": bat.node(bat.current_now),
        "BAT_VOLT": bat.node(bat.voltage_now),
        "BAT_CHARGE": bat.node(bat.charge_counter) if bat.charge_counter else "",
        "BAT_TEMP": bat.node(bat.temp) if bat.temp else "",
        "BAT_STATUS": bat.node(bat.status),
        "FREQS": " ".join(p.rstrip("/") for p in cfg.cpufreq.policies),
        "ZONES": zone_args,
    }
    text = files("perflab.telemetry").joinpath("sampler.sh").read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", shlex.quote(value))
    return text


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
