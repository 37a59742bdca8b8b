"""Mutable state of one emulated phone and the generated /sys and /proc nodes that show it."""

from __future__ import annotations

import functools
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from perflab.emulator import physics as ph
from perflab.emulator import procs as procs_mod
from perflab.emulator.fs import PhoneFS, VNode
from perflab.emulator.procs import ProcessTable
from perflab.emulator.profiles import Profile, ThermalZone
from perflab.emulator.tracefs import EmuTrace, TracefsPhoneFS, kernel_events

BATTERY_STATUS_CHARGING = 2
BATTERY_STATUS_DISCHARGING = 3
BATTERY_STATUS_NOT_CHARGING = 4
BATTERY_STATUS_FULL = 5


@dataclass
class ClusterState:
    cpus: list[int]
    governor: str
    min_freq_khz: int
    max_freq_khz: int
    hw_min_khz: int
    hw_max_khz: int


@dataclass
class PhoneRuntime:
    """Everything the emulated shell and adbd see. Kept across emulated reboots."""

    profile: Profile
    fs: PhoneFS
    physics: ph.PhysicsDriver
    state_dir: Path
    props: dict[str, str] = field(default_factory=dict)
    settings: dict[str, dict[str, str]] = field(default_factory=dict)
    stay_on: str = "false"
    screen_on: bool = True
    battery_override: dict[str, str] = field(default_factory=dict)
    knob_value: str = ""
    clusters: list[ClusterState] = field(default_factory=list)
    boot_mono_s: float = field(default_factory=time.monotonic)
    procs: ProcessTable = field(default_factory=ProcessTable)
    lock: threading.Lock = field(default_factory=threading.Lock)
    request_reboot: Callable[[float], None] | None = None
    trace: EmuTrace | None = None  # the tracefs (perflab.emulator.tracefs), made by _tracefs_nodes

    @classmethod
    def create(cls, profile: Profile, state_dir: Path) -> PhoneRuntime:
        params = ph.PhysicsParams.from_profile(profile)
        driver = ph.PhysicsDriver(params, ph.initial_state(params, profile.battery.initial_level_pct))
        rt = cls(profile=profile, fs=TracefsPhoneFS(state_dir), physics=driver, state_dir=state_dir)
        rt.props = rt.boot_props()
        rt.knob_value = profile.battery.charging_knob.enable_value
        rt.settings = {"global": {"stay_on_while_plugged_in": "0"}, "system": {"screen_off_timeout": "30000"},
                       "secure": {}}
        for c in profile.cpu_clusters:
            rt.clusters.append(ClusterState(list(c.cpus), c.default_governor, c.min_freq_khz, c.max_freq_khz,
                                            c.min_freq_khz, c.max_freq_khz))
        build_nodes(rt)
        return rt

    @property
    def processes(self) -> dict[int, subprocess.Popen[bytes]]:
        """Host children behind the phone's running native processes, by host PID (for tests)."""
        return {p.host.pid: p.host for p in self.procs.snapshot() if p.host is not None}

    def boot_props(self) -> dict[str, str]:
        """Properties after a boot: the profile's, then ``persist.*`` kept from before (as on disk).

        Everything else set at run time (``debug.*``, ``sys.*``, ``vendor.*``, new ``ro.*``) is
        gone after a reboot, as on a phone.
        """
        props = dict(self.profile.props)
        props.setdefault("ro.serialno", f"EMU{abs(hash(self.profile.name)) % 10**8:08d}")
        props.setdefault("sys.boot_completed", "1")
        props.setdefault("ro.perflab.emulated", "1")
        props.update({k: v for k, v in self.props.items() if k.startswith("persist.")})
        return props

    def power_off(self) -> None:
        """What a reboot loses: processes, run-time properties, battery overrides."""
        self.procs.kill_all()
        self.procs.reset()
        if self.trace is not None:
            self.trace.reset()  # tracefs lives in memory: instances and buffers are gone
        self.props = self.boot_props()
        self.battery_override.clear()

    # ------------------------------------------------------------------ derived values
    def snapshot(self) -> ph.PhysicsState:
        return self.physics.advance()

    def uptime_s(self) -> float:
        return time.monotonic() - self.boot_mono_s

    def battery_status(self, st: ph.PhysicsState) -> int:
        level = ph.level_pct(st, self.physics.params)
        if st.usb_present and not st.charging_suspended:
            return BATTERY_STATUS_FULL if level >= 100 else BATTERY_STATUS_CHARGING
        if st.usb_present:
            return BATTERY_STATUS_NOT_CHARGING
        return BATTERY_STATUS_DISCHARGING

    def reported_current(self, st: ph.PhysicsState) -> int:
        """current_now as this phone's kernel reports it: profile's unit and sign."""
        b = self.profile.battery
        # physical: positive = into the battery. discharge_sign=-1 keeps it, +1 flips it.
        value_ua = st.battery_current_ua * (-b.discharge_sign)
        return round(value_ua / 1000.0) if b.current_unit == "ma" else round(value_ua)

    def temp_for(self, source: str, st: ph.PhysicsState) -> float:
        pp = self.profile.physics
        if source == "cpu":
            return st.soc_temp_c + pp.cpu_hotspot_c_per_core * min(st.cpu_busy_cores, 4.0) / 2.0
        if source == "gpu":
            return st.soc_temp_c + pp.gpu_hotspot_c_at_full_load * st.gpu_busy_fraction
        if source == "soc":
            return st.soc_temp_c
        if source == "skin":
            return st.skin_temp_c
        if source == "battery":
            return st.battery_temp_c
        return self.profile.physics.ambient_c

    def set_knob(self, raw: bytes) -> None:
        value = raw.decode(errors="replace").strip()
        knob = self.profile.battery.charging_knob
        if value not in (knob.enable_value, knob.disable_value):
            raise ValueError(value)
        self.knob_value = value
        self.physics.set_charging_suspended(value == knob.disable_value)


_STATUS_TEXT = {2: "Charging", 3: "Discharging", 4: "Not charging", 5: "Full"}


def _tracefs_nodes(rt: PhoneRuntime) -> None:
    """The phone's tracefs (perflab.emulator.tracefs): its events are those of this phone's kernel."""
    tr = rt.trace = EmuTrace(rt.state_dir / "tracefs.buffer", rt.boot_mono_s,
                             kernel_events=kernel_events(rt.profile.gpu.kind), cpus=rt.profile.cpu_cores)
    tr.buffer.write_bytes(b"")
    if isinstance(rt.fs, TracefsPhoneFS):
        rt.fs.attach(tr)


def _text(fn: Callable[[], object]) -> Callable[[], bytes]:
    return lambda: f"{fn()}\n".encode()


def build_nodes(rt: PhoneRuntime) -> None:
    """Generate the phone's /sys and /proc nodes from its profile and live state."""
    _battery_nodes(rt)
    for i, zone in enumerate(rt.profile.thermal_zones):
        _zone_nodes(rt, rt.fs, i, zone)
    _gpu_nodes(rt)
    _cpufreq_nodes(rt)
    _proc_nodes(rt)
    _tracefs_nodes(rt)


def _battery_nodes(rt: PhoneRuntime) -> None:
    fs = rt.fs
    b = rt.profile.battery
    sd = b.supply_dir.rstrip("/")

    def bat_uevent() -> bytes:
        st = rt.snapshot()
        p = rt.physics.params
        status = _STATUS_TEXT[rt.battery_status(st)]
        lines = [
            "POWER_SUPPLY_NAME=battery",
            "POWER_SUPPLY_TYPE=Battery",
            f"POWER_SUPPLY_STATUS={status}",
            "POWER_SUPPLY_HEALTH=Good",
            "POWER_SUPPLY_PRESENT=1",
            "POWER_SUPPLY_TECHNOLOGY=Li-ion",
            f"POWER_SUPPLY_CAPACITY={ph.level_pct(st, p)}",
            f"POWER_SUPPLY_VOLTAGE_NOW={int(st.voltage_uv)}",
            f"POWER_SUPPLY_CURRENT_NOW={rt.reported_current(st)}",
            f"POWER_SUPPLY_CHARGE_COUNTER={int(st.charge_uah)}",
            f"POWER_SUPPLY_CHARGE_FULL={int(p.capacity_mah * 1000)}",
            f"POWER_SUPPLY_CHARGE_FULL_DESIGN={int(p.capacity_mah * 1000)}",
            f"POWER_SUPPLY_TEMP={round(st.battery_temp_c * 10)}",
        ]
        return ("\n".join(lines) + "\n").encode()

    fs.add_node(f"{sd}/uevent", VNode(bat_uevent))
    fs.add_node(f"{sd}/type", VNode(_text(lambda: "Battery")))
    fs.add_node(f"{sd}/status", VNode(_text(lambda: _STATUS_TEXT[rt.battery_status(rt.snapshot())])))
    fs.add_node(f"{sd}/present", VNode(_text(lambda: 1)))
    fs.add_node(f"{sd}/health", VNode(_text(lambda: "Good")))
    fs.add_node(f"{sd}/technology", VNode(_text(lambda: "Li-ion")))
    fs.add_node(f"{sd}/capacity", VNode(_text(lambda: ph.level_pct(rt.snapshot(), rt.physics.params))))
    fs.add_node(f"{sd}/current_now", VNode(_text(lambda: rt.reported_current(rt.snapshot()))))
    fs.add_node(f"{sd}/current_avg", VNode(_text(lambda: rt.reported_current(rt.snapshot()))))
    fs.add_node(f"{sd}/voltage_now", VNode(_text(lambda: int(rt.snapshot().voltage_uv))))
    fs.add_node(f"{sd}/charge_counter", VNode(_text(lambda: int(rt.snapshot().charge_uah))))
    fs.add_node(f"{sd}/charge_full", VNode(_text(lambda: int(b.capacity_mah * 1000))))
    fs.add_node(f"{sd}/temp", VNode(_text(lambda: round(rt.snapshot().battery_temp_c * 10))))
    fs.add_node("/sys/class/power_supply/usb/online", VNode(_text(lambda: int(rt.snapshot().usb_present))))
    fs.add_node("/sys/class/power_supply/usb/present", VNode(_text(lambda: int(rt.snapshot().usb_present))))
    fs.add_node("/sys/class/power_supply/usb/type", VNode(_text(lambda: "USB")))

    def write_knob(raw: bytes) -> None:
        rt.set_knob(raw)

    fs.add_node(b.charging_knob.path, VNode(_text(lambda: rt.knob_value), write_knob))


def _gpu_nodes(rt: PhoneRuntime) -> None:
    fs = rt.fs
    gpu = rt.profile.gpu

    def gpu_pct() -> int:
        return round(rt.snapshot().gpu_busy_fraction * 100)

    if gpu.kind == "kgsl":
        def gpubusy() -> bytes:
            busy, total = ph.with_gpu_window(rt.snapshot())
            return f"{busy:7d} {total:7d}\n".encode()

        fs.add_node(gpu.busy_path, VNode(gpubusy))
        fs.add_node("/sys/class/kgsl/kgsl-3d0/gpu_busy_percentage", VNode(lambda: f"{gpu_pct()} %\n".encode()))
    elif gpu.kind == "mali_exynos":
        fs.add_node(gpu.busy_path, VNode(lambda: f"{gpu_pct():3d}%\n".encode()))
    elif gpu.kind == "mtk_ged":
        fs.add_node(gpu.busy_path, VNode(lambda: f"{gpu_pct()} 0 {100 - gpu_pct()}\n".encode()))
    else:
        fs.add_node(gpu.busy_path, VNode(_text(gpu_pct)))
    if gpu.freq_path:
        if gpu.kind == "mtk_ged":
            fs.add_node(gpu.freq_path, VNode(_text(lambda: f"0 {gpu.max_freq}")))
        else:
            fs.add_node(gpu.freq_path, VNode(_text(lambda: gpu.max_freq if gpu_pct() > 0 else gpu.max_freq // 4)))


def _cpufreq_nodes(rt: PhoneRuntime) -> None:
    """cpufreq: per policy and per cpu."""
    fs = rt.fs
    ncpu = rt.profile.cpu_cores
    fs.add_node("/sys/devices/system/cpu/online", VNode(_text(lambda: f"0-{ncpu - 1}")))
    fs.add_node("/sys/devices/system/cpu/possible", VNode(_text(lambda: f"0-{ncpu - 1}")))
    fs.add_node("/sys/devices/system/cpu/present", VNode(_text(lambda: f"0-{ncpu - 1}")))
    governors = "schedutil performance powersave userspace ondemand" + (
        " walt" if any(c.governor == "walt" for c in rt.clusters) else "")
    for cl in rt.clusters:
        dirs = [f"/sys/devices/system/cpu/cpufreq/policy{cl.cpus[0]}"]
        dirs += [f"/sys/devices/system/cpu/cpu{c}/cpufreq" for c in cl.cpus]
        for d in dirs:
            _cluster_nodes(rt, fs, d, cl, governors)


def _proc_nodes(rt: PhoneRuntime) -> None:
    fs = rt.fs
    prof = rt.profile
    ncpu = prof.cpu_cores

    def proc_stat() -> bytes:
        st = rt.snapshot()
        busy = int(st.cpu_busy_ticks)
        idle = int(st.cpu_idle_ticks)
        user, system = busy * 4 // 5, busy - busy * 4 // 5
        lines = [f"cpu  {user} 0 {system} {idle} 0 0 0 0 0 0"]
        per_busy, per_idle = busy // ncpu, idle // ncpu
        for c in range(ncpu):
            lines.append(f"cpu{c} {per_busy * 4 // 5} 0 {per_busy - per_busy * 4 // 5} {per_idle} 0 0 0 0 0 0")
        lines += ["intr 0", "ctxt 0", f"btime {int(time.time() - rt.uptime_s())}", "processes 1",
                  "procs_running 1", "procs_blocked 0"]
        return ("\n".join(lines) + "\n").encode()

    fs.add_node("/proc/stat", VNode(proc_stat))
    fs.add_dynamic("/proc", lambda: _pid_files(rt), (lambda rel: _pid_file(rt, rel), lambda rel: _pid_dir(rt, rel)))
    fs.add_node("/proc/uptime", VNode(lambda: f"{rt.uptime_s():.2f} {rt.uptime_s() * ncpu * 0.8:.2f}\n".encode()))
    fs.add_node("/proc/loadavg", VNode(lambda: f"{rt.snapshot().cpu_busy_cores:.2f} 0.50 0.40 1/900 12345\n".encode()))
    fs.add_node("/proc/version", VNode(_text(lambda: "Linux version 5.10.177-perflab-emulated (emulated) #1 SMP PREEMPT")))
    mem = prof.mem_total_kb

    def meminfo() -> bytes:
        free = mem // 3
        return (f"MemTotal:       {mem:8d} kB\nMemFree:        {free:8d} kB\n"
                f"MemAvailable:   {mem // 2:8d} kB\nBuffers:           10240 kB\nCached:         {mem // 4:8d} kB\n").encode()

    fs.add_node("/proc/meminfo", VNode(meminfo))


_PID_FILES: dict[str, Callable[[procs_mod.Proc], bytes]] = {
    "status": procs_mod.proc_status, "stat": procs_mod.proc_stat,
    "statm": procs_mod.proc_statm, "cmdline": procs_mod.proc_cmdline}


def _pid_files(rt: PhoneRuntime) -> dict[str, VNode]:
    """/proc/<pid>/{status,stat,statm,cmdline} of every process in the phone's table."""
    return {f"{proc.pid}/{name}": VNode(functools.partial(render, proc))
            for proc in rt.procs.snapshot() for name, render in _PID_FILES.items()}


def _pid_of(rt: PhoneRuntime, name: str) -> procs_mod.Proc | None:
    """The process ``name`` (a /proc entry: a PID written the kernel's way) names, if any."""
    if not (name.isascii() and name.isdigit()) or name != str(int(name)):
        return None
    return rt.procs.get(int(name))


def _pid_dir(rt: PhoneRuntime, rel: str) -> bool:
    return "/" not in rel and _pid_of(rt, rel) is not None


def _pid_file(rt: PhoneRuntime, rel: str) -> VNode | None:
    """One of ``_pid_files`` (``"3100/stat"``), found without rendering the whole table."""
    pid, _, name = rel.partition("/")
    render = _PID_FILES.get(name)
    proc = None if render is None else _pid_of(rt, pid)
    return None if proc is None or render is None else VNode(functools.partial(render, proc))


def _zone_nodes(rt: PhoneRuntime, fs: PhoneFS, i: int, zone: ThermalZone) -> None:
    base = f"/sys/class/thermal/thermal_zone{i}"

    def temp_mc() -> int:
        return round((rt.temp_for(zone.source, rt.snapshot()) + zone.offset_c) * 1000)

    fs.add_node(f"{base}/type", VNode(_text(lambda: zone.type)))
    fs.add_node(f"{base}/temp", VNode(_text(temp_mc)))
    fs.add_node(f"{base}/mode", VNode(_text(lambda: "enabled")))


def _cluster_nodes(rt: PhoneRuntime, fs: PhoneFS, d: str, cl: ClusterState, governors: str) -> None:
    def set_gov(raw: bytes) -> None:
        value = raw.decode(errors="replace").strip()
        if value not in governors.split():
            raise ValueError(value)
        cl.governor = value

    def set_min(raw: bytes) -> None:
        cl.min_freq_khz = max(cl.hw_min_khz, min(int(raw.strip()), cl.max_freq_khz))

    def set_max(raw: bytes) -> None:
        cl.max_freq_khz = min(cl.hw_max_khz, max(int(raw.strip()), cl.min_freq_khz))

    def cur() -> int:
        if cl.governor == "performance":
            return cl.max_freq_khz
        if cl.governor == "powersave":
            return cl.min_freq_khz
        busy = rt.snapshot().cpu_busy_cores
        return cl.max_freq_khz if busy > 0.2 else cl.min_freq_khz

    fs.add_node(f"{d}/scaling_governor", VNode(_text(lambda: cl.governor), set_gov))
    fs.add_node(f"{d}/scaling_available_governors", VNode(_text(lambda: governors)))
    fs.add_node(f"{d}/scaling_min_freq", VNode(_text(lambda: cl.min_freq_khz), set_min))
    fs.add_node(f"{d}/scaling_max_freq", VNode(_text(lambda: cl.max_freq_khz), set_max))
    fs.add_node(f"{d}/scaling_cur_freq", VNode(_text(cur)))
    fs.add_node(f"{d}/cpuinfo_min_freq", VNode(_text(lambda: cl.hw_min_khz)))
    fs.add_node(f"{d}/cpuinfo_max_freq", VNode(_text(lambda: cl.hw_max_khz)))
    fs.add_node(f"{d}/related_cpus", VNode(_text(lambda: " ".join(str(c) for c in cl.cpus))))
