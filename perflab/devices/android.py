"""Android phones over adb (and perflab's emulated phones, which the adb server sees the same).

``AndroidDevice`` implements perflab.devices.base.Device on top of perflab.devices.adb:

* ``info()`` from ``getprop`` (+ whether ``su`` works); kind ``emulated`` when the phone says
  it is perflab's emulated phone (``ro.perflab.emulated=1``), else ``android``.
* ``temperature()`` from the config's thermal zone (mapped by *type*, not number), falling
  back to the battery temperature.
* ``prepare()``/``restore()``: stay-awake, charging suspended, governors pinned, screen off —
  each journaled on the host (perflab.devices.journal) BEFORE it is made, undone newest-first.
* ``run_timing`` / ``run_outputs`` / ``run_profile`` through the user's ``benchmark_model``:
  model pushed once (by sha256), inputs pushed as raw tensors in the model's input dtype
  (found with the host's LiteRT interpreter), every argument quoted, output parsed by
  perflab.workloads.benchmark_model.

No I/O happens in the constructor. A device that drops off mid-operation raises
DeviceGoneError; the runner marks the cell failed and restores the phone when it returns.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perflab.core.types import ModelArtifact, ProfileResult, SeriesMode, TimingRequest, TimingResult
from perflab.devices.adb import Adb, AdbDevice, ShellResult, device_logger, quote_argv
from perflab.devices.base import DeviceInfo, DeviceKind, ThermalReading
from perflab.devices.config import DeviceConfig, LoadedDeviceConfig, RootMethod, config_for
from perflab.devices.journal import Change, ChangeKind, Journal
from perflab.devices.lock import DeviceLock
from perflab.errors import DeviceError, DeviceGoneError, ModelError, UserInputError
from perflab.workloads.benchmark_model import (
    BenchmarkCommand,
    BenchmarkOutput,
    InputLayer,
    check_output,
    parse_output,
    profile_result,
    timing_result,
)
from perflab.workloads.host import (
    HostModel,
    TensorDetail,
    float_to_tensor,
    raw_to_tensor,
    tensor_to_float,
)

log = logging.getLogger("perflab.devices.android")

EMULATED_PROP = "ro.perflab.emulated"
BENCHMARK_ENV = "PERFLAB_BENCHMARK_MODEL"  # host path of benchmark_model, overrides the config
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


def raw_tensor_bytes(frame: np.ndarray, dtype: np.dtype[Any], scale: float, zero_point: int) -> bytes:
    """Float RGB [0,1] H×W×C → the model input's raw bytes (1×H×W×C, its dtype/quantization)."""
    shape = (1, *np.asarray(frame).shape)
    return bytes(float_to_tensor(frame, TensorDetail("input", 0, shape, np.dtype(dtype), scale, zero_point)).tobytes())


def decode_output(raw: bytes, shape: tuple[int, ...], dtype: np.dtype[Any], scale: float,
                  zero_point: int) -> np.ndarray:
    """Raw output bytes (``--output_filepath``) → float32 RGB in [0,1], H×W×C."""
    detail = TensorDetail("device output", 0, shape, np.dtype(dtype), scale, zero_point)
    return tensor_to_float(raw_to_tensor(raw, detail), detail)


TensorSpec = TensorDetail  # the host interpreter's view of a tensor: name, shape, dtype, quantization


def host_tensor_specs(model_path: Path, height: int = 0, width: int = 0) -> tuple[TensorSpec, TensorSpec]:
    """Input and output tensor specs of a one-in/one-out model, resized to height×width when
    given, found with the host's LiteRT interpreter (no inference is run)."""
    model = HostModel(model_path, threads=1, delegate="cpu")
    if height and width:
        model.resize(height, width)
    return model.input_detail(), model.output_detail()


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
    """Per-device cache of what is already on the phone."""

    binary_sha: str | None = None
    models: dict[str, str] = field(default_factory=dict)  # sha256 -> remote path
    inputs: dict[str, str] = field(default_factory=dict)  # sha256 -> remote path
    zone_dirs: dict[str, str] = field(default_factory=dict)  # zone type -> thermal_zoneN dir
    last_geometry: dict[str, tuple[int, int]] = field(default_factory=dict)  # model sha -> (h, w)
    last_input: dict[str, str] = field(default_factory=dict)  # model sha -> remote input path


class AndroidDevice:
    """One phone (or emulated phone) behind the adb server. Implements Device."""

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
            extra = {k: v for k, v in {
                "manufacturer": p.get("ro.product.manufacturer", ""),
                "board_platform": p.get("ro.board.platform", ""),
                "soc_manufacturer": p.get("ro.soc.manufacturer", ""),
                "android_release": p.get("ro.build.version.release", ""),
                "build_type": p.get("ro.build.type", ""),
                "device_config": self.loaded_config.config.name,
            }.items() if v}
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
        self.log.info("restored %s %s -> %r", ch.what or ch.kind.value, ch.target, ch.old)

    # ---- benchmark_model ------------------------------------------------------------------------------

    def benchmark_host_path(self) -> Path | None:
        env = os.environ.get(BENCHMARK_ENV)
        if self._binary_override is not None:
            return self._binary_override
        if env:
            return Path(env).expanduser()
        return self.loaded_config.benchmark_host_path()

    def ensure_benchmark_model(self) -> str:
        """The remote path of benchmark_model, pushed from the host if needed (sha256-checked)."""
        remote = self.config.benchmark_model.remote_path
        if self._s.binary_sha is not None:
            return remote
        host = self.benchmark_host_path()
        if host is not None:
            if not host.is_file():
                raise UserInputError(f"benchmark_model not found on this machine: {host}")
            data = host.read_bytes()
            want = hashlib.sha256(data).hexdigest()
            if self.dev.sha256(remote, timeout_s=self.timeout_s) != want:
                self.sh(["mkdir", "-p", os.path.dirname(remote)])
                self.dev.push_bytes(data, remote, mode=0o755, timeout_s=max(self.timeout_s, 120.0))
            self._s.binary_sha = want
            return remote
        st = self.dev.stat(remote, timeout_s=self.timeout_s)
        if st is None:
            raise UserInputError(
                f"{self.serial}: benchmark_model is not on the phone ({remote}) and no host copy is configured: set "
                f"benchmark_model.host_path in {self.loaded_config.file} or ${BENCHMARK_ENV}"
            )
        self._s.binary_sha = "on-device"
        return remote

    def ensure_model(self, model: ModelArtifact) -> str:
        """Push the .tflite once per sha256; the remote name keeps the user's file name (quoted)."""
        if model.sha256 in self._s.models:
            return self._s.models[model.sha256]
        remote = f"{self.config.workdir}/m/{model.sha256[:16]}/{model.path.name}"
        if self.dev.sha256(remote, timeout_s=self.timeout_s) != model.sha256:
            self.sh(["mkdir", "-p", os.path.dirname(remote)])
            got = self.dev.push(model.path, remote, mode=0o644, timeout_s=max(self.timeout_s, 120.0))
            if got != model.sha256:
                raise ModelError(f"{model.path} changed on disk: sha256 {got}, expected {model.sha256}")
        self._s.models[model.sha256] = remote
        return remote

    def _push_input(self, data: bytes, tag: str) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if sha in self._s.inputs:
            return self._s.inputs[sha]
        remote = f"{self.config.workdir}/in/{tag}-{sha[:16]}.raw"
        self.sh(["mkdir", "-p", f"{self.config.workdir}/in"])
        self.dev.push_bytes(data, remote, timeout_s=max(self.timeout_s, 120.0))
        self._s.inputs[sha] = remote
        return remote

    def _run_tool(self, cmd: BenchmarkCommand, timeout_s: float) -> BenchmarkOutput:
        shell_cmd = cmd.shell_command()
        self.log.debug("benchmark_model: %s", shell_cmd)
        try:
            res = self.dev.shell(shell_cmd, timeout_s=timeout_s, check=False, idempotent=False)
        except DeviceGoneError:
            raise
        except DeviceError as exc:
            if "timed out" in exc.message:
                self._kill_tool(cmd.binary)
            raise
        out = parse_output(res.stdout + ("\n" + res.stderr if res.stderr else ""))
        if res.exit_code != 0:
            if out.errors:
                check_output(out, delegate=cmd.delegate)  # raises with the tool's own line
            raise DeviceError(self.serial, "benchmark_model failed", command=shell_cmd, exit_code=res.exit_code,
                              stdout=res.stdout, stderr=res.stderr)
        return out

    def _kill_tool(self, binary: str) -> None:
        name = os.path.basename(binary)
        try:
            pids = self.sh(["pidof", name], check=False).stdout.split()
            if pids:
                self.sh(["kill", *pids], check=False)
        except DeviceError:
            pass

    def _model_input(self, model: ModelArtifact, height: int, width: int,
                     frame: np.ndarray | None) -> tuple[InputLayer, TensorSpec, TensorSpec]:
        in_spec, out_spec = host_tensor_specs(model.path, height, width)
        if frame is not None:
            data = raw_tensor_bytes(frame, in_spec.dtype, in_spec.scale, in_spec.zero_point)
        else:
            rng = np.random.default_rng(0)
            noise = rng.random(in_spec.shape[1:], dtype=np.float32)
            data = raw_tensor_bytes(noise, in_spec.dtype, in_spec.scale, in_spec.zero_point)
        if len(data) != in_spec.nbytes:
            raise ModelError(f"input frame does not fit the model input {in_spec.shape} {in_spec.dtype}")
        remote = self._push_input(data, "t")
        return InputLayer(in_spec.name, in_spec.shape, remote), in_spec, out_spec

    def run_timing(self, model: ModelArtifact, request: TimingRequest) -> TimingResult:
        binary = self.ensure_benchmark_model()
        graph = self.ensure_model(model)
        frame = None if request.input_frame is None else np.asarray(request.input_frame, dtype=np.float32)
        h, w = request.lr_height, request.lr_width
        if frame is not None and not (h and w):
            h, w = frame.shape[:2]
        layer, _, _ = self._model_input(model, h, w, frame)
        self._s.last_geometry[model.sha256] = (h, w)
        self._s.last_input[model.sha256] = layer.value_file or ""
        cmd = BenchmarkCommand(
            binary=binary, graph=graph, threads=request.threads, delegate=request.delegate,
            num_runs=request.iterations, warmup_runs=request.warmup,
            run_frequency_hz=request.fps if request.mode is SeriesMode.PACED and request.fps else None,
            max_secs=max(1.0, float(request.timeout_s)), inputs=(layer,),
        )
        t0 = time.monotonic()
        out = self._run_tool(cmd, request.timeout_s)
        wall_s = time.monotonic() - t0
        check_output(out, delegate=request.delegate)
        result = timing_result(out, request.mode)
        result.wall_s = wall_s
        if out.inference is not None and out.inference.count < request.iterations:
            result.warnings.append(
                f"benchmark_model stopped after {out.inference.count} of {request.iterations} runs (max_secs)")
        if self.info().kind is DeviceKind.EMULATED:
            result.warnings.append("emulated phone: timings are the host running the model, not a phone")
        return result

    def run_outputs(
        self, model: ModelArtifact, lr_frames: list[np.ndarray], threads: int, delegate: str, timeout_s: float
    ) -> list[np.ndarray]:
        binary = self.ensure_benchmark_model()
        graph = self.ensure_model(model)
        out_dir = f"{self.config.workdir}/out"
        self.sh(["mkdir", "-p", out_dir])
        deadline = time.monotonic() + timeout_s
        results: list[np.ndarray] = []
        for i, lr in enumerate(lr_frames):
            frame = np.asarray(lr, dtype=np.float32)
            h, w = frame.shape[:2]
            layer, _in_spec, out_spec = self._model_input(model, h, w, frame)
            remote_out = f"{out_dir}/{model.sha256[:16]}-{i:05d}.bin"
            cmd = BenchmarkCommand(binary=binary, graph=graph, threads=threads, delegate=delegate, num_runs=1,
                                   warmup_runs=0, inputs=(layer,), output_filepath=remote_out)
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceError(self.serial, f"outputs not done within {timeout_s:g}s ({i} of {len(lr_frames)})")
            self.sh(["rm", "-f", remote_out], check=False)
            out = self._run_tool(cmd, left)
            check_output(out, delegate=delegate, required_flags=("--output_filepath",))
            if self.dev.stat(remote_out, timeout_s=self.timeout_s) is None:
                raise ModelError(f"benchmark_model wrote no output file {remote_out} (does this build support "
                                 "--output_filepath?)")
            raw = self.dev.pull_bytes(remote_out, timeout_s=max(self.timeout_s, 120.0))
            results.append(decode_output(raw, out_spec.shape, out_spec.dtype, out_spec.scale, out_spec.zero_point))
            self.sh(["rm", "-f", remote_out, layer.value_file or remote_out], check=False)
            if layer.value_file:
                self._s.inputs = {k: v for k, v in self._s.inputs.items() if v != layer.value_file}
        return results

    def run_profile(
        self, model: ModelArtifact, threads: int, delegate: str, timeout_s: float
    ) -> ProfileResult | None:
        """Op profiling in its own benchmark_model pass (never the timed one), on the input
        of the last timing run of this model (or the model's own shape)."""
        binary = self.ensure_benchmark_model()
        graph = self.ensure_model(model)
        h, w = self._s.last_geometry.get(model.sha256, (0, 0))
        remote_in = self._s.last_input.get(model.sha256)
        if remote_in and self.dev.stat(remote_in, timeout_s=self.timeout_s) is not None:
            in_spec, _ = host_tensor_specs(model.path, h, w)
            layer = InputLayer(in_spec.name, in_spec.shape, remote_in)
        else:
            layer, _, _ = self._model_input(model, h, w, None)
        cmd = BenchmarkCommand(binary=binary, graph=graph, threads=threads, delegate=delegate, num_runs=10,
                               warmup_runs=2, inputs=(layer,), op_profiling=True,
                               max_secs=max(1.0, float(timeout_s)))
        out = self._run_tool(cmd, timeout_s)
        check_output(out, delegate=delegate)
        source = "tflite op profiling (benchmark_model --enable_op_profiling)"
        if self.info().kind is DeviceKind.EMULATED:
            source = "emulated " + source
        return profile_result(out, source=source)


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
    port = port if port is not None else int(os.environ.get("ANDROID_ADB_SERVER_PORT", "5037"))
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


def open_device(serial: str, adb: Adb | None = None, *, check_binary: bool = True,
                **device_kw: Any) -> AndroidDevice:
    """The phone with this serial, ready to run; a one-line UserInputError otherwise
    (unknown serial, unauthorized, offline, benchmark_model missing)."""
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
    dev = AndroidDevice(adb, serial, **device_kw)
    if check_binary:
        try:
            dev.ensure_benchmark_model()
        except DeviceGoneError:
            raise
        except UserInputError:
            raise
        except DeviceError as exc:
            raise UserInputError(f"{serial}: cannot check benchmark_model: {exc.message}") from exc
    return dev
