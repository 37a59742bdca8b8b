"""The emulated op profile (``--enable_op_profiling``): the rows of its initialisation and
regular-run tables. Each op's time is measured: the model runs as one-op segments, each timed
(:mod:`.segments`); only a model that cannot be cut (several subgraphs) has the whole-graph time
apportioned by op cost (:func:`apportioned_ms`, :func:`.model.cost_shares`). A delegated graph
is one node, as on a phone. How the tables look
is :mod:`.output`."""

from __future__ import annotations

from typing import Any

from perflab.emulator.benchmark_model.delegates import DELEGATE_NODE
from perflab.emulator.benchmark_model.model import (
    OpInfo,
    builtin_ops,
    cost_shares,
    input_quantized,
    tensor_name,
)
from perflab.emulator.benchmark_model.output import ProfRow, Stat, print_profile

#: how XNNPACK names the operators it runs ({t}: the datatype tag, F32 or QC8)
XNNPACK_TYPES = {
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


def apportioned_ms(builtin: list[OpInfo], whole_ms: float) -> list[float]:
    """Each op's share of a whole-graph time, by its estimated cost."""
    return [whole_ms * share for share in cost_shares(builtin)]


def init_rows(modify_graph_ms: float, alloc_ms: float, delegated: bool) -> tuple[list[ProfRow], Stat]:
    """The initialisation table (ModifyGraphWithDelegate when a delegate is applied,
    AllocateTensors) and its timing line."""
    rows: list[ProfRow] = []
    if delegated:
        rows.append(ProfRow("ModifyGraphWithDelegate", "ModifyGraphWithDelegate/0", modify_graph_ms,
                            modify_graph_ms))
    rows.append(ProfRow("AllocateTensors", "AllocateTensors/0", alloc_ms, alloc_ms))
    return rows, Stat([int(sum(r.avg_ms for r in rows) * 1000)])


def run_rows(interp: Any, builtin: list[OpInfo], applied: str | None, xnnpack_off: bool, first_ms: float,
             avg_ms: float, measured: tuple[list[float], list[float]] | None = None) -> list[ProfRow]:
    """The regular runs' Run Order: one delegate node (the sum of its ops' measured times), or
    each op as the builtin kernels or XNNPACK name it, with its measured first and average time
    (``measured``), else its share of the first and the average run."""
    if applied is not None:
        last_out = builtin[-1].outputs[0] if builtin and builtin[-1].outputs else 0
        node_first, node_avg = (sum(measured[0]), sum(measured[1])) if measured is not None else (first_ms, avg_ms)
        return [ProfRow(DELEGATE_NODE[applied], f"[{tensor_name(interp, last_out)}]:{len(builtin)}",
                        node_first, node_avg)]
    if measured is not None and len(measured[0]) == len(builtin) == len(measured[1]):
        firsts, avgs = list(measured[0]), list(measured[1])
    else:
        firsts, avgs = apportioned_ms(builtin, first_ms), apportioned_ms(builtin, avg_ms)
    ttag = "QC8" if input_quantized(interp, ("int8'>",)) else "F32"
    rows: list[ProfRow] = []
    for o, first, avg in zip(builtin, firsts, avgs, strict=True):
        if xnnpack_off or o.name not in XNNPACK_TYPES:
            node_type = o.name
            name = f"[{tensor_name(interp, o.outputs[0]) if o.outputs else o.index}]:{o.index}"
        else:
            node_type = XNNPACK_TYPES[o.name].format(t=ttag)
            name = f"Delegate/{node_type}:{o.index}"
        rows.append(ProfRow(node_type, name, first, avg))
    return rows


def print_op_profile(interp: Any, all_ops: list[OpInfo], applied: str | None, xnnpack_off: bool, warm: Stat,
                     runs: Stat, modify_graph_ms: float, alloc_ms: float,
                     measured: tuple[list[float], list[float]] | None = None) -> None:
    """Both profile sections, from the measured phases and set-up times; ``measured``: each
    op's own time in the first warm-up run and on average over the timed runs (ms, from
    :mod:`.segments`), else the whole-graph times apportioned by op cost."""
    first_ms = (warm.values_us[0] if warm.values_us else 0) / 1000.0
    avg_ms = runs.avg() / 1000.0
    init, init_stat = init_rows(modify_graph_ms, alloc_ms, applied is not None or not xnnpack_off)
    rows = run_rows(interp, builtin_ops(all_ops), applied, xnnpack_off, first_ms, avg_ms, measured)
    print_profile(init, init_stat, rows, runs, measured is not None)
