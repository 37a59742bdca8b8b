"""Delegates in the emulated benchmark_model: which one the phone's profile lets the run apply
(a Hexagon delegate needs a quantized model), and the lines TFLite prints about it. The model
runs on the host CPU whatever is applied; a GPU/NNAPI/Hexagon run is reported as one delegate
node, as on a phone."""

from __future__ import annotations

from typing import Any

from perflab.emulator.benchmark_model.model import input_quantized
from perflab.emulator.benchmark_model.output import info, runtime_log, warn
from perflab.formats.tflite_delegates import DELEGATE_LOG_NAMES

#: the node an accelerator delegate replaces the whole graph with (op profile, ATrace)
DELEGATE_NODE = {"gpu": "TfLiteGpuDelegateV2", "nnapi": "TfLiteNnapiDelegate", "hexagon": "TfLiteHexagonDelegate"}


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


def first_supported_delegate(profile_name: str, delegate_order: list[str]) -> str | None:
    """The first accelerator delegate asked for that the phone has; a warning for each it lacks."""
    supports = _profile_delegates(profile_name)
    applied: str | None = None
    for d in delegate_order:
        if d == "xnnpack":
            continue
        if not supports.get(d, False):
            warn(f"Could not create {DELEGATE_LOG_NAMES[d]} delegate: platform may not support delegate or required "
                 "libraries are missing")
        elif applied is None:
            applied = d
    return applied


def announce_delegate(interp: Any, applied: str | None, delegate_order: list[str], xnnpack_off: bool,
                      profile_name: str, n_builtin: int) -> str | None:
    """The delegate log lines TFLite prints; the delegate actually used (Hexagon needs a quantized model)."""
    notes: list[str] = []
    if applied is not None:
        if applied == "hexagon" and not input_quantized(interp):
            notes.append("Though Hexagon delegate is explicitly applied, the model graph will not be executed "
                         "by the delegate.")
            applied = None
        else:
            _delegate_log_lines(applied, profile_name, n_builtin)
            notes.append(f"Explicitly applied {DELEGATE_LOG_NAMES[applied]} delegate, and the model graph will be "
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
        runtime_log(f"Replacing {n_builtin} out of {n_builtin} node(s) with delegate ({DELEGATE_NODE['gpu']}) "
                    "node, yielding 1 partitions for the whole graph.", "VERBOSE")
        runtime_log("Created 1 GPU delegate kernels.")
    elif applied == "nnapi":
        runtime_log("Created TensorFlow Lite delegate for NNAPI.")
        runtime_log(f"Replacing {n_builtin} out of {n_builtin} node(s) with delegate ({DELEGATE_NODE['nnapi']}) "
                    "node, yielding 1 partitions for the whole graph.", "VERBOSE")
    else:
        runtime_log(f"Hexagon delegate: 1 nodes delegated out of {n_builtin} nodes with 1 partitions.")
