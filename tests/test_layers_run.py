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

from perflab.store.layer_records import LayersRecord
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
                    differential_max_rounds: 4, differential_budget_s: 45,
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
    resolved_conv = [r for r in diff.rows if r.name != "tail" and r.unresolved is None]
    if diff.unreliable is None and len(resolved_conv) >= 2:
        assert any(c.against == "macs" for c in diff.rank_checks)
    elif diff.unreliable is None:  # too few rows resolved to rank: each unresolved row says why
        assert all(r.unresolved for r in diff.rows if r.name != "tail" and r not in resolved_conv)
        assert not any(c.against == "macs" for c in diff.rank_checks)
    else:  # a busy host can leave the rounds too spread to trust: then nothing is ranked, and it says so
        assert diff.rank_checks == [] and "no rank checks: the rows are unreliable" in diff.notes, diff.notes
    part = layers.partition
    assert part is not None and part.delegate == "xnnpack" and [r.op for r in part.rows][:1] == ["CONV_2D"]
    assert part.sources == ["analyzer"]
    if local_trace_missing() is None:
        t = layers.trace
        assert t is not None and t.trace_file.startswith("traces/") and (out / t.trace_file).is_file()
        assert t.n == 30 and t.median_ms is not None and t.p90_ms is not None and t.ok is not None
        assert (out / t.trace_file).read_text().startswith("# trace_clock: ")
        assert t.timeline is not None  # LiteRT writes no op sections locally (irqs inside an inference may show)
        assert not [s for s in t.timeline.spans if s.kind != "irq"], t.timeline.spans
        assert by["atrace"].missing and "no per-operator ATrace sections" in by["atrace"].missing
    else:
        assert by["atrace"].missing == local_trace_missing()
    base = next(c for c in run.cells if c.baseline)
    assert base.layers is not None and base.layers.partition is not None
    _check_aligned(layers, out)


def _check_aligned(layers: LayersRecord, out: Path) -> None:
    """The stored aligned table: every op of the model in exactly one differential group, each
    method's group sums equal to its pass total, the op profile missing with its reason in every
    row; and the report shows the table with the methods named."""
    al = layers.aligned
    assert al is not None and al.missing is None and al.model_file == "espcn_x2_fp32.tflite"
    by = {p.method: p for p in layers.passes}
    assert [g.name for g in al.groups] == ["c1", "c2", "c3", "tail"]
    op_of = [i for g in al.groups for i in g.ops]
    assert sorted(op_of) == list(range(7)) and len(op_of) == len(set(op_of))  # each op in exactly one group
    assert [a.group for a in al.ops] == ["c1", "c1", "c2", "c2", "c3", "tail", "tail"]
    est = by["estimate"]
    assert {r.index for r in est.rows} == {a.index for a in al.ops}  # every estimated op is assigned
    groups = [r for r in al.rows if r.kind == "group"]
    assert [r.name for r in groups] == ["c1", "c2", "c3", "tail"] and al.rows[-1].kind == "total"
    col = {m.method: k for k, m in enumerate(al.methods)}
    for method in ("estimate", "differential"):
        cells = [r.cells[col[method]] for r in groups]
        assert all(c.time_ms is not None and c.missing is None for c in cells), cells
        total = by[method].total_ms
        assert total is not None
        assert sum(c.time_ms or 0.0 for c in cells) == pytest.approx(total, rel=1e-9)
        assert al.rows[-1].cells[col[method]].time_ms == pytest.approx(total, rel=1e-9)
    diff_rows = {r.name: r.avg_ms for r in by["differential"].rows}
    assert [r.cells[col["differential"]].time_ms for r in groups] == [diff_rows[r.name] for r in groups]
    assert all(r.cells[col["op_profile"]].missing == by["op_profile"].missing for r in al.rows)
    assert al.methods[col["estimate"]].level == "op" and al.methods[col["differential"]].level == "group"
    html = (out / "index.html").read_text(encoding="utf-8")
    tables = [t.split("</table>")[0] for t in html.split('<table class="data layers-aligned">')[1:]]
    table = next(t for t in tables if 'data-group="c2"' in t)  # espcn's (the bicubic baseline has its own)
    assert all(f'<th data-method="{m}">' in table for m in ("op_profile", "estimate", "differential"))
    assert 'data-group="c2"' in table and "CONV_2D@2, TANH@3" in table
    for r in by["differential"].rows:  # an unresolved row is shown greyed with "≈", its reason in the title
        cell = al.rows[[g.name for g in groups].index(r.name)].cells[col["differential"]]
        assert cell.unresolved == r.unresolved, (cell, r)
    if any(r.unresolved for r in by["differential"].rows):
        assert "≈ " in html and "not resolved: " in html
