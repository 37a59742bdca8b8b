"""Run a zoo model on one LR image with LiteRT (no TensorFlow), for tests and quality tables.

Quantised I/O is handled from the model's own quantisation parameters, as the runners do:
input q = round(x / scale + zero_point) clipped to the dtype's range, output x = (q − zp)·scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from perflab.errors import ModelError


def _interpreter(model: Path | bytes, threads: int) -> object:
    from ai_edge_litert.interpreter import Interpreter

    try:
        if isinstance(model, bytes):
            return Interpreter(model_content=model, num_threads=threads)
        return Interpreter(model_path=str(model), num_threads=threads)
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"LiteRT cannot load model: {exc}") from exc


def upscale(model: Path | bytes, lr: np.ndarray, threads: int = 2) -> np.ndarray:
    """LR float RGB [H, W, 3] in [0, 1] → model output as float32 [H·s, W·s, 3] (not clipped)."""
    it = _interpreter(model, threads)
    inp = it.get_input_details()  # type: ignore[attr-defined]
    if len(inp) != 1:
        raise ModelError(f"expected one input tensor, found {len(inp)}")
    h, w = lr.shape[:2]
    idx = inp[0]["index"]
    try:
        it.resize_tensor_input(idx, [1, h, w, 3], strict=True)  # type: ignore[attr-defined]
        it.allocate_tensors()  # type: ignore[attr-defined]
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot resize model input to {h}x{w}: {exc}") from exc
    dtype = inp[0]["dtype"]
    x = np.asarray(lr, dtype=np.float32)[None]
    if dtype != np.float32:
        q_scale, q_zp = inp[0]["quantization"]
        info = np.iinfo(dtype)
        x = np.clip(np.rint(x / q_scale + q_zp), info.min, info.max).astype(dtype)
    it.set_tensor(idx, x)  # type: ignore[attr-defined]
    it.invoke()  # type: ignore[attr-defined]
    out_d = it.get_output_details()[0]  # type: ignore[attr-defined]
    y = it.get_tensor(out_d["index"])  # type: ignore[attr-defined]
    if out_d["dtype"] != np.float32:
        o_scale, o_zp = out_d["quantization"]
        y = (y.astype(np.float32) - o_zp) * o_scale
    return np.asarray(y[0], dtype=np.float32)


def io_details(model: Path | bytes) -> tuple[dict[str, object], dict[str, object]]:
    it = _interpreter(model, 1)
    return it.get_input_details()[0], it.get_output_details()[0]  # type: ignore[attr-defined]
