"""The report's per-layer section with the stored aligned table: one row per differential group,
one column per method (named in its header), disagreements in red, the per-method detail below
and collapsed; an older record without the table renders as before. Checked as HTML text and
in headless Chromium (the DOM it builds)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_report import _chromium, _plain, _section, build_run_folder, needs_chromium

from perflab.lab.layers import model_ops
from perflab.report.html import render_run_report
from perflab.rules.layers import aligned_record
from perflab.store.layer_records import LayerPassRecord, LayerRow, LayersRecord
from perflab.zoo.registry import get_artifact

NO_PROFILER = "LiteRT's Python interpreter exposes no per-op profiler (benchmark_model is not available here)"
# espcn ×2 int8 as the zoo ships it: 7 ops (CONV_2D, TANH, CONV_2D, TANH, CONV_2D, DEPTH_TO_SPACE, MINIMUM)
EST_MS = (0.89, 0.006, 3.42, 0.006, 0.62, 0.03, 0.02)
DIFF = (("c1", ["c1"], 1.10, 0.17), ("c2", ["c2"], 2.59, 0.05), ("c3", ["c3"], 0.70, 0.12),
        ("tail", ["pixel_shuffle", "clip"], 0.06, 0.03))


def _layers() -> LayersRecord:
    art = get_artifact("espcn", 2, "int8")
    ops = model_ops(art.path)
    assert [o.op for o in ops] == ["CONV_2D", "TANH", "CONV_2D", "TANH", "CONV_2D", "DEPTH_TO_SPACE", "MINIMUM"]
    passes = [
        LayerPassRecord(method="op_profile", source="none", missing=NO_PROFILER),
        LayerPassRecord(method="estimate", source="estimate: the cell's median shared by MACs", total_ms=sum(EST_MS),
                        rows=[LayerRow(index=o.index, node_type=o.op, name=o.label, avg_ms=t, method="estimate")
                              for o, t in zip(ops, EST_MS, strict=True)]),
        LayerPassRecord(method="differential", source="differential: 4 prefix variants", total_ms=sum(d[2] for d in DIFF),
                        rows=[LayerRow(index=k, node_type="tail" if n == "tail" else "conv", name=n, avg_ms=t, se_ms=se,
                                       layers=la, method="differential") for k, (n, la, t, se) in enumerate(DIFF)]),
    ]
    return LayersRecord(source="none", missing=NO_PROFILER, passes=passes,
                        aligned=aligned_record(passes, ops, art.path.name))


def _render(tmp_path: Path, lay: LayersRecord) -> Path:
    run_dir = tmp_path / "r"
    run = build_run_folder(run_dir, with_frames=False, with_samples=False)
    cells = [c.model_copy(update={"layers": lay}) if c.cell_id == "local-cpu-espcn-fp32" else c for c in run.cells]
    (run_dir / "results.json").write_text(run.model_copy(update={"cells": cells}).to_json())
    return render_run_report(run_dir)


@pytest.fixture(scope="module")
def aligned_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _render(tmp_path_factory.mktemp("aligned"), _layers())


def test_the_aligned_table_comes_first_with_a_row_per_group(aligned_report: Path) -> None:
    sec = _section(aligned_report.read_text(encoding="utf-8"), "layers")
    start = sec.index('<table class="data layers-aligned">')
    table = sec[start:sec.index("</table>", start)]
    assert start < sec.index('<details class="layer-detail">') < sec.index('<table class="data layers-compare">')
    heads = re.findall(r'<th data-method="([^"]+)">', table)
    assert heads == ["op_profile", "estimate", "differential"]  # every column names its method
    assert re.findall(r'<tr class="(\w+)[^"]*" data-group="([^"]+)"', table) == [
        ("group", "c1"), ("group", "c2"), ("group", "c3"), ("group", "tail"), ("total", "total")]
    text = _plain(table)
    assert "c1 c1 CONV_2D@0, TANH@1 —" in text and "0.896 1.100 ± 0.170" in text  # 0.89 + 0.006 over c1's ops
    assert "tail pixel_shuffle, clip DEPTH_TO_SPACE@5, MINIMUM@6" in text
    assert "total all 7 ops" in text and "4.992" in text and "4.450 ±" in text
    # the op profile's reason is a footnote of its header, not a number
    assert "per op, summed per group" in text and "per group" in text
    lay = _plain(sec)
    assert f"op_profile: {NO_PROFILER}" in _plain(aligned_report.read_text(encoding="utf-8"))
    # c2: estimate 3.426 vs differential 2.59 ± 0.05 — 32% and far beyond 2σ: flagged, said in words
    said = lay.split("Red:")[1].split("Per-method detail")[0]
    assert "c2 : estimate 3.426 ms vs differential 2.590 ms (+32%; beyond ±10% and 2σ = 0.100 ms)" in said
    assert "total : estimate 4.992 ms vs differential 4.450 ms (+12%" in said  # the sums differ by 12%
    assert "c1 :" not in said and "c3 :" not in said  # 0.896 vs 1.10 ± 0.17 and 0.62 vs 0.70 ± 0.12 agree
    assert "estimate: its rows sum to 4.992 ms (the pass's own total 4.992 ms)" in lay


def test_an_old_record_without_the_table_renders_as_before(tmp_path: Path) -> None:
    lay = _layers().model_copy(update={"aligned": None})
    sec = _section(_render(tmp_path, lay).read_text(encoding="utf-8"), "layers")
    assert "layers-aligned" not in sec and "layer-detail" not in sec
    assert '<table class="data layers-compare">' in sec and "Methods side by side" in sec


@needs_chromium
def test_chromium_shows_flags_and_keeps_the_detail_collapsed(aligned_report: Path) -> None:
    r = _chromium("--dump-dom", aligned_report.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    sec = _section(r.stdout, "layers")
    table = sec[sec.index('<table class="data layers-aligned">'):]
    table = table[:table.index("</table>")]
    rows = dict(re.findall(r'data-group="([^"]+)">(.*?)</tr>', table, flags=re.DOTALL))
    assert set(rows) == {"c1", "c2", "c3", "tail", "total"}
    assert rows["c2"].count('class="v disagree"') == 2  # both sides of the disagreement are red
    assert all('class="v disagree"' not in rows[g] for g in ("c1", "c3", "tail"))
    assert 'class="v disagree"' in rows["total"]
    assert re.search(r'<details class="layer-detail">\s*<summary>Per-method detail', sec)  # closed: no "open"
    detail = sec[sec.index('<details class="layer-detail">'):]
    assert '<table class="data layers-compare">' in detail[:detail.index("</details>")]
