"""Results index in a database: SQLite file by default (PostgreSQL by URL comes later).

The run folder is the source of truth; the database indexes runs and cells so history,
nightly trends and the compatibility matrix can query across runs. Schema is versioned.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Self

from perflab.errors import StoreError
from perflab.store.results import RunRecord

DB_SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    scenario TEXT NOT NULL,
    scenario_sha256 TEXT NOT NULL,
    started_utc TEXT NOT NULL,
    finished_utc TEXT,
    folder TEXT NOT NULL,
    results_schema TEXT NOT NULL,
    exit_code INTEGER
);
CREATE TABLE IF NOT EXISTS cells (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    cell_id TEXT NOT NULL,
    device_serial TEXT NOT NULL,
    device_kind TEXT NOT NULL,
    device_model TEXT NOT NULL,
    model_name TEXT NOT NULL,
    variant TEXT NOT NULL,
    model_sha256 TEXT,
    delegate TEXT NOT NULL,
    baseline INTEGER NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    latency_median_ms REAL,
    latency_p90_ms REAL,
    latency_mean_ms REAL,
    latency_n INTEGER,
    psnr_y_db REAL,
    ssim_y REAL,
    mem_peak_mb REAL,
    cpu_load_pct REAL,
    PRIMARY KEY (run_id, device_serial, cell_id)
);
"""


class ResultsDB:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, timeout=30)
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.executescript(_DDL)
            cur = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'")
            row = cur.fetchone()
            if row is None:
                self._conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(DB_SCHEMA_VERSION),))
                self._conn.commit()
            elif int(row[0]) != DB_SCHEMA_VERSION:
                raise StoreError(f"{path}: database schema {row[0]} is not {DB_SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: {exc}") from exc

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def index_run(self, run: RunRecord, folder: Path) -> None:
        """Insert or replace a run and all its cells (idempotent)."""
        try:
            with self._conn:
                self._conn.execute("DELETE FROM runs WHERE run_id = ?", (run.run_id,))
                self._conn.execute(
                    "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?)",
                    (run.run_id, run.scenario.name, run.scenario.sha256, run.started_utc, run.finished_utc,
                     str(folder), run.schema_, run.exit_code),
                )
                for c in run.cells:
                    lat = c.latency_ms
                    self._conn.execute(
                        "INSERT INTO cells VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (run.run_id, c.cell_id, c.device.serial, c.device.kind, c.device.model, c.model.name,
                         c.model.variant, c.model.sha256, c.delegate, int(c.baseline), c.status.value, c.reason,
                         lat.median if lat else None, lat.p90 if lat else None, lat.mean if lat else None,
                         lat.n if lat else None, c.quality.psnr_y_db, c.quality.ssim_y,
                         c.telemetry.mem_peak_mb, c.telemetry.cpu_load_pct),
                    )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    def run_ids(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT run_id FROM runs ORDER BY started_utc")]

    def cell_rows(self, run_id: str) -> list[dict[str, object]]:
        cur = self._conn.execute("SELECT * FROM cells WHERE run_id = ? ORDER BY cell_id", (run_id,))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]
