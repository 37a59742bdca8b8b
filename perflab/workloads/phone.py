"""``benchmark_model`` on a phone (real or perflab's emulated one), driven through an AndroidDevice.

* ``check_ready``: benchmark_model at the config's ``benchmark_model.remote_path`` is used
  when it is on the phone; a host copy (``benchmark_model.host_path`` in the device config,
  or ``$PERFLAB_BENCHMARK_MODEL``) is pushed when configured and different (sha256); with
  neither, DeviceNotReadyError once, before the phone's first cell.
* The model is pushed once per sha256 under its own file name (quoted); inputs are pushed as
  raw tensors in the model input's dtype/quantization, found with the host's LiteRT
  interpreter (no inference is run on the host).
* Every command is built by perflab.workloads.benchmark_model (every argument quoted) and
  its output parsed there.
* The tool runs so that its PID is known: ``echo $$ > PIDFILE; exec benchmark_model …``
  where the phone's shell supports it (probed once), so ``cancel()`` and a deadline kill that
  process by PID (checked against ``pidof``, so a stale PID file cannot hit another process);
  otherwise by ``pidof`` of the binary's name (one perflab per phone: the device lock).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from perflab.core.types import (
    ModelArtifact,
    ProfileMissing,
    ProfileResult,
    SeriesMode,
    TimingRequest,
    TimingResult,
)
from perflab.devices.adb import quote_argv
from perflab.devices.android import BENCHMARK_ENV
from perflab.devices.base import DeviceKind
from perflab.devices.capabilities import ShellDevice
from perflab.errors import (
    DeviceError,
    DeviceGoneError,
    DeviceNotReadyError,
    DeviceTimeoutError,
    ModelError,
    RunInterrupted,
)
from perflab.formats.benchmark_output import BenchmarkOutput, parse_output
from perflab.workloads.benchmark_model import (
    BenchmarkCommand,
    InputLayer,
    check_output,
    profile_result,
    timing_result,
)
from perflab.workloads.host import HostModel, TensorDetail, float_to_tensor, raw_to_tensor, tensor_to_float

log = logging.getLogger("perflab.workloads.phone")

DOCS_PAGE = "docs/android.md"
_PID_PROBE = "echo $$; exec sh -c 'echo $$'"  # two equal numbers where exec keeps the PID
_KILL_TIMEOUT_S = 10.0


# ---- tensors on the wire (pure) ------------------------------------------------------------


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


def pid_wrapped(command: str, pid_file: str) -> str:
    """``command`` run so that its PID lands in ``pid_file`` first (the shell execs it)."""
    return f"echo $$ > {quote_argv([pid_file])}; exec {command}"


@dataclass(frozen=True)
class RawInput:
    """One input of a graph run: its tensor name, shape and raw bytes (its dtype, C order)."""

    name: str
    shape: tuple[int, ...]
    data: bytes


@dataclass(frozen=True)
class GraphRun:
    output: BenchmarkOutput
    raw_output: bytes | None


# ---- the workload -------------------------------------------------------------------------------


@dataclass
class _Session:
    """What is already on the phone, for this workload's lifetime."""

    binary: str | None = None  # remote path, once checked
    pid_exec: bool | None = None  # whether `exec` keeps the shell's PID (probed once)
    models: dict[str, str] = field(default_factory=dict)  # sha256 -> remote path
    inputs: dict[str, str] = field(default_factory=dict)  # sha256 -> remote path
    last_geometry: dict[str, tuple[int, int]] = field(default_factory=dict)  # model sha -> (h, w)
    last_input: dict[str, str] = field(default_factory=dict)  # model sha -> remote input path


class PhoneWorkload:
    """benchmark_model on one device that offers a shell (an AndroidDevice). Implements Workload."""

    def __init__(self, device: ShellDevice, workdir: Path) -> None:
        self.device = device
        self.workdir = workdir  # nothing is written on the host: inputs go to the phone as bytes
        self._s = _Session()
        self._cancelled = threading.Event()
        self._running = threading.Lock()  # one benchmark_model at a time
        self._idle = threading.Event()  # clear while benchmark_model runs
        self._idle.set()
        self._binary_name: str | None = None

    @property
    def serial(self) -> str:
        return self.device.serial

    @property
    def _remote_dir(self) -> str:
        return self.device.config.workdir

    @property
    def _pid_file(self) -> str:
        return f"{self._remote_dir}/benchmark_model.pid"

    @property
    def _emulated(self) -> bool:
        return self.device.info().kind is DeviceKind.EMULATED

    # ---- readiness and the binary -----------------------------------------------------------------

    def check_ready(self) -> None:
        self._raise_if_cancelled()
        self.ensure_benchmark_model()
        if self._s.pid_exec is None:
            self._s.pid_exec = self._probe_pid_exec()

    def ensure_benchmark_model(self) -> str:
        """The remote path of benchmark_model: the one on the phone when no host copy is
        configured; the host copy pushed when configured and different (sha256-checked).
        DeviceNotReadyError when neither exists, or the configured host copy is missing."""
        if self._s.binary is not None:
            return self._s.binary
        dev = self.device
        remote = dev.benchmark_remote_path
        host = dev.benchmark_host_path()
        if host is not None:
            self._push_binary(host, remote)
        elif dev.dev.stat(remote, timeout_s=dev.timeout_s) is None:
            raise DeviceNotReadyError(
                self.serial,
                f"benchmark_model is not on the phone ({remote}) and no host copy is configured: put it at "
                f"benchmark_model.remote_path, or set benchmark_model.host_path in {dev.loaded_config.file} or "
                f"${BENCHMARK_ENV} to push one (see {DOCS_PAGE})",
            )
        self._s.binary = remote
        self._binary_name = os.path.basename(remote)
        return remote

    def _push_binary(self, host: Path, remote: str) -> None:
        dev = self.device
        if not host.is_file():
            raise DeviceNotReadyError(
                self.serial,
                f"benchmark_model host copy not found on this machine: {host} (from ${BENCHMARK_ENV} or "
                f"benchmark_model.host_path in {dev.loaded_config.file}; see {DOCS_PAGE})",
            )
        data = host.read_bytes()
        if dev.dev.sha256(remote, timeout_s=dev.timeout_s) != hashlib.sha256(data).hexdigest():
            dev.sh(["mkdir", "-p", os.path.dirname(remote)])
            dev.dev.push_bytes(data, remote, mode=0o755, timeout_s=max(dev.timeout_s, 120.0))

    def _probe_pid_exec(self) -> bool:
        """Whether ``echo $$; exec CMD`` runs CMD under the echoed PID on this phone's shell."""
        try:
            res = self.device.dev.shell(_PID_PROBE, timeout_s=self.device.timeout_s, check=False)
        except DeviceGoneError:
            raise
        except DeviceError:
            return False
        words = res.stdout.split()
        ok = res.exit_code == 0 and len(words) == 2 and words[0] == words[1] and words[0].isdigit()
        if not ok:
            log.info("[%s] shell cannot exec under a known PID; cancel uses pidof", self.serial)
        return ok

    def reconnected(self) -> None:
        """Forget what was pushed (models, inputs, the tool): a phone that comes back may come
        back empty (rebooted with a wiped /data/local/tmp, reflashed). The next cell checks each
        file again (size, then sha256) and pushes what is missing or different."""
        self._s = _Session()

    def ensure_model(self, model: ModelArtifact) -> str:
        """Push the .tflite once per sha256 (and again after a reconnect): on the phone it must
        have the model's size and sha256, else it is pushed; the remote name keeps the user's
        file name (quoted)."""
        if model.sha256 in self._s.models:
            return self._s.models[model.sha256]
        dev = self.device
        remote = f"{self._remote_dir}/m/{model.sha256[:16]}/{model.path.name}"
        there = dev.dev.stat(remote, timeout_s=dev.timeout_s)
        if there is None or there[1] != model.size_bytes or dev.dev.sha256(remote, timeout_s=dev.timeout_s) != model.sha256:
            dev.sh(["mkdir", "-p", os.path.dirname(remote)])
            got = dev.dev.push(model.path, remote, mode=0o644, timeout_s=max(dev.timeout_s, 120.0))
            if got != model.sha256:
                raise ModelError(f"{model.path} changed on disk: sha256 {got}, expected {model.sha256}")
        self._s.models[model.sha256] = remote
        return remote

    def _push_input(self, data: bytes, tag: str) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if sha in self._s.inputs:
            return self._s.inputs[sha]
        dev = self.device
        remote = f"{self._remote_dir}/in/{tag}-{sha[:16]}.raw"
        dev.sh(["mkdir", "-p", f"{self._remote_dir}/in"])
        dev.dev.push_bytes(data, remote, timeout_s=max(dev.timeout_s, 120.0))
        self._s.inputs[sha] = remote
        return remote

    def _model_input(self, model: ModelArtifact, height: int, width: int,
                     frame: np.ndarray | None) -> tuple[InputLayer, TensorSpec, TensorSpec]:
        in_spec, out_spec = host_tensor_specs(model.path, height, width)
        if frame is None:
            frame = np.random.default_rng(0).random(in_spec.shape[1:], dtype=np.float32)
        data = raw_tensor_bytes(frame, in_spec.dtype, in_spec.scale, in_spec.zero_point)
        if len(data) != in_spec.nbytes:
            raise ModelError(f"input frame does not fit the model input {in_spec.shape} {in_spec.dtype}")
        remote = self._push_input(data, "t")
        return InputLayer(in_spec.name, in_spec.shape, remote), in_spec, out_spec

    # ---- running the tool, and stopping it ------------------------------------------------------

    def cancel(self) -> None:
        """Thread-safe: kill the benchmark_model process on the phone (by PID) if one runs;
        the call in flight, and every later one, raises RunInterrupted."""
        self._cancelled.set()
        if not self._idle.is_set():
            threading.Thread(target=self._kill_until_idle, name=f"cancel-{self.serial}", daemon=True).start()

    def _kill_until_idle(self) -> None:
        """Kill until the call in flight has returned: the cancel may land between the shell
        starting and the tool writing its PID."""
        while not self._idle.is_set():
            self._kill_tool()
            self._idle.wait(1.0)

    def _raise_if_cancelled(self) -> None:
        if self._cancelled.is_set():
            raise RunInterrupted(f"{self.serial}: cancelled")

    def _kill_tool(self) -> None:
        """Kill the running benchmark_model by the PID it wrote, when ``pidof`` confirms that
        PID is the tool (a PID file left by an earlier run may name a recycled PID); else every
        process of the tool's name (one perflab per phone: the device lock)."""
        dev = self.device
        try:
            written: list[str] = []
            if self._s.pid_exec:
                written = [w for w in (dev.read_file(self._pid_file) or "").split() if w.isdigit()]
            running: list[str] = []
            if self._binary_name:
                running = dev.sh(["pidof", self._binary_name], check=False, timeout_s=_KILL_TIMEOUT_S).stdout.split()
            targets = [p for p in written if p in running] or running
            if targets:
                dev.sh(["kill", "-9", *targets], check=False, timeout_s=_KILL_TIMEOUT_S)
        except DeviceError as exc:  # gone or slow: nothing more to kill from here
            log.warning("[%s] could not kill benchmark_model: %s", self.serial, exc)

    def _run_tool(self, cmd: BenchmarkCommand, timeout_s: float) -> BenchmarkOutput:
        self._raise_if_cancelled()
        shell_cmd = cmd.shell_command()
        if self._s.pid_exec:
            shell_cmd = pid_wrapped(shell_cmd, self._pid_file)
        log.debug("[%s] benchmark_model: %s", self.serial, shell_cmd)
        with self._running:
            self._idle.clear()
            try:
                self._raise_if_cancelled()
                res = self.device.dev.shell(shell_cmd, timeout_s=timeout_s, check=False, idempotent=False)
            except DeviceTimeoutError:
                self._kill_tool()
                raise
            finally:
                self._idle.set()
                self._raise_if_cancelled()
        out = parse_output(res.stdout + ("\n" + res.stderr if res.stderr else ""))
        if res.exit_code != 0:
            if out.errors:
                check_output(out, delegate=cmd.delegate)  # raises with the tool's own line
            raise DeviceError(self.serial, "benchmark_model failed", command=shell_cmd, exit_code=res.exit_code,
                              stdout=res.stdout, stderr=res.stderr)
        return out

    # ---- Workload ----------------------------------------------------------------------------------

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
        if self._emulated:
            result.warnings.append("emulated phone: timings are the host running the model, not a phone")
        return result

    def run_outputs(
        self, model: ModelArtifact, lr_frames: list[np.ndarray], threads: int, delegate: str, timeout_s: float
    ) -> list[np.ndarray]:
        binary = self.ensure_benchmark_model()
        graph = self.ensure_model(model)
        out_dir = f"{self._remote_dir}/out"
        self.device.sh(["mkdir", "-p", out_dir])
        deadline = time.monotonic() + timeout_s
        results: list[np.ndarray] = []
        for i, lr in enumerate(lr_frames):
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeviceTimeoutError(self.serial,
                                         f"outputs not done within {timeout_s:g}s ({i} of {len(lr_frames)})")
            remote_out = f"{out_dir}/{model.sha256[:16]}-{i:05d}.bin"
            results.append(self._one_output(binary, graph, model, np.asarray(lr, dtype=np.float32), threads,
                                            delegate, remote_out, left))
        return results

    def _one_output(self, binary: str, graph: str, model: ModelArtifact, frame: np.ndarray, threads: int,
                    delegate: str, remote_out: str, timeout_s: float) -> np.ndarray:
        dev = self.device
        h, w = frame.shape[:2]
        layer, _in_spec, out_spec = self._model_input(model, h, w, frame)
        cmd = BenchmarkCommand(binary=binary, graph=graph, threads=threads, delegate=delegate, num_runs=1,
                               warmup_runs=0, inputs=(layer,), output_filepath=remote_out)
        dev.sh(["rm", "-f", remote_out], check=False)
        out = self._run_tool(cmd, timeout_s)
        check_output(out, delegate=delegate, required_flags=("--output_filepath",))
        if dev.dev.stat(remote_out, timeout_s=dev.timeout_s) is None:
            raise ModelError(f"benchmark_model wrote no output file {remote_out} (does this build support "
                             "--output_filepath?)")
        raw = dev.dev.pull_bytes(remote_out, timeout_s=max(dev.timeout_s, 120.0))
        dev.sh(["rm", "-f", remote_out, layer.value_file or remote_out], check=False)
        if layer.value_file:
            self._s.inputs = {k: v for k, v in self._s.inputs.items() if v != layer.value_file}
        return decode_output(raw, out_spec.shape, out_spec.dtype, out_spec.scale, out_spec.zero_point)

    def run_graph(self, model: ModelArtifact, inputs: list[RawInput], *, delegate: str, threads: int,
                  num_runs: int, warmup_runs: int, timeout_s: float, want_output: bool = False,
                  keep_inputs: bool = True) -> GraphRun:
        """One benchmark_model run of ``model`` on inputs given as raw tensors (pushed once per
        content and kept for the next run, or deleted after it without ``keep_inputs``), e.g. a
        segment of a split plan: the tool's parsed output, checked (the delegate applied), and
        with ``want_output`` the raw bytes it wrote with ``--output_filepath``."""
        binary = self.ensure_benchmark_model()
        graph = self.ensure_model(model)
        layers = tuple(InputLayer(i.name, i.shape, self._push_input(i.data, "g")) for i in inputs)
        remote_out = f"{self._remote_dir}/out/{model.sha256[:16]}-graph.bin" if want_output else None
        if remote_out is not None:
            self.device.sh(["mkdir", "-p", f"{self._remote_dir}/out"])
            self.device.sh(["rm", "-f", remote_out], check=False)
        cmd = BenchmarkCommand(binary=binary, graph=graph, threads=threads, delegate=delegate, num_runs=num_runs,
                               warmup_runs=warmup_runs, inputs=layers, output_filepath=remote_out,
                               max_secs=max(1.0, float(timeout_s)))
        try:
            out = self._run_tool(cmd, timeout_s)
        finally:
            if not keep_inputs:
                self._forget([str(layer.value_file) for layer in layers])
        check_output(out, delegate=delegate, required_flags=("--output_filepath",) if want_output else ())
        raw: bytes | None = None
        if remote_out is not None:
            dev = self.device
            if dev.dev.stat(remote_out, timeout_s=dev.timeout_s) is None:
                raise ModelError(f"benchmark_model wrote no output file {remote_out} (does this build support "
                                 "--output_filepath?)")
            raw = dev.dev.pull_bytes(remote_out, timeout_s=max(dev.timeout_s, 120.0))
            dev.sh(["rm", "-f", remote_out], check=False)
        return GraphRun(out, raw)

    def forget_inputs(self) -> None:
        """Delete the raw inputs pushed so far from the phone (a planner pushes many)."""
        self._forget(sorted(set(self._s.inputs.values())))

    def _forget(self, files: list[str]) -> None:
        """Delete these pushed inputs from the phone (50 to a command) and from what is known to be there."""
        gone = set(files)
        self._s.inputs = {k: v for k, v in self._s.inputs.items() if v not in gone}
        for i in range(0, len(files), 50):
            self.device.sh(["rm", "-f", *files[i:i + 50]], check=False)

    def run_profile(
        self, model: ModelArtifact, threads: int, delegate: str, timeout_s: float, *,
        lr_width: int = 0, lr_height: int = 0,
    ) -> ProfileResult | ProfileMissing:
        """Op profiling in its own benchmark_model pass (never the timed one), at ``lr_width`` ×
        ``lr_height`` when given, on the last timing run's input where that run had this
        geometry; without a geometry, on the last timing run's input (or the model's own shape).
        A zoo model's own shape is 1×1 pixels: a per-layer pass that gave none profiled that."""
        binary = self.ensure_benchmark_model()
        graph = self.ensure_model(model)
        last = self._s.last_geometry.get(model.sha256, (0, 0))
        h, w = (lr_height, lr_width) if lr_width and lr_height else last
        remote_in = self._s.last_input.get(model.sha256) if (h, w) == last else None
        if remote_in and self.device.dev.stat(remote_in, timeout_s=self.device.timeout_s) is not None:
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
        if self._emulated:
            source = "emulated " + source
        prof = profile_result(out, source=source)
        if prof is None:
            return ProfileMissing("benchmark_model --enable_op_profiling printed no Run Order table")
        return prof
