"""Emulated phone profiles, validated with pydantic.

Shipped profiles are packaged (``perflab/data/emulator_profiles/<name>.yaml``); a user's own
profiles live in the user config folder (``~/.config/perflab/emulator_profiles/``, see
:mod:`perflab.core.paths`) and replace a shipped profile of the same name.

A profile describes one real phone model as far as the harness can see it over adb: the
``getprop`` properties, where its sysfs nodes live and in which units, whether it is rooted,
and the constants of the emulated physics. Values come from public facts collected in the
project's reference notes; physics constants are plausible, not measured, and everything the
emulator reports from them is labelled emulated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from perflab.core.paths import ConfigKind, config_file, config_files, search_description
from perflab.core.yamlsrc import load_yaml, validate_document
from perflab.errors import UserInputError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChargingKnob(_Strict):
    """A sysfs file that suspends charging: ``path`` takes ``enable_value`` / ``disable_value``."""

    path: str
    enable_value: str
    disable_value: str


class BatteryProfile(_Strict):
    supply_dir: str = "/sys/class/power_supply/battery"
    current_unit: Literal["ua", "ma"] = "ua"
    #: +1 if current_now is positive while discharging, -1 if negative (the kernel ABI's choice).
    discharge_sign: Literal[-1, 1] = -1
    capacity_mah: float = Field(gt=0)
    charging_knob: ChargingKnob
    charge_current_ma: float = Field(default=1500.0, gt=0)
    max_charging_current_ua: int = 3000000
    max_charging_voltage_uv: int = 5000000
    internal_resistance_ohm: float = Field(default=0.12, ge=0)
    initial_level_pct: float = Field(default=80.0, ge=0, le=100)


class ThermalZone(_Strict):
    type: str
    #: which node of the thermal model this zone reads
    source: Literal["cpu", "gpu", "soc", "skin", "battery", "ambient"]
    offset_c: float = 0.0


class GpuProfile(_Strict):
    #: ``kgsl`` (Adreno), ``mali_pixel``, ``mali_exynos``, ``mtk_ged``
    kind: Literal["kgsl", "mali_pixel", "mali_exynos", "mtk_ged"]
    busy_path: str
    freq_path: str | None = None
    max_freq: int = 0


class CpuCluster(_Strict):
    cpus: list[int]
    min_freq_khz: int
    max_freq_khz: int
    default_governor: str = "schedutil"


class ThermalHalSensor(_Strict):
    name: str
    type: int  # android.os.Temperature type
    source: Literal["cpu", "gpu", "soc", "skin", "battery", "ambient"]


class PhysicsProfile(_Strict):
    ambient_c: float = 25.0
    idle_power_w: float = Field(default=0.45, ge=0)
    cpu_power_w_per_core: float = Field(default=0.9, ge=0)
    gpu_power_w: float = Field(default=2.0, ge=0)
    soc_heat_capacity_j_per_k: float = Field(default=20.0, gt=0)
    soc_to_skin_w_per_k: float = Field(default=0.6, gt=0)
    skin_heat_capacity_j_per_k: float = Field(default=80.0, gt=0)
    skin_to_ambient_w_per_k: float = Field(default=0.25, gt=0)
    battery_heat_capacity_j_per_k: float = Field(default=45.0, gt=0)
    battery_to_skin_w_per_k: float = Field(default=0.3, gt=0)
    gpu_hotspot_c_at_full_load: float = 6.0
    cpu_hotspot_c_per_core: float = 2.0


class Delegates(_Strict):
    gpu: bool = True
    nnapi: bool = True
    hexagon: bool = False


class Profile(_Strict):
    name: str
    description: str
    rooted: bool
    cpu_cores: int = Field(ge=1)
    props: dict[str, str]
    battery: BatteryProfile
    thermal_zones: list[ThermalZone]
    thermal_hal: list[ThermalHalSensor]
    gpu: GpuProfile
    cpu_clusters: list[CpuCluster]
    delegates: Delegates = Delegates()
    physics: PhysicsProfile = PhysicsProfile()
    #: GPU delegate log line about the backend ("Initialized OpenCL-based API.")
    gpu_backend_line: str = "Initialized OpenCL-based API."
    mem_total_kb: int = 8000000


def available_profiles() -> list[str]:
    """Names of every profile (packaged and the user's), sorted."""
    return list(config_files(ConfigKind.EMULATOR_PROFILES))


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a profile by name (``pixel7``) or by path. Bad input is a UserInputError naming
    ``file:line: field``, like scenarios and device configs."""
    given = Path(name_or_path)
    path = given if given.suffix in (".yaml", ".yml") else config_file(ConfigKind.EMULATOR_PROFILES, str(name_or_path))
    if path is None or not path.is_file():
        raise UserInputError(
            f"unknown emulator profile {str(name_or_path)!r}; available: "
            f"{', '.join(available_profiles()) or 'none'} (looked in "
            f"{search_description(ConfigKind.EMULATOR_PROFILES)})"
        )
    profile: Profile = validate_document(load_yaml(path), Profile)
    return profile
