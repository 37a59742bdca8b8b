"""Commands for the rack: ``perflab rack check``, ``perflab nightly``, ``perflab worker``.

User errors are one line with exit 2; a night with a failed, quarantined or unreachable unit
exits 1 (the others are still measured); 0 when every unit is ok.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated

import typer

from perflab.cli.errors import EXIT_FAILED, EXIT_OK, fail
from perflab.cli.options import number_option
from perflab.errors import PerflabError, UserInputError

rack_app = typer.Typer(no_args_is_help=True, help="Rack files: hosts, their phones, scenarios, limits.")

DbOption = Annotated[str | None, typer.Option(
    "--db", envvar="PERFLAB_DB", show_envvar=True,
    help="PostgreSQL URL of the shared task queue and results store (postgresql://user@host/db)")]


@rack_app.command("check")
def rack_check(
    file: Annotated[Path, typer.Argument(help="rack YAML")],
    resolve: Annotated[bool, typer.Option("--resolve", help="also ask each host's adb server for its phones")] = False,
) -> None:
    """Validate a rack file and the scenarios it names; list hosts, device entries and units."""
    from perflab.lab.rack import host_of, load_rack, rack_warnings, resolve_devices
    from perflab.scenario import plan_cells

    try:
        loaded = load_rack(file)
    except UserInputError as exc:
        fail(exc)
    rack = loaded.rack
    for w in rack_warnings(loaded):
        typer.echo(f"perflab: warning: {w}", err=True)
    cells = sum(len(plan_cells(s.scenario)) for s in loaded.scenarios)
    typer.echo(f"{file}: ok — rack {rack.name}: {len(rack.hosts)} host(s), {len(rack.devices)} device entr"
               f"{'y' if len(rack.devices) == 1 else 'ies'}, {len(loaded.scenarios)} scenario(s), {cells} cells per phone")
    for name, host in rack.hosts.items():
        typer.echo(f"  host {name}: adb server {host.adb}")
    for i, d in enumerate(rack.devices):
        what = f"serial {d.serial}" if d.serial else "select " + ", ".join(
            f"{k}={v}" for k, v in (d.select.model_dump(exclude_none=True).items() if d.select else []))
        lim = loaded.limits_for(d)
        typer.echo(f"  devices[{i}] on {host_of(rack, d)}: {what} (job_timeout_s {lim.job_timeout_s:g}, "
                   f"max_consecutive_failures {lim.max_consecutive_failures}, attempts {lim.attempts})")
    for s in loaded.scenarios:
        typer.echo(f"  scenario {s.scenario.name}: {s.file}")
    if resolve:
        res = resolve_devices(loaded)
        for dev in res.devices:
            typer.echo(f"  phone {dev.serial} on {dev.host}")
        for p in res.problems:
            typer.echo(f"perflab: warning: {p.host}: {p.reason}", err=True)


def nightly(
    rack_file: Annotated[Path, typer.Argument(help="rack YAML")],
    db: DbOption = None,
    night: Annotated[str | None, typer.Option(help="the night's name (a folder); default: today's UTC date. "
                                              "Run again with the same night to finish it")] = None,
    reports_dir: Annotated[Path, typer.Option(help="root of nightly/<night>/ folders")] = Path("reports"),
    store: Annotated[str | None, typer.Option(help="results store for the in-process night (SQLite path or URL); "
                                              "default: <reports-dir>/perflab.sqlite")] = None,
    report: Annotated[bool, typer.Option(help="render each run folder's index.html")] = True,
    wait: Annotated[bool, typer.Option(help="with --db: wait until the workers have finished the night, then "
                                       "print its summary")] = False,
    wait_timeout_s: Annotated[float, number_option("--wait-timeout-s", min=1, help="with --wait: give up waiting after this long")]
    = 12 * 3600.0,
    queue: Annotated[bool, typer.Option(help="with --db: queue the night (--no-queue with --wait: only wait for "
                                        "a night queued before and print its summary)")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print the summary only")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log what perflab does")] = False,
) -> None:
    """Run a night on the rack: every phone × every scenario.

    Without --db (or PERFLAB_DB) the night runs here, one thread per phone; with it, the night
    becomes jobs on that PostgreSQL task queue and each host's `perflab worker` runs its phones'
    share. Finished cells are never measured again: run the same night again to finish it."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from perflab.lab.nightly import check_night, today_utc
    from perflab.lab.rack import load_rack, rack_warnings

    try:
        loaded = load_rack(rack_file)
        name = check_night(night or today_utc())
    except UserInputError as exc:
        fail(exc)
    for w in rack_warnings(loaded):
        typer.echo(f"perflab: warning: {w}", err=True)
    if db:
        raise typer.Exit(_queued_night(loaded, db, name, reports_dir, wait, wait_timeout_s, queue))
    if not queue:
        fail(UserInputError("--no-queue needs --db (a night on the task queue)"))
    raise typer.Exit(_local_night(loaded, name, reports_dir, store, report, quiet))


def _local_night(loaded: object, name: str, reports_dir: Path, store: str | None, report: bool, quiet: bool) -> int:
    from perflab.lab.lifecycle import StopController, signals_stop
    from perflab.lab.nightly import UnitOptions, run_night, unit_runs
    from perflab.lab.rack import LoadedRack, resolve_devices

    assert isinstance(loaded, LoadedRack)
    res = resolve_devices(loaded)
    for p in res.problems:
        typer.echo(f"perflab: warning: {p.host}: {p.reason}", err=True)
    q = loaded.rack.quarantine
    options = UnitOptions(store_url=store or str(reports_dir / "perflab.sqlite"), render=report, quarantine=q.enabled,
                          after_failed_health_checks=q.after_failed_health_checks,
                          echo=None if quiet else typer.echo)
    if not quiet:
        typer.echo(f"perflab nightly {loaded.rack.name} [{name}]: {len(res.devices)} phone(s) × "
                   f"{len(loaded.scenarios)} scenario(s), in this process")
    stop = StopController()
    with signals_stop(stop, on_first=lambda sig: typer.echo(f"perflab: {sig}: stopping the night (phones restored; "
                                                           "run the same night again to finish it)", err=True)):
        summary = run_night(loaded, res, name, reports_dir, options=options, stop=stop)
    for line in summary.lines(unit_runs(summary.outcomes)):
        typer.echo(line)
    return summary.exit_code


def _queued_night(loaded: object, db: str, name: str, reports_dir: Path, wait: bool, wait_timeout_s: float,
                  queue: bool) -> int:
    from perflab.lab.nightly import NightSummary, night_dir, settle, unit_runs, write_summary
    from perflab.lab.queue import check_url, enqueue_night, open_jobs, rack_sha256, read_units, redact
    from perflab.lab.rack import LoadedRack

    assert isinstance(loaded, LoadedRack)
    try:
        url = check_url(db)
        if not queue and not wait:
            raise UserInputError("--no-queue: give --wait too (or nothing is done)")
        queued = enqueue_night(url, loaded, name) if queue else []
    except PerflabError as exc:
        fail(exc)
    for q in queued:
        typer.echo(f"  {q.host}: {'already queued' if q.already else 'queued'} on {q.queue}")
    if queue:
        typer.echo(f"perflab nightly {loaded.rack.name} [{name}] queued on {redact(url)}; each host's "
                   f"`perflab worker --host NAME` runs its phones")
    if not wait:
        return EXIT_OK
    deadline = time.monotonic() + wait_timeout_s
    sha = rack_sha256(loaded)
    try:
        while open_jobs(url, name, sha) > 0:
            if time.monotonic() > deadline:
                typer.echo(f"perflab: the night is not finished after {wait_timeout_s:g} s", err=True)
                return EXIT_FAILED
            time.sleep(0.5)
        outcomes = settle(read_units(url, name, loaded.rack.name), open_jobs(url, name, sha))
    except PerflabError as exc:
        fail(exc, EXIT_FAILED)
    units = [o for o in outcomes if o.scenario]
    from perflab.lab.rack import HostProblem

    problems = [HostProblem(o.host, None, o.serial or None, o.reason or "") for o in outcomes if not o.scenario]
    summary = NightSummary(loaded.rack.name, name, night_dir(reports_dir, name), units, problems)
    summary.folder.mkdir(parents=True, exist_ok=True)
    write_summary(summary)
    for line in summary.lines(unit_runs(summary.outcomes)):
        typer.echo(line)
    return summary.exit_code


def worker(
    host: Annotated[str, typer.Option("--host", help="the rack host this worker runs on (its queue)")],
    db: DbOption = None,
    rack: Annotated[Path | None, typer.Option(help="this host's copy of the rack file (default: the path the "
                                              "night was queued with)")] = None,
    adb: Annotated[str | None, typer.Option(help="this host's adb server as HOST:PORT (default: the rack's "
                                            "hosts.<host>.adb)")] = None,
    reports_dir: Annotated[Path, typer.Option(help="root of nightly/<night>/ folders on this host")] = Path("reports"),
    report: Annotated[bool, typer.Option(help="render each run folder's index.html")] = True,
    concurrency: Annotated[int, number_option("--concurrency", integer=True, min=1, max=256, help="units at once (one per phone)")] = 16,
    heartbeat_s: Annotated[float, number_option("--heartbeat-s", min=0.1, max=600, help="heartbeat period")] = 10.0,
    stalled_s: Annotated[float, number_option("--stalled-s", min=0.5, max=3600, help="a worker silent this long is dead; its "
                                             "jobs are queued again")] = 30.0,
    poll_s: Annotated[float, number_option("--poll-s", min=0.05, max=60, help="how often the queue is asked for work besides "
                                          "its notifications (a phone's next unit waits at most this long)")] = 0.5,
    db_wait_s: Annotated[float, number_option("--db-wait-s", min=0, help="how long a database that went away is waited for")]
    = 3600.0,
    until_idle: Annotated[bool, typer.Option("--until-idle", help="stop when this host's queue holds no job "
                                             "waiting, scheduled for a retry or running (a CI job per night)")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log what perflab does")] = False,
) -> None:
    """Take this host's nightly jobs from the PostgreSQL task queue and run them on its phones."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    from perflab.lab.queue import WorkerContext, check_url
    from perflab.lab.rack import check_adb_address
    from perflab.lab.worker import WorkerOptions, serve

    try:
        if not db:
            raise UserInputError("perflab worker: give --db postgresql://… (or set PERFLAB_DB)")
        url = check_url(db)
        if adb is not None:
            check_adb_address(adb, "--adb")
        if rack is not None and not rack.is_file():
            raise UserInputError(f"--rack {rack}: file not found")
    except UserInputError as exc:
        fail(exc)
    ctx = WorkerContext(host=host, reports_dir=reports_dir.resolve(), store_url=url, db_url=url, rack_file=rack,
                        adb=adb, render=report)
    options = WorkerOptions(concurrency=concurrency, heartbeat_s=heartbeat_s, stalled_s=stalled_s,
                            poll_s=poll_s, db_wait_s=db_wait_s, until_idle=until_idle)
    raise typer.Exit(serve(ctx, options, lambda text: typer.echo(text, err=True)))
