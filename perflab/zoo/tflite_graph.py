"""A TFLite model's graph as LiteRT's interpreter shows it: which tensor names say which
Keras layer an op belongs to.

Both the lab (aligning per-layer tables to the model's layers) and the emulated
benchmark_model (spending an injected per-layer delay inside that layer's ops) need the same
answer, so it lives here, below both. Not in ``perflab.zoo.tflayers``: that module imports
TensorFlow and Keras, which the emulated tool's child process and the lab must not pay for;
this one takes an interpreter that is already built and imports nothing heavy.
"""

from __future__ import annotations

from typing import Any


def op_tensor_names(interp: Any) -> dict[int, str]:
    """Per op index of a LiteRT interpreter, the names that say which layer it belongs to: its
    outputs and its constant inputs (weights, biases), joined with ``;``. Not its activation
    inputs (those name the previous layer), and the output alone is not enough: a model's
    output tensor is named ``StatefulPartitionedCall…``, so a prefix model's last conv is known
    by its weights. ATrace sections name ops only by node index; this is how they get a layer."""
    names = {int(t["index"]): str(t["name"]) for t in interp.get_tensor_details()}
    ops = interp._get_ops_details()
    produced = {int(i) for op in ops for i in op["outputs"]}
    model_inputs = {int(d["index"]) for d in interp.get_input_details()}
    out: dict[int, str] = {}
    for op in ops:
        own = [int(i) for i in op["outputs"]]
        own += [int(i) for i in op["inputs"] if int(i) >= 0 and int(i) not in produced and int(i) not in model_inputs]
        out[int(op["index"])] = ";".join(names.get(i, "") for i in own)
    return out
