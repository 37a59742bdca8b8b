"""Parsing TFLite analyzer reports (pure) + one real analyzer run on a shipped model."""

from __future__ import annotations

import pytest

from perflab.errors import ModelError
from perflab.zoo.analyze import analyze_model, parse_analyzer_output
from perflab.zoo.registry import get_artifact

# Captured from tf.lite.experimental.Analyzer.analyze(model_path=..., gpu_compatibility=True), TF 2.21.0,
# on bicubic_x2_fp32.tflite (tensor list shortened).
CAPTURED_BICUBIC = """=== /tmp/zoo/bic2.tflite ===

Your TFLite model has '1' subgraph(s). In the subgraph description below,
T# represents the Tensor numbers. For example, in Subgraph#0, the STRIDED_SLICE op takes
tensor #0 and tensor #8 and tensor #9 and tensor #10 as input and produces tensor #11 as output.

Subgraph#0 main(T#0) -> [T#19]
  Op#0 STRIDED_SLICE(T#0, T#8[0, 0, 0, 0], T#9[0, 1, 0, 3], T#10[1, 1, 1, 1]) -> [T#11]
  Op#1 STRIDED_SLICE(T#0, T#6[0, -1, 0, 0], T#5[0, 0, 0, 3], T#10[1, 1, 1, 1]) -> [T#12]
  Op#2 CONCATENATION(T#11, T#11, T#0, T#12, T#12) -> [T#13]
  Op#3 STRIDED_SLICE(T#13, T#8[0, 0, 0, 0], T#4[0, 0, 1, 3], T#10[1, 1, 1, 1]) -> [T#14]
  Op#4 STRIDED_SLICE(T#13, T#3[0, 0, -1, 0], T#5[0, 0, 0, 3], T#10[1, 1, 1, 1]) -> [T#15]
  Op#5 CONCATENATION(T#14, T#14, T#13, T#15, T#15) -> [T#16]
  Op#6 CONV_2D(T#16, T#1, T#2) -> [T#17]
  Op#7 DEPTH_TO_SPACE(T#17) -> [T#18]
  Op#8 MINIMUM(T#18, T#7) -> [T#19]

Tensors of Subgraph#0
  T#0(serving_default_lr:0) shape_signature:[1, -1, -1, 3], type:FLOAT32
  T#1(bicubic_x2_1/bicubic_phases_1/convolution) shape:[12, 5, 5, 3], type:FLOAT32 RO 3600 bytes, buffer: 2, data:[0.000549316, 0, 0, -0.00531006, 0, ...]
  T#19(StatefulPartitionedCall_1:0) shape_signature:[1, -1, -1, 3], type:FLOAT32


Your model looks compatible with GPU delegate on TFLite runtime version 2.21.0.
This does not guarantee that your model will work well with GPU delegate because there could still be runtime incompatibililties.
---------------------------------------------------------------
Your TFLite model has '1' signature_def(s).

---------------------------------------------------------------
              Model size:       7408 bytes
    Non-data buffer size:       3532 bytes (47.68 %)
"""

# Captured the same way from a test model with a TF Select op (TF 2.21.0 still says "compatible").
CAPTURED_FLEX = """=== /tmp/zoo/odd2.tflite ===

Subgraph#0 main(T#0) -> [T#7]
  Op#0 FlexCumprod(T#0, T#1[1]) -> [T#3]
  Op#1 MUL(T#0, T#2) -> [T#4]
  Op#2 CAST(T#4) -> [T#5]
  Op#3 CAST(T#5) -> [T#6]
  Op#4 ADD(T#6, T#3) -> [T#7]

Tensors of Subgraph#0
  T#0(serving_default_keras_tensor:0) shape:[1, 8, 8, 3], type:FLOAT32


Your model looks compatible with GPU delegate on TFLite runtime version 2.21.0.
This does not guarantee that your model will work well with GPU delegate because there could still be runtime incompatibililties.
"""

# Written to the format of TensorFlow's model_analyzer.cc (the warning lines are emitted only for
# incompatible ops, which the 2.21 wheel did not flag on any model tried here).
SOURCE_FORMAT_WARNINGS = """=== TFLite ModelAnalyzer ===

Subgraph#0 main(T#0) -> [T#3]
  Op#0 CONV_2D(T#0, T#1, T#2) -> [T#4]
  Op#1 CUMSUM(T#4, T#5[1]) -> [T#6]
GPU COMPATIBILITY WARNING: Not supported op CUMSUM
  Op#2 TRANSPOSE_CONV(T#7[1, 8, 8, 3], T#8, T#6) -> [T#3]

GPU COMPATIBILITY WARNING: Subgraph#0 has GPU delegate compatibility issues at nodes 1, 2 with TFLite runtime version 2.9.0

Tensors of Subgraph#0
  T#0(input) shape:[1, 4, 4, 3], type:FLOAT32
"""


def test_parse_captured_compatible_report() -> None:
    rep = parse_analyzer_output(CAPTURED_BICUBIC)
    assert [op.name for op in rep.ops] == ["STRIDED_SLICE", "STRIDED_SLICE", "CONCATENATION", "STRIDED_SLICE",
                                          "STRIDED_SLICE", "CONCATENATION", "CONV_2D", "DEPTH_TO_SPACE", "MINIMUM"]
    assert rep.ops[2].inputs == (11, 11, 0, 12, 12) and rep.ops[2].outputs == (13,)
    assert rep.ops[0].inputs == (0, 8, 9, 10)  # inline constant data is not read as tensors
    assert rep.gpu_checked and rep.gpu_compatible is True and rep.gpu_issues == []
    assert rep.runtime_version == "2.21.0"
    assert rep.model_size_bytes == 7408
    assert rep.op_counts()["STRIDED_SLICE"] == 4


def test_flex_op_is_flagged_by_perflab_rule() -> None:
    rep = parse_analyzer_output(CAPTURED_FLEX)
    assert rep.gpu_compatible is False
    [issue] = rep.gpu_issues
    assert (issue.op_index, issue.op_name, issue.source) == (0, "FlexCumprod", "perflab")


def test_warning_lines_attach_to_ops_and_summary_nodes_are_kept() -> None:
    rep = parse_analyzer_output(SOURCE_FORMAT_WARNINGS)
    assert rep.gpu_compatible is False
    by_op = {i.op_index: i for i in rep.gpu_issues}
    assert by_op[1].op_name == "CUMSUM" and by_op[1].reason == "Not supported op CUMSUM"
    assert by_op[2].op_name == "TRANSPOSE_CONV" and by_op[2].reason == "listed as incompatible"
    assert rep.runtime_version == "2.9.0"


def test_no_gpu_check_means_unknown() -> None:
    text = CAPTURED_BICUBIC.split("\n\nYour model looks")[0]
    rep = parse_analyzer_output(text)
    assert rep.gpu_checked is False and rep.gpu_compatible is None and len(rep.ops) == 9


def test_real_analyzer_on_shipped_int8_model() -> None:
    rep = analyze_model(get_artifact("espcn", 2, "int8").path)
    names = [op.name for op in rep.ops]
    assert names.count("CONV_2D") == 3 and "DEPTH_TO_SPACE" in names
    assert rep.gpu_checked and rep.gpu_compatible is True


def test_missing_file(tmp_path: object) -> None:
    from pathlib import Path

    with pytest.raises(ModelError):
        analyze_model(Path(str(tmp_path)) / "nope.tflite")
