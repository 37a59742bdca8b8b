"""Which layer an op belongs to, by its tensor names: the one function the lab and the emulated
benchmark_model both call (zoo.tflite_graph.op_tensor_names, on real LiteRT), and the emulated
tool's injected per-layer delays found through those names."""

from __future__ import annotations

from pathlib import Path

import pytest

from perflab.emulator.benchmark_model.delays import layer_delay_s, op_delays_s, parse_layer_delays
from perflab.zoo.tflite_graph import op_tensor_names

ESPCN = Path(__file__).resolve().parent.parent / "perflab" / "zoo" / "weights" / "espcn_x2_fp32.tflite"


def _interpreter(path: Path) -> object:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(model_path=str(path),
                       experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def test_an_op_is_named_by_its_outputs_and_constant_inputs_not_by_the_layer_before() -> None:
    names = op_tensor_names(_interpreter(ESPCN))
    parts = {i: n.split(";") for i, n in names.items()}
    assert parts[1] == ["espcn_x2_1/c1_1/Tanh"]  # c1's activation: not the conv before it
    assert any("/c2_1/" in p for p in parts[2]) and not any("/c1_1/" in p for p in parts[2])
    # the model's output op: its own output is StatefulPartitionedCall…, its constant says the layer
    assert parts[6][0].startswith("StatefulPartitionedCall") and "espcn_x2_1/clip_1/Minimum/y" in parts[6]
    assert not any("DepthToSpace" in p for p in parts[6])  # its activation input names the op before


def test_the_lab_aligns_by_the_same_names() -> None:
    from perflab.lab.layers import model_ops

    names = op_tensor_names(_interpreter(ESPCN))
    ops = model_ops(ESPCN)
    assert ops and all(o.tensor_names == names[o.index] for o in ops)


NAMES = ["m_1/c2_1/conv;m_1/c2_1/bias", "m_1/c2_1/Relu", "m_1/c2_dup_1/conv", "m_1/c3_1/conv", "m_1/c22_1/conv"]


def test_each_instance_of_a_named_layer_adds_its_delay_once() -> None:
    # c2 and its copy c2_dup are two instances; c22 is another layer; c9 is not in the model
    assert layer_delay_s(NAMES, {"c2": 10.0, "c3": 4.0, "c9": 100.0}) == pytest.approx((2 * 10.0 + 4.0) / 1000.0)


def test_an_instance_delay_is_shared_by_its_ops_and_sums_to_the_invoke_delay() -> None:
    delays = {"c2": 10.0, "c3": 4.0}
    per_op = op_delays_s(NAMES, delays)
    assert per_op == pytest.approx([0.005, 0.005, 0.010, 0.004, 0.0])
    assert sum(per_op) == pytest.approx(layer_delay_s(NAMES, delays))


def test_layer_delay_specs_ignore_junk() -> None:
    assert parse_layer_delays("c2=12; c3=6,bad,x=,=3,neg=-1,nan=nan,inf=inf") == {"c2": 12.0, "c3": 6.0}
