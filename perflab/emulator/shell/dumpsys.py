"""``dumpsys`` (battery, thermalservice, power) and ``cmd battery``, in the formats Android prints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from perflab.emulator import physics as ph
from perflab.emulator.runtime import PhoneRuntime
from perflab.emulator.shell.errors import Unsupported
from perflab.emulator.shell.registry import command, err
from perflab.emulator.shell.streams import IO

if TYPE_CHECKING:
    from perflab.emulator.shell.interp import Shell


def dumpsys_battery(rt: PhoneRuntime) -> str:
    st = rt.snapshot()
    p = rt.physics.params
    ov = rt.battery_override
    usb = ov.get("usb", "true" if st.usb_present else "false")
    ac = ov.get("ac", "false")
    level = ov.get("level", str(ph.level_pct(st, p)))
    status = ov.get("status", str(rt.battery_status(st)))
    lines = ["Current Battery Service state:"]
    if ov:
        lines.append("  (UPDATES STOPPED -- use 'reset' to restart)")
    lines += [
        f"  AC powered: {ac}",
        f"  USB powered: {usb}",
        f"  Wireless powered: {ov.get('wireless', 'false')}",
        "  Dock powered: false",
        f"  Max charging current: {rt.profile.battery.max_charging_current_ua if usb == 'true' else 0}",
        f"  Max charging voltage: {rt.profile.battery.max_charging_voltage_uv if usb == 'true' else 0}",
        f"  Charge counter: {int(st.charge_uah)}",
        f"  status: {status}",
        "  health: 2",
        "  present: true",
        f"  level: {level}",
        "  scale: 100",
        f"  voltage: {int(st.voltage_uv / 1000)}",
        f"  temperature: {ov.get('temp', str(round(st.battery_temp_c * 10)))}",
        "  technology: Li-ion",
        f"  Charging state: {1 if status == '2' else 0}",
        "  Charging policy: 1",
    ]
    return "\n".join(lines) + "\n"


def battery_command(sh: Shell, args: list[str], io: IO, who: str) -> int:
    if not args:
        io.out(dumpsys_battery(sh.rt).encode())
        return 0
    sub = args[0]
    if sub == "reset":
        sh.rt.battery_override.clear()
    elif sub == "unplug":
        sh.rt.battery_override.update({"ac": "false", "usb": "false", "wireless": "false"})
    elif sub == "set" and len(args) == 3:
        key = {"invalid": "invalid"}.get(args[1], args[1])
        if key in ("ac", "usb", "wireless"):
            sh.rt.battery_override[key] = "true" if args[2] not in ("0", "false") else "false"
        elif key in ("level", "status", "temp", "present", "counter", "invalid"):
            sh.rt.battery_override[key] = args[2]
        else:
            err(io, f"Unknown set option: {args[1]}")
            return 255
    elif sub == "suspend_input":
        if sh.rt.props.get("ro.debuggable") != "1":
            err(io, "Exception occurred while executing 'suspend_input':\njava.lang.SecurityException: battery "
                     "suspend_input is only supported on debuggable builds")
            return 255
        sh.rt.physics.set_charging_suspended(True)
    else:
        err(io, f"{who}: unknown battery command: {' '.join(args)}")
        return 255
    return 0


def dumpsys_thermal(rt: PhoneRuntime) -> str:
    st = rt.snapshot()
    temps = [(s.name, s.type, rt.temp_for(s.source, st)) for s in rt.profile.thermal_hal]
    status = 0
    hottest = max((t for _, _, t in temps), default=0.0)
    if hottest > 47:
        status = 1 if hottest < 50 else 2 if hottest < 55 else 3
    lines = [
        "IsStatusOverride: false",
        "ThermalEventListeners:",
        "\tcallbacks: 1", "\tkilled: false", "\tbroadcasts count: -1",
        "ThermalStatusListeners:",
        "\tcallbacks: 2", "\tkilled: false", "\tbroadcasts count: -1",
        f"Thermal Status: {status}",
        "Cached temperatures:",
    ]
    lines += [f"\tTemperature{{mValue={rt.profile.physics.ambient_c + 2:.1f}, mType={t}, mName={n}, mStatus=0}}"
              for n, t, _ in temps]
    lines += ["HAL Ready: true", "HAL connection:", "\tThermalHAL AIDL 1  connected: yes",
              "Current temperatures from HAL:"]
    lines += [f"\tTemperature{{mValue={v:.1f}, mType={t}, mName={n}, mStatus={0 if v < 47 else 1}}}"
              for n, t, v in temps]
    lines += ["Current cooling devices from HAL:", "\tCoolingDevice{mValue=0, mType=2, mName=gpu}",
              "Temperature static thresholds from HAL:"]
    lines += [f"\tTemperatureThreshold{{mType={t}, mName={n}, mHotThrottlingThresholds=[NaN, 47.0, 50.0, 55.0, "
              f"60.0, 65.0, 70.0], mColdThrottlingThresholds=[NaN, NaN, NaN, NaN, NaN, NaN, NaN]}}"
              for n, t, _ in temps]
    return "\n".join(lines) + "\n"


@command("dumpsys")
def _dumpsys(sh: Shell, args: list[str], io: IO) -> int:
    if not args:
        raise Unsupported("dumpsys without a service")
    svc = args[0]
    if svc == "battery":
        return battery_command(sh, args[1:], io, "dumpsys battery")
    if svc == "thermalservice":
        io.out(dumpsys_thermal(sh.rt).encode())
        return 0
    if svc == "power":
        io.out((f"POWER MANAGER (dumpsys power)\n\nPower Manager State:\n"
                f"  mWakefulness={'Awake' if sh.rt.screen_on else 'Asleep'}\n"
                f"  mStayOn={'true' if sh.rt.stay_on != 'false' else 'false'}\n"
                f"  mIsPowered={'true' if sh.rt.snapshot().usb_present else 'false'}\n").encode())
        return 0
    if svc in ("meminfo", "gfxinfo", "cpuinfo", "batterystats", "activity", "window", "display"):
        raise Unsupported(f"dumpsys {svc}")
    io.out(f"Can't find service: {svc}\n".encode())
    return 0
