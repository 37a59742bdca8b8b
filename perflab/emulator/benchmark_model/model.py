"""The model in the emulated benchmark_model: LiteRT's interpreter on the host, loaded,
resized and fed as the real tool does (raw input files checked against the tensor's byte size,
random inputs otherwise), and the model's ops with an estimate of each op's cost."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from perflab.emulator.benchmark_model.flags import Flag
from perflab.emulator.benchmark_model.output import fail, fatal, info, runtime_log
from perflab.emulator.benchmark_model.sandbox import Sandbox


def model_path(sandbox: Sandbox, v: dict[str, Flag]) -> tuple[str, Path]:
    """--graph as given and as a host path; the tool's errors when it is not there."""
    graph = str(v["graph"].value)
    if not graph:
        raise fail("Please specify the name of your TF Lite input file with --graph")
    model_host = sandbox.host(graph)
    if not model_host.is_file():
        raise fail(f"Could not open '{graph}'.", f"Failed to mmap model {graph}")
    info(f"Loaded model {graph}")
    return graph, model_host


def interpreter_options(threads: int, default_delegates: bool) -> dict[str, Any]:
    """LiteRT Interpreter keywords for --num_threads (0 or less: LiteRT's default) and for
    running without the default delegates (XNNPACK), as the tool does."""
    from ai_edge_litert.interpreter import OpResolverType

    kwargs: dict[str, Any] = {}
    if threads > 0:
        kwargs["num_threads"] = threads
    if not default_delegates:
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    return kwargs


def interpreter(graph: str, model_host: Path, threads: int, default_delegates: bool) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    runtime_log("Initialized TensorFlow Lite runtime.")
    kwargs = {"model_path": str(model_host), **interpreter_options(threads, default_delegates)}
    try:
        return Interpreter(**kwargs)
    except (ValueError, RuntimeError) as exc:
        raise fail(f"Failed to load model {graph}: {exc}") from None


def host_copy(model_host: Path, threads: int, main: Any) -> Any:
    """The whole model on the host's fast kernels (LiteRT's default delegate, XNNPACK), resized
    and fed as ``main`` is: for the outputs of a graph whose every op an accelerator runs, where
    the host's time is off the phone's clock and only the result counts."""
    from ai_edge_litert.interpreter import Interpreter

    try:
        it = Interpreter(model_path=str(model_host), **interpreter_options(threads, True))
        inputs = main.get_input_details()
        for d in inputs:
            it.resize_tensor_input(d["index"], [int(x) for x in d["shape"]], strict=False)
        it.allocate_tensors()
        for d in inputs:
            it.set_tensor(d["index"], main.get_tensor(d["index"]))
    except (ValueError, RuntimeError) as exc:
        raise fail(f"Failed to invoke! {exc}") from None
    return it


def resize_inputs(interp: Any, v: dict[str, Flag]) -> None:
    """--input_layer / --input_layer_shape."""
    names = [s for s in str(v["input_layer"].value).split(",") if s]
    shapes = [s for s in str(v["input_layer_shape"].value).split(":") if s]
    if shapes and len(names) != len(shapes):
        raise fail("There must be the same number of items in --input_layer as in --input_layer_shape.")
    by_name = {d["name"]: d for d in interp.get_input_details()}
    for i, nm in enumerate(names):
        if nm not in by_name:
            raise fail(f"Cannot find the corresponding input_layer name ({nm}) in the model.")
        if i < len(shapes):
            try:
                dims = [int(x) for x in shapes[i].split(",")]
            except ValueError:
                raise fail(f"Incorrect size string specified: {shapes[i]}") from None
            interp.resize_tensor_input(by_name[nm]["index"], dims, strict=False)


def allocate(interp: Any) -> float:
    """AllocateTensors; its time (ms)."""
    t_alloc = time.perf_counter()
    try:
        interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise fail(f"Failed to allocate tensors! {exc}") from None
    return (time.perf_counter() - t_alloc) * 1000.0


def _split_value_files(text: str) -> list[str]:
    if not text:
        return []
    return [p for p in text.split(",") if p]


def _value_files(v: dict[str, Flag]) -> dict[str, str]:
    value_files: dict[str, str] = {}
    for item in _split_value_files(str(v["input_layer_value_files"].value)):
        nm, sep, path = item.rpartition(":")
        if not sep:
            raise fail(f"Wrong input value file item specified: {item}")
        value_files[nm.replace("::", ":")] = path
    return value_files


def set_inputs(interp: Any, sandbox: Sandbox, v: dict[str, Flag]) -> None:
    """Every input from its --input_layer_value_files file, else random (seeded)."""
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
        raise fatal(f"Cannot read the input file {path}") from None
    if len(raw) != nbytes:
        raise fatal(f"The size of {path} is {len(raw)} bytes. It should be {nbytes} bytes.")
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


def input_quantized(interp: Any, suffixes: tuple[str, ...] = ("uint8'>", "int8'>")) -> bool:
    """Whether an input's dtype is one of these integer types (as numpy prints the dtype)."""
    return any(str(d["dtype"]).endswith(suffixes) for d in interp.get_input_details())


# ============================================================================ ops


@dataclass
class OpInfo:
    index: int
    name: str
    outputs: list[int]
    inputs: list[int]
    cost: float


def ops(interp: Any) -> list[OpInfo]:
    """The model's ops in execution order, each with an estimate of its cost (weights × pixels
    for ops with weights, 4 × pixels otherwise)."""
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


def builtin_ops(all_ops: list[OpInfo]) -> list[OpInfo]:
    """The ops the model has itself (not the DELEGATE nodes a default delegate put in)."""
    return [o for o in all_ops if o.name != "DELEGATE"]


def cost_shares(builtin: list[OpInfo]) -> list[float]:
    """Each op's share of the graph's estimated cost: how the emulated tool splits a measured
    whole-graph time among ops in the profile and the trace, only for a model it cannot cut
    into timed one-op segments (:mod:`.segments`)."""
    total_cost = sum(o.cost for o in builtin) or 1.0
    return [o.cost / total_cost for o in builtin]


def tensor_bytes(interp: Any) -> int:
    """The bytes of every tensor of the allocated interpreter (weights and activations, at the
    input size it was resized to; no arena reuse): the emulated tool's memory footprint."""
    import numpy as np

    total = 0
    for t in interp.get_tensor_details():
        shape = [int(x) for x in t["shape"]]
        total += int(np.prod(shape)) * np.dtype(t["dtype"]).itemsize if shape else np.dtype(t["dtype"]).itemsize
    return total


def tensor_name(interp: Any, idx: int) -> str:
    for t in interp.get_tensor_details():
        if t["index"] == idx:
            return str(t["name"])
    return str(idx)
