"""``perflab compare``, ``perflab dashboard`` and ``perflab store``: the command-line edges of compare,
history and the results store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from perflab.cli.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, STORED_INPUT_ERRORS, fail
from perflab.cli.options import number_option
from perflab.errors import PerflabError, UserInputError

if TYPE_CHECKING:
    from perflab.report.compare import RunSide
    from perflab.report.dashboard import NightUnit


def _load_sides(arg: str, db: str | None) -> list[RunSide]:
    """A run folder (or results.json), a folder of run folders (a night), or a run id looked up
    in the results store ``--db`` (read from the store alone where its folder is not here)."""
    from perflab.report.compare import load_sides, side_from_store

    p = Path(arg)
    if p.exists():
        return load_sides(p)
    if db is not None:
        from perflab.store.sql import SqlStore

        with SqlStore(db) as store:
            side = side_from_store(store, arg)
        if side is None:
            raise UserInputError(f"{arg}: no such run folder, and no run with that id in {db}")
        return [side]
    raise UserInputError(f"{arg}: no such run folder (give --db to name runs by id)")


def _write_junit(junit: Path, xml: str) -> None:
    """``--junit``'s file, its folder made where missing; a path that cannot be written is the
    user's error (one line, exit 2), as for every command that takes ``--junit``."""
    try:
        junit.parent.mkdir(parents=True, exist_ok=True)
        junit.write_text(xml, encoding="utf-8")
    except OSError as exc:
        raise UserInputError(f"{junit}: --junit: cannot write: {exc.strerror or exc}") from None


def compare_cmd(
    run_a: Annotated[str, typer.Argument(help="the reference: a run folder, a night's folder of run folders, or "
                                         "a run id with --db")],
    run_b: Annotated[str, typer.Argument(help="the one judged: a run folder, a night's folder, or a run id with "
                                         "--db")],
    threshold: Annotated[list[str] | None, typer.Option(
        "--threshold", "-t", help="METRIC:VALUE[%], repeatable; the sign is the bad direction: latency.median:5% "
        "(slower by more than 5%), quality.psnr_y_db:-0.1 (0.1 dB lower). latency.median:5% applies unless given another value")] = None,
    metric: Annotated[list[str] | None, typer.Option(
        "--metric", "-m", help="metrics to show (repeatable); default: latency.median, latency.p90, "
        "quality.psnr_y_db, telemetry.power_mw, telemetry.mem_peak_mb, plus every thresholded one")] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="write JUnit XML here (one testcase per cell × "
                                               "metric)")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="folder for index.html (self-contained) and "
                                             "junit.xml")] = None,
    db: Annotated[str | None, typer.Option("--db", help="results store to look run ids up in: a SQLite file, "
                                           "sqlite:///path or postgresql://…")] = None,
    force: Annotated[bool, typer.Option("--force", help="compare runs of different scenarios (a warning "
                                        "instead of a refusal)")] = False,
    alpha: Annotated[float, number_option("--alpha", min=0, max=1, min_open=True, max_open=True, help="significance level of the tests")] = 0.05,
    resamples: Annotated[int, number_option("--resamples", integer=True, min=100, max=1_000_000, help="bootstrap resamples")] = 2000,
    temp_tolerance_c: Annotated[float, number_option("--temp-tolerance-c", min=0, max=200, help="warn when the cells' start "
                                                    "temperatures differ by more than this")] = 3.0,
) -> None:
    """Per-cell changes between two runs (or two nights) with confidence intervals; exit 1 on a regression."""
    from perflab.analysis.compare import MetaRules, parse_threshold
    from perflab.report.compare import (
        DEFAULT_THRESHOLDS,
        compare_nights,
        comparison_junit,
        comparison_text,
        write_comparison,
    )
    from perflab.store.sql import METRICS

    try:
        given = [parse_threshold(t, METRICS) for t in (threshold or [])]
        # the defaults stay unless the same metric is given another threshold
        thresholds = [*given, *(t for t in map(parse_threshold, DEFAULT_THRESHOLDS)
                                if t.metric not in {g.metric for g in given})]
        a = _load_sides(run_a, db)
        b = _load_sides(run_b, db)
        cmp = compare_nights(a, b, thresholds, label_a=Path(run_a).name or run_a, label_b=Path(run_b).name or run_b,
                             metrics=metric, force=force, alpha=alpha, resamples=resamples,
                             rules=MetaRules(temp_tolerance_c=temp_tolerance_c), out_dir=out)
        lines = comparison_text(cmp)
        for line in lines[:-1]:
            typer.echo(line)
        if junit is not None:
            _write_junit(junit, comparison_junit(cmp))
            typer.echo(f"junit: {junit}")
        if out is not None:
            typer.echo(f"report: {write_comparison(cmp, out)}")
        typer.echo(lines[-1])  # the verdict stays the last line
    except STORED_INPUT_ERRORS as exc:
        fail(exc, EXIT_BAD_INPUT)
    raise typer.Exit(EXIT_FAILED if cmp.n_regressions else EXIT_OK)


def _night_units(db: str) -> list[NightUnit]:
    """The nights' units where the store shares the task queue's database (PostgreSQL); a queue
    that cannot be read is a warning, never a dashboard lost."""
    if not db.startswith(("postgresql://", "postgres://")):
        return []
    from perflab.lab.queue import dashboard_units

    try:
        return dashboard_units(db)
    except PerflabError as exc:
        typer.echo(f"perflab: warning: the nights' units are not shown: {exc}", err=True)
        return []


def dashboard_cmd(
    db: Annotated[str, typer.Option("--db", help="the results store: a SQLite file, sqlite:///path or "
                                    "postgresql://…")],
    out: Annotated[Path, typer.Option("--out", help="folder for index.html (offline) and dashboard.json")],
    scenario: Annotated[str | None, typer.Option("--scenario", help="only runs of this scenario")] = None,
    metric: Annotated[list[str] | None, typer.Option("--metric", "-m", help="metrics to trend (repeatable); "
                                                     "default: latency.median, latency.p90, quality.psnr_y_db, "
                                                     "telemetry.power_mw, telemetry.mem_peak_mb")] = None,
    threshold: Annotated[list[str] | None, typer.Option(
        "--threshold", "-t", help="METRIC:VALUE[%]: a step counts as a regression only when at least this "
        "large (default: any step in the bad direction)")] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="JUnit XML: one testcase per device × cell × "
                                               "metric, failing when its newest level is a regression")] = None,
    fail_on_regression: Annotated[bool, typer.Option("--fail-on-regression", help="exit 1 when a metric's newest "
                                                     "level is a regression")] = False,
) -> None:
    """Nightly trends per phone, model and metric, with change points, regressions and flaky cells."""
    from perflab.analysis.compare import DEFAULT_METRICS, parse_threshold
    from perflab.report.dashboard import (
        STAND_INS,
        build_dashboard,
        dashboard_junit,
        regression_text,
        write_dashboard,
    )
    from perflab.store.sql import METRICS, SqlStore

    try:
        metrics = list(metric or DEFAULT_METRICS)
        for m in metrics:
            if m not in METRICS:
                raise UserInputError(f"--metric {m!r}: unknown metric; known: {', '.join(METRICS)}")
        thresholds = [parse_threshold(t, METRICS) for t in (threshold or [])]
        with SqlStore(db) as store:
            history = store.history([*metrics, *(STAND_INS[m] for m in metrics if m in STAND_INS)],
                                    scenario=scenario)
            cells = store.cells_frame(scenario=scenario)
        if not len(cells):
            raise UserInputError(f"{db}: no runs{f' of scenario {scenario}' if scenario else ''} in the results store")
        d = build_dashboard(history, cells, out, metrics=metrics, thresholds=thresholds, scenario=scenario,
                            units=_night_units(db))
        page = write_dashboard(d, out)
        if junit is not None:
            _write_junit(junit, dashboard_junit(d))
    except STORED_INPUT_ERRORS as exc:
        fail(exc, EXIT_BAD_INPUT)
    for n in d.notes:
        typer.echo(f"perflab: warning: {n}", err=True)
    for s in d.regressions:
        typer.echo(f"REGRESSION {regression_text(s)}")
    for f in d.flaky:
        typer.echo(f"flaky {f.key[0]}/{f.key[1]}: {f.flips} flips, not ok {f.not_ok} of {f.nights} nights")
    typer.echo(f"dashboard: {page}  ({d.runs} runs, {len(d.cells)} cells, {len(d.regressions)} regression(s), "
               f"{len(d.flaky)} flaky)")
    raise typer.Exit(EXIT_FAILED if fail_on_regression and d.regressions else EXIT_OK)


store_app = typer.Typer(no_args_is_help=True, help="The results store: what it holds, and indexing run folders into it.")

StoreDbOption = Annotated[str, typer.Option("--db", envvar="PERFLAB_DB", help="a SQLite file, sqlite:///path or "
                                            "postgresql://…")]


@store_app.command("info")
def store_info(
    db: StoreDbOption,
) -> None:
    """Where the store is, its schema revision, and the runs it holds."""
    from perflab.store.sql import DB_SCHEMA_VERSION, SqlStore

    try:
        with SqlStore(db) as store:
            rev = store.revision()
            cells = store.cells_frame()
            ids = store.run_ids()
    except STORED_INPUT_ERRORS as exc:
        fail(exc, EXIT_BAD_INPUT)
    typer.echo(f"store: {store.where}")
    typer.echo(f"schema: {DB_SCHEMA_VERSION} (alembic revision {rev})")
    typer.echo(f"runs: {len(ids)}" + (f" (newest {ids[-1]})" if ids else ""))
    if len(cells):
        for scen, grp in cells.groupby("scenario", sort=True):
            typer.echo(f"  {scen}: {grp['run_id'].nunique()} run(s), {grp['device_serial'].nunique()} device(s), "
                       f"{len(grp)} cell record(s)")


@store_app.command("index")
def store_index(
    run_dirs: Annotated[list[Path], typer.Argument(help="run folders, or folders of run folders (a night, "
                                                   "reports/<scenario>)")],
    db: StoreDbOption,
) -> None:
    """Index run folders into the store (idempotent): e.g. old runs into the rack's PostgreSQL."""
    from perflab.report.compare import load_sides
    from perflab.store.sql import SqlStore

    try:
        sides = [s for p in run_dirs for s in load_sides(p)]
        with SqlStore(db) as store:
            for side in sides:
                if side.folder is None:  # load_sides reads folders: never
                    continue
                store.index_run(side.run, side.folder.resolve())
                typer.echo(f"indexed {side.run.run_id} ({side.run.scenario.name}, {len(side.run.cells)} cells)")
    except STORED_INPUT_ERRORS as exc:
        fail(exc, EXIT_BAD_INPUT)
    typer.echo(f"{len(sides)} run(s) indexed in {store.where}")
