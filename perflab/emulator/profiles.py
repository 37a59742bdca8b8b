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

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class ProcessorCosts(_Strict):
    """What one layer (op) costs on an accelerator, µs: ``op_us`` each plus ``us_per_mmac`` per
    million multiply-accumulates (the emulator's estimate of an op's MACs: its weights × the
    input's pixels, :func:`perflab.emulator.benchmark_model.model.ops`). The emulated
    benchmark_model *spends* it inside the op on the phone's clock (the op lasts at least this
    long; longer when the host's own work for it takes longer), so every measurement of the
    layer finds it rather than being told it."""

    op_us: float = Field(default=0.0, ge=0)
    us_per_mmac: float = Field(default=0.0, ge=0)

    def layer_us(self, macs: float) -> float:
        return self.op_us + self.us_per_mmac * macs / 1e6


class GpuCosts(ProcessorCosts):
    """The GPU's per-layer costs and its hand-overs, spent by the emulated GPU delegate:
    ``switch_to_us`` from the delegate node's begin to its command submission (the CPU building
    and flushing the command buffer: ``kgsl_issueibcmds`` on Adreno), ``switch_back_us`` from the
    GPU's completion irq to the caller running again."""

    switch_to_us: float = Field(default=0.0, ge=0)
    switch_back_us: float = Field(default=0.0, ge=0)


class GpuProfile(_Strict):
    #: ``kgsl`` (Adreno), ``mali_pixel``, ``mali_exynos``, ``mtk_ged``
    kind: Literal["kgsl", "mali_pixel", "mali_exynos", "mtk_ged"]
    busy_path: str
    freq_path: str | None = None
    max_freq: int = 0
    #: per-layer costs and hand-overs of the GPU delegate; None: the ops take the host's time
    costs: GpuCosts | None = None


class NpuProfile(_Strict):
    """An NPU reached over an RPC channel: Qualcomm's Hexagon compute DSP over fastrpc (the
    Hexagon delegate calls it from the tool's thread; the NNAPI delegate through the NN HAL,
    whose binder thread calls it). One invoke of a delegated graph is one fastrpc round trip:
    ``fastrpc_transport_send`` to ``cid``; ``switch_to_us`` later the DSP has taken the message
    and says so (its glink rx_done: an irq ``irq_name`` on the application processor); the
    layers run (``costs``, spent); the DSP's answer is the next irq, in which the kernel prints
    ``fastrpc_transport_response``; ``switch_back_us`` later the caller runs again. Each irq's
    handler lasts ``irq_handler_us``."""

    name: str = "cdsp"
    rpc: Literal["fastrpc"] = "fastrpc"
    cid: int = Field(default=3, ge=0)  # fastrpc's domain: 0 adsp, 1 mdsp, 2 sdsp, 3 cdsp
    #: the glink edge's irq as /proc/interrupts names it (downstream glink: "glink-native-<label>")
    irq_name: str = "glink-native-cdsp"
    irq: int = Field(default=245, ge=0)
    costs: ProcessorCosts
    switch_to_us: float = Field(ge=0)
    switch_back_us: float = Field(ge=0)
    irq_handler_us: float = Field(default=6.0, ge=0)


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
    #: an NPU over fastrpc (Qualcomm kernels only: the dsp-kernel's events); None: none
    npu: NpuProfile | None = None
    physics: PhysicsProfile = PhysicsProfile()
    #: GPU delegate log line about the backend ("Initialized OpenCL-based API.")
    gpu_backend_line: str = "Initialized OpenCL-based API."
    mem_total_kb: int = 8000000

    @model_validator(mode="after")
    def _npu_needs_fastrpc(self) -> Profile:
        if self.npu is not None and self.gpu.kind != "kgsl":
            raise ValueError("npu: an NPU over fastrpc needs a Qualcomm kernel (gpu.kind kgsl): only its "
                             "dsp-kernel has the fastrpc events")
        return self


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
