"""The per-layer methods aligned row for row (perflab.analysis.layer_align, pure), on hand-built
passes whose ops, names and groups are known: sums per group, missing methods and ops a method
does not see, delegate nodes, XNNPACK's own operator numbering, disagreement flags; and the
stored record built from LayerPassRecords (perflab.rules.layers.aligned_record)."""

from __future__ import annotations

import pytest

from perflab.analysis.layer_align import (
    AlignedCell,
    AlignedRow,
    AlignedTable,
    GroupDef,
    MethodRow,
    MethodRows,
    ModelOp,
    align,
    assign_ops,
)
from perflab.rules.layers import aligned_record
from perflab.store.layer_records import LayerPassRecord, LayerRow, LayersRecord

# an ESPCN-like graph, as TFLite names it (the anchor concat runs first but belongs to the tail)
OPS = (
    ModelOp(0, "CONCATENATION", "m_1/anchor_1/concat"),
    ModelOp(1, "CONV_2D", "m_1/c1_1/BiasAdd;m_1/c1_1/convolution;m_1/c1_1/Squeeze"),
    ModelOp(2, "TANH", "m_1/c1_1/Tanh"),
    ModelOp(3, "CONV_2D", "m_1/clip_1/Maximum;m_1/c2_1/BiasAdd;m_1/c2_1/convolution;m_1/c2_1/Squeeze"),
    ModelOp(4, "ADD", "m_1/clip_1/Maximum;m_1/pixel_shuffle_1/DepthToSpace;m_1/add_anchor_1/Add"),
    ModelOp(5, "DEPTH_TO_SPACE", "m_1/clip_1/Maximum;m_1/pixel_shuffle_1/DepthToSpace"),
    ModelOp(6, "MINIMUM", "StatefulPartitionedCall_1:0"),
)
GROUPS = (GroupDef("c1", ("c1",)), GroupDef("c2", ("c2",)),
          GroupDef("tail", ("anchor", "add_anchor", "pixel_shuffle", "clip")))
DIFF = MethodRows("differential", total_ms=10.0, rows=(
    MethodRow("c1", "conv", 3.0, se_ms=0.1, layers=("c1",)), MethodRow("c2", "conv", 6.0, se_ms=0.2, layers=("c2",)),
    MethodRow("tail", "tail", 1.0, se_ms=0.05, layers=GROUPS[2].layers)))
EST = MethodRows("estimate", total_ms=10.0, rows=tuple(
    MethodRow(f"{o.op}@{o.index}", o.op, t) for o, t in zip(OPS, (0.1, 2.5, 0.4, 6.2, 0.2, 0.3, 0.3), strict=True)))


def _row(t: AlignedTable, name: str) -> AlignedRow:
    return next(r for r in t.rows if r.name == name)


def _cell(t: AlignedTable, row: str, method: str) -> AlignedCell:
    return next(c for c in _row(t, row).cells if c.method == method)


def test_every_op_goes_to_exactly_one_group_by_its_layer_names_and_unnamed_ops_by_order() -> None:
    m = assign_ops(OPS, GROUPS)
    assert [(a.index, a.group, a.how) for a in m.ops] == [
        (0, "tail", "name"), (1, "c1", "name"), (2, "c1", "name"),
        (3, "c2", "name"),  # c2 named three times, the fused clip once
        (4, "tail", "name"), (5, "tail", "name"), (6, "tail", "order")]
    assert [g.ops for g in m.groups] == [(1, 2), (3,), (0, 4, 5, 6)]
    assert sorted(i for g in m.groups for i in g.ops) == [o.index for o in OPS]


def test_without_groups_each_op_is_its_own_row() -> None:
    m = assign_ops(OPS, ())
    assert [g.name for g in m.groups] == [o.label for o in OPS] and all(a.how == "op" for a in m.ops)
    t = align(OPS, [EST, MethodRows("differential", missing="no TensorFlow")])
    assert [r.name for r in t.rows][:2] == ["CONCATENATION@0", "CONV_2D@1"]
    assert _cell(t, "CONV_2D@1", "estimate").time_ms == 2.5
    assert _cell(t, "CONV_2D@1", "differential").missing == "no TensorFlow"


def test_per_op_times_sum_into_the_groups_and_the_totals_match_the_passes() -> None:
    t = align(OPS, [EST, DIFF])
    assert [r.name for r in t.rows] == ["c1", "c2", "tail", "total"]
    assert _cell(t, "c1", "estimate").time_ms == pytest.approx(2.9)
    assert _cell(t, "tail", "estimate").time_ms == pytest.approx(0.1 + 0.2 + 0.3 + 0.3)
    c2 = _cell(t, "c2", "differential")
    assert c2.time_ms == 6.0 and c2.se_ms == 0.2 and c2.ops_seen == c2.ops_total == 1
    assert _row(t, "tail").ops == ("CONCATENATION@0", "ADD@4", "DEPTH_TO_SPACE@5", "MINIMUM@6")
    for m in ("estimate", "differential"):
        groups = sum(_cell(t, g, m).time_ms or 0.0 for g in ("c1", "c2", "tail"))
        assert groups == pytest.approx(10.0) and _cell(t, "total", m).time_ms == pytest.approx(10.0)
    tot = _cell(t, "total", "differential")
    assert tot.se_ms == pytest.approx((0.1**2 + 0.2**2 + 0.05**2) ** 0.5)
    est = next(m for m in t.methods if m.method == "estimate")
    assert est.level == "op" and est.assigned_ms == pytest.approx(10.0) and not est.unmatched


def test_disagreement_beyond_ten_percent_and_the_uncertainty_is_flagged() -> None:
    t = align(OPS, [EST, DIFF])
    c1 = _row(t, "c1")  # 2.9 vs 3.0 ± 0.1: within 10%
    assert not c1.disagreements and not any(c.flagged for c in c1.cells)
    tail = _row(t, "tail")  # 0.9 vs 1.0 ± 0.05: 10% of 1.0 = 0.1 → just within
    assert not tail.disagreements
    wide = MethodRows("differential", total_ms=10.0, rows=(
        MethodRow("c1", "conv", 2.0, se_ms=1.0, layers=("c1",)), MethodRow("c2", "conv", 7.0, se_ms=0.1, layers=("c2",)),
        MethodRow("tail", "tail", 1.0, se_ms=0.05, layers=GROUPS[2].layers)))
    t = align(OPS, [EST, wide])
    assert not _row(t, "c1").disagreements  # 2.9 vs 2.0 ± 1.0: inside 2σ
    c2 = _row(t, "c2")  # 6.2 vs 7.0 ± 0.1: 11% and 4σ apart
    assert len(c2.disagreements) == 1 and "estimate 6.200 ms vs differential 7.000 ms" in c2.disagreements[0]
    assert all(c.flagged for c in c2.cells)


def test_a_missing_method_is_missing_with_its_reason_in_every_row() -> None:
    t = align(OPS, [MethodRows("op_profile", missing="LiteRT's Python binding has no op profiler"), EST, DIFF])
    for r in t.rows:
        c = r.cells[0]
        assert c.method == "op_profile" and c.time_ms is None and c.missing == "LiteRT's Python binding has no op profiler"
    assert t.methods[0].level == "missing" and t.methods[0].missing


def test_a_group_whose_ops_a_method_does_not_see() -> None:
    # the op profile shows c1's conv and the tail's ops, not c1's TANH, nothing of c2
    op = MethodRows("op_profile", total_ms=9.0, rows=(
        MethodRow("[m_1/c1_1/BiasAdd]:1", "CONV_2D", 2.6), MethodRow("[m_1/anchor_1/concat]:0", "CONCATENATION", 0.1),
        MethodRow("[m_1/clip_1/Maximum]:4", "ADD", 0.2), MethodRow("[m_1/clip_1/Maximum]:5", "DEPTH_TO_SPACE", 0.3),
        MethodRow("[StatefulPartitionedCall_1:0]:6", "MINIMUM", 0.3), MethodRow("[nowhere]:99", "CUSTOM", 0.5)))
    t = align(OPS, [op, DIFF])
    c1 = _cell(t, "c1", "op_profile")
    assert c1.time_ms == 2.6 and c1.ops_seen == 1 and c1.ops_total == 2
    assert c1.note == "1 of 2 ops (no row for TANH@2)"
    c2 = _cell(t, "c2", "op_profile")
    assert c2.time_ms is None and c2.missing == "no row for CONV_2D@3"
    assert _cell(t, "tail", "op_profile").time_ms == pytest.approx(0.9)
    assert not _row(t, "c1").disagreements  # a partial cell is not compared
    m = t.methods[0]
    assert m.unmatched == ("[nowhere]:99: node 99 is not a CUSTOM and no op has the tensor 'nowhere'",)
    assert m.rows_sum_ms == pytest.approx(4.0) and m.assigned_ms == pytest.approx(3.5)


def test_a_delegate_node_is_compared_on_the_groups_it_spans() -> None:
    # ATrace on a phone: c1's ops on the CPU, a GPU delegate node for the rest
    at = MethodRows("atrace", total_ms=9.5, rows=(
        MethodRow("CONV_2D@1/0", "CONV_2D", 2.8), MethodRow("TANH@2/0", "TANH", 0.2),
        MethodRow("TfLiteGpuDelegateV2@7/0", "TfLiteGpuDelegateV2", 6.5)))
    t = align(OPS, [at, DIFF])
    assert [r.name for r in t.rows] == ["c1", "c2", "tail", "c2 + tail", "total"]
    assert _cell(t, "c1", "atrace").time_ms == pytest.approx(3.0)
    inside = _cell(t, "c2", "atrace")
    assert inside.time_ms is None and "inside TfLiteGpuDelegateV2@7/0, which spans c2, tail" in (inside.missing or "")
    span = _row(t, "c2 + tail")
    assert span.kind == "span" and span.groups == ("c2", "tail")
    assert _cell(t, "c2 + tail", "atrace").time_ms == 6.5
    assert _cell(t, "c2 + tail", "differential").time_ms == pytest.approx(7.0)
    assert _cell(t, "total", "atrace").time_ms == pytest.approx(9.5)


def test_one_delegate_node_for_the_whole_model_is_compared_in_the_totals_only() -> None:
    gpu = MethodRows("op_profile", total_ms=8.0, rows=(MethodRow("[out]:7", "TfLiteGpuDelegateV2", 8.0),))
    t = align(OPS, [gpu, DIFF])
    assert [r.name for r in t.rows] == ["c1", "c2", "tail", "total"]
    assert "compared in the totals only" in (_cell(t, "c1", "op_profile").missing or "")
    tot = _row(t, "total")
    assert tot.cells[0].time_ms == 8.0 and tot.cells[0].flagged and tot.disagreements
    assert t.methods[0].level == "total"


def test_xnnpack_operators_are_matched_to_the_model_ops_in_order_by_type() -> None:
    # XNNPACK numbers its operators itself (TANH is not delegated here, so the numbers shift)
    xnn = MethodRows("op_profile", total_ms=9.0, rows=(
        MethodRow("Delegate/Convolution (NHWC, F32) IGEMM:0", "Convolution (NHWC, F32) IGEMM", 2.5),
        MethodRow("Delegate/Convolution (NHWC, F32) IGEMM:1", "Convolution (NHWC, F32) IGEMM", 6.0),
        MethodRow("Delegate/Add (ND, F32):2", "Add (ND, F32)", 0.1),
        MethodRow("Delegate/Depth To Space (NHWC, X32):3", "Depth To Space (NHWC, X32)", 0.2),
        MethodRow("Delegate/Clamp (NC, F32):4", "Clamp (NC, F32)", 0.1),
        MethodRow("Delegate/Mystery (NC):5", "Mystery (NC)", 0.1)))
    t = align(OPS, [xnn, DIFF])
    assert _cell(t, "c1", "op_profile").time_ms == 2.5
    assert _cell(t, "c2", "op_profile").time_ms == 6.0
    assert _cell(t, "tail", "op_profile").time_ms == pytest.approx(0.4)
    assert "TANH@2" in (_cell(t, "c1", "op_profile").note or "")
    m = t.methods[0]
    assert len(m.unmatched) == 1 and "Mystery" in m.unmatched[0] and any("XNNPACK" in n for n in m.notes)


def test_the_stored_record_from_layer_passes_and_old_records_without_it() -> None:
    passes = [
        LayerPassRecord(method="op_profile", source="none", missing="no profiler"),
        LayerPassRecord(method="estimate", source="estimate", total_ms=10.0,
                        rows=[LayerRow(index=o.index, node_type=o.op, name=f"{o.op}@{o.index}", avg_ms=r.avg_ms,
                                       method="estimate") for o, r in zip(OPS, EST.rows, strict=True)]),
        LayerPassRecord(method="differential", source="diff", total_ms=10.0,
                        rows=[LayerRow(index=k, node_type=r.node_type, name=r.name, avg_ms=r.avg_ms, se_ms=r.se_ms,
                                       layers=list(r.layers), method="differential") for k, r in enumerate(DIFF.rows)]),
    ]
    rec = aligned_record(passes, OPS, "m.tflite")
    assert [g.ops for g in rec.groups] == [[1, 2], [3], [0, 4, 5, 6]] and rec.model_file == "m.tflite"
    assert [m.method for m in rec.methods] == ["op_profile", "estimate", "differential"]
    assert [c.method for c in rec.rows[0].cells] == ["op_profile", "estimate", "differential"]
    lay = LayersRecord(source="none", passes=passes, aligned=rec)
    assert LayersRecord.model_validate_json(lay.model_dump_json()) == lay  # round trip through results.json
    old = LayersRecord.model_validate({"source": "none", "passes": [p.model_dump() for p in passes]})
    assert old.aligned is None  # a stored /2 record without the field still reads


def test_a_conv_whose_name_also_lists_the_fused_tail_stays_with_its_conv() -> None:
    # bicubic fp16 as the zoo ships it: the conv's weights come from DEQUANTIZE ops, so its own
    # name lists the fused clip and pixel shuffle twice and its layer once — its kind decides
    from perflab.lab.layers import model_ops
    from perflab.zoo.registry import get_artifact

    ops = model_ops(get_artifact("bicubic", 2, "fp16").path)
    m = assign_ops(ops, (GroupDef("bicubic_phases", ("edge_pad", "bicubic_phases")),
                         GroupDef("tail", ("pixel_shuffle", "clip"))))
    conv = next(a for a in m.ops if a.op == "CONV_2D")
    assert conv.group == "bicubic_phases" and conv.how == "name"
    assert [a.op for a in m.ops if a.group == "tail" and a.op != "DEQUANTIZE"] == ["DEPTH_TO_SPACE", "MINIMUM"]


def test_the_total_takes_the_fits_own_uncertainty_of_the_sum() -> None:
    # the differential's rows are anti-correlated (neighbouring prefixes share a variant): the fit's
    # se of the sum, not the root-sum-square of the rows', goes on the total row
    fitted = MethodRows("differential", rows=DIFF.rows, total_ms=10.0, sum_se_ms=0.12)
    t = align(OPS, [EST, fitted])
    assert _cell(t, "total", "differential").se_ms == 0.12
    assert _cell(t, "c2", "differential").se_ms == 0.2  # the groups keep their own
