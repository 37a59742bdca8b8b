"""`perflab run` on local with per-layer profiling: op profile (missing on local, with why),
kernel trace (root) and differential numbers side by side in results.json, the trace file in
the run folder, and the delegate partition table per cell."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from perflab.store.runfolder import load_run
from perflab.tracing.capture import local_trace_missing

PERFLAB = str(Path(sys.executable).with_name("perflab"))

pytestmark = pytest.mark.slow
pytest.importorskip("tensorflow")


def test_local_run_with_trace_and_differential(tmp_path: Path) -> None:
    p = tmp_path / "layers.yaml"
    p.write_text(textwrap.dedent("""\
        name: layers
        geometry: {lr_width: 240, lr_height: 136, scale: 2}
        delegates: [xnnpack]
        threads: 1
        runs: {warmup: 2, iterations: 10}
        telemetry: {enabled: false}
        profiling: {op_profiling: true, trace: true, differential: true, differential_rounds: 2,
                    differential_iterations: 6}
        inputs:
          images:
            - skimage: coffee
        models:
          - zoo: espcn
            variants: [fp32]
        """))
    out = tmp_path / "run"
    env = dict(os.environ, PERFLAB_CACHE_DIR=str(tmp_path / "cache"))
    r = subprocess.run([PERFLAB, "run", str(p), "--device", "local", "--out", str(out), "--reports-dir",
                        str(tmp_path / "reports"), "--quiet"], capture_output=True, text=True, timeout=900,
                       check=False, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    run = load_run(out)
    cell = next(c for c in run.cells if c.cell_id == "espcn_x2.fp32.xnnpack")
    layers = cell.layers
    assert layers is not None
    by = {p.method: p for p in layers.passes}
    assert set(by) == {"op_profile", "atrace", "differential", "estimate"}
    est = by["estimate"]
    assert est.total_ms == cell.series["back_to_back"].median and est.rows[0].node_type == "CONV_2D"
    assert by["op_profile"].missing and layers.missing == by["op_profile"].missing  # legacy fields kept
    diff = by["differential"]
    assert diff.missing is None and [r.name for r in diff.rows] == ["c1", "c2", "c3", "tail"]
    assert diff.sum_check is not None and diff.sum_check.whole_model_ms > 0
    assert any(c.against == "macs" for c in diff.rank_checks)
    part = layers.partition
    assert part is not None and part.delegate == "xnnpack" and [r.op for r in part.rows][:1] == ["CONV_2D"]
    assert part.sources == ["analyzer"]
    if local_trace_missing() is None:
        t = layers.trace
        assert t is not None and t.trace_file.startswith("traces/") and (out / t.trace_file).is_file()
        assert t.n == 30 and t.median_ms is not None and t.p90_ms is not None and t.ok is not None
        assert (out / t.trace_file).read_text().startswith("# trace_clock: ")
        assert t.timeline is not None and t.timeline.spans == []  # LiteRT writes no op sections locally
        assert by["atrace"].missing and "no per-operator ATrace sections" in by["atrace"].missing
    else:
        assert by["atrace"].missing == local_trace_missing()
    base = next(c for c in run.cells if c.baseline)
    assert base.layers is not None and base.layers.partition is not None
