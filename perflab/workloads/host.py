"""Run a .tflite model on this machine through the LiteRT interpreter.

Used by the ``local`` device (in a worker subprocess, so memory and CPU numbers belong to
the measured run alone) and by the emulated phone's ``benchmark_model``. The timing loop
mirrors benchmark_model: warm-up runs, then timed runs, optionally paced at a target
frequency (``--run_frequency``): each run starts at t0 + i/fps, sleeping in between.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from perflab.errors import ModelError, UnsupportedError

# LiteRT resolvers: "cpu" = builtin kernels with XNNPACK switched off (benchmark_model
# --use_xnnpack=false); "xnnpack" = the default delegate on (what TFLite does by default).
HOST_DELEGATES = ("cpu", "xnnpack")


@dataclass(frozen=True)
class TensorDetail:
    name: str
    index: int
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    scale: float  # 0.0 when not quantized
    zero_point: int

    @property
    def quantized(self) -> bool:
        return self.scale != 0.0 and np.issubdtype(self.dtype, np.integer)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * int(np.dtype(self.dtype).itemsize)


def _detail(d: dict[str, Any]) -> TensorDetail:
    scale, zp = d.get("quantization", (0.0, 0))
    return TensorDetail(
        name=str(d["name"]), index=int(d["index"]), shape=tuple(int(x) for x in d["shape"]),
        dtype=np.dtype(d["dtype"]), scale=float(scale), zero_point=int(zp),
    )


def float_to_tensor(lr: np.ndarray, detail: TensorDetail) -> np.ndarray:
    """Float RGB [0,1] H×W×3 → the model's input tensor (1×H×W×3, its dtype/quantization)."""
    x = np.asarray(lr, dtype=np.float32)[None, ...]
    if detail.quantized:
        info = np.iinfo(detail.dtype)
        q = np.rint(x / detail.scale + detail.zero_point)
        out: np.ndarray = np.clip(q, info.min, info.max).astype(detail.dtype)
        return out
    same: np.ndarray = x.astype(detail.dtype)
    return same


def tensor_to_float(y: np.ndarray, detail: TensorDetail) -> np.ndarray:
    """Model output tensor → float32 RGB in [0,1] (H×W×3), dequantized and clipped."""
    a = np.asarray(y)
    if detail.quantized:
        a = (a.astype(np.float32) - detail.zero_point) * detail.scale
    a = a.astype(np.float32)
    if a.ndim == 4:
        a = a[0]
    clipped: np.ndarray = np.clip(a, 0.0, 1.0)
    return clipped


def raw_to_tensor(raw: bytes, detail: TensorDetail) -> np.ndarray:
    if len(raw) != detail.nbytes:
        raise ModelError(f"raw tensor has {len(raw)} bytes, expected {detail.nbytes} for {detail.name}")
    return np.frombuffer(raw, dtype=detail.dtype).reshape(detail.shape)


class HostModel:
    """A LiteRT interpreter on one model file, resizable to any LR frame size."""

    def __init__(self, path: Path, threads: int, delegate: str = "cpu") -> None:
        if delegate not in HOST_DELEGATES:
            raise UnsupportedError(f"delegate {delegate!r} is not available on this machine (have: {HOST_DELEGATES})")
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        resolver = (
            OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if delegate == "cpu" else OpResolverType.AUTO
        )
        t0 = time.perf_counter_ns()
        try:
            self._interp = Interpreter(
                model_path=str(path), num_threads=threads, experimental_op_resolver_type=resolver
            )
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load {path.name}: {exc}") from exc
        self.load_ms = (time.perf_counter_ns() - t0) / 1e6
        self.path = path
        ins, outs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise ModelError(f"{path.name}: expected one input and one output, got {len(ins)} and {len(outs)}")

    def input_detail(self) -> TensorDetail:
        return _detail(self._interp.get_input_details()[0])

    def output_detail(self) -> TensorDetail:
        return _detail(self._interp.get_output_details()[0])

    def resize(self, height: int, width: int) -> float:
        """Resize the input to 1×height×width×3 and re-allocate; returns the time it took (ms)."""
        d = self.input_detail()
        shape = [1, height, width, d.shape[-1] if len(d.shape) == 4 else 3]
        if tuple(shape) == d.shape:
            return 0.0
        t0 = time.perf_counter_ns()
        try:
            self._interp.resize_tensor_input(d.index, shape, strict=False)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.path.name}: cannot resize input to {shape}: {exc}") from exc
        return (time.perf_counter_ns() - t0) / 1e6

    def set_tensor(self, x: np.ndarray) -> None:
        self._interp.set_tensor(self.input_detail().index, x)

    def set_raw_input(self, data: bytes) -> None:
        self.set_tensor(raw_to_tensor(data, self.input_detail()))

    def set_float_input(self, lr: np.ndarray) -> None:
        h, w = lr.shape[:2]
        self.resize(h, w)
        self.set_tensor(float_to_tensor(lr, self.input_detail()))

    def invoke(self) -> None:
        try:
            self._interp.invoke()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.path.name}: invoke failed: {exc}") from exc

    def output_tensor(self) -> np.ndarray:
        return np.array(self._interp.get_tensor(self.output_detail().index))

    def raw_output(self) -> bytes:
        return self.output_tensor().tobytes()

    def float_output(self) -> np.ndarray:
        return tensor_to_float(self.output_tensor(), self.output_detail())

    def upscale(self, lr: np.ndarray) -> np.ndarray:
        self.set_float_input(lr)
        self.invoke()
        return self.float_output()

    def ops(self) -> list[str]:
        """Builtin op names in execution order (from the interpreter's op details)."""
        try:
            return [str(o["op_name"]) for o in self._interp._get_ops_details()]
        except AttributeError:
            return []


@dataclass
class TimedLoop:
    first_ms: float
    warmup_ms: list[float]
    samples_ms: list[float]
    wall_s: float
    late_starts: int  # paced runs that could not start on time (inference longer than the period)


def timed_loop(model: HostModel, warmup: int, iterations: int, fps: float | None) -> TimedLoop:
    """First run, warm-up runs, then timed runs; paced at ``fps`` when given.

    Raw per-iteration latencies in ms (monotonic perf counter, invoke() only).
    """
    def one() -> float:
        t0 = time.perf_counter_ns()
        model.invoke()
        return (time.perf_counter_ns() - t0) / 1e6

    first_ms = one()
    warm = [one() for _ in range(warmup)]
    samples: list[float] = []
    late = 0
    period_s = 1.0 / fps if fps else 0.0
    start = time.perf_counter()
    for i in range(iterations):
        if fps:
            due = start + i * period_s
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            elif i and now - due > period_s * 0.05:
                late += 1
        samples.append(one())
    return TimedLoop(first_ms, warm, samples, time.perf_counter() - start, late)
