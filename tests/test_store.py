"""Run folder, results.json round trip, deltas, and the SQLite index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import records

from perflab.errors import StoreError
from perflab.rules.derive import finalize_cells
from perflab.rules.device import cell_is_imported
from perflab.store.db import ResultsDB
from perflab.store.results import (
    RESULTS_SCHEMA,
    CellRecord,
    CellStatus,
    LatencyRecord,
    ProvenanceRecord,
    QualityRecord,
    RunRecord,
)
from perflab.store.runfolder import RunFolder, load_run, read_samples


def cell(cid: str, baseline: bool, median: float, psnr: float, status: CellStatus = CellStatus.OK) -> CellRecord:
    return records.cell(cid, baseline=baseline, family="f", status=status, latency_ms=records.latency(median),
                        quality=QualityRecord(psnr_y_db=psnr, ssim_y=0.9, frames=1))


def run_record(cells: list[CellRecord]) -> RunRecord:
    return records.run(cells)


def test_deltas_and_realtime() -> None:
    cells = finalize_cells(
        [cell("bicubic_x2.fp32.cpu", True, 10.0, 30.0), cell("espcn_x2.fp32.cpu", False, 40.0, 31.5),
         cell("espcn_x2.int8.cpu", False, 20.0, 31.0, CellStatus.FAILED)],
        fps=30.0,
    )
    base, sr, failed = cells
    assert base.deltas is None and base.realtime is not None and base.realtime.meets is True
    assert base.realtime.statistic == "p90" and base.realtime.budget_ms == pytest.approx(1000 / 30)
    assert sr.deltas is not None and sr.deltas.baseline_cell_id == "bicubic_x2.fp32.cpu"
    assert sr.deltas.latency_median_ms == pytest.approx(30.0)
    assert sr.deltas.psnr_y_db == pytest.approx(1.5)
    assert sr.realtime is not None and sr.realtime.meets is False  # p90 44 ms > 33.3 ms budget
    assert sr.quality.mai2021_score == pytest.approx(2.0 ** 63.0 / 40.0)
    # one pairing rule whatever the status: the failed cell names its baseline, with no values
    assert failed.realtime is None
    assert failed.deltas is not None and failed.deltas.baseline_cell_id == "bicubic_x2.fp32.cpu"
    assert failed.deltas.latency_median_ms is None and "failed" in failed.deltas.missing["all"]


def test_mean_only_verdict_says_so() -> None:
    c = cell("bicubic_x2.fp32.cpu", True, 10.0, 30.0).model_copy(update={"latency_ms": LatencyRecord(
        mode="paced", source="tool summary", mean=20.0, std=2.0, n=10)})
    (out,) = finalize_cells([c], fps=30.0)
    assert out.realtime is not None and out.realtime.meets is True and out.realtime.statistic == "mean"
    assert "only mean and std" in out.realtime.rule


def test_v1_results_are_upgraded_on_reading(tmp_path: Path) -> None:
    run = run_record([cell("bicubic_x2.fp32.cpu", True, 10.0, 30.0)])
    raw = json.loads(run.to_json())
    raw["schema"] = "perflab.results/1"
    c = raw["cells"][0]
    del c["artifact_key"], c["delegates"]
    c["delegate_log"] = ["INFO: Replacing 3 out of 3 node(s) with delegate (TfLiteXNNPackDelegate) node"]
    c["realtime"] = True
    c["quality"]["per_frame"] = [{"frame": "a", "psnr_y_db": 30.0, "ssim_y": 0.9, "piqe_missing": "flat image"}]
    (tmp_path / "results.json").write_text(json.dumps(raw))
    back = load_run(tmp_path)
    b = back.cells[0]
    assert back.schema_ == RESULTS_SCHEMA and b.artifact_key == "bicubic_x2.fp32.cpu"
    assert b.realtime is not None and b.realtime.meets is True and "results/1" in b.realtime.rule
    assert [d.line for d in b.delegates] == c["delegate_log"]
    assert b.quality.per_frame[0].missing == {"piqe": "flat image"} and b.quality.per_frame[0].psnr_y_db == 30.0


def test_results_round_trip_and_schema_check(tmp_path: Path) -> None:
    folder = RunFolder.create(tmp_path / "run")
    run = run_record([cell("bicubic_x2.fp32.cpu", True, 10.0, 30.0)])
    folder.write_results(run)
    folder.append_samples("bicubic_x2.fp32.cpu", "paced", [1.5, 2.25])
    raw = json.loads(folder.results_path.read_text())
    assert raw["schema"] == RESULTS_SCHEMA == "perflab.results/7"
    back = load_run(folder.path)
    assert back == run
    assert read_samples(folder.path) == [("bicubic_x2.fp32.cpu", "paced", 0, 1.5), ("bicubic_x2.fp32.cpu", "paced", 1, 2.25)]
    raw["schema"] = "perflab.results/999"
    folder.results_path.write_text(json.dumps(raw))
    with pytest.raises(StoreError, match="results/999"):
        load_run(folder.path)


def test_imported_cells_carry_their_provenance_and_v6_files_read_without(tmp_path: Path) -> None:
    prov = ProvenanceRecord(source_file="pixel8.log", sha256="ab" * 32, size_bytes=120, format="benchmark_model",
                            imported_utc="2026-12-07T00:00:00Z", missing={"tool_version": "not printed"})
    measured = cell("bicubic_x2.fp32.cpu", True, 10.0, 30.0)
    imported = cell("espcn_x2.fp32.cpu", False, 40.0, 31.5).model_copy(update={"provenance": prov})
    folder = RunFolder.create(tmp_path / "run")
    folder.write_results(run_record([measured, imported]))
    raw = json.loads(folder.results_path.read_text())
    assert raw["cells"][0]["provenance"] is None and raw["cells"][1]["provenance"]["sha256"] == "ab" * 32
    back = load_run(folder.path)
    assert [cell_is_imported(c) for c in back.cells] == [False, True] and back.cells[1].provenance == prov
    raw["schema"] = "perflab.results/6"  # a /6 file has no provenance key: read as measured
    del raw["cells"][0]["provenance"], raw["cells"][1]["provenance"]
    folder.results_path.write_text(json.dumps(raw))
    old = load_run(folder.path)
    assert old.schema_ == RESULTS_SCHEMA and not any(c.imported for c in old.cells)


def test_sqlite_index_is_idempotent(tmp_path: Path) -> None:
    run = run_record([cell("bicubic_x2.fp32.cpu", True, 10.0, 30.0), cell("espcn_x2.fp32.cpu", False, 40.0, 31.5)])
    with ResultsDB(tmp_path / "db.sqlite") as db:
        db.index_run(run, tmp_path)
        db.index_run(run, tmp_path)
        assert db.run_ids() == ["r1"]
        rows = db.cell_rows("r1")
    assert [(r["cell_id"], r["latency_median_ms"], r["psnr_y_db"]) for r in rows] == [
        ("bicubic_x2.fp32.cpu", 10.0, 30.0), ("espcn_x2.fp32.cpu", 40.0, 31.5)]


# -- damaged results.json, samples.csv and results index: one line naming the file -----------------


def _load_err(tmp_path: Path, content: bytes) -> str:
    (tmp_path / "results.json").write_bytes(content)
    with pytest.raises(StoreError) as ei:
        load_run(tmp_path)
    msg = str(ei.value)
    assert "\n" not in msg and str(tmp_path / "results.json") in msg
    return msg


def test_damaged_results_json_is_one_line_with_its_line(tmp_path: Path) -> None:
    good = run_record([cell("bicubic_x2.fp32.cpu", True, 10.0, 30.0)]).to_json()
    lines = good.splitlines()
    # not UTF-8: the line of the bad byte
    bad = "\n".join(lines[:3]).encode() + b'\n"x": "caf\xe9",\n' + "\n".join(lines[3:]).encode()
    assert "results.json:4: not UTF-8" in _load_err(tmp_path, bad)
    # NaN / Infinity are not JSON numbers: refused with their line, not read as floats
    nan_text = good.replace('"median": 10.0', '"median": NaN')
    nan_line = nan_text.splitlines().index(next(ln for ln in nan_text.splitlines() if "NaN" in ln)) + 1
    assert f"results.json:{nan_line}: NaN is not a number" in _load_err(tmp_path, nan_text.encode())
    assert "-Infinity is not a number" in _load_err(tmp_path, good.replace('"median": 10.0', '"median": -Infinity').encode())
    # deep nesting, truncation, wrong types
    assert "nested too deeply" in _load_err(tmp_path, b"[" * 200_000)
    assert "not valid JSON" in _load_err(tmp_path, good[: len(good) // 2].encode())
    assert "top level" in _load_err(tmp_path, b"[1, 2]")
    wrong = json.loads(good)
    wrong["cells"][0]["latency_ms"]["median"] = "fast"
    assert "cells.0.latency_ms.median" in _load_err(tmp_path, json.dumps(wrong).encode())
    wrong = json.loads(good)
    wrong["cells"] = {"a\nb": 1}
    assert "cells" in _load_err(tmp_path, json.dumps(wrong).encode())
    assert "not a perflab results file" in _load_err(tmp_path, b'{"schema": "perflab.results/\\u0663"}')


def test_newer_schema_is_one_clear_line(tmp_path: Path) -> None:
    msg = _load_err(tmp_path, b'{"schema": "perflab.results/99", "anything": {"else": []}}')
    assert msg.endswith(f"written by a newer perflab (schema perflab.results/99); this perflab reads up to "
                        f"{RESULTS_SCHEMA}: upgrade perflab")


def test_damaged_samples_csv(tmp_path: Path) -> None:
    p = tmp_path / "samples.csv"
    p.write_bytes(b"cell_id,series,iteration,latency_ms\na,paced,0,1.5\na,paced,1,\xff\n")
    with pytest.raises(StoreError, match=r"samples.csv:3: not UTF-8"):
        read_samples(p)
    p.write_text("cell_id,series,iteration,latency_ms\na,paced,0,1.5\na,paced,x,2\n")
    with pytest.raises(StoreError, match=r"samples.csv:3: iteration/latency_ms not numeric"):
        read_samples(p)
    p.write_text("cell_id,series,iteration,latency_ms\na,paced,0,nan\n")
    with pytest.raises(StoreError, match=r"samples.csv:2: latency_ms must be a finite number"):
        read_samples(p)
    # the one reader: the report and the index refuse the same rows (a negative latency was
    # once refused by the report's reader only)
    p.write_text("cell_id,series,iteration,latency_ms\na,paced,0,1.5\na,paced,1,-2\n")
    with pytest.raises(StoreError, match=r"samples.csv:3: latency_ms must be a finite number ≥ 0"):
        read_samples(p)


@pytest.mark.parametrize("damage", ["garbage", "wrong_tables", "bad_version", "truncated"])
def test_damaged_index_is_one_line_store_error(tmp_path: Path, damage: str) -> None:
    import sqlite3

    path = tmp_path / "db.sqlite"
    run = run_record([cell("bicubic_x2.fp32.cpu", True, 10.0, 30.0)])
    if damage == "garbage":
        path.write_bytes(b"this is not sqlite\x00" * 100)
    elif damage == "wrong_tables":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE runs (id INTEGER)")
    elif damage == "bad_version":
        with ResultsDB(path) as db:
            db.index_run(run, tmp_path)
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE meta SET value='not a number' WHERE key='schema_version'")
    else:
        with ResultsDB(path) as db:
            db.index_run(run, tmp_path)
        data = path.read_bytes()
        path.write_bytes(data[:100] + b"\xde\xad" * 50 + data[200:])
    with pytest.raises(StoreError) as ei, ResultsDB(path) as db:
        db.index_run(run, tmp_path)
        db.run_ids()
    assert str(path) in str(ei.value) and "\n" not in str(ei.value)


@pytest.mark.slow
def test_run_with_a_damaged_index_still_writes_its_report(tmp_path: Path) -> None:
    """The DB is only an index: a damaged one is one warning line; results and report are written."""
    import subprocess
    import sys

    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(
        "name: tiny\ngeometry: {lr_width: 64, lr_height: 48, scale: 2}\ndelegates: [cpu]\nthreads: 1\n"
        "runs: {warmup: 1, iterations: 3}\nprofiling: {op_profiling: false}\n"
        "inputs:\n  images:\n    - skimage: coffee\nmodels:\n  - zoo: espcn\n"
    )
    db = tmp_path / "db.sqlite"
    db.write_bytes(b"garbage, not sqlite\x00" * 64)
    out = tmp_path / "run"
    r = subprocess.run([str(Path(sys.executable).with_name("perflab")), "run", str(scenario), "--device", "local",
                        "--out", str(out), "--db", str(db)], capture_output=True, text=True, check=False, timeout=900)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if "results index not updated" in ln]
    assert len(warnings) == 1 and str(db) in warnings[0]
    assert (out / "index.html").is_file() and load_run(out).exit_code == 0
    # saved frames are named by the input's stem, once: coffee.png, not coffee.png.png
    assert sorted(p.name for p in (out / "frames" / "hr").iterdir()) == ["coffee.png"]


def test_power_deltas_need_one_source_on_both_sides() -> None:
    from perflab.store.results import TelemetryRecord

    base = cell("bicubic_x2.fp32.cpu", True, 10.0, 30.0).model_copy(update={"telemetry": TelemetryRecord(
        power_mw=900.0, current_ma=230.0, power_source="battery counters (not charging)",
        missing={"temp_c": "no thermal zone was read"})})
    sr = cell("espcn_x2.fp32.cpu", False, 40.0, 31.5).model_copy(update={"telemetry": TelemetryRecord(
        power_mw=1400.0, current_ma=360.0, power_source="external meter (ppk2, bypass supply)")})
    _, d_sr = finalize_cells([base, sr], fps=30.0)
    assert d_sr.deltas is not None and d_sr.deltas.power_mw is None and d_sr.deltas.current_ma is None
    assert "different sources" in d_sr.deltas.missing["power_mw"]
    assert d_sr.deltas.missing["temp_max_c"] == "no thermal zone was read"  # the reason under its own key
    same = sr.model_copy(update={"telemetry": sr.telemetry.model_copy(update={"power_source": base.telemetry.power_source})})
    _, d_same = finalize_cells([base, same], fps=30.0)
    assert d_same.deltas is not None and d_same.deltas.power_mw == pytest.approx(500.0)
