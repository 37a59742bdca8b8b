"""The emulated TFLite ``benchmark_model`` run by emulated phones (``python -m`` this module).

It takes the real tool's flags and prints the real tool's output format (INFO:/WARN: on
stdout, ERROR:/FATAL: and runtime messages on stderr), while running the model for real
through the host's LiteRT interpreter. What is real and what is emulated:

* real: model loading, input resizing and filling (raw files checked against the tensor's
  byte size exactly as the tool does), every invoke and its wall-clock time on the host CPU,
  pacing (run_delay / run_frequency sleep for real), peak RSS deltas of this process,
  ``--output_filepath`` bytes (all outputs of the last invoke, concatenated);
* emulated: delegates (a GPU/NNAPI/Hexagon run still runs on the host CPU but is reported as
  one delegate node, as on a phone; with GPU FP16 allowed the dumped outputs are rounded
  through float16), and the per-op profile: LiteRT cannot time single ops, so the measured
  whole-graph time is apportioned by an estimate of each op's cost. The banner line and a note
  before the profile say so.

Device paths (``/data/local/tmp/...``) are mapped into the phone's sandbox via the
``PERFLAB_EMU_*`` environment the emulated shell sets.
"""

from __future__ import annotations

import math
import os
import posixpath
import re
import resource
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from perflab.zoo.tflite_graph import op_tensor_names

EMULATOR_VERSION = "1"
WRITABLE_PREFIXES = ("/data/local/tmp", "/sdcard")


def _out(msg: str) -> None:
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


def info(msg: str) -> None:
    _out("INFO: " + msg)


def warn(msg: str) -> None:
    _out("WARN: " + msg)


def error(msg: str) -> None:
    sys.stderr.write("ERROR: " + msg + "\n")
    sys.stderr.flush()


def runtime_log(msg: str, level: str = "INFO") -> None:
    """Messages from the TFLite runtime's minimal logger go to stderr."""
    sys.stderr.write(f"{level}: {msg}\n")
    sys.stderr.flush()


class Fatal(Exception):
    pass


def fmt_g(value: float) -> str:
    """C++ ``std::ostream << double`` with default precision (6 significant digits)."""
    if value == 0:
        return "0"
    text = f"{value:.6g}"
    if "e" in text:
        mant, exp = text.split("e")
        sign = exp[0]
        digits = exp[1:].lstrip("0")
        text = f"{mant}e{sign}{digits.zfill(2)}"
    return text


# ============================================================================ flags


@dataclass
class Flag:
    name: str
    kind: str  # int | float | bool | str
    default: Any
    label: str
    value: Any = None
    set_: bool = False


def _flag_table() -> list[Flag]:
    f = Flag
    return [
        f("num_runs", "int", 50, "Min num runs"),
        f("min_secs", "float", 1.0, "Min runs duration (seconds)"),
        f("max_secs", "float", 150.0, "Max runs duration (seconds)"),
        f("run_delay", "float", -1.0, "Inter-run delay (seconds)"),
        f("run_frequency", "float", -1.0, "Number of prorated runs per second"),
        f("num_threads", "int", -1, "Num threads"),
        f("use_caching", "bool", False, "Use caching"),
        f("benchmark_name", "str", "", "Benchmark name"),
        f("output_prefix", "str", "", "Output prefix"),
        f("warmup_runs", "int", 1, "Min warmup runs"),
        f("warmup_min_secs", "float", 0.5, "Min warmup runs duration (seconds)"),
        f("verbose", "bool", False, "Log parameter values verbosely"),
        f("dry_run", "bool", False, "Run w/o invoking kernels"),
        f("report_peak_memory_footprint", "bool", False, "Report the peak memory footprint"),
        f("memory_footprint_check_interval_ms", "int", 50, "Memory footprint check interval (ms)"),
        f("graph", "str", "", "Graph"),
        f("input_layer", "str", "", "Input layers"),
        f("input_layer_shape", "str", "", "Input shapes"),
        f("input_layer_value_range", "str", "", "Input value ranges"),
        f("input_layer_value_files", "str", "", "Input value files"),
        f("allow_fp16", "bool", False, "Allow fp16"),
        f("require_full_delegation", "bool", False, "Require full delegation"),
        f("enable_op_profiling", "bool", False, "Enable op profiling"),
        f("max_profiling_buffer_entries", "int", 1024, "Max initial profiling buffer entries"),
        f("profiling_output_csv_file", "str", "", "CSV File to export profiling data to"),
        f("output_filepath", "str", "", "File path to export outputs layer as binary data"),
        f("use_gpu", "bool", False, "Use gpu"),
        f("gpu_precision_loss_allowed", "bool", True, "Allow lower precision in gpu"),
        f("gpu_experimental_enable_quant", "bool", True, "Enable running quant models in gpu"),
        f("gpu_backend", "str", "", "GPU backend"),
        f("use_nnapi", "bool", False, "Use NNAPI"),
        f("nnapi_execution_preference", "str", "", "NNAPI execution preference"),
        f("nnapi_accelerator_name", "str", "", "NNAPI accelerator name"),
        f("disable_nnapi_cpu", "bool", True, "Disable NNAPI cpu"),
        f("nnapi_allow_fp16", "bool", False, "Allow fp16 in NNAPI"),
        f("use_hexagon", "bool", False, "Use Hexagon"),
        f("hexagon_profiling", "bool", False, "Hexagon profiling"),
        f("hexagon_lib_path", "str", "/data/local/tmp", "Hexagon lib path"),
        f("use_xnnpack", "bool", False, "Use xnnpack"),
        f("xnnpack_force_fp16", "bool", False, "xnnpack force fp16"),
        f("max_delegated_partitions", "int", 0, "Max number of delegated partitions"),
        f("min_nodes_per_partition", "int", 0, "Min nodes per partition"),
    ]


class FlagError(Exception):
    pass


def parse_flags(argv: Sequence[str]) -> tuple[dict[str, Flag], list[str], list[str]]:
    """(flags by name, unconsumed args, delegate order). Booleans accept only true/false."""
    table = {fl.name: fl for fl in _flag_table()}
    unconsumed: list[str] = []
    order: list[str] = []
    for arg in argv:
        if not arg.startswith("--") or "=" not in arg:
            unconsumed.append(arg)
            continue
        name, value = arg[2:].split("=", 1)
        fl = table.get(name)
        if fl is None:
            unconsumed.append(arg)
            continue
        try:
            if fl.kind == "bool":
                if value not in ("true", "false"):
                    raise ValueError(value)
                fl.value = value == "true"
            elif fl.kind == "int":
                fl.value = int(value)
            elif fl.kind == "float":
                fl.value = float(value)
            else:
                fl.value = value
        except ValueError:
            raise FlagError(arg) from None
        fl.set_ = True
        if name in ("use_gpu", "use_nnapi", "use_hexagon", "use_xnnpack") and fl.value:
            order.append(name[4:])
    for fl in table.values():
        if not fl.set_:
            fl.value = fl.default
    return table, unconsumed, order


def _label_value(fl: Flag) -> str:
    if fl.kind == "bool":
        return "1" if fl.value else "0"
    if fl.kind == "float":
        return fmt_g(float(fl.value))
    return str(fl.value)


# ============================================================================ sandbox paths


@dataclass(frozen=True)
class Sandbox:
    root: Path | None
    cwd: str
    profile: str

    @classmethod
    def from_env(cls) -> Sandbox:
        root = os.environ.get("PERFLAB_EMU_ROOT")
        return cls(Path(root) if root else None, os.environ.get("PERFLAB_EMU_CWD", "/"),
                   os.environ.get("PERFLAB_EMU_PROFILE", ""))

    def device_path(self, path: str) -> str:
        joined = path if path.startswith("/") else posixpath.join(self.cwd, path)
        return posixpath.normpath(joined)

    def host(self, path: str) -> Path:
        if self.root is None:
            return Path(path)
        dev = self.device_path(path)
        host = (self.root / dev.lstrip("/")).resolve()
        if host != self.root and self.root not in host.parents:
            return self.root / "__nonexistent__"
        return host

    def writable(self, path: str) -> bool:
        if self.root is None:
            return True
        dev = self.device_path(path)
        return any(dev == p or dev.startswith(p + "/") for p in WRITABLE_PREFIXES)


# ============================================================================ statistics


@dataclass
class Stat:
    values_us: list[int] = field(default_factory=list)

    def add(self, v: int) -> None:
        self.values_us.append(v)

    @property
    def count(self) -> int:
        return len(self.values_us)

    def avg(self) -> float:
        return sum(self.values_us) / len(self.values_us) if self.values_us else 0.0

    def std(self) -> int:
        if not self.values_us:
            return 0
        a = self.avg()
        var = sum(v * v for v in self.values_us) / len(self.values_us) - a * a
        return int(math.sqrt(max(0.0, var)))

    def line(self) -> str:
        v = self.values_us
        if not v:
            return "count=0"
        if len(v) > 1 and all(x == v[0] for x in v):
            return f"count={len(v)} curr={v[-1]}(all same)"
        if len(v) == 1:
            return f"count=1 curr={v[0]}"
        return (f"count={len(v)} first={v[0]} curr={v[-1]} min={min(v)} max={max(v)} "
                f"avg={fmt_g(self.avg())} std={self.std()}")


# ============================================================================ profile tables

_W_TYPE, _W_START, _W_FIRST, _W_AVG, _W_PCT, _W_CDF, _W_MEM, _W_TIMES = 24, 17, 9, 9, 8, 8, 10, 9


@dataclass
class ProfRow:
    node_type: str
    name: str
    first_ms: float
    avg_ms: float
    times_called: int = 1
    mem_kb: float = 0.0


def _row_text(r: ProfRow, pct: float, cdf: float) -> str:
    return (f"\t{r.node_type:>{_W_TYPE}}\t{r.first_ms:>{_W_FIRST}.3f}\t{r.avg_ms:>{_W_AVG}.3f}\t"
            f"{f'{pct:.3f}%':>{_W_PCT}}\t{f'{cdf:.3f}%':>{_W_CDF}}\t{r.mem_kb:>{_W_MEM}.3f}\t"
            f"{r.times_called:>{_W_TIMES}d}\t{r.name}")


_HEADER = (f"\t{'[node type]':>{_W_TYPE}}\t{'[first]':>{_W_FIRST}}\t{'[avg ms]':>{_W_AVG}}\t{'[%]':>{_W_PCT}}\t"
           f"{'[cdf%]':>{_W_CDF}}\t{'[mem KB]':>{_W_MEM}}\t[times called]\t[Name]")


def profile_block(title: str, rows: list[ProfRow], timings: Stat) -> str:
    total = sum(r.avg_ms for r in rows) or 1.0
    lines = [title, "=" * 30 + " Run Order " + "=" * 30, _HEADER]
    cdf = 0.0
    for r in rows:
        pct = 100.0 * r.avg_ms / total
        cdf += pct
        lines.append(_row_text(r, pct, cdf))
    lines += ["", "=" * 30 + " Top by Computation Time " + "=" * 30, _HEADER]
    cdf = 0.0
    for r in sorted(rows, key=lambda x: -x.avg_ms)[:10]:
        pct = 100.0 * r.avg_ms / total
        cdf += pct
        lines.append(_row_text(r, pct, cdf))
    lines += ["", f"Number of nodes executed: {len(rows)}",
              "=" * 30 + " Summary by node type " + "=" * 30,
              (f"\t{'[Node type]':>{_W_TYPE}}\t{'[count]':>9}\t{'[avg ms]':>10}\t{'[avg %]':>11}\t{'[cdf %]':>11}\t"
              f"{'[mem KB]':>10}\t[times called]")]
    by_type: dict[str, list[ProfRow]] = {}
    for r in rows:
        by_type.setdefault(r.node_type, []).append(r)
    cdf = 0.0
    for node_type, group in sorted(by_type.items(), key=lambda kv: -sum(r.avg_ms for r in kv[1])):
        avg = sum(r.avg_ms for r in group)
        pct = 100.0 * avg / total
        cdf += pct
        lines.append(f"\t{node_type:>{_W_TYPE}}\t{len(group):>9d}\t{avg:>10.3f}\t{f'{pct:.3f}%':>11}\t"
                     f"{f'{cdf:.3f}%':>11}\t{0.0:>10.3f}\t{sum(r.times_called for r in group):>9d}")
    lines += ["", "Timings (microseconds): " + timings.line(), "Memory (bytes): count=0",
              f"{len(rows)} nodes observed", ""]
    return "\n".join(lines)


_XNNPACK_TYPES = {
    "CONV_2D": "Convolution (NHWC, {t}) IGEMM",
    "DEPTHWISE_CONV_2D": "Convolution (NHWC, {t}) DWConv",
    "TRANSPOSE_CONV": "Deconvolution (NHWC, {t})",
    "FULLY_CONNECTED": "Fully Connected (NC, {t})",
    "ADD": "Add (ND, {t})",
    "MUL": "Multiply (ND, {t})",
    "SUB": "Subtract (ND, {t})",
    "DEPTH_TO_SPACE": "Depth To Space (NHWC, X32)",
    "CONCATENATION": "Concatenate (ND, X32)",
    "RESIZE_BILINEAR": "Resize Bilinear (NHWC, {t})",
    "PRELU": "PReLU (NC, {t})",
    "RELU": "Clamp (NC, {t})",
    "RELU6": "Clamp (NC, {t})",
    "LOGISTIC": "Sigmoid (NC, {t})",
    "HARD_SWISH": "HardSwish (NC, {t})",
    "AVERAGE_POOL_2D": "Average Pooling (NHWC, {t})",
    "MAX_POOL_2D": "Max Pooling (NHWC, {t})",
    "QUANTIZE": "Convert (NC, F32, QS8)",
    "DEQUANTIZE": "Convert (NC, QS8, F32)",
    "RESHAPE": "Copy (NC, X32)",
}

_DELEGATE_NODE = {"gpu": "TfLiteGpuDelegateV2", "nnapi": "TfLiteNnapiDelegate", "hexagon": "TfLiteHexagonDelegate"}
_DELEGATE_LOG = {"gpu": "GPU", "nnapi": "NNAPI", "hexagon": "Hexagon", "xnnpack": "XNNPACK"}


# ============================================================================ the run


@dataclass
class OpInfo:
    index: int
    name: str
    outputs: list[int]
    inputs: list[int]
    cost: float


def _max_rss_kb() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _proc_status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


class _PeakMonitor:
    def __init__(self, interval_ms: int) -> None:
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._interval_s = max(0.001, interval_ms / 1000.0)
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._sample()

    def _sample(self) -> None:
        v = _proc_status_mb("VmRSS")
        if v is not None:
            self.peak_mb = max(self.peak_mb, v)

    def start(self) -> None:
        self._sample()
        self._t.start()

    def stop(self) -> None:
        self._stop.set()
        self._t.join()
        self._sample()


class _Abort(Exception):
    """The tool stops here; its messages are already printed."""

    def __init__(self, code: int = 1) -> None:
        self.code = code


def _fail(*lines: str) -> _Abort:
    for line in lines:
        error(line)
    error("Benchmarking failed.")
    return _Abort(1)


def _fatal(message: str) -> _Abort:
    sys.stderr.write(f"FATAL: {message}\n")
    sys.stderr.flush()
    return _Abort(134)


def _banner(sandbox: Sandbox, v: dict[str, Flag], unconsumed: list[str]) -> None:
    from importlib.metadata import version as _pkg_version

    try:
        litert_version = _pkg_version("ai-edge-litert")
    except Exception:  # noqa: BLE001
        litert_version = "unknown"
    info(f"perflab emulated benchmark_model v{EMULATOR_VERSION} (profile {sandbox.profile or 'none'}; "
         f"LiteRT {litert_version} on the host CPU): timings are host timings, delegates and op profiles are "
         "emulated")
    if unconsumed:
        warn("Unconsumed cmdline flags: " + " ".join(unconsumed))
    verbose = bool(v["verbose"].value)
    info(f"Log parameter values verbosely: [{1 if verbose else 0}]")
    for fl in v.values():
        if fl.name != "verbose" and (verbose or fl.set_):
            info(f"{fl.label}: [{_label_value(fl)}]")


def _model_path(sandbox: Sandbox, v: dict[str, Flag]) -> tuple[str, Path]:
    graph = str(v["graph"].value)
    if not graph:
        raise _fail("Please specify the name of your TF Lite input file with --graph")
    model_host = sandbox.host(graph)
    if not model_host.is_file():
        raise _fail(f"Could not open '{graph}'.", f"Failed to mmap model {graph}")
    info(f"Loaded model {graph}")
    return graph, model_host


def _first_supported_delegate(profile_name: str, delegate_order: list[str]) -> str | None:
    supports = _profile_delegates(profile_name)
    applied: str | None = None
    for d in delegate_order:
        if d == "xnnpack":
            continue
        if not supports.get(d, False):
            warn(f"Could not create {_DELEGATE_LOG[d]} delegate: platform may not support delegate or required "
                 "libraries are missing")
        elif applied is None:
            applied = d
    return applied


def _interpreter(graph: str, model_host: Path, threads: int, default_delegates: bool) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    runtime_log("Initialized TensorFlow Lite runtime.")
    kwargs: dict[str, Any] = {"model_path": str(model_host)}
    if threads > 0:
        kwargs["num_threads"] = threads
    if not default_delegates:
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        return Interpreter(**kwargs)
    except (ValueError, RuntimeError) as exc:
        raise _fail(f"Failed to load model {graph}: {exc}") from None


def _resize_inputs(interp: Any, v: dict[str, Flag]) -> None:
    """--input_layer / --input_layer_shape."""
    names = [s for s in str(v["input_layer"].value).split(",") if s]
    shapes = [s for s in str(v["input_layer_shape"].value).split(":") if s]
    if shapes and len(names) != len(shapes):
        raise _fail("There must be the same number of items in --input_layer as in --input_layer_shape.")
    by_name = {d["name"]: d for d in interp.get_input_details()}
    for i, nm in enumerate(names):
        if nm not in by_name:
            raise _fail(f"Cannot find the corresponding input_layer name ({nm}) in the model.")
        if i < len(shapes):
            try:
                dims = [int(x) for x in shapes[i].split(",")]
            except ValueError:
                raise _fail(f"Incorrect size string specified: {shapes[i]}") from None
            interp.resize_tensor_input(by_name[nm]["index"], dims, strict=False)


def _allocate(interp: Any) -> float:
    t_alloc = time.perf_counter()
    try:
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise _fail(f"Failed to allocate tensors! {exc}") from None
    return (time.perf_counter() - t_alloc) * 1000.0


def _announce_delegate(interp: Any, applied: str | None, delegate_order: list[str], xnnpack_off: bool,
                       profile_name: str, n_builtin: int) -> str | None:
    """The delegate log lines TFLite prints; the delegate actually used (Hexagon needs a quantized model)."""
    notes: list[str] = []
    if applied is not None:
        quantized = any(str(d["dtype"]).endswith(("uint8'>", "int8'>")) for d in interp.get_input_details())
        if applied == "hexagon" and not quantized:
            notes.append("Though Hexagon delegate is explicitly applied, the model graph will not be executed "
                         "by the delegate.")
            applied = None
        else:
            _delegate_log_lines(applied, profile_name, n_builtin)
            notes.append(f"Explicitly applied {_DELEGATE_LOG[applied]} delegate, and the model graph will be "
                         "completely executed by the delegate.")
    elif "xnnpack" in delegate_order and not xnnpack_off:
        notes.append("Explicitly applied XNNPACK delegate, and the model graph will be completely executed by "
                     "the delegate.")
    for line in notes:
        info(line)
    return applied


def _delegate_log_lines(applied: str, profile_name: str, n_builtin: int) -> None:
    if applied == "gpu":
        runtime_log("Created TensorFlow Lite delegate for GPU.")
        runtime_log(_profile_gpu_line(profile_name))
        runtime_log(f"Replacing {n_builtin} out of {n_builtin} node(s) with delegate (TfLiteGpuDelegateV2) "
                    "node, yielding 1 partitions for the whole graph.", "VERBOSE")
        runtime_log("Created 1 GPU delegate kernels.")
    elif applied == "nnapi":
        runtime_log("Created TensorFlow Lite delegate for NNAPI.")
        runtime_log(f"Replacing {n_builtin} out of {n_builtin} node(s) with delegate (TfLiteNnapiDelegate) "
                    "node, yielding 1 partitions for the whole graph.", "VERBOSE")
    else:
        runtime_log(f"Hexagon delegate: 1 nodes delegated out of {n_builtin} nodes with 1 partitions.")


def _value_files(v: dict[str, Flag]) -> dict[str, str]:
    value_files: dict[str, str] = {}
    for item in _split_value_files(str(v["input_layer_value_files"].value)):
        nm, sep, path = item.rpartition(":")
        if not sep:
            raise _fail(f"Wrong input value file item specified: {item}")
        value_files[nm.replace("::", ":")] = path
    return value_files


def _set_inputs(interp: Any, sandbox: Sandbox, v: dict[str, Flag]) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    value_files = _value_files(v)
    for d in interp.get_input_details():
        shape = [int(x) for x in d["shape"]]
        dtype = np.dtype(d["dtype"])
        if d["name"] in value_files:
            arr = _input_from_file(sandbox, value_files[d["name"]], shape, dtype)
        else:
            arr = _random_input(rng, shape, dtype)
        interp.set_tensor(d["index"], arr)


def _input_from_file(sandbox: Sandbox, path: str, shape: list[int], dtype: Any) -> Any:
    import numpy as np

    nbytes = int(np.prod(shape)) * dtype.itemsize
    try:
        raw = sandbox.host(path).read_bytes()
    except OSError:
        raise _fatal(f"Cannot read the input file {path}") from None
    if len(raw) != nbytes:
        raise _fatal(f"The size of {path} is {len(raw)} bytes. It should be {nbytes} bytes.")
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _random_input(rng: Any, shape: list[int], dtype: Any) -> Any:
    import numpy as np

    if dtype in (np.float32, np.float16):
        return rng.uniform(-0.5, 0.5, size=shape).astype(dtype)
    if dtype == np.uint8:
        return rng.integers(0, 255, size=shape, dtype=np.uint8)
    if dtype == np.int8:
        return rng.integers(-127, 128, size=shape, dtype=np.int8)
    return np.zeros(shape, dtype=dtype)


class _Pacer:
    """How runs are spaced: --run_frequency (fixed starts) or --run_delay (a pause between runs)."""

    def __init__(self, v: dict[str, Flag]) -> None:
        self.run_delay = float(v["run_delay"].value)
        self.run_freq = float(v["run_frequency"].value)
        self.next_start = 0.0

    def start(self, now: float) -> None:
        self.next_start = now

    def before_next_run(self) -> None:
        if self.run_freq > 0:
            self.next_start += 1.0 / self.run_freq
            delay = self.next_start - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        elif self.run_delay > 0:
            time.sleep(self.run_delay)


LAYER_DELAYS_ENV = "PERFLAB_EMU_LAYER_DELAYS_MS"


def parse_layer_delays(spec: str) -> dict[str, float]:
    """``"c2=12,c3=6"`` (ms per layer; ``;`` also separates) → {layer: ms}; junk is ignored."""
    out: dict[str, float] = {}
    for part in spec.replace(";", ",").split(","):
        name, sep, value = part.strip().partition("=")
        try:
            ms = float(value)
        except ValueError:
            continue
        if sep and name.strip() and math.isfinite(ms) and ms > 0:
            out[name.strip()] = ms
    return out


def layer_delay_s(tensor_names: Sequence[str], delays_ms: dict[str, float]) -> float:
    """The injected delay of one invoke (s): every instance of a named layer that the model
    contains — found in its ops' output tensor names ``<model>_1/<layer>_1/…``; a copy
    ``<layer>_dup`` is another instance — adds that layer's delay once."""
    import re

    total_ms = 0.0
    for layer, ms in delays_ms.items():
        pat = re.compile(rf"(?:^|[/;\[]){re.escape(layer)}((?:_dup)*)(?:_\d+)?/")
        instances = {m.group(1) for n in tensor_names for m in pat.finditer(n)}
        total_ms += ms * len(instances)
    return total_ms / 1000.0


def _sleep_until(deadline: float) -> None:
    """Spin until ``deadline``: an injected delay is a layer that computes longer, so the CPU
    stays busy (a sleep would let it cool and slow the next invoke), exact to a few µs."""
    while time.perf_counter() < deadline:
        pass


def _injected_delay_s(interp: Any) -> float:
    delays = parse_layer_delays(os.environ.get(LAYER_DELAYS_ENV, ""))
    if not delays:
        return 0.0
    return layer_delay_s(list(op_tensor_names(interp).values()), delays)


@dataclass(frozen=True)
class RpcTiming:
    """How long the hand-overs inside an accelerator delegate's node take in the emulated
    kernel trace (µs): the ground truth a test expects the attribution to recover.

    NNAPI: the delegate prepares the request (``nnapi_prep_us``), calls the NN HAL service over
    binder (``binder_wake_us`` until its binder thread has it); on a Qualcomm phone the HAL
    hands the work to the DSP over fastrpc after ``hal_to_dsp_us`` and replies ``dsp_to_hal_us``
    after the DSP's response; the reply reaches the caller ``binder_wake_us`` later and the node
    ends ``return_us`` after that. Hexagon: the delegate calls the cDSP over fastrpc directly
    (``hexagon_prep_us`` after the node's begin; the node ends ``hexagon_return_us`` after the
    response)."""

    nnapi_prep_us: float = 45.0
    binder_wake_us: float = 18.0
    hal_to_dsp_us: float = 30.0
    dsp_to_hal_us: float = 25.0
    return_us: float = 35.0
    hexagon_prep_us: float = 40.0
    hexagon_return_us: float = 30.0

    def nnapi_fixed_us(self, dsp: bool) -> float:
        return self.nnapi_prep_us + 2 * self.binder_wake_us + self.return_us + (
            self.hal_to_dsp_us + self.dsp_to_hal_us if dsp else 0.0)


RPC_TIMING = RpcTiming()
#: the emulated NN HAL service: its pid and the binder thread that serves the benchmark
NN_HAL_PID = 1190
NN_HAL_TID = 1204
NN_HAL_NODE = 40421  # the debug id of the HAL's IPreparedModel binder node
CDSP_CID = 3  # fastrpc's domain id of the compute DSP


def _profile_gpu(name: str) -> tuple[bool, str, int]:
    """(Qualcomm, the GPU's irq name, its irq number) of a profile. A Qualcomm phone (Adreno,
    kgsl; its irq ``kgsl-3d0``) has the dsp-kernel's fastrpc events and runs its NN HAL on the
    Hexagon DSP; Mali's kbase names its irqs after the GPU's device node (``28000000.mali``)."""
    if not name:
        return False, "kgsl-3d0", 300
    from perflab.emulator.profiles import load_profile

    gpu = load_profile(name).gpu
    if gpu.kind == "kgsl":
        return True, "kgsl-3d0", 300
    m = re.search(r"/([0-9a-f]+\.mali)(?:/|$)", gpu.busy_path)
    return False, m.group(1) if m else "13000000.mali", 282


class TraceWriter:
    """While the phone traces (``PERFLAB_EMU_TRACE_FILE`` set by the emulated shell), writes
    what a kernel trace of the real tool would hold: with ``debug.tflite.trace`` = 1 at start,
    ATrace sections ``Invoke`` and per operator ``<OP>@<node>/0`` (a delegate is one node
    ``TfLiteGpuDelegateV2@0/0``); with irq events on and the GPU delegate, a GPU irq at the
    end of each GPU window (``kgsl-3d0`` on Adreno, the device node's name such as
    ``28000000.mali`` on Mali); with the NNAPI delegate, the binder call to the NN HAL
    service and its reply (``binder_transaction`` / ``binder_transaction_received``), and on a
    Qualcomm phone the HAL's fastrpc round trip to the cDSP inside it; with the Hexagon
    delegate, the tool's own fastrpc round trip (``fastrpc_transport_send`` /
    ``fastrpc_transport_response``). Hand-over times are :data:`RPC_TIMING`. The kernel events
    are written whatever is enabled: the phone's tracefs keeps those its trace arrays had
    enabled at that moment. Operators' spans are the measured invoke time apportioned by op
    cost (LiteRT cannot time single ops), plus each injected layer delay inside that layer's
    operators. Timestamps are the phone's boot clock."""

    def __init__(self, interp: Any, ops: list[OpInfo], applied: str | None, profile: str = "") -> None:
        self.path = os.environ.get("PERFLAB_EMU_TRACE_FILE", "")
        self.offset_s = float(os.environ.get("PERFLAB_EMU_TRACE_OFFSET_S", "0") or 0)
        self.atrace = os.environ.get("PERFLAB_EMU_ATRACE") == "1"
        self.irq = os.environ.get("PERFLAB_EMU_TRACE_IRQ") == "1" and applied == "gpu"
        qualcomm, self.gpu_irq, self.gpu_irq_no = _profile_gpu(profile) if self.path else (False, "", 0)
        self.binder = bool(self.path) and applied == "nnapi"
        # the dsp-kernel's events exist on Qualcomm kernels only
        self.fastrpc = qualcomm and applied in ("nnapi", "hexagon")
        self.applied = applied
        self.pid, self.tid = os.getpid(), threading.get_native_id()
        self._tx = 700_000 + (self.pid % 1000) * 100  # binder transaction debug ids
        self._ctx = 0
        delays = parse_layer_delays(os.environ.get(LAYER_DELAYS_ENV, ""))
        names = op_tensor_names(interp)
        builtin = [o for o in ops if o.name != "DELEGATE"]
        # (section name, cost share, injected delay in s)
        per_instance: dict[tuple[str, str], list[int]] = {}
        for k, o in enumerate(builtin):
            out = names.get(o.index, "")
            for layer in delays:
                m = re.search(rf"(?:^|[/;\[]){re.escape(layer)}((?:_dup)*)(?:_\d+)?/", out)
                if m:
                    per_instance.setdefault((layer, m.group(1)), []).append(k)
                    break
        extra = [0.0] * len(builtin)
        for (layer, _), ks in per_instance.items():
            for k in ks:
                extra[k] += delays[layer] / 1000.0 / len(ks)
        total = sum(o.cost for o in builtin) or 1.0
        if applied in _DELEGATE_NODE:
            self.spans = [(f"{_DELEGATE_NODE[applied]}@0/0", 1.0, sum(extra))]
        else:
            self.spans = [(f"{o.name}@{o.index}/0", o.cost / total, extra[k]) for k, o in enumerate(builtin)]

    @property
    def active(self) -> bool:
        return bool(self.path) and (self.atrace or self.irq or self.binder or self.fastrpc)

    def _line(self, ts_s: float, text: str) -> str:
        return self._event(ts_s, "tracing_mark_write", text)

    def _event(self, ts_s: float, event: str, payload: str, *, comm: str = "benchmark_model",
               tid: int | None = None, cpu: int = 1, flags: str = ".....") -> str:
        who = f"{comm:>16}-{self.tid if tid is None else tid:<7}"  # the kernel's "%16s-%-7d"
        return f"{who} [{cpu:03d}] {flags}  {ts_s - self.offset_s:.6f}: {event}: {payload}\n"

    def _fastrpc(self, send_s: float, resp_s: float, *, comm: str, tid: int, cpu: int) -> list[str]:
        """One fastrpc round trip to the cDSP (dsp-kernel's TP_printk formats)."""
        self._ctx += 1
        ctx = (self._ctx % 4096) << 4 | 0x1
        smq = 0xFFFFFF8012340000 + (self._ctx % 256) * 0x100
        send = (f"to cid {CDSP_CID}: smq_ctx 0x{smq:x}, ctx 0x{ctx:x}, handle 0x1, sc 0x2020200, "
                f"addr 0xb4000075a8e1c000, size 4096")
        resp = f"from cid {CDSP_CID}: ctx 0x{ctx:x}, retval 0x0, rsp_flags 0, early_wake_time 0"
        return [self._event(send_s, "fastrpc_transport_send", send, comm=comm, tid=tid, cpu=cpu),
                self._event(resp_s, "fastrpc_transport_response", resp, comm="<idle>", tid=0, cpu=0, flags="d.h1.")]

    def _rpc(self, begin_s: float, end_s: float) -> list[str]:
        """The kernel's RPC events inside one delegate node [begin_s, end_s]."""
        t = RPC_TIMING
        if self.applied == "hexagon":
            if not self.fastrpc:
                return []
            scale = min(1.0, 0.8 * (end_s - begin_s) / ((t.hexagon_prep_us + t.hexagon_return_us) * 1e-6))
            return self._fastrpc(begin_s + t.hexagon_prep_us * 1e-6 * scale,
                                 end_s - t.hexagon_return_us * 1e-6 * scale, comm="benchmark_model", tid=self.tid,
                                 cpu=1)
        if not self.binder:
            return []
        scale = min(1.0, 0.8 * (end_s - begin_s) / (t.nnapi_fixed_us(self.fastrpc) * 1e-6))
        us = 1e-6 * scale
        call_s = begin_s + t.nnapi_prep_us * us
        got_s = call_s + t.binder_wake_us * us
        reply_got_s = end_s - t.return_us * us
        reply_s = reply_got_s - t.binder_wake_us * us
        hal = f"binder:{NN_HAL_PID}_2"
        self._tx += 2
        call, reply = self._tx, self._tx + 1
        lines = [
            self._event(call_s, "binder_transaction",
                        f"transaction={call} dest_node={NN_HAL_NODE} dest_proc={NN_HAL_PID} dest_thread=0 "
                        f"reply=0 flags=0x10 code=0x2"),
            self._event(got_s, "binder_transaction_received", f"transaction={call}", comm=hal, tid=NN_HAL_TID,
                        cpu=2),
        ]
        if self.fastrpc:
            lines += self._fastrpc(got_s + t.hal_to_dsp_us * us, reply_s - t.dsp_to_hal_us * us, comm=hal,
                                   tid=NN_HAL_TID, cpu=2)
        lines += [
            self._event(reply_s, "binder_transaction",
                        f"transaction={reply} dest_node=0 dest_proc={self.pid} dest_thread={self.tid} reply=1 "
                        f"flags=0x0 code=0x0", comm=hal, tid=NN_HAL_TID, cpu=2),
            self._event(reply_got_s, "binder_transaction_received", f"transaction={reply}"),
        ]
        return lines

    def invoke(self, begin_s: float, invoke_end_s: float, end_s: float) -> None:
        """One invoke: started at ``begin_s``, the interpreter returned at ``invoke_end_s``, the
        injected delay ended at ``end_s`` (host monotonic seconds)."""
        lines: list[str] = []
        if self.atrace:
            lines.append(self._line(begin_s, f"B|{self.pid}|Invoke"))
        t = begin_s
        run = invoke_end_s - begin_s
        for name, share, extra in self.spans:
            end = t + run * share + extra
            if self.atrace:
                lines.append(self._line(t, f"B|{self.pid}|{name}"))
            if self.irq:
                off = self.offset_s
                irq_t = max(t, end - 60e-6)
                lines.append(f"          <idle>-0       [000] d.h1.  {irq_t - off:.6f}: irq_handler_entry: "
                             f"irq={self.gpu_irq_no} name={self.gpu_irq}\n")
                lines.append(f"          <idle>-0       [000] d.h1.  {irq_t + 10e-6 - off:.6f}: irq_handler_exit: "
                             f"irq={self.gpu_irq_no} ret=handled\n")
            lines += self._rpc(t, end)
            if self.atrace:
                lines.append(self._line(end, f"E|{self.pid}"))
            t = end
        if self.atrace:
            lines.append(self._line(max(t, end_s), f"E|{self.pid}"))
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write("".join(lines))


def _run_phase(interp: Any, v: dict[str, Flag], min_runs: int, min_secs: float, delay_s: float = 0.0,
               tracer: TraceWriter | None = None) -> Stat:
    max_secs = float(v["max_secs"].value)
    dry = bool(v["dry_run"].value)
    pacer = _Pacer(v)
    info(f"Running benchmark for at least {min_runs} iterations and at least {fmt_g(min_secs)} seconds but "
         f"terminate if exceeding {fmt_g(max_secs)} seconds.")
    stat = Stat()
    start = time.perf_counter()
    pacer.start(start)
    while True:
        elapsed = time.perf_counter() - start
        if (stat.count >= min_runs and elapsed >= min_secs) or elapsed >= max_secs:
            break
        if stat.count > 0:
            pacer.before_next_run()
        t = time.perf_counter_ns()
        m0 = time.monotonic()
        if not dry:
            interp.invoke()
            m1 = time.monotonic()
            if delay_s:
                _sleep_until(time.perf_counter() + delay_s)
        stat.add(max(0, (time.perf_counter_ns() - t) // 1000))
        if tracer is not None and not dry:
            tracer.invoke(m0, m1, time.monotonic())
    info(stat.line())
    _out("")
    return stat


def _memory_lines(start_rss_kb: int, init_rss_kb: int, monitor: _PeakMonitor | None) -> None:
    end_rss_kb = _max_rss_kb()
    info("Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the "
         "actual memory footprint of the model at runtime. Take the information at your discretion.")
    info(f"Memory footprint delta from the start of the tool (MB): init={fmt_g((init_rss_kb - start_rss_kb) / 1024.0)}"
         f" overall={fmt_g((end_rss_kb - start_rss_kb) / 1024.0)}")
    if monitor:
        info(f"Overall peak memory footprint (MB) via periodic monitoring: {fmt_g(monitor.peak_mb)}")
        rss = _proc_status_mb("VmRSS") or 0.0
        anon = _proc_status_mb("RssAnon") or 0.0
        file_ = (_proc_status_mb("RssFile") or 0.0) + (_proc_status_mb("RssShmem") or 0.0)
        info("Memory status at the end of exeution:")
        info(f"- VmRSS              : {int(rss)} MB")
        info(f"+ RssAnnon           : {int(anon)} MB")
        info(f"+ RssFile + RssShmem : {int(file_)} MB")


def _write_outputs(interp: Any, sandbox: Sandbox, v: dict[str, Flag], applied: str | None) -> None:
    import numpy as np

    out_path = str(v["output_filepath"].value)
    if not out_path:
        return
    if not sandbox.writable(out_path):
        raise _fail(f"Failed to open output file {out_path}")
    blobs = []
    for d in interp.get_output_details():
        arr = interp.get_tensor(d["index"])
        if applied == "gpu" and v["gpu_precision_loss_allowed"].value and arr.dtype == np.float32:
            arr = arr.astype(np.float16).astype(np.float32)  # the GPU's FP16 path, emulated
        blobs.append(np.ascontiguousarray(arr).tobytes())
    try:
        sandbox.host(out_path).write_bytes(b"".join(blobs))
    except OSError:
        raise _fail(f"Failed to open output file {out_path}") from None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    except _Abort as stop:
        return stop.code


def _main(args: list[str]) -> int:
    start_rss_kb = _max_rss_kb()
    sandbox = Sandbox.from_env()
    info("STARTING!")
    try:
        v, unconsumed, delegate_order = parse_flags(args)
    except FlagError as exc:
        error(f"Failed to parse flag '{exc}'. Booleans take only true or false.")
        error("usage: benchmark_model --graph=<model.tflite> [flags]  (perflab emulated benchmark_model)")
        return 1
    _banner(sandbox, v, unconsumed)
    graph, model_host = _model_path(sandbox, v)
    profile_name = sandbox.profile
    applied = _first_supported_delegate(profile_name, delegate_order)
    xnnpack_off = bool(v["use_xnnpack"].set_ and not v["use_xnnpack"].value)
    t0 = time.perf_counter()
    interp = _interpreter(graph, model_host, int(v["num_threads"].value),
                          default_delegates=not xnnpack_off and applied is None)
    modify_graph_ms = (time.perf_counter() - t0) * 1000.0
    _resize_inputs(interp, v)
    alloc_ms = _allocate(interp)
    ops = _ops(interp)
    applied = _announce_delegate(interp, applied, delegate_order, xnnpack_off, profile_name,
                                 sum(1 for o in ops if o.name != "DELEGATE"))
    info(f"The input model file size (MB): {fmt_g(model_host.stat().st_size / 1e6)}")
    init_ms = (time.perf_counter() - t0) * 1000.0
    info(f"Initialized session in {fmt_g(init_ms)}ms.")
    init_rss_kb = _max_rss_kb()
    _set_inputs(interp, sandbox, v)
    monitor = _PeakMonitor(int(v["memory_footprint_check_interval_ms"].value)) \
        if v["report_peak_memory_footprint"].value else None
    if monitor:
        monitor.start()
    try:
        delay_s = _injected_delay_s(interp)
        tracer = TraceWriter(interp, ops, applied, profile_name)
        tw = tracer if tracer.active else None
        warm = _run_phase(interp, v, int(v["warmup_runs"].value), float(v["warmup_min_secs"].value), delay_s, tw)
        runs = _run_phase(interp, v, int(v["num_runs"].value), float(v["min_secs"].value), delay_s, tw)
    except RuntimeError as exc:
        raise _fail(f"Failed to invoke! {exc}") from None
    if monitor:
        monitor.stop()
    first = warm.values_us[0] if warm.values_us else 0
    info(f"Inference timings in us: Init: {int(init_ms * 1000)}, First inference: {first}, Warmup (avg): "
         f"{fmt_g(warm.avg())}, Inference (avg): {fmt_g(runs.avg())}")
    _memory_lines(start_rss_kb, init_rss_kb, monitor)
    if v["enable_op_profiling"].value:
        _print_profile(interp, ops, applied, xnnpack_off, warm, runs, modify_graph_ms, alloc_ms, v)
    _write_outputs(interp, sandbox, v, applied)
    return 0


def _split_value_files(text: str) -> list[str]:
    if not text:
        return []
    return [p for p in text.split(",") if p]


def _profile_delegates(name: str) -> dict[str, bool]:
    if not name:
        return {"gpu": True, "nnapi": True, "hexagon": False}
    from perflab.emulator.profiles import load_profile

    d = load_profile(name).delegates
    return {"gpu": d.gpu, "nnapi": d.nnapi, "hexagon": d.hexagon}


def _profile_gpu_line(name: str) -> str:
    if not name:
        return "Initialized OpenCL-based API."
    from perflab.emulator.profiles import load_profile

    return load_profile(name).gpu_backend_line


def _ops(interp: Any) -> list[OpInfo]:
    import numpy as np

    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    in_shape = [int(x) for x in interp.get_input_details()[0]["shape"]]
    hw = int(np.prod(in_shape[1:3])) if len(in_shape) == 4 else int(np.prod(in_shape))
    out: list[OpInfo] = []
    for op in interp._get_ops_details():
        weights = 0
        for idx in op["inputs"]:
            t = tensors.get(int(idx))
            if t is not None and len(t["shape"]) >= 2 and int(idx) not in {d["index"] for d in
                                                                            interp.get_input_details()}:
                shape = [int(x) for x in t["shape"]]
                if shape and shape[0] != 1:
                    weights = max(weights, int(np.prod(shape)))
        cost = float(weights * hw) if weights else float(hw * 4)
        out.append(OpInfo(int(op["index"]), str(op["op_name"]), [int(x) for x in op["outputs"]],
                          [int(x) for x in op["inputs"]], cost))
    return out


def _tensor_name(interp: Any, idx: int) -> str:
    for t in interp.get_tensor_details():
        if t["index"] == idx:
            return str(t["name"])
    return str(idx)


def _print_profile(interp: Any, ops: list[OpInfo], applied: str | None, xnnpack_off: bool, warm: Stat, runs: Stat,
                   modify_graph_ms: float, alloc_ms: float, v: dict[str, Flag]) -> None:
    builtin = [o for o in ops if o.name != "DELEGATE"]
    first_ms = (warm.values_us[0] if warm.values_us else 0) / 1000.0
    avg_ms = runs.avg() / 1000.0
    init_rows = []
    if applied is not None or not xnnpack_off:
        init_rows.append(ProfRow("ModifyGraphWithDelegate", "ModifyGraphWithDelegate/0", modify_graph_ms,
                                 modify_graph_ms))
    init_rows.append(ProfRow("AllocateTensors", "AllocateTensors/0", alloc_ms, alloc_ms))
    init_stat = Stat([int(sum(r.avg_ms for r in init_rows) * 1000)])
    rows: list[ProfRow] = []
    if applied is not None:
        last_out = builtin[-1].outputs[0] if builtin and builtin[-1].outputs else 0
        rows.append(ProfRow(_DELEGATE_NODE[applied], f"[{_tensor_name(interp, last_out)}]:{len(builtin)}",
                            first_ms, avg_ms))
    else:
        total_cost = sum(o.cost for o in builtin) or 1.0
        quant = any(str(d["dtype"]).endswith(("int8'>",)) for d in interp.get_input_details())
        ttag = "QC8" if quant else "F32"
        for o in builtin:
            share = o.cost / total_cost
            if xnnpack_off or o.name not in _XNNPACK_TYPES:
                node_type = o.name
                name = f"[{_tensor_name(interp, o.outputs[0]) if o.outputs else o.index}]:{o.index}"
            else:
                node_type = _XNNPACK_TYPES[o.name].format(t=ttag)
                name = f"Delegate/{node_type}:{o.index}"
            rows.append(ProfRow(node_type, name, first_ms * share, avg_ms * share))
    info("perflab emulated op profile: per-node times are the measured whole-graph time apportioned by an estimate "
         "of each op's cost; they were not measured per op.")
    info(profile_block("Profiling Info for Benchmark Initialization:", init_rows, init_stat))
    info(profile_block("Operator-wise Profiling Info for Regular Benchmark Runs:", rows, runs))
    del v


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
