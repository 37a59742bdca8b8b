"""``perflab worker --host NAME``: the rack host's worker on the PostgreSQL task queue.

It takes jobs from its host's queue only (perflab.lab.queue), runs up to ``concurrency`` units at
once (one per phone: the queue's per-phone lock sees to that), beats a heartbeat, and on start
and every few seconds puts back the jobs of a worker of its queue that stopped beating (killed):
those resume from their run folders.

When the database goes away mid-night, the units in flight go on (they write run folders on this
host, and their outcome files under ``<night>/units/``); the worker then waits for the database,
reconnecting with backoff, and takes up the queue again: a unit whose end could not be recorded
is put back by the heartbeat rule and finds its cells done. A first SIGINT/SIGTERM stops the
units in flight (their phones restored, their jobs queued again) and ends the worker; a second
exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from perflab.lab.lifecycle import StopController
from perflab.lab.nightly import warm_store
from perflab.lab.queue import (
    WorkerContext,
    db_errors,
    ensure_tables,
    make_app,
    psycopg_module,
    redact,
    requeue_stalled,
)
from perflab.lab.rack import queue_name

log = logging.getLogger("perflab.worker")


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 16  # units at once (at most one per phone)
    heartbeat_s: float = 10.0
    stalled_s: float = 30.0  # a worker silent this long is taken for dead; its jobs are queued again
    poll_s: float = 0.5  # a phone's next unit is not announced (its lock frees it): it waits at most this long
    db_wait_s: float = 3600.0  # how long a database that went away is waited for before the worker gives up
    until_idle: bool = False  # stop when the queue holds nothing waiting, scheduled or running (CI: after the night)


def serve(ctx: WorkerContext, options: WorkerOptions, echo: Callable[[str], None]) -> int:
    """Run the worker until stopped (or idle, with ``until_idle``). Exit code: 0, 1 when the
    database stayed away past ``db_wait_s``, 130/143 when stopped by a signal."""
    stop = StopController()
    # the pool's own retries would print a warning a second while the database is away; the
    # worker says it once, in its own words
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    logging.getLogger("procrastinate.utils").setLevel(logging.CRITICAL)  # its listener's retries, with tracebacks
    return asyncio.run(_serve(ctx, options, stop, echo))


async def _serve(ctx: WorkerContext, options: WorkerOptions, stop: StopController, echo: Callable[[str], None]) -> int:
    queue = queue_name(ctx.host)
    loop = asyncio.get_running_loop()
    current: dict[str, asyncio.Task[Any]] = {}

    def on_signal(sig: signal.Signals) -> None:
        if stop.stopped:
            echo(f"perflab worker: {sig.name} again: restoring phones and exiting now")
            stop.emergency_restore()
            raise SystemExit(128 + sig.value)
        echo(f"perflab worker: {sig.name}: stopping the units in flight (phones restored, jobs queued again)")
        stop.request(f"worker stopped by {sig.name}", sig.name)
        task = current.get("worker")
        if task is not None:
            task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, sig)
    waited_s, wait_s = 0.0, 1.0
    while not stop.stopped:
        try:
            await asyncio.to_thread(ensure_tables, ctx.db_url)
            await _run_once(ctx, options, stop, queue, current, echo)
            if options.until_idle or stop.stopped:
                break
        except asyncio.CancelledError:
            break
        except (*db_errors(), _store_error()) as exc:
            if stop.stopped:
                break
            if waited_s >= options.db_wait_s:
                echo(f"perflab worker: the database stayed away for {waited_s:g} s; giving up: {exc}")
                return 1
            echo(f"perflab worker [{ctx.host}]: database {redact(ctx.db_url)} unreachable ({type(exc).__name__}); "
                 f"units in flight finished into their run folders; trying again in {wait_s:g} s")
            await asyncio.sleep(wait_s)
            waited_s += wait_s
            wait_s = min(wait_s * 2, 30.0)
            continue
        waited_s, wait_s = 0.0, 1.0
    if stop.stopped:
        return 143 if stop.signal_name == "SIGTERM" else 130
    return 0


def _store_error() -> type[BaseException]:
    from perflab.errors import StoreError

    return StoreError


async def _run_once(ctx: WorkerContext, options: WorkerOptions, stop: StopController, queue: str,
                    current: dict[str, asyncio.Task[Any]], echo: Callable[[str], None]) -> None:
    app = make_app(ctx.db_url)
    if ctx.store_url:  # open the results store (its migrations checked) before the first unit needs it
        await asyncio.to_thread(warm_store, ctx.store_url)
    async with app.open_async():
        await requeue_stalled(app, queue, options.stalled_s)
        echo(f"perflab worker [{ctx.host}]: taking jobs from queue {queue} on {redact(ctx.db_url)}")
        watcher = asyncio.create_task(_watch_stalled(app, queue, options, ctx, echo))
        worker = asyncio.create_task(app.run_worker_async(
            queues=[queue], name=f"perflab-{ctx.host}", concurrency=options.concurrency, wait=True,
            install_signal_handlers=False, update_heartbeat_interval=options.heartbeat_s,
            stalled_worker_timeout=options.stalled_s, fetch_job_polling_interval=options.poll_s,
            abort_job_polling_interval=options.poll_s, additional_context={"perflab": ctx, "stop": stop, "echo": echo},
            listen_notify=True))
        current["worker"] = worker
        idle = asyncio.create_task(_stop_when_idle(ctx.db_url, queue, options, worker)) if options.until_idle else None
        try:
            await worker
        finally:
            current.pop("worker", None)
            for side in (watcher, idle):
                if side is not None:
                    side.cancel()
                    with contextlib.suppress(asyncio.CancelledError, *db_errors()):
                        await side


async def _stop_when_idle(url: str, queue: str, options: WorkerOptions, worker: asyncio.Task[Any]) -> None:
    """``--until-idle``: stop once the queue holds no job waiting, scheduled (a retry's backoff)
    or running, twice in a row."""
    empty = 0
    while empty < 2:
        await asyncio.sleep(max(options.poll_s, 0.5))
        try:
            empty = empty + 1 if await asyncio.to_thread(_open_in_queue, url, queue) == 0 else 0
        except db_errors():
            empty = 0
    worker.cancel()


async def _watch_stalled(app: Any, queue: str, options: WorkerOptions, ctx: WorkerContext,
                         echo: Callable[[str], None]) -> None:
    """Every few seconds: put back the jobs of dead workers; say when the database goes away and
    when it is back (procrastinate itself keeps reconnecting)."""
    away = False
    while True:
        await asyncio.sleep(max(options.heartbeat_s, options.stalled_s / 3))
        try:
            await asyncio.to_thread(_ping, ctx.db_url)  # fails fast (the pool would wait for a connection)
            await requeue_stalled(app, queue, options.stalled_s)
        except db_errors() as exc:
            if not away:
                echo(f"perflab worker [{ctx.host}]: database {redact(ctx.db_url)} unreachable ({type(exc).__name__}); "
                     "units in flight go on into their run folders; waiting for it")
            away = True
            continue
        if away:
            echo(f"perflab worker [{ctx.host}]: database back; taking up the queue again")
        away = False


def _ping(url: str) -> None:
    with psycopg_module().connect(url, connect_timeout=2) as conn:
        conn.execute("SELECT 1")


def _open_in_queue(url: str, queue: str) -> int:
    with psycopg_module().connect(url, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM procrastinate_jobs WHERE queue_name = %s AND status IN ('todo', 'doing')",
                           (queue,)).fetchone()
    return int(row[0]) if row else 0
