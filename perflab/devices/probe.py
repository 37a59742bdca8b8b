"""``perflab devices probe SERIAL``: find what can be found on a phone and draft its config.

Reads getprop, the power-supply nodes, thermal zone types, GPU busy nodes, cpufreq policies
and known charging knobs (the concrete paths from acc's ctrl-files list), and writes a
device config YAML *for review*: every guess is listed in the file's header comment. The
battery current's unit and sign are guessed from one reading and the charge status; check
them with the phone discharging (charger off, screen on) before trusting energy numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from perflab.analysis.thermal_zones import zone_role_name
from perflab.devices.android import AndroidDevice
from perflab.devices.config import (
    Battery,
    BenchmarkBinary,
    ChargingKnob,
    CpuFreq,
    CurrentUnit,
    DeviceConfig,
    Gpu,
    GpuFormat,
    Match,
    RootMethod,
    Screen,
    Thermal,
    ThermalZoneRef,
    ZoneRole,
)
from perflab.errors import DeviceError, UserInputError

# (path, value that enables charging, value that suspends it) — concrete entries of acc's list
CHARGING_KNOBS: tuple[tuple[str, str, str], ...] = (
    ("/sys/devices/platform/google,charger/charge_disable", "0", "1"),
    ("/sys/devices/platform/soc/soc:google,charger/charge_disable", "0", "1"),
    ("/sys/class/power_supply/battery/input_suspend", "0", "1"),
    ("/sys/class/power_supply/battery/battery_input_suspend", "0", "1"),
    ("/sys/class/power_supply/battery/charge_disable", "0", "1"),
    ("/sys/class/power_supply/battery/batt_slate_mode", "0", "1"),
    ("/sys/class/power_supply/battery/op_disable_charge", "0", "1"),
    ("/sys/class/power_supply/battery/charging_enabled", "1", "0"),
    ("/sys/class/power_supply/battery/store_mode", "0", "1"),
    ("/sys/class/qcom-battery/input_suspend", "0", "1"),
    ("/sys/class/asuslib/charging_suspend_en", "0", "1"),
    ("/sys/devices/platform/lge-unified-nodes/charging_enable", "1", "0"),
    ("/sys/class/hw_power/charger/charge_data/enable_charger", "1", "0"),
)

GPU_NODES: tuple[tuple[str, GpuFormat, str | None, str], ...] = (
    ("/sys/class/kgsl/kgsl-3d0/gpubusy", GpuFormat.KGSL_GPUBUSY, "/sys/class/kgsl/kgsl-3d0/gpuclk", "hz"),
    ("/sys/kernel/ged/hal/gpu_utilization", GpuFormat.MTK_GED, "/sys/kernel/ged/hal/current_freqency", "khz"),
    ("/sys/kernel/gpu/gpu_busy", GpuFormat.PERCENT, "/sys/kernel/gpu/gpu_clock", "mhz"),
    ("/sys/class/misc/mali0/device/utilization", GpuFormat.PERCENT, None, "hz"),
)

def zone_role(zone_type: str) -> ZoneRole:
    """The zone's role by the one naming rule (perflab.analysis.thermal_zones)."""
    return ZoneRole(zone_role_name(zone_type))


def guess_current(current_raw: int, status: str) -> tuple[CurrentUnit, int | None, list[str]]:
    """(unit, discharge_sign or None, notes) from one current_now reading and the status."""
    notes: list[str] = []
    unit = CurrentUnit.UA
    if current_raw != 0 and abs(current_raw) < 10000:
        unit = CurrentUnit.MA
        notes.append(f"current_now read {current_raw}: small for µA, guessed mA (Samsung/MediaTek habit)")
    sign: int | None = None
    st = status.strip().lower()
    if current_raw != 0 and st == "discharging":
        sign = 1 if current_raw > 0 else -1
    elif current_raw != 0 and st == "charging":
        sign = -1 if current_raw > 0 else 1
    if sign is None:
        notes.append(f"discharge_sign not determined (status {status.strip()!r}, current {current_raw}); "
                     "kernel default -1 assumed — verify while discharging")
    else:
        notes.append(f"discharge_sign {sign:+d} from status {status.strip()!r} and current_now {current_raw}")
    return unit, sign, notes


@dataclass
class ProbeResult:
    config: DeviceConfig
    notes: list[str] = field(default_factory=list)

    def to_yaml(self) -> str:
        data = self.config.model_dump(mode="json", by_alias=True, exclude_none=False)
        head = [f"# Drafted by `perflab devices probe` for {self.config.description}. REVIEW before use:"]
        head += [f"#  - {n}" for n in self.notes]
        return "\n".join(head) + "\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _exists(dev: AndroidDevice, path: str) -> bool:
    try:
        return dev.dev.stat(path, timeout_s=dev.timeout_s) is not None
    except DeviceError:
        return False


def _device_name(props: dict[str, str]) -> str:
    raw_name = props.get("ro.product.device") or props.get("ro.product.model", "unknown")
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", raw_name).strip("_.-")[:63] or "phone"
    return name if name[0].isalnum() else "p" + name


def _root_method(dev: AndroidDevice) -> RootMethod:
    res = dev.sh(["su", "-c", "id -u"], check=False)
    if res.exit_code == 0 and res.stdout.strip().endswith("0"):
        return RootMethod.SU_C
    res0 = dev.sh(["id", "-u"], check=False)
    if res0.exit_code == 0 and res0.stdout.strip() == "0":
        return RootMethod.ADBD
    return RootMethod.NONE


def _battery(dev: AndroidDevice, notes: list[str]) -> Battery:
    supply = "/sys/class/power_supply/battery"
    if not _exists(dev, supply):
        listing = dev.sh(["ls", "/sys/class/power_supply"], check=False).stdout.split()
        for cand in listing:
            typ = dev.read_file(f"/sys/class/power_supply/{cand}/type")
            if typ and typ.strip().lower() == "battery":
                supply = f"/sys/class/power_supply/{cand}"
                break
        notes.append(f"battery supply dir: {supply}")
    cur_txt = dev.read_file(f"{supply}/current_now") or ""
    status = dev.read_file(f"{supply}/status") or ""
    unit, sign, cur_notes = guess_current(int(cur_txt) if re.fullmatch(r"-?\d+", cur_txt) else 0, status)
    notes += cur_notes
    battery = Battery(
        supply_dir=supply, current_unit=unit, discharge_sign=-1 if sign is None else sign,  # type: ignore[arg-type]
        charge_counter="charge_counter" if _exists(dev, f"{supply}/charge_counter") else None,
        temp="temp" if _exists(dev, f"{supply}/temp") else None,
    )
    if battery.charge_counter is None:
        notes.append("no charge_counter node: energy falls back to current × voltage integration")
    return battery


def _charging_knob(dev: AndroidDevice, notes: list[str]) -> ChargingKnob | None:
    for path, on, off in CHARGING_KNOBS:
        if _exists(dev, path):
            notes.append(f"charging knob: {path} ({on} charges, {off} suspends) — verify 'status' turns "
                         "'Not charging' with it set")
            return ChargingKnob(path=path, enable_value=on, disable_value=off)
    notes.append("no known charging knob found: charging cannot be suspended")
    return None


def _thermal(dev: AndroidDevice, notes: list[str]) -> Thermal:
    refs: list[ThermalZoneRef] = []
    seen: set[str] = set()
    for z in dev.thermal_zones():
        if not z.type or z.type in seen or not re.fullmatch(r"[A-Za-z0-9_.@\-]{1,64}", z.type):
            continue
        seen.add(z.type)
        refs.append(ThermalZoneRef(type=z.type, role=zone_role(z.type)))
    thermal = Thermal(zones=refs)
    notes.append(f"{len(refs)} thermal zones; cooldown gate: {thermal.gate_zone() or 'battery temp'}")
    return thermal


def _gpu(dev: AndroidDevice, notes: list[str]) -> Gpu | None:
    gpu = None
    for path, fmt, freq, freq_unit in GPU_NODES:
        if _exists(dev, path):
            gpu = Gpu(busy_path=path, format=fmt, freq_path=freq if freq and _exists(dev, freq) else None,
                      freq_unit=freq_unit)  # type: ignore[arg-type]
            break
    if gpu is None:
        listing = dev.sh(["ls", "/sys/devices/platform"], check=False).stdout.split()
        for entry in listing:
            if entry.endswith(".mali") and _exists(dev, f"/sys/devices/platform/{entry}/utilization"):
                base = f"/sys/devices/platform/{entry}"
                gpu = Gpu(busy_path=f"{base}/utilization", format=GpuFormat.PERCENT,
                          freq_path=f"{base}/cur_freq" if _exists(dev, f"{base}/cur_freq") else None,
                          freq_unit="khz")
                break
    notes.append(f"GPU busy node: {gpu.busy_path if gpu else 'none found'}")
    return gpu


def _cpufreq(dev: AndroidDevice, root: RootMethod) -> CpuFreq:
    pol_dir = "/sys/devices/system/cpu/cpufreq"
    policies = sorted(
        (f"{pol_dir}/{e}" for e in dev.sh(["ls", pol_dir], check=False).stdout.split()
         if re.fullmatch(r"policy\d+", e)),
        key=lambda s: int(s.rsplit("policy", 1)[1]),
    )
    pin = None
    if policies and root is not RootMethod.NONE:
        avail = dev.read_file(f"{policies[0]}/scaling_available_governors") or ""
        if "performance" in avail.split():
            pin = "performance"
    return CpuFreq(policies=policies, pin_governor=pin)


def probe(dev: AndroidDevice) -> ProbeResult:
    """Inspect the phone and draft its config (reads only; changes nothing)."""
    p = dev.props()
    model = p.get("ro.product.model", "unknown")
    root = _root_method(dev)
    notes = [f"root: {root.value}"]
    battery = _battery(dev, notes)
    knob = _charging_knob(dev, notes)
    thermal = _thermal(dev, notes)
    gpu = _gpu(dev, notes)
    soc = p.get("ro.soc.model") or p.get("ro.board.platform", "?")
    cfg = DeviceConfig(
        name=_device_name(p),
        description=f"{p.get('ro.product.manufacturer', '')} {model} ({soc})".strip(),
        match=Match(props={"ro.product.model": model}),
        root=root,
        battery=battery,
        charging_knob=knob,
        thermal=thermal,
        gpu=gpu,
        cpufreq=_cpufreq(dev, root),
        screen=Screen(turn_off=root is not RootMethod.NONE, stay_awake=True),
        benchmark_model=BenchmarkBinary(
            abi=_abi(p.get("ro.product.cpu.abi", "arm64-v8a")),  # type: ignore[arg-type]
        ),
    )
    if p.get("ro.perflab.emulated") == "1":
        notes.append("this is a perflab EMULATED phone")
    return ProbeResult(cfg, notes)


def _abi(abi: str) -> str:
    return abi if abi in ("arm64-v8a", "armeabi-v7a", "x86_64", "x86") else "arm64-v8a"


def write_probe(result: ProbeResult, path: Path, *, force: bool = False) -> Path:
    """Write the drafted config to ``path`` (creating its folder); refuse to overwrite unless ``force``."""
    if path.exists() and not force:
        raise UserInputError(f"{path} exists; pass --force to overwrite or --output to write elsewhere")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(result.to_yaml(), encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"cannot write the device config: {exc}") from exc
    return path
