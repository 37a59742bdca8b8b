"""The results store in a database: SQLAlchemy, Alembic migrations, SQLite or PostgreSQL.

``SqlStore(url)``: a SQLite file by default (a path, or ``sqlite:///path``), PostgreSQL by URL
(``postgresql://user@host/db``; driven by psycopg 3). Opening runs the Alembic migrations
(``perflab/store/migrations``) up to the newest revision, under an advisory lock on
PostgreSQL so two workers opening at once do not race. An index written by perflab before
Alembic (DB schema 1: meta, runs, cells) is adopted as revision 0001 and migrated. A database
whose revision this perflab does not know (a newer perflab wrote it), or a file that is not a
perflab index, is a one-line StoreError naming it.

Tables: ``runs``, ``cells`` (one row per device × cell, the headline numbers), ``metrics``
(every numeric metric of a cell, long form: the history and the dashboard read it),
``samples`` (raw per-iteration latency from samples.csv), ``meta`` (schema_version); ``runs``
also keeps each run's results.json, so a run can be compared from the store alone. A cell row
keeps the tool's own memory figure beside the sampler's and whether the cell was imported
(with its capture's file and sha256), so history says IMPORTED without the run folder.
History queries return pandas DataFrames.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Self

import pandas as pd

from perflab.core.names import one_line
from perflab.errors import MissingDependencyError, StoreError, UserInputError
from perflab.store.results import CellRecord, RunRecord
from perflab.store.runfolder import parse_results_json, read_samples

DB_SCHEMA_VERSION = 4
HEAD_REVISION = "0004"
_MIGRATIONS = Path(__file__).with_name("migrations")
_PG_LOCK_ID = 7_270_001  # pg_advisory_xact_lock key held while migrating
_MIGRATE_LOCK = threading.Lock()

_V1_COLUMNS = {
    "runs": {"run_id", "scenario", "scenario_sha256", "started_utc", "finished_utc", "folder", "results_schema",
             "exit_code"},
    "cells": {"run_id", "cell_id", "device_serial", "device_kind", "device_model", "model_name", "variant",
              "model_sha256", "delegate", "baseline", "status", "reason", "latency_median_ms", "latency_p90_ms",
              "latency_mean_ms", "latency_n", "psnr_y_db", "ssim_y", "mem_peak_mb", "cpu_load_pct"},
    "meta": {"key", "value"},
}

# metric name → (record part, field); the names thresholds and the dashboard use
LATENCY_FIELDS = ("median", "mean", "p10", "p90", "p95", "p99", "min", "max", "std", "mad", "cv_pct", "init", "first")
QUALITY_FIELDS = ("psnr_y_db", "ssim_y", "psnr_rgb_db", "piqe", "mai2021_score")
TELEMETRY_FIELDS = ("cpu_load_pct", "mem_peak_mb", "tool_mem_mb", "rss_peak_mb", "start_temp_c", "temp_max_c", "temp_end_c",
                    "device_cpu_busy_pct", "gpu_busy_pct", "current_ma", "power_mw", "energy_mj", "mj_per_frame",
                    "mah_per_hour")
METRICS: tuple[str, ...] = (
    *(f"latency.{f}" for f in LATENCY_FIELDS), "latency.n",
    *(f"quality.{f}" for f in QUALITY_FIELDS),
    *(f"telemetry.{f}" for f in TELEMETRY_FIELDS),
)


def metric_values(cell: CellRecord) -> dict[str, float]:
    """Every numeric metric of a cell that was measured, by its METRICS name (pure)."""
    out: dict[str, float] = {}
    lat = cell.latency_ms
    if lat is not None:
        for f in LATENCY_FIELDS:
            v = getattr(lat, f)
            if v is not None:
                out[f"latency.{f}"] = float(v)
        if lat.n:
            out["latency.n"] = float(lat.n)
    for f in QUALITY_FIELDS:
        v = getattr(cell.quality, f)
        if v is not None:
            out[f"quality.{f}"] = float(v)
    for f in TELEMETRY_FIELDS:
        v = getattr(cell.telemetry, f)
        if v is not None:
            out[f"telemetry.{f}"] = float(v)
    return out


def normalize_url(url: str | Path) -> str:
    """``--db`` value → a SQLAlchemy URL: a path or ``sqlite:///path`` is SQLite,
    ``postgresql://`` uses psycopg 3. Other schemes, and a URL SQLAlchemy cannot parse (a bad
    port, an unclosed ``[``), are refused: one line, exit 2, the password never shown."""
    text = str(url)
    if "://" not in text:
        return f"sqlite:///{text}"
    scheme, rest = text.split("://", 1)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        normalized = f"postgresql+psycopg://{rest}"
    elif scheme == "sqlite":
        normalized = text
    else:
        raise UserInputError(f"--db: {one_line(scheme, 40)}:// is not supported; give a SQLite file path, "
                             "sqlite:///path or postgresql://user@host/db")
    _check_parses(normalized, scheme)
    return normalized


def _check_parses(url: str, scheme: str) -> None:
    """Parse ``url`` with SQLAlchemy's own parser (what connecting will do), so that a URL it
    cannot read is bad input now, not an internal error later. Without SQLAlchemy installed the
    store says so when opened."""
    try:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError
    except ImportError:
        return
    try:
        parsed = make_url(url)
        port = parsed.port
    except ValueError:  # the port: int() of what follows the host
        raise UserInputError(f"--db: this {scheme}:// URL's port is not a number (an IPv6 host goes in "
                             "brackets: postgresql://user@[::1]:5432/db)") from None
    except ArgumentError:  # its message holds the whole URL, password included: not shown
        raise UserInputError(f"--db: this {scheme}:// URL cannot be parsed; give postgresql://user@host:port/db "
                             "or sqlite:///path") from None
    if port is not None and not 0 < port < 65536:
        raise UserInputError(f"--db: port {port} is out of range (1-65535)")


def redact(url: str) -> str:
    """A URL without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a message must never fail on a URL it cannot parse
        return url.split("@")[-1]


def _err(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    return one_line(" ".join(str(orig if orig is not None else exc).split()) or type(exc).__name__, 240)


class SqlStore:
    """The results store. ``where`` names it in messages (the file, or the URL without password)."""

    def __init__(self, url: str | Path) -> None:
        try:
            import alembic  # noqa: F401
            import sqlalchemy as sa
        except ImportError as exc:
            raise MissingDependencyError(exc.name or "sqlalchemy", "the results store") from exc
        self._sa = sa
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self.where = self.url.removeprefix("sqlite:///") if self.is_sqlite else redact(self.url)
        if self.is_sqlite:
            path = Path(self.url.removeprefix("sqlite:///"))
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{path}: cannot create its folder: {exc.strerror or exc}") from None
        try:
            self.engine = sa.create_engine(self.url, connect_args={"timeout": 30} if self.is_sqlite else {},
                                           pool_pre_ping=not self.is_sqlite)
        except ImportError as exc:
            raise MissingDependencyError("psycopg[binary]", "PostgreSQL results stores") from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"{self.where}: cannot open the results store: {_err(exc)}") from None
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        if not self.is_sqlite:
            try:
                with self.engine.connect():
                    pass
            except sa.exc.SQLAlchemyError as exc:
                self.engine.dispose()
                raise StoreError(f"{self.where}: cannot connect to the results store: {_err(exc)}") from None
        try:
            self._migrate()
        except sa.exc.SQLAlchemyError as exc:
            self.engine.dispose()
            raise StoreError(f"{self.where}: not a readable perflab results index ({_err(exc)}); move it aside to "
                             "start a new one") from None
        except StoreError:
            self.engine.dispose()
            raise
        self._tables()

    # -- schema ---------------------------------------------------------------------------------

    def _migrate(self) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        sa = self._sa
        cfg = Config()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        # alembic's ``context`` is module-global: one migration at a time in this process; across
        # processes the database's own lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: advisory lock)
        with _MIGRATE_LOCK, self.engine.begin() as conn:
            known = {s.revision for s in ScriptDirectory.from_config(cfg).walk_revisions()}
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_PG_LOCK_ID})"))
            insp = sa.inspect(conn)
            tables = set(insp.get_table_names())
            cfg.attributes["connection"] = conn
            if "alembic_version" in tables:
                rev = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
                if rev is not None and str(rev) not in known:
                    raise StoreError(f"{self.where}: results store revision {one_line(str(rev), 40)} was written by "
                                     f"a newer perflab (this one knows up to {HEAD_REVISION}): upgrade perflab")
            elif tables & set(_V1_COLUMNS):
                for table, cols in _V1_COLUMNS.items():
                    have = {c["name"] for c in insp.get_columns(table)} if table in tables else set()
                    if have != cols:
                        raise StoreError(f"{self.where}: not a perflab results index (table {table} has columns "
                                         f"{one_line(', '.join(sorted(have)) or 'none', 160)}); move it aside to "
                                         "start a new one")
                command.stamp(cfg, "0001")  # written by perflab before Alembic: DB schema 1
            command.upgrade(cfg, "head")
            v = conn.execute(sa.text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar()
            if str(v) != str(DB_SCHEMA_VERSION):
                raise StoreError(f"{self.where}: results index schema {one_line(str(v), 40)!r} is not "
                                 f"{DB_SCHEMA_VERSION}; move it aside to start a new one")

    def _tables(self) -> None:
        sa = self._sa
        md = sa.MetaData()
        md.reflect(bind=self.engine, only=["runs", "cells", "samples", "metrics"])
        self.t_runs = md.tables["runs"]
        self.t_cells = md.tables["cells"]
        self.t_samples = md.tables["samples"]
        self.t_metrics = md.tables["metrics"]

    def revision(self) -> str | None:
        with self._connect() as conn:
            v = conn.execute(self._sa.text("SELECT version_num FROM alembic_version")).scalar()
        return None if v is None else str(v)

    # -- lifecycle ------------------------------------------------------------------------------

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> Any:
        try:
            return self.engine.connect()
        except self._sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"{self.where}: cannot connect: {_err(exc)}") from None

    def _guard(self, what: str) -> _Guard:
        return _Guard(self, what)

    # -- writing --------------------------------------------------------------------------------

    def index_run(self, run: RunRecord, folder: Path,
                  samples: Sequence[tuple[str, str, int, float]] | None = None) -> None:
        """Insert or replace a run, its cells, metrics and raw samples (idempotent). ``samples``
        default to the folder's samples.csv (rows keyed by each cell's artifact_key)."""
        rows = list(read_samples(folder)) if samples is None else list(samples)
        by_key = {c.artifact_key: c for c in run.cells}
        sample_rows: list[dict[str, object]] = []
        seen: set[tuple[str, str, str, str, int]] = set()
        for key, series, it, ms in rows:
            c = by_key.get(key)
            if c is None:
                continue
            pk = (run.run_id, c.device.serial, c.cell_id, series, it)
            if pk in seen:
                continue
            seen.add(pk)
            sample_rows.append({"run_id": run.run_id, "device_serial": c.device.serial, "cell_id": c.cell_id,
                                "series": series, "iteration": it, "latency_ms": ms})
        cell_rows: list[dict[str, object]] = []
        metric_rows: list[dict[str, object]] = []
        for c in run.cells:
            lat = c.latency_ms
            cell_rows.append({
                "run_id": run.run_id, "cell_id": c.cell_id, "device_serial": c.device.serial,
                "device_kind": c.device.kind, "device_model": c.device.model, "model_name": c.model.name,
                "variant": c.model.variant, "model_sha256": c.model.sha256, "delegate": c.delegate,
                "baseline": int(c.baseline), "status": c.status.value, "reason": c.reason,
                "latency_median_ms": lat.median if lat else None, "latency_p90_ms": lat.p90 if lat else None,
                "latency_mean_ms": lat.mean if lat else None, "latency_n": lat.n if lat else None,
                "psnr_y_db": c.quality.psnr_y_db, "ssim_y": c.quality.ssim_y,
                "mem_peak_mb": c.telemetry.mem_peak_mb, "cpu_load_pct": c.telemetry.cpu_load_pct,
                "artifact_key": c.artifact_key, "device_fingerprint": c.device.fingerprint,
                "tool_mem_mb": c.telemetry.tool_mem_mb, "tool_mem_source": c.telemetry.tool_mem_source,
                "imported": int(c.imported),
                "provenance_file": c.provenance.source_file if c.provenance else None,
                "provenance_sha256": c.provenance.sha256 if c.provenance else None,
            })
            metric_rows.extend({"run_id": run.run_id, "device_serial": c.device.serial, "cell_id": c.cell_id,
                                "metric": m, "value": v} for m, v in metric_values(c).items())
        sa = self._sa
        with self._guard("cannot index the run"), self.engine.begin() as conn:
            for t in (self.t_samples, self.t_metrics, self.t_cells, self.t_runs):
                conn.execute(sa.delete(t).where(t.c.run_id == run.run_id))
            conn.execute(sa.insert(self.t_runs), [{
                "run_id": run.run_id, "scenario": run.scenario.name, "scenario_sha256": run.scenario.sha256,
                "started_utc": run.started_utc, "finished_utc": run.finished_utc, "folder": str(folder),
                "results_schema": run.schema_, "exit_code": run.exit_code, "perflab_version": run.perflab_version,
                "results_json": run.to_json()}])
            # a run with two records of one (serial, cell) keeps the last, as results.json readers do
            uniq = {(r["device_serial"], r["cell_id"]): r for r in cell_rows}
            if uniq:
                conn.execute(sa.insert(self.t_cells), list(uniq.values()))
            m_uniq = {(r["device_serial"], r["cell_id"], r["metric"]): r for r in metric_rows}
            if m_uniq:
                conn.execute(sa.insert(self.t_metrics), list(m_uniq.values()))
            if sample_rows:
                conn.execute(sa.insert(self.t_samples), sample_rows)

    def delete_run(self, run_id: str) -> None:
        sa = self._sa
        with self._guard("cannot delete the run"), self.engine.begin() as conn:
            for t in (self.t_samples, self.t_metrics, self.t_cells, self.t_runs):
                conn.execute(sa.delete(t).where(t.c.run_id == run_id))

    # -- reading --------------------------------------------------------------------------------

    def run_ids(self) -> list[str]:
        sa = self._sa
        with self._guard("cannot read runs"), self._connect() as conn:
            q = sa.select(self.t_runs.c.run_id).order_by(self.t_runs.c.started_utc, self.t_runs.c.run_id)
            return [str(r[0]) for r in conn.execute(q)]

    def run_folder(self, run_id: str) -> Path | None:
        sa = self._sa
        with self._guard("cannot read runs"), self._connect() as conn:
            v = conn.execute(sa.select(self.t_runs.c.folder).where(self.t_runs.c.run_id == run_id)).scalar()
        return None if v is None else Path(str(v))

    def load_run(self, run_id: str) -> RunRecord | None:
        """The run's record as indexed (its results.json), read from the store alone; None when
        the store has no such run (or it was indexed before DB schema 3 kept records)."""
        sa = self._sa
        with self._guard("cannot read runs"), self._connect() as conn:
            text = conn.execute(sa.select(self.t_runs.c.results_json).where(self.t_runs.c.run_id == run_id)).scalar()
        if text is None:
            return None
        return parse_results_json(str(text), f"{self.where}: run {one_line(run_id, 80)}")

    def samples_by_key(self, run: RunRecord) -> dict[tuple[str, str], tuple[float, ...]]:
        """The run's raw samples from the store, keyed like samples.csv: (artifact_key, series)."""
        keys = {(c.device.serial, c.cell_id): c.artifact_key for c in run.cells}
        out: dict[tuple[str, str], list[float]] = {}
        for r in self.samples_frame(run.run_id).itertuples(index=False):
            key = keys.get((str(r.device_serial), str(r.cell_id)))
            if key is not None:
                out.setdefault((key, str(r.series)), []).append(float(r.latency_ms))  # type: ignore[arg-type]
        return {k: tuple(v) for k, v in out.items()}

    def cell_rows(self, run_id: str) -> list[dict[str, object]]:
        sa = self._sa
        t = self.t_cells
        cols = [t.c[name] for name in _CELL_ROW_COLUMNS]
        with self._guard("cannot read cells"), self._connect() as conn:
            q = sa.select(*cols).where(t.c.run_id == run_id).order_by(t.c.cell_id, t.c.device_serial)
            return [dict(r._mapping) for r in conn.execute(q)]

    def samples(self, run_id: str, device_serial: str, cell_id: str, series: str | None = None) -> list[float]:
        """Raw latency samples of one cell (all series, or one), in iteration order."""
        sa = self._sa
        t = self.t_samples
        q = sa.select(t.c.latency_ms).where(t.c.run_id == run_id, t.c.device_serial == device_serial,
                                            t.c.cell_id == cell_id)
        if series is not None:
            q = q.where(t.c.series == series)
        with self._guard("cannot read samples"), self._connect() as conn:
            return [float(r[0]) for r in conn.execute(q.order_by(t.c.series, t.c.iteration))]

    def samples_frame(self, run_id: str) -> pd.DataFrame:
        """Every raw sample of a run: device_serial, cell_id, series, iteration, latency_ms."""
        sa = self._sa
        t = self.t_samples
        q = (sa.select(t.c.device_serial, t.c.cell_id, t.c.series, t.c.iteration, t.c.latency_ms)
             .where(t.c.run_id == run_id).order_by(t.c.device_serial, t.c.cell_id, t.c.series, t.c.iteration))
        return self._frame(q, ["device_serial", "cell_id", "series", "iteration", "latency_ms"], "cannot read samples")

    def cells_frame(self, *, scenario: str | None = None) -> pd.DataFrame:
        """One row per run × device × cell, runs in start order: run and cell identity, status,
        reason and the headline numbers (for status history and flaky cells)."""
        sa = self._sa
        r, c = self.t_runs, self.t_cells
        q = (sa.select(r.c.run_id, r.c.started_utc, r.c.folder, r.c.scenario, r.c.scenario_sha256,
                       r.c.perflab_version, *[c.c[n] for n in _CELL_ROW_COLUMNS if n != "run_id"],
                       c.c.artifact_key, c.c.device_fingerprint)
             .select_from(r.join(c, r.c.run_id == c.c.run_id))
             .order_by(r.c.started_utc, r.c.run_id, c.c.device_serial, c.c.cell_id))
        if scenario is not None:
            q = q.where(r.c.scenario == scenario)
        return self._frame(q, _HISTORY_CELL_COLUMNS, "cannot read history", flags=("imported",))

    def history(self, metrics: Iterable[str] | None = None, *, scenario: str | None = None,
                device_serial: str | None = None, model_name: str | None = None) -> pd.DataFrame:
        """Metric history in long form, runs in start order: run_id, started_utc, folder,
        scenario, device_serial, device_model, device_kind, cell_id, model_name, variant,
        delegate, baseline, status, metric, value. Cells that were not ok have no metric rows."""
        sa = self._sa
        r, c, m = self.t_runs, self.t_cells, self.t_metrics
        q = (sa.select(r.c.run_id, r.c.started_utc, r.c.folder, r.c.scenario, c.c.device_serial, c.c.device_model,
                       c.c.device_kind, c.c.cell_id, c.c.model_name, c.c.variant, c.c.delegate, c.c.baseline,
                       c.c.status, c.c.imported, m.c.metric, m.c.value)
             .select_from(r.join(c, r.c.run_id == c.c.run_id).join(
                 m, sa.and_(m.c.run_id == c.c.run_id, m.c.device_serial == c.c.device_serial,
                            m.c.cell_id == c.c.cell_id)))
             .order_by(r.c.started_utc, r.c.run_id, c.c.device_serial, c.c.cell_id, m.c.metric))
        if metrics is not None:
            q = q.where(m.c.metric.in_(list(metrics)))
        if scenario is not None:
            q = q.where(r.c.scenario == scenario)
        if device_serial is not None:
            q = q.where(c.c.device_serial == device_serial)
        if model_name is not None:
            q = q.where(c.c.model_name == model_name)
        return self._frame(q, _HISTORY_COLUMNS, "cannot read history", flags=("baseline", "imported"))

    def _frame(self, q: Any, columns: Sequence[str], what: str, *, flags: Sequence[str] = ()) -> pd.DataFrame:
        """The rows of query ``q`` as a frame with these columns, the ``flags`` columns as bool
        (a database without booleans stores 0/1)."""
        with self._guard(what), self._connect() as conn:
            rows = [dict(x._mapping) for x in conn.execute(q)]
        df = pd.DataFrame(rows, columns=list(columns))
        for name in flags:
            df[name] = df[name].astype(bool)
        return df


_CELL_ROW_COLUMNS = ("run_id", "cell_id", "device_serial", "device_kind", "device_model", "model_name", "variant",
                     "model_sha256", "delegate", "baseline", "status", "reason", "latency_median_ms",
                     "latency_p90_ms", "latency_mean_ms", "latency_n", "psnr_y_db", "ssim_y", "mem_peak_mb",
                     "cpu_load_pct", "tool_mem_mb", "tool_mem_source", "imported", "provenance_file",
                     "provenance_sha256")
_HISTORY_CELL_COLUMNS = ["run_id", "started_utc", "folder", "scenario", "scenario_sha256", "perflab_version",
                         *[n for n in _CELL_ROW_COLUMNS if n != "run_id"], "artifact_key", "device_fingerprint"]
_HISTORY_COLUMNS = ["run_id", "started_utc", "folder", "scenario", "device_serial", "device_model", "device_kind",
                    "cell_id", "model_name", "variant", "delegate", "baseline", "status", "imported", "metric",
                    "value"]


class _Guard:
    """Database errors inside become one-line StoreErrors naming the store."""

    def __init__(self, store: SqlStore, what: str) -> None:
        self.store = store
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: object) -> None:
        if ev is not None and isinstance(ev, self.store._sa.exc.SQLAlchemyError):
            raise StoreError(f"{self.store.where}: {self.what}: {_err(ev)}") from None


def _sqlite_pragmas(dbapi_conn: Any, _record: object) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys = ON")
    cur.close()
