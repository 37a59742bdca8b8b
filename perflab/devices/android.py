"""Android phones over adb (and perflab's emulated phones, which the adb server sees the same).

``AndroidDevice`` implements perflab.devices.base.Device on top of perflab.devices.adb:

* ``info()`` from ``getprop`` (+ whether ``su`` works); kind ``emulated`` when the phone says
  it is perflab's emulated phone (``ro.perflab.emulated=1``), else ``android``.
* ``temperature()`` from the config's thermal zone (mapped by *type*, not number), falling
  back to the battery temperature.
* ``prepare()``/``restore()``: stay-awake, charging suspended, governors pinned, screen off —
  each journaled on the host (perflab.devices.journal) BEFORE it is made, undone newest-first.
* ``wait_online()``: after a drop, ``adb connect`` again for a network serial and wait for
  state ``device``.

Running ``benchmark_model`` on the phone is not the device's job: perflab.workloads.phone
drives an AndroidDevice through its shell and sync transport.

No I/O happens in the constructor. A device that drops off mid-operation raises
DeviceGoneError; the runner waits for it (``wait_online``) and restores the phone when it
returns.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perflab.devices.adb import Adb, AdbDevice, ShellResult, adb_server_port, device_logger, quote_argv
from perflab.devices.base import DeviceInfo, DeviceKind, ThermalReading
from perflab.devices.config import DeviceConfig, LoadedDeviceConfig, RootMethod, config_for
from perflab.devices.journal import Change, ChangeKind, Journal
from perflab.devices.lock import DeviceLock
from perflab.errors import DeviceError, DeviceGoneError, UserInputError

log = logging.getLogger("perflab.devices.android")

EMULATED_PROP = "ro.perflab.emulated"
BENCHMARK_ENV = "PERFLAB_BENCHMARK_MODEL"  # host path of benchmark_model, overrides the config
_PROCESS_STOP_S = 5.0  # a journaled process is given this long after each signal to end
_NETWORK_SERIAL = re.compile(r"[A-Za-z0-9.\-]+:\d{1,5}|\[[0-9A-Fa-f:]+\]:\d{1,5}")
_GETPROP_LINE = re.compile(r"^\[(.*?)\]: \[(.*)\]$")
_THERMAL_SCRIPT = (
    'for z in /sys/class/thermal/thermal_zone*; do echo "@@ $z"; cat "$z/type"; echo "@t"; cat "$z/temp"; done'
)


def parse_getprop(text: str) -> dict[str, str]:
    """``getprop`` full dump (``[key]: [value]`` per line; values may hold spaces, ']' or ',')."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        m = _GETPROP_LINE.match(line.strip())
        if m:
            props[m.group(1)] = m.group(2)
    return props


def props_extra(props: Mapping[str, str], more: Mapping[str, str]) -> dict[str, str]:
    """A device record's ``extra`` from its getprop values (maker, board, SoC maker, Android
    release, build type), then ``more``, in that order, leaving out every empty value."""
    return {k: v for k, v in {
        "manufacturer": props.get("ro.product.manufacturer", ""),
        "board_platform": props.get("ro.board.platform", ""),
        "soc_manufacturer": props.get("ro.soc.manufacturer", ""),
        "android_release": props.get("ro.build.version.release", ""),
        "build_type": props.get("ro.build.type", ""),
        **more,
    }.items() if v}


@dataclass(frozen=True)
class ZoneReading:
    zone: str  # /sys/class/thermal/thermal_zoneN
    type: str
    temp_c: float | None


def parse_thermal_dump(text: str) -> list[ZoneReading]:
    """Output of the thermal loop: ``@@ <zone>`` / type / ``@t`` / temp, per zone. Temps are
    m°C; a value under 200 is taken as °C (some drivers), an error or -273 °C as missing."""
    zones: list[ZoneReading] = []
    cur: str | None = None
    typ: list[str] = []
    temp: list[str] = []
    in_temp = False

    def flush() -> None:
        if cur is None:
            return
        raw = temp[0].strip() if temp else ""
        val: float | None
        try:
            v = float(raw)
            val = v if abs(v) < 200 else v / 1000.0
            if val <= -100:
                val = None
        except ValueError:
            val = None
        zones.append(ZoneReading(cur, typ[0].strip() if typ else "", val))

    for line in text.splitlines():
        if line.startswith("@@ "):
            flush()
            cur, typ, temp, in_temp = line[3:].strip(), [], [], False
        elif line.strip() == "@t":
            in_temp = True
        elif cur is not None and line.strip():
            (temp if in_temp else typ).append(line)
    flush()
    return zones


@dataclass
class TuningOptions:
    """What prepare() may change (each only where the config knows how and root allows)."""

    stay_awake: bool = True
    suspend_charging: bool = True
    pin_governor: bool = True
    screen_off: bool | None = None  # None: as the device config says


@dataclass
class CooldownResult:
    start_temp_c: float | None
    end_temp_c: float | None
    waited_s: float
    reached: bool
    source: str | None
    missing_reason: str | None = None


@dataclass
class _Session:
    """Per-device cache of what was read from the phone."""

    zone_dirs: dict[str, str] = field(default_factory=dict)  # zone type -> thermal_zoneN dir


class AndroidDevice:
    """One phone (or emulated phone) behind the adb server. Implements Device and offers
    perflab.devices.capabilities.ShellDevice (so ConfiguredDevice too)."""

    def __init__(
        self,
        adb: Adb,
        serial: str,
        *,
        config: LoadedDeviceConfig | None = None,
        config_dir: Path | None = None,
        benchmark_binary: Path | None = None,
        state_dir: Path | None = None,
        tuning: TuningOptions | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._adb = adb
        self._serial = serial
        self.dev: AdbDevice = adb.device(serial)
        self._config = config
        self._config_dir = config_dir
        self._binary_override = benchmark_binary
        self.tuning = tuning or TuningOptions()
        self.timeout_s = timeout_s
        journal_dir = state_dir / "journal" if state_dir else None
        lock_dir = state_dir / "locks" if state_dir else None
        self.journal = Journal(serial, journal_dir)
        self.lock = DeviceLock(serial, lock_dir)
        self.log = device_logger(serial)
        self._props: dict[str, str] | None = None
        self._rooted: bool | None = None
        self._info: DeviceInfo | None = None
        self._s = _Session()
        self._run_id = ""

    # ---- identity -------------------------------------------------------------------------

    @property
    def serial(self) -> str:
        return self._serial

    def props(self) -> dict[str, str]:
        if self._props is None:
            self._props = parse_getprop(self.dev.shell(["getprop"], timeout_s=self.timeout_s).stdout)
        return self._props

    @property
    def config(self) -> DeviceConfig:
        return self.loaded_config.config

    @property
    def loaded_config(self) -> LoadedDeviceConfig:
        return self.load_config()

    def load_config(self) -> LoadedDeviceConfig:
        """The device config matching this phone's properties (read over adb on first use)."""
        if self._config is None:
            kw: dict[str, Any] = {"directory": self._config_dir} if self._config_dir else {}
            self._config = config_for(self.props(), **kw)
        return self._config

    def is_rooted(self) -> bool:
        """Whether a root shell can be had (su works, or adbd already runs as root)."""
        if self._rooted is None:
            res = self.dev.shell(["su", "-c", "id -u"], timeout_s=self.timeout_s, check=False)
            ok = res.exit_code == 0 and res.stdout.strip().splitlines()[-1:] == ["0"]
            if not ok:
                res = self.dev.shell(["id", "-u"], timeout_s=self.timeout_s, check=False)
                ok = res.exit_code == 0 and res.stdout.strip() == "0"
            self._rooted = ok
        return self._rooted

    def info(self) -> DeviceInfo:
        if self._info is None:
            p = self.props()
            sdk_txt = p.get("ro.build.version.sdk", "")
            soc = p.get("ro.soc.model") or p.get("ro.board.platform") or None
            kind = DeviceKind.EMULATED if p.get(EMULATED_PROP) == "1" else DeviceKind.ANDROID
            extra = props_extra(p, {"device_config": self.loaded_config.config.name})
            if kind is DeviceKind.EMULATED:
                extra["emulated"] = "perflab emulated phone: timings come from the host running the model"
            self._info = DeviceInfo(
                serial=self.serial,
                kind=kind,
                model=p.get("ro.product.model") or "unknown",
                soc=soc,
                abi=p.get("ro.product.cpu.abi") or None,
                sdk=int(sdk_txt) if sdk_txt.isdigit() else None,
                fingerprint=p.get("ro.build.fingerprint") or None,
                rooted=self.is_rooted(),
                tflite_version=None,
                extra=extra,
            )
        return self._info

    # ---- shell helpers ----------------------------------------------------------------------

    def sh(self, argv: list[str], *, timeout_s: float | None = None, check: bool = True,
           root: bool = False) -> ShellResult:
        """Run argv (each word quoted). ``root``: through the config's root method."""
        cmd = quote_argv(argv)
        if root:
            cmd = self._as_root(cmd)
        return self.dev.shell(cmd, timeout_s=timeout_s or self.timeout_s, check=check)

    def _as_root(self, cmd: str) -> str:
        method = self.config.root
        if method is RootMethod.ADBD:
            return cmd
        if method is RootMethod.SU_0:
            return quote_argv(["su", "0", "sh", "-c", cmd])
        if method is RootMethod.NONE and not self.is_rooted():
            raise DeviceError(self.serial, "this change needs root, and the phone is not rooted", command=cmd)
        return quote_argv(["su", "-c", cmd])

    def write_file(self, path: str, value: str, *, root: bool) -> None:
        cmd = quote_argv(["printf", "%s", value]) + " > " + _q(path)
        if root:
            cmd = self._as_root(cmd)
        self.dev.shell(cmd, timeout_s=self.timeout_s)

    def read_file(self, path: str, *, root: bool = False) -> str | None:
        res = self.sh(["cat", path], check=False, root=root)
        return res.stdout.strip() if res.exit_code == 0 else None

    # ---- thermal ---------------------------------------------------------------------------------

    def thermal_zones(self) -> list[ZoneReading]:
        res = self.dev.shell(_THERMAL_SCRIPT, timeout_s=self.timeout_s, check=False)
        zones = parse_thermal_dump(res.stdout)
        self._s.zone_dirs = {z.type: z.zone for z in zones}
        return zones

    def temperature(self) -> ThermalReading:
        gate = self.config.thermal.gate_zone()
        if gate is not None:
            zone_dir = self._s.zone_dirs.get(gate)
            if zone_dir is None:
                self.thermal_zones()
                zone_dir = self._s.zone_dirs.get(gate)
            if zone_dir is not None:
                raw = self.read_file(f"{zone_dir}/temp")
                val = _zone_temp_c(raw)
                if val is not None:
                    return ThermalReading(val, f"thermal zone {gate} ({zone_dir}/temp)")
        if self.config.thermal.use_battery_temp and self.config.battery.temp:
            path = self.config.battery.node(self.config.battery.temp)
            raw = self.read_file(path)
            if raw is not None and re.fullmatch(r"-?\d+", raw):
                return ThermalReading(int(raw) / 10.0, f"battery temp ({path})")
        why = (f"thermal zone {gate!r} unreadable" if gate else "no thermal zone in the device config")
        return ThermalReading(None, None, f"{why} and no battery temperature")

    def wait_for_cooldown(self, max_temp_c: float, timeout_s: float, poll_s: float = 5.0) -> CooldownResult:
        """Wait until temperature() <= max_temp_c or timeout_s passes; records the start temp."""
        t0 = time.monotonic()
        first = self.temperature()
        reading = first
        while (reading.temp_c is not None and reading.temp_c > max_temp_c
               and time.monotonic() - t0 < timeout_s):
            time.sleep(min(poll_s, max(0.05, timeout_s - (time.monotonic() - t0))))
            reading = self.temperature()
        return CooldownResult(
            start_temp_c=first.temp_c, end_temp_c=reading.temp_c, waited_s=time.monotonic() - t0,
            reached=reading.temp_c is not None and reading.temp_c <= max_temp_c, source=reading.source,
            missing_reason=reading.missing_reason,
        )

    # ---- prepare / restore -------------------------------------------------------------------------

    def prepare(self, run_id: str) -> None:
        """Lock the phone, undo leftovers of a crashed run, then tune it (each change journaled
        first). Tuning that needs root is skipped on phones without root."""
        self.lock.acquire()
        self._run_id = run_id
        if self.journal.pending():
            self.log.warning("undoing %d change(s) left by an earlier run", len(self.journal.pending()))
            self.journal.restore(self._undo)
        self.sh(["mkdir", "-p", self.config.workdir])
        cfg = self.config
        if self.tuning.stay_awake and cfg.screen.stay_awake:
            self._set_setting("global", "stay_on_while_plugged_in", "2", "keep awake on USB")
        rooted = cfg.root is not RootMethod.NONE and self.is_rooted()
        if rooted and self.tuning.suspend_charging and cfg.charging_knob is not None:
            k = cfg.charging_knob
            self._change_file(k.path, k.disable_value, "suspend charging")
        if rooted and self.tuning.pin_governor and cfg.cpufreq.pin_governor:
            for pol in cfg.cpufreq.policies:
                self._change_file(f"{pol}/scaling_governor", cfg.cpufreq.pin_governor, "pin governor")
        screen_off = cfg.screen.turn_off if self.tuning.screen_off is None else self.tuning.screen_off
        if screen_off:
            self._screen("off")

    def restore(self) -> None:
        """Undo every journaled change, newest first (also those of a crashed earlier run),
        then release the phone's lock. If the phone is gone, the changes stay journaled (and
        the lock held) for a later restore."""
        self.journal.restore(self._undo)
        self.journal.compact()
        self.lock.release()

    def close(self) -> None:
        self.lock.release()

    def _change_file(self, path: str, value: str, what: str) -> None:
        old = self.read_file(path, root=True)
        if old is None:
            self.log.warning("%s: cannot read %s; left as it is", what, path)
            return
        if old == value:
            return
        ch = self.journal.record(ChangeKind.WRITE_FILE, path, old, value, run_id=self._run_id, root=True, what=what)
        try:
            self.write_file(path, value, root=True)
        except DeviceGoneError:
            raise
        except DeviceError as exc:
            self.log.warning("%s: could not write %s (%s)", what, path, exc.message)
            self.journal.mark_done(ch, note="write failed; nothing changed")

    def _set_setting(self, namespace: str, key: str, value: str, what: str) -> None:
        old = self.sh(["settings", "get", namespace, key]).stdout.strip()
        if old == value:
            return
        self.journal.record(ChangeKind.SETTING, f"{namespace}/{key}", None if old == "null" else old, value,
                            run_id=self._run_id, what=what)
        self.sh(["settings", "put", namespace, key, value])

    def screen_state(self) -> str | None:
        res = self.sh(["dumpsys", "power"], check=False)
        m = re.search(r"mWakefulness=(\w+)", res.stdout)
        if not m:
            return None
        return "on" if m.group(1) == "Awake" else "off"

    def _screen(self, want: str) -> None:
        old = self.screen_state()
        if old is None or old == want:
            return
        self.journal.record(ChangeKind.SCREEN, "screen", old, want, run_id=self._run_id, what=f"screen {want}")
        self.sh(["input", "keyevent", "KEYCODE_SLEEP" if want == "off" else "KEYCODE_WAKEUP"])

    # ---- processes left running in the background ------------------------------------------------

    def journal_process(self, pid_file: str, marker: str, what: str) -> Change:
        """Journal a process about to be started in the background (it outlives the adb shell
        that starts it, so a host killed with -9 leaves it running): it must write its own PID
        to ``pid_file`` first thing, and its command line must hold ``marker``. Undone by
        :meth:`stop_process` (``perflab devices restore``, the next run's prepare)."""
        return self.journal.record(ChangeKind.PROCESS, pid_file, None, marker, run_id=self._run_id, what=what)

    def process_ended(self, change: Change) -> None:
        """The journaled process was stopped by its owner: nothing left to undo."""
        self.journal.mark_done(change, note="stopped by its owner")

    def stop_process(self, pid_file: str, marker: str) -> None:
        """Kill the process whose PID ``pid_file`` holds, if that PID is still the process whose
        command line holds ``marker`` (a PID the kernel gave to another process since is left
        alone); SIGTERM, then SIGKILL if it is still there after a while. The PID file goes.
        DeviceError (not gone) if it cannot be stopped."""
        pid = self.sh(["cat", pid_file], check=False).stdout.strip()
        if pid.isdigit():
            deadline = time.monotonic() + _PROCESS_STOP_S
            sig = "-TERM"
            while self._is_process(pid, marker):
                if time.monotonic() > deadline:
                    if sig == "-KILL":
                        raise DeviceError(self.serial, f"process {pid} ({marker}) does not end",
                                          command=f"kill -KILL {pid}")
                    sig, deadline = "-KILL", time.monotonic() + _PROCESS_STOP_S
                self.sh(["kill", sig, pid], check=False)
                time.sleep(0.1)
        self.sh(["rm", "-f", pid_file], check=False)

    def _is_process(self, pid: str, marker: str) -> bool:
        res = self.sh(["cat", f"/proc/{pid}/cmdline"], check=False)
        return res.exit_code == 0 and marker in res.stdout.replace("\0", " ")

    def _undo(self, ch: Change) -> None:
        if ch.kind is ChangeKind.WRITE_FILE:
            if ch.old is not None:
                self.write_file(ch.target, ch.old, root=ch.root)
        elif ch.kind is ChangeKind.SETTING:
            ns, _, key = ch.target.partition("/")
            if ch.old is None:
                self.sh(["settings", "delete", ns, key])
            else:
                self.sh(["settings", "put", ns, key, ch.old])
        elif ch.kind is ChangeKind.SCREEN:
            self.sh(["input", "keyevent", "KEYCODE_WAKEUP" if ch.old == "on" else "KEYCODE_SLEEP"])
        elif ch.kind is ChangeKind.PROPERTY:
            self.sh(["setprop", ch.target, ch.old or ""], root=ch.root)
        elif ch.kind is ChangeKind.PROCESS:
            self.stop_process(ch.target, ch.new or "")
        elif ch.kind is ChangeKind.TRACE_INSTANCE:
            res = self.sh(["rmdir", ch.target], root=True, check=False)
            if res.exit_code != 0 and self.sh(["ls", "-d", ch.target], root=True, check=False).exit_code == 0:
                raise DeviceError(self.serial, f"cannot remove the ftrace instance {ch.target}",
                                  command=f"rmdir {ch.target}", exit_code=res.exit_code, stdout=res.stdout,
                                  stderr=res.stderr)
        self.log.info("restored %s %s -> %r", ch.what or ch.kind.value, ch.target, ch.old)

    # ---- benchmark_model ------------------------------------------------------------------------------

    def benchmark_host_path(self) -> Path | None:
        env = os.environ.get(BENCHMARK_ENV)
        if self._binary_override is not None:
            return self._binary_override
        if env:
            return Path(env).expanduser()
        return self.loaded_config.benchmark_host_path()

    @property
    def benchmark_remote_path(self) -> str:
        """Where benchmark_model is (or is pushed to) on the phone: the config's
        ``benchmark_model.remote_path``."""
        return self.config.benchmark_model.remote_path

    # ---- reachability ---------------------------------------------------------------------------------

    @property
    def is_network_serial(self) -> bool:
        """A serial of the form ``host:port`` (adb over TCP): the adb server does not reconnect
        those on its own after a drop."""
        return _NETWORK_SERIAL.fullmatch(self.serial) is not None

    def wait_online(self, timeout_s: float, poll_s: float = 1.0) -> bool:
        """Wait up to ``timeout_s`` until the adb server lists this phone as ``device``. A
        network serial is connected again on every poll (after dropping a stale ``offline``
        entry, which the server would otherwise retry only every ~10 s). Cached identity is
        kept (it is the same phone); cached thermal zone paths are read again."""
        deadline = time.monotonic() + timeout_s
        while not self._online_now(deadline):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(poll_s, left))
        self._s.zone_dirs = {}
        self.log.info("back online")
        return True

    def _online_now(self, deadline: float) -> bool:
        step_s = max(0.5, min(self.timeout_s, deadline - time.monotonic()))
        try:
            state = self._adb.state(self.serial, timeout_s=step_s)
            if state == "device":
                return True
            if not self.is_network_serial:
                return False
            if state is not None:
                self._adb.disconnect(self.serial, timeout_s=step_s)
            self._adb.connect(self.serial, timeout_s=step_s)
            return self._adb.state(self.serial, timeout_s=step_s) == "device"
        except DeviceError as exc:  # the server itself may be restarting
            self.log.debug("waiting for the phone: %s", exc)
            return False


def _q(word: str) -> str:
    return quote_argv([word])


def _zone_temp_c(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        v = float(raw.strip())
    except ValueError:
        return None
    c = v if abs(v) < 200 else v / 1000.0
    return None if c <= -100 else c


# ---- discovery and selection ---------------------------------------------------------------------------


def adb_server_running(host: str = "127.0.0.1", port: int | None = None, timeout_s: float = 1.0) -> bool:
    port = port if port is not None else adb_server_port()
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def start_adb_server(timeout_s: float = 30.0) -> None:
    try:
        subprocess.run(["adb", "start-server"], check=True, capture_output=True, timeout=timeout_s)
    except FileNotFoundError as exc:
        raise UserInputError("adb is not installed (Debian: apt-get install adb)") from exc
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise DeviceError("adb-server", f"adb start-server failed: {exc}") from exc


def discover_devices(adb: Adb | None = None, *, start_server: bool = False,
                     **device_kw: Any) -> list[AndroidDevice]:
    """Every phone the adb server lists as ``device`` (ready). Unauthorized/offline phones
    are logged and left out. With ``start_server`` False and no server running: []."""
    if adb is None:
        if not adb_server_running():
            if not start_server:
                return []
            start_adb_server()
        adb = Adb()
    devices = []
    for e in adb.devices():
        if e.state == "device":
            devices.append(AndroidDevice(adb, e.serial, **device_kw))
        else:
            log.warning("[%s] skipped: %s", e.serial, _state_advice(e.serial, e.state))
    return devices


def _state_advice(serial: str, state: str) -> str:
    if state == "unauthorized":
        return f"{serial} is unauthorized: accept the USB debugging prompt on the phone"
    if state == "offline":
        return f"{serial} is offline: unplug and reconnect it (or restart adb)"
    if state == "no permissions":
        return f"{serial}: no permissions for the USB device (udev rules)"
    return f"{serial} is in state {state!r}, not ready"


def open_device(serial: str, adb: Adb | None = None, **device_kw: Any) -> AndroidDevice:
    """The phone with this serial, ready for commands; a one-line UserInputError otherwise
    (unknown serial, unauthorized, offline). Whether it can run a benchmark is the
    workload's ``check_ready``, once, before the phone's first cell."""
    if adb is None:
        if not adb_server_running():
            start_adb_server()
        adb = Adb()
    entries = {e.serial: e for e in adb.devices()}
    entry = entries.get(serial)
    if entry is None:
        known = ", ".join(sorted(entries)) or "none"
        raise UserInputError(f"unknown device serial {serial!r} (attached: {known}; or use --device local)")
    if entry.state != "device":
        raise UserInputError(_state_advice(serial, entry.state))
    return AndroidDevice(adb, serial, **device_kw)
