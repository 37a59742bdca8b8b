"""The nightly as jobs on an existing PostgreSQL task queue (procrastinate).

``perflab nightly RACK --db postgresql://…`` queues one *plan* job per rack host, on that host's
queue (:func:`perflab.lab.rack.queue_name`). The host's worker (``perflab worker --host NAME``,
perflab.lab.worker) runs it: it resolves the host's devices against its own adb server (serials
and selectors) and queues one *unit* job per phone × scenario on the same queue. A unit job
runs :func:`perflab.lab.nightly.run_unit` — the very code of the in-process night — so a unit
resumes from its run folder and finished cells are never measured again.

What procrastinate gives, and how it is used:

- a queue per host: a worker takes jobs from its own host's queue only;
- ``lock`` per phone (``perflab.phone.<host>.<serial>``): two jobs of one phone never run at
  once, whichever workers fetch them, so two workers never drive one phone (the phone's
  host-side flock, perflab.devices.lock, holds as a second line);
- ``queueing_lock`` per unit: queueing a night twice does not queue a unit twice;
- retries: :class:`UnitRetry` retries a unit that raised a transport error
  (:data:`perflab.lab.nightly.RETRY_ON`) with exponential backoff, up to the phone's
  ``limits.attempts``; a unit stopped by its worker's shutdown goes back to the queue at once;
- worker heartbeats: a job whose worker stopped beating (killed) is put back by the next
  worker of that host (:func:`requeue_stalled`), and resumes from its run folder.

Each unit's outcome is also written to the table ``perflab_nightly_units`` (best effort: the
outcome file under ``<night>/units/`` on the worker's disk is the record when the database is
away), which ``perflab nightly --db … --wait`` sums up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perflab.errors import MissingDependencyError, PerflabError, RunInterrupted, StoreError, UserInputError
from perflab.lab.nightly import RETRY_ON, Unit, UnitOutcome, UnitStatus, backoff_s, outcome_text
from perflab.lab.rack import EffectiveLimits, LoadedRack, queue_name

if TYPE_CHECKING:
    from perflab.report.dashboard import NightUnit

log = logging.getLogger("perflab.queue")

PLAN_TASK = "perflab.nightly.plan"
UNIT_TASK = "perflab.nightly.unit"
UNITS_TABLE = "perflab_nightly_units"
DB_ENV = "PERFLAB_DB"
STORE_ATTEMPTS = 30  # tries of a measured unit whose outcome the database could not take

_UNITS_DDL = f"""
CREATE TABLE IF NOT EXISTS {UNITS_TABLE} (
    night text NOT NULL, rack text NOT NULL, host text NOT NULL, serial text NOT NULL, scenario text NOT NULL,
    status text NOT NULL, reason text, folder text, run_id text, cells jsonb NOT NULL DEFAULT '{{}}',
    attempt integer NOT NULL DEFAULT 1, store text, updated_utc timestamptz NOT NULL DEFAULT now(),
    report text, PRIMARY KEY (night, rack, host, serial, scenario));
ALTER TABLE {UNITS_TABLE} ADD COLUMN IF NOT EXISTS report text
"""


def db_errors() -> tuple[type[BaseException], ...]:
    """What the database going away (or refusing us) raises: psycopg's and procrastinate's errors."""
    out: tuple[type[BaseException], ...] = (OSError,)
    with contextlib.suppress(ImportError):
        out += (psycopg_module().Error,)
    with contextlib.suppress(ImportError):
        out += (importlib.import_module("procrastinate.exceptions").ConnectorException,)
    return out


def psycopg_module() -> Any:
    """psycopg 3 (imported by name: an optional dependency, with procrastinate)."""
    try:
        return importlib.import_module("psycopg")
    except ImportError as exc:
        raise MissingDependencyError("psycopg[binary]", "the nightly on a PostgreSQL task queue") from exc


def procrastinate_module() -> Any:
    try:
        return importlib.import_module("procrastinate")
    except ImportError as exc:
        raise MissingDependencyError("procrastinate", "the nightly on a PostgreSQL task queue") from exc


def check_url(url: str) -> str:
    if not url.startswith(("postgresql://", "postgres://")):
        raise UserInputError(f"--db {redact(url)}: the task queue needs a PostgreSQL URL (postgresql://user@host/db); "
                             "without --db the nightly runs in this process")
    from perflab.store.sql import normalize_url

    normalize_url(url)  # SQLAlchemy can parse it (a bad port or host is one line, exit 2)
    return url


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    import re

    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def rack_sha256(loaded: LoadedRack) -> str:
    return hashlib.sha256(loaded.source_text.encode()).hexdigest()


def phone_lock(host: str, serial: str) -> str:
    return f"perflab.phone.{host}.{serial}"


# ---------------------------------------------------------------------------------------------
# retries


@dataclass(frozen=True)
class UnitRetry:
    """Retry decision for perflab's jobs (a procrastinate retry strategy, duck-typed as
    ``BaseRetryStrategy``): transport errors back off exponentially up to the phone's
    ``attempts``; a unit stopped by its worker's shutdown is queued again at once; a measured
    unit the database did not take is tried again (up to STORE_ATTEMPTS) to record it."""

    def get_retry_exception(self, exception: BaseException, job: Any) -> Any:
        p = procrastinate_module()
        decision = self.decide(exception, job.attempts, job.task_kwargs)
        if decision is None:
            return None
        return p.exceptions.JobRetry(p.RetryDecision(retry_in={"seconds": decision}))

    @staticmethod
    def decide(exception: BaseException, attempts_before: int, kwargs: dict[str, Any]) -> float | None:
        """Seconds to wait before the next try, or None for no retry (pure)."""
        if isinstance(exception, RunInterrupted):
            return 0.0
        limits = EffectiveLimits(**kwargs["limits"])
        tried = attempts_before + 1
        if isinstance(exception, StoreError):  # the database was away: cheap to try again (cells are kept)
            return None if tried >= STORE_ATTEMPTS else min(60.0, backoff_s(limits, min(tried, 6)))
        if not isinstance(exception, RETRY_ON):
            return None
        if tried >= limits.attempts:
            return None
        return backoff_s(limits, tried)


# ---------------------------------------------------------------------------------------------
# the app and its tasks


@dataclass(frozen=True)
class WorkerContext:
    """What a worker's jobs need that is not in the job: where things are on this host."""

    host: str
    reports_dir: Path
    store_url: str | None
    db_url: str
    rack_file: Path | None = None  # this host's copy of the rack (default: the path in the job)
    adb: str | None = None  # this host's adb server as the worker reaches it (default: the rack's)
    render: bool = False


_CONTEXTS: dict[int, Any] = {}


def make_app(url: str) -> Any:
    """A procrastinate App on ``url`` with perflab's two tasks registered."""
    p = procrastinate_module()
    app = p.App(connector=p.PsycopgConnector(conninfo=url, kwargs={"connect_timeout": 5}))
    app.task(name=PLAN_TASK, pass_context=True, retry=UnitRetry())(_plan_task)  # type: ignore[arg-type]
    app.task(name=UNIT_TASK, pass_context=True, retry=UnitRetry())(_unit_task)  # type: ignore[arg-type]
    return app


def _worker_ctx(context: Any) -> tuple[WorkerContext, Any]:
    extra = context.additional_context
    return extra["perflab"], extra["stop"]


def _echo(context: Any) -> Callable[[str], None]:
    """The worker's line printer (one line per unit: start, done with its outcome)."""
    ctx, _stop = _worker_ctx(context)
    echo = context.additional_context.get("echo")

    def say(text: str) -> None:
        if echo is not None:
            echo(f"perflab worker [{ctx.host}]: {text}")

    return say


def _load_for_job(ctx: WorkerContext, kwargs: dict[str, Any]) -> LoadedRack:
    from perflab.lab.rack import load_rack

    path = ctx.rack_file or Path(kwargs["rack_file"])
    loaded = load_rack(path)
    if rack_sha256(loaded) != kwargs["rack_sha256"]:
        raise UserInputError(f"{path}: this rack file differs from the one the night was queued with; queue the "
                             "night again (perflab nightly … --db …)")
    return loaded


def _plan_task(context: Any, **kwargs: Any) -> None:
    """On the host's worker: resolve this host's phones and queue their units."""
    from perflab.lab.nightly import plan_units
    from perflab.lab.rack import resolve_devices

    ctx, _stop = _worker_ctx(context)
    loaded = _load_for_job(ctx, kwargs)
    res = resolve_devices(loaded, only_host=ctx.host, adb=ctx.adb)
    night, rack = kwargs["night"], loaded.rack.name
    down = [p for p in res.problems if p.entry is None]
    for p in res.problems:
        record(ctx.db_url, night, rack, UnitOutcome(p.serial or "", p.host, "", UnitStatus.UNREACHABLE, p.reason))
    if down and not res.devices:
        limits = EffectiveLimits.merge(loaded.rack.limits)
        if context.job.attempts + 1 < limits.attempts:
            from perflab.errors import DeviceGoneError

            raise DeviceGoneError(ctx.host, down[0].reason)  # retried with backoff: the server may come back
        return
    units = plan_units(loaded, res.devices)
    asyncio.run(_defer_units(ctx.db_url, kwargs, rack, units))


async def _defer_units(url: str, plan_kwargs: dict[str, Any], rack: str, units: list[Unit]) -> None:
    p = procrastinate_module()
    app = make_app(url)
    for u in units:  # before the jobs exist: a fast unit's outcome must not be overwritten
        record(url, plan_kwargs["night"], rack, UnitOutcome(u.serial, u.host, u.scenario, UnitStatus.PENDING),
               only_new=True)
    async with app.open_async():
        for u in units:
            kwargs = {k: plan_kwargs[k] for k in ("rack_file", "rack_sha256", "night")}
            kwargs.update(rack=rack, serial=u.serial, host=u.host, adb=u.adb, scenario_index=u.scenario_index,
                          scenario=u.scenario, limits=u.limits.as_dict())
            try:
                await app.tasks[UNIT_TASK].configure(
                    queue=queue_name(u.host), lock=phone_lock(u.host, u.serial),
                    queueing_lock=f"{plan_kwargs['night']}.{rack}.{u.host}.{u.serial}.{u.scenario}",
                ).defer_async(**kwargs)
            except p.exceptions.AlreadyEnqueued:
                log.info("[%s] %s: already queued", u.serial, u.scenario)


def _unit_task(context: Any, **kwargs: Any) -> None:
    from perflab.lab.nightly import UnitOptions, night_dir, run_unit

    ctx, stop = _worker_ctx(context)
    night_name, rack = kwargs["night"], kwargs["rack"]
    unit = Unit(serial=kwargs["serial"], host=kwargs["host"], adb=ctx.adb or kwargs["adb"],
                scenario_index=kwargs["scenario_index"], scenario=kwargs["scenario"],
                limits=EffectiveLimits(**kwargs["limits"]))
    try:
        loaded = _load_for_job(ctx, kwargs)
    except UserInputError as exc:
        record(ctx.db_url, night_name, rack, UnitOutcome(unit.serial, unit.host, unit.scenario, UnitStatus.FAILED,
                                                         str(exc)))
        raise
    q = loaded.rack.quarantine
    options = UnitOptions(store_url=ctx.store_url, render=ctx.render, quarantine=q.enabled,
                          after_failed_health_checks=q.after_failed_health_checks)
    night = night_dir(ctx.reports_dir, night_name)
    tried = context.job.attempts + 1
    say = _echo(context)
    say(f"start {unit.serial} {unit.scenario} (try {tried}/{unit.limits.attempts})")
    try:
        outcome = run_unit(loaded, unit, night, options=options, stop=stop, attempt=tried)
    except RETRY_ON as exc:
        last = UnitOutcome(unit.serial, unit.host, unit.scenario, UnitStatus.FAILED, f"try {tried}"
                           f"/{unit.limits.attempts}: {exc}", attempt=tried)
        record(ctx.db_url, night_name, rack, last)
        say(f"done {unit.serial} {unit.scenario}: {outcome_text(last)}"
            + ("; tried again later" if tried < unit.limits.attempts else ""))
        raise
    except RunInterrupted as exc:
        record(ctx.db_url, night_name, rack, UnitOutcome(unit.serial, unit.host, unit.scenario, UnitStatus.PENDING,
                                                         f"worker stopping, queued again: {exc}"))
        say(f"done {unit.serial} {unit.scenario}: stopped, queued again")
        raise
    except Exception as exc:  # a bug: the unit must not stay "pending" while its job has failed
        failed = UnitOutcome(unit.serial, unit.host, unit.scenario, UnitStatus.FAILED,
                             f"internal error: {type(exc).__name__}: {exc}", attempt=tried)
        record(ctx.db_url, night_name, rack, failed)
        say(f"done {unit.serial} {unit.scenario}: {outcome_text(failed)}")
        raise
    say(f"done {unit.serial} {unit.scenario}: {outcome_text(outcome)}"
        + (f" in {outcome.run_s:g} s" if outcome.run_s is not None else ""))
    recorded = record(ctx.db_url, night_name, rack, outcome)
    if not recorded or (ctx.store_url and outcome.store not in (None, "indexed")):
        # measured, but the database did not take it: the job is tried again, finds its cells
        # done and only records and indexes them
        raise StoreError(f"[{unit.serial}] {unit.scenario}: measured, but "
                         + ("its outcome was not recorded" if not recorded else f"the run was {outcome.store}"))


# ---------------------------------------------------------------------------------------------
# the units table (best effort)


def _connect(url: str) -> Any:
    return psycopg_module().connect(url, connect_timeout=5, autocommit=True)


def ensure_tables(url: str) -> None:
    """procrastinate's schema (applied once, when the database has none) and the units table."""
    try:
        with _connect(url) as conn:
            have = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()[0]
            if not have:
                conn.execute("SELECT pg_advisory_lock(7270002)")
                try:
                    have = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()[0]
                    if not have:
                        schema = importlib.import_module("procrastinate.schema").SchemaManager.get_schema()
                        conn.execute(schema)
                finally:
                    conn.execute("SELECT pg_advisory_unlock(7270002)")
            conn.execute(_UNITS_DDL)
    except MissingDependencyError:
        raise
    except db_errors() as exc:  # the database is not there, or refuses us
        raise StoreError(f"{redact(url)}: cannot prepare the task queue: {_err(exc)}") from None


def _err(exc: BaseException) -> str:
    from perflab.core.names import one_line

    return one_line(f"{type(exc).__name__}: {exc}", 300)


def record(url: str, night: str, rack: str, o: UnitOutcome, *, only_new: bool = False) -> bool:
    """Upsert a unit's outcome (``only_new``: leave a row that is there alone); False (logged)
    when the database is away."""
    on_conflict = "DO NOTHING" if only_new else (
        "DO UPDATE SET status=EXCLUDED.status, ")
    try:
        with _connect(url) as conn:
            conn.execute(
                f"INSERT INTO {UNITS_TABLE} (night, rack, host, serial, scenario, status, reason, folder, run_id, "
                "cells, attempt, store, report, updated_utc) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s, now()) "
                f"ON CONFLICT (night, rack, host, serial, scenario) {on_conflict}"
                + ("" if only_new else
                   "reason=EXCLUDED.reason, folder=COALESCE(EXCLUDED.folder, "
                   f"{UNITS_TABLE}.folder), run_id=COALESCE(EXCLUDED.run_id, {UNITS_TABLE}.run_id), "
                   "cells=EXCLUDED.cells, attempt=EXCLUDED.attempt, store=EXCLUDED.store, report=EXCLUDED.report, "
                   "updated_utc=now()"),
                (night, rack, o.host, o.serial, o.scenario, o.status.value, o.reason, o.folder, o.run_id,
                 json.dumps(o.cells), o.attempt, o.store, o.report))
        return True
    except db_errors() as exc:  # the database going away must not lose the unit: its outcome file stays
        log.warning("unit outcome not recorded in the database (%s); it is in the night's units/ folder", _err(exc))
        return False


def read_units(url: str, night: str, rack: str) -> list[UnitOutcome]:
    try:
        with _connect(url) as conn:
            rows = conn.execute(
                f"SELECT host, serial, scenario, status, reason, folder, run_id, cells, attempt, store, report "
                f"FROM {UNITS_TABLE} "
                "WHERE night=%s AND rack=%s ORDER BY host, serial, scenario", (night, rack)).fetchall()
    except db_errors() as exc:
        raise StoreError(f"{redact(url)}: cannot read the night's units: {_err(exc)}") from None
    return [UnitOutcome(serial=r[1], host=r[0], scenario=r[2], status=UnitStatus(r[3]), reason=r[4], folder=r[5],
                        run_id=r[6], cells=dict(r[7] or {}), attempt=r[8], store=r[9], report=r[10]) for r in rows]


def dashboard_units(url: str) -> list[NightUnit]:
    """Every night's units from the queue's table for the dashboard, settled: "pending" only while
    a job of that night is open (:func:`perflab.lab.nightly.settle`). Empty where the database
    holds no task queue."""
    from perflab.lab.nightly import REPORT_RENDERED, settle
    from perflab.report.dashboard import NightUnit

    try:
        with _connect(url) as conn:
            have_units, have_jobs = conn.execute(
                f"SELECT to_regclass('{UNITS_TABLE}') IS NOT NULL, to_regclass('procrastinate_jobs') IS NOT NULL"
            ).fetchone()
            if not have_units:
                return []
            rows = conn.execute(f"SELECT night, host, serial, scenario, status, reason, report FROM {UNITS_TABLE} "
                                "ORDER BY night, host, serial, scenario").fetchall()
            open_by_night = dict(conn.execute(
                "SELECT args->>'night', count(*) FROM procrastinate_jobs WHERE status IN ('todo','doing') "
                "AND task_name IN (%s,%s) GROUP BY 1", (PLAN_TASK, UNIT_TASK)).fetchall()) if have_jobs else {}
    except db_errors() as exc:
        raise StoreError(f"{redact(url)}: cannot read the nights' units: {_err(exc)}") from None
    out: list[NightUnit] = []
    for night in dict.fromkeys(r[0] for r in rows):
        outcomes = [UnitOutcome(serial=r[2], host=r[1], scenario=r[3], status=UnitStatus(r[4]), reason=r[5],
                                report=r[6]) for r in rows if r[0] == night]
        for o in settle(outcomes, int(open_by_night.get(night, 0))):
            out.append(NightUnit(night, o.host, o.serial, o.scenario, o.status.value, o.reason,
                                 report_failed=o.report not in (None, REPORT_RENDERED)))
    return out


def open_jobs(url: str, night: str, rack_file_sha: str) -> int:
    """Jobs of this night still waiting or running."""
    try:
        with _connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo','doing') AND task_name IN (%s,%s) "
                "AND args->>'night' = %s AND args->>'rack_sha256' = %s",
                (PLAN_TASK, UNIT_TASK, night, rack_file_sha)).fetchone()
    except db_errors() as exc:
        raise StoreError(f"cannot read the task queue: {_err(exc)}") from None
    return int(row[0])


# ---------------------------------------------------------------------------------------------
# queueing a night


@dataclass(frozen=True)
class Queued:
    host: str
    queue: str
    already: bool


def enqueue_night(url: str, loaded: LoadedRack, night: str, hosts: Iterable[str] | None = None) -> list[Queued]:
    """Queue one plan job per rack host (or per host named). Needs no adb server here: each host's
    worker resolves its own phones."""
    ensure_tables(url)
    return asyncio.run(_enqueue(url, loaded, night, list(hosts) if hosts else list(loaded.rack.hosts)))


async def _enqueue(url: str, loaded: LoadedRack, night: str, hosts: list[str]) -> list[Queued]:
    p = procrastinate_module()
    app = make_app(url)
    out: list[Queued] = []
    limits = EffectiveLimits.merge(loaded.rack.limits)
    kwargs = {"rack_file": str(loaded.file.resolve()), "rack_sha256": rack_sha256(loaded), "night": night,
              "limits": limits.as_dict()}
    try:
        async with app.open_async():
            for h in hosts:
                if h not in loaded.rack.hosts:
                    raise UserInputError(f"--host {h!r}: not a host of {loaded.file} "
                                         f"({', '.join(sorted(loaded.rack.hosts))})")
                try:
                    await app.tasks[PLAN_TASK].configure(
                        queue=queue_name(h), queueing_lock=f"{night}.{loaded.rack.name}.{h}.plan",
                    ).defer_async(**kwargs)
                    out.append(Queued(h, queue_name(h), False))
                except p.exceptions.AlreadyEnqueued:
                    out.append(Queued(h, queue_name(h), True))
    except PerflabError:
        raise
    except db_errors() as exc:
        raise StoreError(f"{redact(url)}: cannot queue the night: {_err(exc)}") from None
    return out


async def requeue_stalled(app: Any, queue: str, stalled_s: float) -> list[int]:
    """Put back the jobs of this queue whose worker stopped beating (killed, machine lost)."""
    jobs = await app.job_manager.get_stalled_jobs(queue=queue, seconds_since_heartbeat=stalled_s)
    ids = []
    for job in jobs:
        await app.job_manager.retry_job(job)
        ids.append(job.id)
    if ids:
        log.warning("queue %s: jobs %s of a worker that stopped beating are queued again", queue, ids)
    return ids


def with_store(ctx: WorkerContext, store_url: str | None) -> WorkerContext:
    return replace(ctx, store_url=store_url)
