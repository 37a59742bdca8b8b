"""The ``local`` device: this machine.

Its identity and temperature; there is nothing to tune or restore on this machine, and it is
always online. Running a model on it (LiteRT in a worker process) is
perflab.workloads.local's job. Temperature is reported missing with the reason when the
machine has no thermal zones.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from perflab.core.proc import parse_cpu_model
from perflab.devices.base import DeviceInfo, DeviceKind, ThermalReading

LOCAL_SERIAL = "local"
THERMAL_ROOT = Path("/sys/class/thermal")


def _litert_version() -> str | None:
    try:
        from importlib.metadata import version

        return f"ai-edge-litert {version('ai-edge-litert')}"
    except Exception:  # noqa: BLE001 - metadata lookup is best effort
        return None


class LocalDevice:
    """This machine. Implements perflab.devices.base.Device and offers
    perflab.devices.capabilities.HostDevice."""

    @property
    def interpreter(self) -> str:
        """The host interpreter that runs the model workers: the one running perflab."""
        return sys.executable

    @property
    def serial(self) -> str:
        return LOCAL_SERIAL

    def info(self) -> DeviceInfo:
        try:
            cpu = parse_cpu_model(Path("/proc/cpuinfo").read_text())
        except OSError:
            cpu = None
        return DeviceInfo(
            serial=LOCAL_SERIAL,
            kind=DeviceKind.LOCAL,
            model=f"{platform.node()} ({platform.system()} {platform.machine()}, {os.cpu_count()} CPUs)",
            soc=cpu,
            abi=platform.machine(),
            tflite_version=_litert_version(),
            extra={"python": platform.python_version(), "kernel": platform.release()},
        )

    def temperature(self) -> ThermalReading:
        zones = sorted(THERMAL_ROOT.glob("thermal_zone*/temp")) if THERMAL_ROOT.exists() else []
        temps: list[tuple[float, str]] = []
        for z in zones:
            try:
                temps.append((int(z.read_text().strip()) / 1000.0, z.parent.name))
            except (OSError, ValueError):
                continue
        if not temps:
            return ThermalReading(None, None, "this machine exposes no thermal zones (/sys/class/thermal)")
        t, name = max(temps)
        return ThermalReading(t, f"{THERMAL_ROOT}/{name} (hottest zone)")

    def prepare(self, run_id: str) -> None:
        """Nothing is changed on this machine (no governor or charging control here)."""

    def restore(self) -> None:
        """Nothing to undo."""

    def wait_online(self, timeout_s: float) -> bool:
        """This machine does not go away."""
        return True
