"""Segment models for the split planner (perflab.zoo.segments): cut a zoo chain and run the
pieces in sequence with real LiteRT interpreters; they must compute what the shipped model does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from perflab.errors import UserInputError
from perflab.zoo.registry import get_artifact
from perflab.zoo.segments import SegmentKey, SegmentMaker


def test_a_model_that_is_not_a_chain_is_refused_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="chain"):
        SegmentMaker(get_artifact("bicubic", 2, "fp32"), root=tmp_path)


def test_residual_blocks_are_cut_only_where_one_tensor_crosses(tmp_path: Path) -> None:
    """The teacher's residual blocks sit inside a global skip (head's output is added after the
    last block): no cut between them carries one tensor, so they are one unit; the cuts that are
    left run as the shipped model does."""
    pytest.importorskip("tensorflow")
    from perflab.lab.planner import Chain
    from perflab.zoo.infer import upscale

    art = get_artifact("teacher", 2, "fp32")
    maker = SegmentMaker(art, root=tmp_path, calibration_patches=4)
    units = maker.units()
    assert units == ["head", "res0_a..res3_b", "out", "tail"]
    lr = np.random.default_rng(5).random((12, 16, 3)).astype(np.float32)
    ref = upscale(art.path, lr, threads=1)
    keys = [SegmentKey(0, 1, "fp32"), SegmentKey(1, 2, "fp32"), SegmentKey(2, 4, "fp32")]
    np.testing.assert_allclose(Chain(maker.paths(keys), 1).run(lr[None])[0], ref, atol=1e-4)
    # a chain keeps a unit per conv
    assert SegmentMaker(get_artifact("espcn", 2, "fp32"), root=tmp_path).units() == ["c1", "c2", "c3", "tail"]


def test_fsrcnn_cut_before_its_anchor_runs_as_the_shipped_model(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    from perflab.lab.planner import Chain
    from perflab.zoo.infer import upscale

    art = get_artifact("fsrcnn", 2, "fp32")
    maker = SegmentMaker(art, root=tmp_path, calibration_patches=4)
    units = maker.units()
    assert units[-1] == "tail" and len(units) == 9
    # the second segment holds the tail, whose anchor reads the LR frame: two inputs, which the
    # int8 calibration must feed by name (cut at 2 the converter's order is not the model's)
    k = 2
    lr = np.random.default_rng(3).random((20, 28, 3)).astype(np.float32)
    ref = upscale(art.path, lr, threads=1)
    fp32 = Chain(maker.paths([SegmentKey(0, k, "fp32"), SegmentKey(k, len(units), "fp32")]), 1).run(lr[None])[0]
    # the PReLU slopes and conv weights are the shipped ones: the same numbers, not just the same shape
    np.testing.assert_allclose(fp32, ref, atol=1e-4)
    mixed = Chain(maker.paths([SegmentKey(0, k, "fp32"), SegmentKey(k, len(units), "int8")]), 1).run(lr[None])[0]
    assert 0 < float(np.abs(mixed - ref).max()) < 0.5  # seven units in int8: close, not equal
    assert sorted(p.name for p in maker.folder.glob("*.tflite")) == [
        f"seg00-{k:02d}_fp32.tflite", f"seg{k:02d}-09_fp32.tflite", f"seg{k:02d}-09_int8.tflite"]
