"""Emulated phone physics: battery, temperatures and GPU load driven by the work actually done.

The model is a pure, deterministic step function (``step(state, load, params, dt_s)``) so
tests drive it with plain numbers. ``PhysicsDriver`` is the thin impure wrapper the emulated
phone uses: it measures the CPU seconds its emulated processes really burn (psutil) and
advances the model on a monotonic clock.

Model (all values are emulated, not measured):

* power drawn by the SoC  P = idle + cpu_w_per_core * busy_cores + gpu_w * gpu_busy_fraction
* battery: open-circuit voltage from state of charge, terminal voltage V = OCV - I*R;
  load current I_load = P / V; on USB the charger supplies the load and the charge current
  (the battery takes only the charge current, 0 when full) unless the profile's
  charging-suspend knob is written (then the battery carries the whole load);
  charge_counter integrates the net current (µAh);
* heat: a three-node RC network (SoC, skin, battery) cooling to ambient; charging adds I²R
  heat to the battery node.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace

import psutil

from perflab.emulator.profiles import Profile

_MAX_SUBSTEP_S = 0.5
#: reads closer together than this share one model step (a sampler tick reads ~20 nodes at once)
_COALESCE_S = 0.005
POWER_HISTORY_STEPS = 100_000  # SoC power steps kept for meters' ground truth: 2.8 h at 10 Hz, 30 min at 50 Hz


@dataclass(frozen=True)
class PhysicsParams:
    ambient_c: float
    idle_power_w: float
    cpu_power_w_per_core: float
    gpu_power_w: float
    soc_heat_capacity_j_per_k: float
    soc_to_skin_w_per_k: float
    skin_heat_capacity_j_per_k: float
    skin_to_ambient_w_per_k: float
    battery_heat_capacity_j_per_k: float
    battery_to_skin_w_per_k: float
    capacity_mah: float
    charge_current_ma: float
    internal_resistance_ohm: float
    cpu_cores: int

    @classmethod
    def from_profile(cls, profile: Profile) -> PhysicsParams:
        ph = profile.physics
        return cls(
            ambient_c=ph.ambient_c,
            idle_power_w=ph.idle_power_w,
            cpu_power_w_per_core=ph.cpu_power_w_per_core,
            gpu_power_w=ph.gpu_power_w,
            soc_heat_capacity_j_per_k=ph.soc_heat_capacity_j_per_k,
            soc_to_skin_w_per_k=ph.soc_to_skin_w_per_k,
            skin_heat_capacity_j_per_k=ph.skin_heat_capacity_j_per_k,
            skin_to_ambient_w_per_k=ph.skin_to_ambient_w_per_k,
            battery_heat_capacity_j_per_k=ph.battery_heat_capacity_j_per_k,
            battery_to_skin_w_per_k=ph.battery_to_skin_w_per_k,
            capacity_mah=profile.battery.capacity_mah,
            charge_current_ma=profile.battery.charge_current_ma,
            internal_resistance_ohm=profile.battery.internal_resistance_ohm,
            cpu_cores=profile.cpu_cores,
        )


@dataclass(frozen=True)
class Load:
    """Work done during one step: CPU core-seconds burnt, GPU busy seconds."""

    cpu_core_s: float = 0.0
    gpu_busy_s: float = 0.0


_NO_LOAD = Load()


@dataclass(frozen=True)
class PhysicsState:
    time_s: float
    charge_uah: float
    soc_temp_c: float
    skin_temp_c: float
    battery_temp_c: float
    usb_present: bool = True
    charging_suspended: bool = False
    #: net battery current, positive = into the battery (physical convention), µA
    battery_current_ua: float = 0.0
    voltage_uv: float = 3_900_000.0
    power_w: float = 0.0
    cpu_busy_cores: float = 0.0
    gpu_busy_fraction: float = 0.0
    #: cumulative CPU ticks (USER_HZ=100) for /proc/stat: busy, idle
    cpu_busy_ticks: float = 0.0
    cpu_idle_ticks: float = 0.0
    energy_from_battery_j: float = 0.0


def initial_state(params: PhysicsParams, level_pct: float, time_s: float = 0.0) -> PhysicsState:
    charge = params.capacity_mah * 1000.0 * level_pct / 100.0
    st = PhysicsState(
        time_s=time_s,
        charge_uah=charge,
        soc_temp_c=params.ambient_c,
        skin_temp_c=params.ambient_c,
        battery_temp_c=params.ambient_c,
    )
    return replace(st, voltage_uv=open_circuit_voltage_v(level_fraction(st, params)) * 1e6)


def level_fraction(state: PhysicsState, params: PhysicsParams) -> float:
    return min(1.0, max(0.0, state.charge_uah / (params.capacity_mah * 1000.0)))


def level_pct(state: PhysicsState, params: PhysicsParams) -> int:
    return round(level_fraction(state, params) * 100)


def open_circuit_voltage_v(soc: float) -> float:
    """A smooth Li-ion OCV curve: 3.40 V empty, ~3.85 V half, 4.35 V full."""
    soc = min(1.0, max(0.0, soc))
    return 3.40 + 0.80 * soc + 0.15 * soc * soc


def is_charging(state: PhysicsState, params: PhysicsParams) -> bool:
    return state.usb_present and not state.charging_suspended and level_fraction(state, params) < 0.999


def on_usb(state: PhysicsState) -> bool:
    """The phone runs from USB: plugged in with charging not suspended."""
    return state.usb_present and not state.charging_suspended


def _substep(state: PhysicsState, load: Load, p: PhysicsParams, dt_s: float) -> PhysicsState:
    busy_cores = min(float(p.cpu_cores), max(0.0, load.cpu_core_s / dt_s))
    gpu_frac = min(1.0, max(0.0, load.gpu_busy_s / dt_s))
    power_w = p.idle_power_w + p.cpu_power_w_per_core * busy_cores + p.gpu_power_w * gpu_frac
    soc = level_fraction(state, p)
    ocv = open_circuit_voltage_v(soc)
    load_a = power_w / max(ocv, 3.0)
    charge_a = 0.0
    if is_charging(state, p):
        taper = 1.0 if soc < 0.8 else max(0.05, (1.0 - soc) / 0.2)
        charge_a = p.charge_current_ma / 1000.0 * taper
    # on USB (charging not suspended) the charger supplies the system load and the charge current:
    # the battery takes the charge current (0 when full) and carries no load; charging suspended
    # or unplugged, the battery carries the whole load
    net_a = charge_a if on_usb(state) else -load_a  # positive into the battery
    voltage_v = ocv + net_a * p.internal_resistance_ohm
    charge_uah = state.charge_uah + net_a * 1e6 * dt_s / 3600.0
    charge_uah = min(p.capacity_mah * 1000.0, max(0.0, charge_uah))
    # heat: all SoC power heats the SoC node; the battery warms with I^2 R
    batt_heat_w = net_a * net_a * p.internal_resistance_ohm
    q_soc_skin = p.soc_to_skin_w_per_k * (state.soc_temp_c - state.skin_temp_c)
    q_skin_amb = p.skin_to_ambient_w_per_k * (state.skin_temp_c - p.ambient_c)
    q_batt_skin = p.battery_to_skin_w_per_k * (state.battery_temp_c - state.skin_temp_c)
    soc_temp = state.soc_temp_c + (power_w - q_soc_skin) * dt_s / p.soc_heat_capacity_j_per_k
    skin_temp = state.skin_temp_c + (q_soc_skin + q_batt_skin - q_skin_amb) * dt_s / p.skin_heat_capacity_j_per_k
    batt_temp = state.battery_temp_c + (batt_heat_w - q_batt_skin) * dt_s / p.battery_heat_capacity_j_per_k
    from_battery_j = max(0.0, -net_a) * voltage_v * dt_s
    # every field named (dataclasses.replace costs 3x this, per step of every read); the test
    # test_a_step_carries_every_field_it_does_not_compute guards against a field added later
    return PhysicsState(
        usb_present=state.usb_present,
        charging_suspended=state.charging_suspended,
        time_s=state.time_s + dt_s,
        charge_uah=charge_uah,
        soc_temp_c=soc_temp,
        skin_temp_c=skin_temp,
        battery_temp_c=batt_temp,
        battery_current_ua=net_a * 1e6,
        voltage_uv=voltage_v * 1e6,
        power_w=power_w,
        cpu_busy_cores=busy_cores,
        gpu_busy_fraction=gpu_frac,
        cpu_busy_ticks=state.cpu_busy_ticks + busy_cores * dt_s * 100.0,
        cpu_idle_ticks=state.cpu_idle_ticks + (p.cpu_cores - busy_cores) * dt_s * 100.0,
        energy_from_battery_j=state.energy_from_battery_j + from_battery_j,
    )


def step(state: PhysicsState, load: Load, params: PhysicsParams, dt_s: float) -> PhysicsState:
    """Advance the model by ``dt_s`` seconds with ``load`` spread evenly over the interval.

    Pure and deterministic; long intervals are split into sub-steps of at most 0.5 s so the
    explicit integration of the RC network stays stable.
    """
    if dt_s <= 0:
        return state
    n = max(1, int(dt_s / _MAX_SUBSTEP_S + 0.999999))
    sub = dt_s / n
    part = Load(load.cpu_core_s / n, load.gpu_busy_s / n)
    for _ in range(n):
        state = _substep(state, part, params, sub)
    return state


def with_gpu_window(state: PhysicsState) -> tuple[int, int]:
    """(busy_us, total_us) of the last 100 ms window, the kgsl ``gpubusy`` style."""
    total = 100_000
    return int(state.gpu_busy_fraction * total), total


@dataclass
class _WorkSource:
    pid: int
    gpu: bool
    last_cpu_s: float = 0.0


@dataclass
class PhysicsDriver:
    """Runs the pure model on the wall clock, fed by the CPU time of registered processes."""

    params: PhysicsParams
    state: PhysicsState
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _sources: dict[int, _WorkSource] = field(default_factory=dict)
    _pending: Load = field(default_factory=Load)
    _last_mono_s: float = field(default_factory=time.monotonic)
    _changed: bool = False  # a setting or a work source changed: the next read must step
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _power_history: deque[tuple[float, float, float]] = field(
        default_factory=lambda: deque(maxlen=POWER_HISTORY_STEPS))

    def start(self, period_s: float = 0.1) -> None:
        def loop() -> None:
            while not self._stop.wait(period_s):
                self.advance()

        self._thread = threading.Thread(target=loop, name="phone-physics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def register_process(self, pid: int, *, gpu: bool) -> None:
        with self._lock:
            self._sources[pid] = _WorkSource(pid, gpu, _cpu_seconds(pid))

    def unregister_process(self, pid: int) -> None:
        self.advance(force=True)
        with self._lock:
            self._sources.pop(pid, None)

    def consume_final(self, pid: int) -> float:
        """CPU seconds of ``pid`` already fed into the model (for the last top-up at exit)."""
        self.advance(force=True)
        with self._lock:
            src = self._sources.get(pid)
            return src.last_cpu_s if src is not None else 0.0

    def add_work(self, load: Load) -> None:
        with self._lock:
            self._pending = Load(self._pending.cpu_core_s + load.cpu_core_s,
                                 self._pending.gpu_busy_s + load.gpu_busy_s)

    def set_usb(self, present: bool) -> None:
        self.advance(force=True)
        with self._lock:
            self.state = replace(self.state, usb_present=present)
            self._changed = True

    def set_charging_suspended(self, suspended: bool) -> None:
        self.advance(force=True)
        with self._lock:
            self.state = replace(self.state, charging_suspended=suspended)
            self._changed = True

    def advance(self, *, force: bool = False) -> PhysicsState:
        """The state now. Reads closer together than a few milliseconds (a sampler tick reads
        ~20 nodes at once) share one step, unless work was added or a setting changed since, or
        ``force``: the model's steps stay exact, only fewer and longer."""
        with self._lock:
            now = time.monotonic()
            dt = now - self._last_mono_s
            if dt < _COALESCE_S and not (force or self._changed) and self._pending == _NO_LOAD:
                return self.state
            cpu = self._pending.cpu_core_s
            gpu = self._pending.gpu_busy_s
            for src in self._sources.values():
                cur = _cpu_seconds(src.pid)
                delta = max(0.0, cur - src.last_cpu_s)
                src.last_cpu_s = max(cur, src.last_cpu_s)
                if src.gpu:
                    # the emulated GPU does the delegate's work; the CPU only drives it
                    gpu += min(delta, dt)
                    cpu += 0.1 * delta
                else:
                    cpu += delta
            if dt <= 0.0:
                return self.state
            self._pending = Load()
            self._changed = False
            start, self._last_mono_s = self._last_mono_s, now
            self.state = step(self.state, Load(cpu, gpu), self.params, dt)
            self._power_history.append((start, now, self.state.power_w))
            return self.state

    def power_history(self, since_mono_s: float = float("-inf")) -> list[tuple[float, float, float]]:
        """(start, end, SoC power in W) of each model step that ended after ``since_mono_s``,
        oldest first, on the host's monotonic clock. The power is constant over a step (its work
        is spread evenly), so this is the exact SoC power the model drew: the ground truth an
        emulated meter is checked against (perflab.emulator.meters.physics_load)."""
        with self._lock:
            out: list[tuple[float, float, float]] = []
            for item in reversed(self._power_history):
                if item[1] <= since_mono_s:
                    break
                out.append(item)
        out.reverse()
        return out


def _cpu_seconds(pid: int) -> float:
    try:
        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system + t.children_user + t.children_system)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return 0.0
