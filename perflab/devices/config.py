"""Device configs (schema ``perflab.device_config/1``).

One file per phone model: where its sysfs nodes are and in which units, how battery current
is signed, how charging is suspended, how governors are pinned, how the screen is turned
off, how root is reached, and which ``benchmark_model`` binary to push.

Shipped configs are packaged (``perflab/data/device_configs/``); the user's own live in the
user config folder (``~/.config/perflab/device_configs/``, see :mod:`perflab.core.paths`),
where a file replaces the shipped file of the same name and is matched before the shipped
ones. Loaded like scenarios: errors name ``file:line: field`` and exit with code 2.

Every path and value here ends up in a device shell command; they are constrained by
pattern first and quoted when used.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from perflab.core.paths import ConfigKind, config_files, search_description, user_dir_if_any
from perflab.core.yamlsrc import load_yaml, validate_document
from perflab.errors import UserInputError

DEVICE_CONFIG_SCHEMA = "perflab.device_config/1"

# Absolute device path of boring characters (sysfs names contain ',', '@', ':', '+').
DevicePath = Annotated[str, Field(pattern=r"^/[A-Za-z0-9_.,:@+/\-]{1,254}$")]
# A value written to a sysfs knob.
KnobValue = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:+\-]{1,64}$")]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """How a connected phone is recognised as this model (all given keys must match)."""

    props: dict[str, str] = Field(
        default_factory=dict, description="getprop key -> exact value, e.g. ro.product.model: Pixel 7"
    )


class CurrentUnit(StrEnum):
    UA = "ua"
    MA = "ma"


class Battery(_Strict):
    supply_dir: DevicePath = Field(default="/sys/class/power_supply/battery")
    current_now: str = Field(default="current_now", pattern=r"^[A-Za-z0-9_]+$")
    current_unit: CurrentUnit = Field(default=CurrentUnit.UA, description="unit of current_now: ua or ma")
    discharge_sign: Literal[-1, 1] = Field(
        default=-1, description="sign of current_now while discharging (-1: kernel ABI; +1: many Qualcomm fg)"
    )
    voltage_now: str = Field(default="voltage_now", pattern=r"^[A-Za-z0-9_]+$")
    voltage_unit: Literal["uv", "mv"] = "uv"
    charge_counter: str | None = Field(default="charge_counter", pattern=r"^[A-Za-z0-9_]+$")
    temp: str | None = Field(default="temp", pattern=r"^[A-Za-z0-9_]+$", description="deci-degrees C")
    capacity: str = Field(default="capacity", pattern=r"^[A-Za-z0-9_]+$")
    status: str = Field(default="status", pattern=r"^[A-Za-z0-9_]+$")

    def node(self, name: str) -> str:
        return f"{self.supply_dir.rstrip('/')}/{name}"


class ChargingKnob(_Strict):
    """A sysfs file that suspends charging (acc's ctrl-files list has the known ones)."""

    path: DevicePath
    enable_value: KnobValue = Field(description="value that lets the phone charge")
    disable_value: KnobValue = Field(description="value that suspends charging")


class ZoneRole(StrEnum):
    CPU = "cpu"
    GPU = "gpu"
    SOC = "soc"
    SKIN = "skin"
    BATTERY = "battery"
    NPU = "npu"
    OTHER = "other"


class ThermalZoneRef(_Strict):
    type: str = Field(pattern=r"^[A-Za-z0-9_.@\-]{1,64}$", description="thermal_zoneN/type, matched by name")
    role: ZoneRole = ZoneRole.OTHER


class Thermal(_Strict):
    zones: list[ThermalZoneRef] = Field(default_factory=list)
    cooldown_zone: str | None = Field(
        default=None, description="zone type that gates cooldown; default: first skin, soc, then cpu zone"
    )
    use_battery_temp: bool = Field(default=True, description="fall back to battery temp when no zone reads")

    @model_validator(mode="after")
    def _known(self) -> Thermal:
        if self.cooldown_zone is not None and self.cooldown_zone not in {z.type for z in self.zones}:
            raise ValueError(f"cooldown_zone {self.cooldown_zone!r} is not one of the listed zones")
        return self

    def gate_zone(self) -> str | None:
        if self.cooldown_zone:
            return self.cooldown_zone
        for role in (ZoneRole.SKIN, ZoneRole.SOC, ZoneRole.CPU):
            for z in self.zones:
                if z.role is role:
                    return z.type
        return self.zones[0].type if self.zones else None


class GpuFormat(StrEnum):
    KGSL_GPUBUSY = "kgsl_gpubusy"  # "%7d %7d": busy total of the last window
    PERCENT = "percent"  # "37" or "37 %" or " 45%"
    MTK_GED = "mtk_ged"  # "loading block idle"


class Gpu(_Strict):
    busy_path: DevicePath
    format: GpuFormat
    freq_path: DevicePath | None = None
    freq_unit: Literal["hz", "khz", "mhz"] = "hz"


class CpuFreq(_Strict):
    policies: list[DevicePath] = Field(
        default_factory=list, description="cpufreq policy dirs, e.g. /sys/devices/system/cpu/cpufreq/policy0"
    )
    pin_governor: KnobValue | None = Field(default=None, description="governor to pin during cells (rooted)")


class Screen(_Strict):
    turn_off: bool = Field(default=False, description="turn the screen off for cells (KEYCODE_SLEEP)")
    stay_awake: bool = Field(default=True, description="keep the phone awake on USB (svc power stayon usb)")


class RootMethod(StrEnum):
    SU_C = "su_c"  # su -c 'cmd'   (Magisk, SuperSU)
    SU_0 = "su_0"  # su 0 sh -c 'cmd'   (AOSP userdebug su)
    ADBD = "adbd"  # adbd runs as root already (adb root)
    NONE = "none"


class BenchmarkBinary(_Strict):
    host_path: str | None = Field(
        default=None, description="benchmark_model on this machine (relative to the config file); user-supplied"
    )
    abi: Literal["arm64-v8a", "armeabi-v7a", "x86_64", "x86"] = "arm64-v8a"
    remote_path: DevicePath = "/data/local/tmp/perflab/benchmark_model"


class DeviceMeter(_Strict):
    """The external power meter wired to this phone (a scenario's ``telemetry.meter`` wins)."""

    type: Literal["scpi", "ppk2", "um34c", "um25c", "um24c"]
    port: str = Field(min_length=1, max_length=4096, pattern=r"^[^\x00-\x1f\x7f]+$",
                      description="serial port: /dev/ttyACM0, a pty path, or socket://host:port")
    placement: Literal["bypass", "usb"] | None = Field(default=None, description=(
        "bypass: the meter supplies the phone in place of its battery; usb: inline on the USB cable. "
        "null: usb for UM meters, bypass for scpi and ppk2"))
    interval_ms: float = Field(default=100, ge=10, le=10_000)
    vdd_mv: int | None = Field(default=None, ge=800, le=5000)


class DeviceConfig(_Strict):
    schema_: Literal["perflab.device_config/1"] = Field(default="perflab.device_config/1", alias="schema")
    name: Name
    description: str = ""
    match: Match = Match()
    workdir: DevicePath = "/data/local/tmp/perflab"
    root: RootMethod = RootMethod.SU_C
    battery: Battery = Battery()
    charging_knob: ChargingKnob | None = None
    thermal: Thermal = Thermal()
    gpu: Gpu | None = None
    cpufreq: CpuFreq = CpuFreq()
    screen: Screen = Screen()
    benchmark_model: BenchmarkBinary = BenchmarkBinary()
    meter: DeviceMeter | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def matches(self, props: dict[str, str]) -> bool:
        return bool(self.match.props) and all(props.get(k) == v for k, v in self.match.props.items())


class LoadedDeviceConfig(BaseModel):
    """A validated config and the file it came from (host paths resolve against it)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    config: DeviceConfig
    file: Path

    def benchmark_host_path(self) -> Path | None:
        hp = self.config.benchmark_model.host_path
        if hp is None:
            return None
        p = Path(hp).expanduser()
        return p if p.is_absolute() else (self.file.resolve().parent / p)


def load_device_config(path: Path) -> LoadedDeviceConfig:
    """Load and validate one file; a problem becomes UserInputError naming file:line: field."""
    doc = load_yaml(path)
    cfg: DeviceConfig = validate_document(doc, DeviceConfig)
    return LoadedDeviceConfig(config=cfg, file=path)


def load_all(directory: Path | None = None) -> list[LoadedDeviceConfig]:
    """Every config, sorted by name: those in ``directory`` (every ``*.yaml`` directly in it),
    or by default the packaged ones with the user's of the same name in their place."""
    if directory is None:
        files = list(config_files(ConfigKind.DEVICE_CONFIGS).values())
    else:
        files = sorted(directory.glob("*.yaml")) if directory.is_dir() else []
    return [load_device_config(p) for p in files]


def config_for(props: dict[str, str], directory: Path | None = None,
               explicit: Path | None = None) -> LoadedDeviceConfig:
    """The config for a phone: ``explicit`` if given, else the first whose ``match`` fits the
    phone's props (the user's configs before the shipped ones, each by name), else ``generic``.
    Configs come from :func:`load_all`."""
    if explicit is not None:
        return load_device_config(explicit)
    configs = load_all(directory)
    mine = user_dir_if_any(ConfigKind.DEVICE_CONFIGS) if directory is None else None
    if mine is not None:
        configs.sort(key=lambda lc: not lc.file.is_relative_to(mine))  # stable: by name within each
    for lc in configs:
        if lc.config.matches(props):
            return lc
    for lc in configs:
        if lc.config.name == "generic":
            return lc
    where = str(directory) if directory is not None else search_description(ConfigKind.DEVICE_CONFIGS)
    raise UserInputError(f"no device config matches this phone and there is no generic config in {where}")
