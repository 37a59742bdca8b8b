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


_EXPECTED_COLUMNS = {
    "meta": ("key", "value"),
    "runs": ("run_id", "scenario", "scenario_sha256", "started_utc", "finished_utc", "folder", "results_schema",
             "exit_code"),
    "cells": ("run_id", "cell_id", "device_serial", "device_kind", "device_model", "model_name", "variant",
              "model_sha256", "delegate", "baseline", "status", "reason", "latency_median_ms", "latency_p90_ms",
              "latency_mean_ms", "latency_n", "psnr_y_db", "ssim_y", "mem_peak_mb", "cpu_load_pct"),
}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class ResultsDB:
    """The results index. A file that is not a perflab index (garbage bytes, other tables,
    another schema version) is a one-line StoreError naming it; nothing in it is trusted."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create its folder: {exc.strerror or exc}") from None
        try:
            self._conn = sqlite3.connect(path, timeout=30)
        except (sqlite3.Error, ValueError) as exc:
            raise StoreError(f"{path}: cannot open the results index: {_one_line(exc)}") from None
        try:
            self._open()
        except sqlite3.Error as exc:
            self._conn.close()
            raise StoreError(
                f"{path}: not a readable perflab results index ({_one_line(exc)}); move it aside to start a new one"
            ) from None
        except StoreError:
            self._conn.close()
            raise

    def _open(self) -> None:
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.executescript(_DDL)
        for table, expected in _EXPECTED_COLUMNS.items():
            cols = tuple(str(r[1]) for r in self._conn.execute(f"PRAGMA table_info({table})"))
            if cols != expected:
                raise StoreError(
                    f"{self.path}: not a perflab results index (table {table} has columns "
                    f"{', '.join(cols) or 'none'}); move it aside to start a new one"
                )
        cur = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'")
        row = cur.fetchone()
        if row is None:
            self._conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(DB_SCHEMA_VERSION),))
            self._conn.commit()
        elif str(row[0]) != str(DB_SCHEMA_VERSION):
            raise StoreError(
                f"{self.path}: results index schema {str(row[0])[:40]!r} is not "
                f"{DB_SCHEMA_VERSION}; move it aside to start a new one"
            )

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
            raise StoreError(f"{self.path}: cannot index the run: {_one_line(exc)}") from None

    def run_ids(self) -> list[str]:
        try:
            return [str(r[0]) for r in self._conn.execute("SELECT run_id FROM runs ORDER BY started_utc")]
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {_one_line(exc)}") from None

    def cell_rows(self, run_id: str) -> list[dict[str, object]]:
        try:
            cur = self._conn.execute("SELECT * FROM cells WHERE run_id = ? ORDER BY cell_id", (run_id,))
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {_one_line(exc)}") from None
