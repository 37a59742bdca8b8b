"""The results store on real SQLite and a real PostgreSQL: Alembic migrations on open, raw samples
kept, history as DataFrames, a pre-Alembic index adopted, a newer or foreign one refused.

PostgreSQL tests run on the session's server (conftest's ``pg_url``: a throwaway cluster, or
$PERFLAB_TEST_PG_URL); each test works in its own schema, dropped afterwards."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from support import records

from perflab.errors import StoreError, UserInputError
from perflab.store.db import ResultsDB
from perflab.store.results import (
    CellRecord,
    CellStatus,
    DeviceRecord,
    QualityRecord,
    RunRecord,
    TelemetryRecord,
)
from perflab.store.sql import DB_SCHEMA_VERSION, HEAD_REVISION, SqlStore, normalize_url

SCEN = records.LIGHT


def _cell(cid: str, serial: str, median: float, status: CellStatus = CellStatus.OK) -> CellRecord:
    ok = status == CellStatus.OK
    return records.cell(
        cid, device=records.emulated_device(serial, "Pixel 7", fingerprint="google/panther:14"), status=status,
        artifact_key=f"{serial}/{cid}", model_sha256="b" * 64, latency_ms=records.latency(median, n=3) if ok else None,
        quality=QualityRecord(psnr_y_db=31.5 if ok else None),
        telemetry=TelemetryRecord(power_mw=900.0 if ok else None, start_temp_c=30.0))


def _run(folder: Path, run_id: str, started: str, median: float, status: CellStatus = CellStatus.OK) -> RunRecord:
    cells = [_cell("bicubic_x2.fp32.cpu", "emu-1", 5.0), _cell("espcn_x2.fp32.cpu", "emu-1", median, status),
             _cell("espcn_x2.fp32.cpu", "emu-2", median + 1)]
    run = records.run(cells, run_id=run_id, scenario=SCEN, started_utc=started, perflab_version="0.9")
    records.write_run_folder(folder, run, {c.artifact_key: [c.latency_ms.median - 0.5, c.latency_ms.median,
                                                            c.latency_ms.median + 0.5]
                                           for c in cells if c.latency_ms is not None and c.latency_ms.median})
    return run


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "perflab.sqlite")
        return
    yield request.getfixturevalue("pg_schema_url")


def test_index_history_and_samples(store_url: str, tmp_path: Path) -> None:
    r1 = _run(tmp_path / "n1", "n1", "2026-11-26T00:00:00+00:00", 20.0)
    r2 = _run(tmp_path / "n2", "n2", "2026-11-27T00:00:00+00:00", 24.0, CellStatus.FAILED)
    with SqlStore(store_url) as st:
        assert st.revision() == HEAD_REVISION
        st.index_run(r2, tmp_path / "n2")
        st.index_run(r1, tmp_path / "n1")
        st.index_run(r1, tmp_path / "n1")  # idempotent
        assert st.run_ids() == ["n1", "n2"]  # by start time, not insertion
        assert st.run_folder("n2") == tmp_path / "n2" and st.run_folder("nope") is None
        assert st.samples("n1", "emu-1", "espcn_x2.fp32.cpu") == [19.5, 20.0, 20.5]
        assert st.samples("n1", "emu-2", "espcn_x2.fp32.cpu", "paced") == [20.5, 21.0, 21.5]
        assert st.samples("n2", "emu-1", "espcn_x2.fp32.cpu") == []  # failed: no samples
        sf = st.samples_frame("n1")
        assert len(sf) == 9 and list(sf.columns) == ["device_serial", "cell_id", "series", "iteration", "latency_ms"]
        h = st.history(["latency.median", "telemetry.power_mw"])
        assert isinstance(h, pd.DataFrame)
        med = h[(h.metric == "latency.median") & (h.device_serial == "emu-1") & (h.cell_id == "espcn_x2.fp32.cpu")]
        assert list(med.run_id) == ["n1"] and list(med.value) == [20.0]  # n2's cell failed: no value
        emu2 = h[(h.metric == "latency.median") & (h.device_serial == "emu-2") & (h.cell_id == "espcn_x2.fp32.cpu")]
        assert list(emu2.value) == [21.0, 25.0]
        assert set(h.metric) == {"latency.median", "telemetry.power_mw"}
        assert h.baseline.dtype == bool and h[h.model_name == "bicubic_x2"].baseline.all()
        only = st.history(device_serial="emu-2", model_name="espcn_x2")
        assert set(only.device_serial) == {"emu-2"} and "latency.p90" in set(only.metric)
        cf = st.cells_frame()
        flips = cf[(cf.device_serial == "emu-1") & (cf.cell_id == "espcn_x2.fp32.cpu")]
        assert list(flips.status) == ["ok", "failed"]
        assert list(flips.reason.isna()) == [True, False] and flips.reason.iloc[1] == "it broke"
        assert set(cf.device_fingerprint) == {"google/panther:14"} and set(cf.perflab_version) == {"0.9"}
        st.delete_run("n1")
        assert st.run_ids() == ["n2"] and st.samples("n1", "emu-1", "espcn_x2.fp32.cpu") == []
    with SqlStore(store_url) as st:  # reopening migrates nothing and keeps the data
        assert st.run_ids() == ["n2"] and st.revision() == HEAD_REVISION


def test_two_openers_at_once_migrate_once(store_url: str) -> None:
    """Workers opening a new store together: the migration runs once (PostgreSQL: under an
    advisory lock; SQLite: its file lock), nobody fails."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def open_it() -> None:
        try:
            barrier.wait()
            SqlStore(store_url).close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with SqlStore(store_url) as st:
        assert st.revision() == HEAD_REVISION


_V1_DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (run_id TEXT PRIMARY KEY, scenario TEXT NOT NULL, scenario_sha256 TEXT NOT NULL,
    started_utc TEXT NOT NULL, finished_utc TEXT, folder TEXT NOT NULL, results_schema TEXT NOT NULL, exit_code INTEGER);
CREATE TABLE cells (run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE, cell_id TEXT NOT NULL,
    device_serial TEXT NOT NULL, device_kind TEXT NOT NULL, device_model TEXT NOT NULL, model_name TEXT NOT NULL,
    variant TEXT NOT NULL, model_sha256 TEXT, delegate TEXT NOT NULL, baseline INTEGER NOT NULL, status TEXT NOT NULL,
    reason TEXT, latency_median_ms REAL, latency_p90_ms REAL, latency_mean_ms REAL, latency_n INTEGER, psnr_y_db REAL,
    ssim_y REAL, mem_peak_mb REAL, cpu_load_pct REAL, PRIMARY KEY (run_id, device_serial, cell_id));
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO runs VALUES ('old', 's', 'x', '2026-01-01T00:00:00+00:00', NULL, '/gone', 'perflab.results/1', 0);
INSERT INTO cells VALUES ('old', 'espcn_x2.fp32.cpu', 'local', 'local', 'm', 'espcn_x2', 'fp32', NULL, 'cpu', 0, 'ok',
    NULL, 12.5, 13.0, 12.6, 10, 31.0, 0.9, NULL, NULL);
"""


def test_index_written_before_alembic_is_adopted_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "perflab.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(_V1_DDL)
    with ResultsDB(path) as db:
        assert db.revision() == HEAD_REVISION
        assert db.run_ids() == ["old"]
        assert db.cell_rows("old")[0]["latency_median_ms"] == 12.5
        r = _run(tmp_path / "n1", "n1", "2026-11-26T00:00:00+00:00", 20.0)
        db.index_run(r, tmp_path / "n1")
        assert db.run_ids() == ["old", "n1"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (str(DB_SCHEMA_VERSION),)
        assert conn.execute("SELECT count(*) FROM samples").fetchone() == (9,)


def test_newer_revision_and_foreign_tables_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "perflab.sqlite"
    SqlStore(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError) as ei:
        SqlStore(path)
    assert "written by a newer perflab" in str(ei.value) and str(path) in str(ei.value) and "\n" not in str(ei.value)
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE cells (x INTEGER)")
    with pytest.raises(StoreError, match=r"not a perflab results index \(table runs has columns none"):
        SqlStore(other)


def test_urls() -> None:
    assert normalize_url("reports/perflab.sqlite") == "sqlite:///reports/perflab.sqlite"
    assert normalize_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    with pytest.raises(UserInputError, match="mysql:// is not supported"):
        normalize_url("mysql://h/db")


def test_unreachable_postgres_is_one_line_without_password() -> None:
    # a port nothing listens on (127.0.0.1:1): refused at once
    with pytest.raises(StoreError) as ei:
        SqlStore("postgresql://perflab:s3cret@127.0.0.1:1/perflab?connect_timeout=2")
    msg = str(ei.value)
    assert "s3cret" not in msg and "127.0.0.1:1" in msg and "\n" not in msg
    assert "cannot connect to the results store" in msg


def test_run_record_and_samples_from_the_store_alone(store_url: str, tmp_path: Path) -> None:
    r1 = _run(tmp_path / "n1", "n1", "2026-11-26T00:00:00+00:00", 20.0)
    with SqlStore(store_url) as st:
        st.index_run(r1, tmp_path / "n1")
        assert st.load_run("n1") == r1 and st.load_run("nope") is None
        assert st.samples_by_key(r1) == {("emu-1/bicubic_x2.fp32.cpu", "paced"): (4.5, 5.0, 5.5),
                                         ("emu-1/espcn_x2.fp32.cpu", "paced"): (19.5, 20.0, 20.5),
                                         ("emu-2/espcn_x2.fp32.cpu", "paced"): (20.5, 21.0, 21.5)}


def test_tool_memory_and_imported_cells_survive_the_store(store_url: str, tmp_path: Path) -> None:
    """A cell's tool memory figure (tool_mem_mb/_source, beside the sampler's mem_peak_mb) and an
    imported cell's provenance come back from the cell rows, the history and the stored record."""
    measured = records.cell("espcn_x2.fp32.cpu", device=records.emulated_device("emu-1"), latency_ms=records.latency(20.0),
                            telemetry=TelemetryRecord(mem_peak_mb=76.0, tool_mem_mb=7.5,
                                                      tool_mem_source="benchmark_model memory footprint delta"))
    imported = records.cell("espcn_x2.fp32.gpu", device=DeviceRecord(serial="pixel8", kind="android", model="Pixel 8"),
                            latency_ms=records.latency_of([18.0, 19.0, 20.0], summary_only=True),
                            telemetry=TelemetryRecord(tool_mem_mb=12.25, tool_mem_source="benchmark_model peak"),
                            provenance=records.provenance())
    run = records.run([measured, imported], run_id="t1", scenario=SCEN)
    records.write_run_folder(tmp_path / "t1", run)
    with SqlStore(store_url) as st:
        st.index_run(run, tmp_path / "t1")
        rows = {r["device_serial"]: r for r in st.cell_rows("t1")}
        assert (rows["emu-1"]["tool_mem_mb"], rows["emu-1"]["mem_peak_mb"]) == (7.5, 76.0)
        assert rows["emu-1"]["tool_mem_source"] == "benchmark_model memory footprint delta"
        assert not rows["emu-1"]["imported"] and rows["emu-1"]["provenance_sha256"] is None
        assert rows["pixel8"]["tool_mem_mb"] == 12.25 and rows["pixel8"]["imported"]
        assert (rows["pixel8"]["provenance_file"], rows["pixel8"]["provenance_sha256"]) == ("pixel8_espcn.log", "ab" * 32)
        h = st.history(["telemetry.tool_mem_mb"])
        assert sorted(zip(h.device_serial, h.value, h.imported, strict=True)) == [("emu-1", 7.5, False),
                                                                                  ("pixel8", 12.25, True)]
        cf = st.cells_frame()
        assert cf.imported.dtype == bool and list(cf.sort_values("device_serial").imported) == [False, True]
        back = st.load_run("t1")
        assert back is not None and back.cells[0].telemetry.tool_mem_mb == 7.5
        assert back.cells[1].provenance == imported.provenance and back.cells[1].imported
