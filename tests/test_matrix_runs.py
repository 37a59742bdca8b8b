"""The matrix and frame tests' run folders (tests/support/matrix_runs.py) give the verdicts those
tests rely on."""

from __future__ import annotations

from pathlib import Path

from support.matrix_runs import standard_runs


def test_the_builders_give_the_verdicts_the_matrix_tests_rely_on(tmp_path: Path) -> None:
    """The lab's own derivation decides real time and deltas on these records, as in a run."""
    from perflab.store.runfolder import load_run

    r1, _ = standard_runs(tmp_path)
    run = load_run(r1)
    by = {(c.device.serial, c.cell_id): c for c in run.cells}
    fast = by[("PX7REAL01", "espcn_x2.int8.gpu")]
    assert fast.realtime is not None and fast.realtime.meets is True and fast.deltas is not None
    assert fast.deltas.psnr_y_db == 1.0 and fast.deltas.baseline_cell_id == "bicubic_x2.fp32.gpu"
    slow = by[("PX7REAL01", "fsrcnn_x2.fp32.xnnpack")]
    assert slow.realtime is not None and slow.realtime.meets is False  # p90 60 ms > 33.3 ms
    worse = by[("R5CW12345", "fsrcnn_x2.fp32.gpu")]
    assert worse.deltas is not None and worse.deltas.psnr_y_db is not None and worse.deltas.psnr_y_db < 0
    assert by[("R5CW12345", "espcn_x2.int8.xnnpack")].device.model == "SM-S911B"
