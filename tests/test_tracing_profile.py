"""``perflab profile parse``: op profiles from benchmark_model logs and logcat captures
(fixtures in tests/fixtures/benchmark_model/, each with its provenance)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perflab.cli import app
from perflab.errors import UserInputError
from perflab.tracing.opprofile import TableState, parse_op_profile, render_table, to_json

BM = Path(__file__).parent / "fixtures" / "benchmark_model"


def test_logcat_capture_nnapi_partial_marks_delegate_nodes() -> None:
    prof = parse_op_profile((BM / "tf29_nnapi_partial_logcat.txt").read_text(), "x")
    runs = prof.runs
    assert runs is not None and runs.total_avg_ms == pytest.approx(9.51033)
    assert [(n.node_type, n.avg_ms, n.opaque) for n in runs.nodes] == [
        ("TfLiteNnapiDelegate", 5.933, True), ("DEPTH_TO_SPACE", 1.402, False), ("TfLiteNnapiDelegate", 2.105, True)]
    assert runs.nodes[2].name == "[model/tail/conv, with comma]:54"
    assert runs.opaque_ms == pytest.approx(8.038)
    by_type = {t.node_type: t for t in runs.node_types}
    assert by_type["TfLiteNnapiDelegate"].count == 2 and by_type["TfLiteNnapiDelegate"].delegate
    assert not by_type["DEPTH_TO_SPACE"].delegate
    text = render_table(prof)
    assert "*   0  TfLiteNnapiDelegate" in text and "    1  DEPTH_TO_SPACE" in text
    assert "partially executed by the delegate w/ 2 delegate kernels" in text


def test_logcat_prefix_is_stripped_from_a_plain_log() -> None:
    """The same table with and without logcat prefixes parses to the same nodes."""
    plain = (BM / "tf24_cpu_espcn_profile.txt").read_text()
    prefixed = "\n".join(f"11-29 10:00:00.123  1234  1234 I tflite  : {ln}" for ln in plain.splitlines())
    a, b = parse_op_profile(plain, "a").runs, parse_op_profile(prefixed, "b").runs
    assert a is not None and b is not None and len(a.nodes) == 6
    assert [(n.node_type, n.name, n.avg_ms) for n in a.nodes] == [(n.node_type, n.name, n.avg_ms) for n in b.nodes]


def test_gpu_single_opaque_node_and_init_section() -> None:
    prof = parse_op_profile((BM / "tf23_gpu_noprefix.txt").read_text(), "x")
    assert [s.phase for s in prof.sections] == ["init", "runs"]
    runs = prof.runs
    assert runs is not None and len(runs.nodes) == 1 and runs.nodes[0].node_type == "TfLiteGpuDelegateV2"
    assert runs.nodes[0].opaque
    assert "one opaque kernel" in render_table(prof)


def test_xnnpack_reported_ops_are_delegate_but_not_opaque() -> None:
    prof = parse_op_profile((BM / "tf215_xnnpack_newest.txt").read_text(), "x")
    runs = prof.runs
    assert runs is not None
    assert all(n.delegate and not n.opaque for n in runs.nodes)
    assert "one opaque kernel" not in render_table(prof)


def test_csv_old_without_type_summary_rows_is_summed() -> None:
    prof = parse_op_profile((BM / "profile_csv_old.txt").read_text(), "x")
    runs = prof.runs
    assert runs is not None and len(runs.nodes) == 3 and runs.node_types
    # every node's time lands in exactly one type row
    assert sum(t.avg_ms for t in runs.node_types) == pytest.approx(sum(n.avg_ms for n in runs.nodes), rel=0.01)


def test_json_round_trip() -> None:
    prof = parse_op_profile((BM / "tf29_nnapi_partial_logcat.txt").read_text(), "x")
    doc = json.loads(json.dumps(to_json(prof)))
    assert doc["schema"] == "perflab.op_profile/1"
    nodes = doc["sections"][0]["nodes"]
    assert [n["opaque_delegate_node"] for n in nodes] == [True, False, True]


def test_no_tables_is_user_error_naming_the_file() -> None:
    with pytest.raises(UserInputError, match=r"^f\.txt: no op-profiling tables"):
        parse_op_profile((BM / "err_gpu_failed.txt").read_text(), "f.txt")
    with pytest.raises(UserInputError, match="empty file"):
        parse_op_profile("  \n", "e.txt")


def test_cli_table_json_and_bad_files(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["profile", "parse", str(BM / "tf29_nnapi_partial_logcat.txt")])
    assert res.exit_code == 0, res.output
    assert "TfLiteNnapiDelegate" in res.stdout
    res = runner.invoke(app, ["profile", "parse", "--json", str(BM / "tf24_cpu_espcn_profile.txt")])
    assert res.exit_code == 0 and json.loads(res.stdout)["sections"]
    binary = tmp_path / "model.tflite"
    binary.write_bytes(bytes(range(256)) * 8)
    for bad in (binary, tmp_path / "missing.txt", tmp_path):
        res = runner.invoke(app, ["profile", "parse", str(bad)])
        assert res.exit_code == 2
        assert res.stderr.count("\n") == 1 and str(bad) in res.stderr and "Traceback" not in res.stderr


def test_wired_into_perflab_command() -> None:
    """The real console command: exit 2 and one line for a file with no profile."""
    proc = subprocess.run([sys.executable, "-m", "perflab", "profile", "parse", str(BM / "err_gpu_failed.txt")],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "no op-profiling tables" in proc.stderr


def test_log_without_tables_prints_its_summary_timings() -> None:
    """A benchmark_model log run without --enable_op_profiling: its timings, and the op table
    said missing; exit 0 (it used to refuse the file)."""
    res = CliRunner().invoke(app, ["profile", "parse", str(BM / "tf113_cpu_very_old.txt")])
    assert res.exit_code == 0, res.output
    assert "inference avg 402.113 (std 4.211) over 50 runs" in res.stdout
    assert "init 5.412" in res.stdout and "warm-up avg 405.228" in res.stdout
    assert "op table missing" in res.stdout
    res = CliRunner().invoke(app, ["profile", "parse", "--json", str(BM / "nnapi_not_applied.txt")])
    doc = json.loads(res.stdout)
    assert res.exit_code == 0 and doc["op_table"] == "missing" and doc["sections"] == []
    assert doc["timings"]["inference_avg_ms"] == pytest.approx(24.2338) and doc["timings"]["inference_count"] == 50


def test_logcat_truncated_table_keeps_its_rows_and_says_truncated(tmp_path: Path) -> None:
    """logcat cut the capture inside the Run Order table, after its second row."""
    lines = (BM / "tf29_nnapi_partial_logcat.txt").read_text().splitlines()
    cut = next(i for i, ln in enumerate(lines) if ln.endswith("[model/pixel_shuffle/DepthToSpace]:53"))
    log = tmp_path / "cut.txt"
    log.write_text("\n".join(lines[: cut + 1]) + "\n")
    res = CliRunner().invoke(app, ["profile", "parse", str(log)])
    assert res.exit_code == 0, res.output
    assert "op table truncated: runs section (primary graph) ends before its Timings line" in res.stdout
    assert "inference avg 9.513 (std 0.201) over 105 runs" in res.stdout
    assert "    1  DEPTH_TO_SPACE" in res.stdout
    # cut right after the section heading: no rows, still truncated (not "missing")
    head = next(i for i, ln in enumerate(lines) if "Operator-wise Profiling Info" in ln)
    prof = parse_op_profile("\n".join(lines[: head + 1]), "x")
    assert prof.table is TableState.TRUNCATED and prof.timings is not None
    assert prof.timings.inference_avg_ms == pytest.approx(9.51271)


def test_table_with_fewer_rows_than_nodes_executed_is_truncated() -> None:
    text = (BM / "tf24_cpu_espcn_profile.txt").read_text()
    rows = [ln for ln in text.splitlines() if "[espcn/clip/Minimum]:4" in ln]
    prof = parse_op_profile(text.replace(rows[0] + "\n", "", 1), "x")
    assert prof.table is TableState.TRUNCATED and "runs section (primary graph) lists 5 of 6 nodes" in prof.table_note
    assert parse_op_profile(text, "x").table is TableState.COMPLETE
    assert "summary timings" not in render_table(parse_op_profile(text, "x"))
