"""perflab command line. User errors: one line, exit 2. Failed measurements: exit 1."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from perflab import __version__
from perflab.core.numbers import number_option
from perflab.errors import PerflabError, StoreError, UserInputError
from perflab.lab.lifecycle import EXIT_SIGINT

if TYPE_CHECKING:
    from perflab.scenario import LoadedScenario
    from perflab.store.results import CellRecord, RunRecord

app = typer.Typer(
    name="perflab", no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
    help="Measure what super-resolution models cost and give on devices, beside bicubic.",
)
scenario_app = typer.Typer(no_args_is_help=True, help="Validate scenarios and print their schema.")
app.add_typer(scenario_app, name="scenario")

REPORTS_ROOT = Path("reports")


def _fail(exc: PerflabError, code: int) -> NoReturn:
    typer.echo(f"perflab: error: {exc}", err=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"perflab {__version__}")
        raise typer.Exit(0)


@app.callback()
def _global_options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="print perflab's version and exit")] = False,
    config_dir: Annotated[Path | None, typer.Option(
        "--config-dir", envvar="PERFLAB_CONFIG_DIR", show_envvar=True,
        help="user config folder (your device_configs/, emulator_profiles/); "
             "default: $XDG_CONFIG_HOME/perflab or ~/.config/perflab")] = None,
) -> None:
    """Measure what super-resolution models cost and give on devices, beside bicubic."""
    if config_dir is not None:
        from perflab.core.paths import use_config_dir

        use_config_dir(config_dir)


@scenario_app.command("check")
def scenario_check(file: Annotated[Path, typer.Argument(help="scenario YAML")]) -> None:
    """Validate a scenario file (and decode its input files); print its cells."""
    from perflab.lab.validate import validate_scenario
    from perflab.scenario import load_scenario, plan_cells

    try:
        loaded = load_scenario(file)
        cells = plan_cells(loaded.scenario)
        warnings = validate_scenario(loaded, decode_inputs=True, decode_generated=False)
    except UserInputError as exc:
        _fail(exc, 2)
    for w in warnings:
        typer.echo(f"perflab: warning: {w}", err=True)
    typer.echo(f"{file}: ok — {len(cells)} cells per device")
    for c in cells:
        typer.echo(f"  {c.cell_id}{'  (baseline)' if c.baseline else ''}")


@scenario_app.command("schema")
def scenario_schema() -> None:
    """Print the scenario JSON Schema (for editor completion)."""
    from perflab.scenario.schema import Scenario

    typer.echo(json.dumps(Scenario.model_json_schema(by_alias=True), indent=2))


def _cell_line(rec: CellRecord) -> str:
    """One line per finished cell: what a user watching the run wants to see."""
    lat = rec.latency_ms
    med = ""
    if lat is not None and lat.median is not None:
        med = f" {lat.median:.1f} ms median"
    elif lat is not None and lat.mean is not None:
        med = f" {lat.mean:.1f} ms mean"
    q = f", PSNR-Y {rec.quality.psnr_y_db:.2f} dB" if rec.quality.psnr_y_db is not None else ""
    tag = " [EMULATED]" if rec.emulated else ""
    why = f" — {rec.reason}" if rec.reason else ""
    return f"  [{rec.device.serial}]{tag} {rec.cell_id}: {rec.status.value}{med}{q}{why}"


def _resume_scenario(resume: Path, scenario: Path | None) -> tuple[RunRecord, LoadedScenario]:
    """The earlier run and its scenario, which must be the same text the run was started with."""
    from perflab.scenario import load_scenario
    from perflab.store.runfolder import load_run

    try:
        previous = load_run(resume)
    except StoreError as exc:
        raise UserInputError(f"--resume: {exc}") from exc
    path = scenario if scenario is not None else Path(previous.scenario.file)
    if not path.is_file():
        raise UserInputError(f"{resume}: --resume: the run's scenario {path} is not here; name it: "
                             f"perflab run SCENARIO --resume {resume}")
    loaded = load_scenario(path)
    if hashlib.sha256(loaded.source_text.encode()).hexdigest() != previous.scenario.sha256:
        raise UserInputError(f"{path}: --resume: this scenario differs from the one {resume} was run with; "
                             "resuming would mix two scenarios in one run")
    return previous, loaded


def _plan_run(scenario: Path | None, out: Path | None, resume: Path | None,
              reports_dir: Path) -> tuple[RunRecord | None, LoadedScenario, Path, str]:
    """(the run to resume or None, its scenario, the run folder, the run id)."""
    from perflab.scenario import load_scenario
    from perflab.store.runfolder import check_new_run_folder, new_run_id

    if resume is not None:
        if out is not None:
            raise UserInputError("--out and --resume: give one; --resume continues in the run's own folder")
        previous, loaded = _resume_scenario(resume, scenario)
        return previous, loaded, resume, previous.run_id
    if scenario is None:
        raise UserInputError("perflab run: give a scenario file (or --resume RUN_DIR)")
    if out is not None:
        check_new_run_folder(out)
    loaded = load_scenario(scenario)
    run_id = new_run_id()
    return None, loaded, out if out is not None else reports_dir / loaded.scenario.name / run_id, run_id


@app.command("run")
def run(
    scenario: Annotated[Path | None, typer.Argument(help="scenario YAML, e.g. scenarios/540p30.yaml")] = None,
    device: Annotated[str | None, typer.Option(help="local, a phone serial, or all; default: attached phones, else local")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="the run folder (new or empty); default: "
                                             "<reports-dir>/<scenario>/<run-id>")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="a run folder to finish: measure only its cells "
                                                "that are not ok, then rewrite its report")] = None,
    reports_dir: Annotated[Path, typer.Option(help="root of <scenario>/<run-id>/ folders")] = REPORTS_ROOT,
    db: Annotated[str | None, typer.Option(envvar="PERFLAB_DB", help="results store: a SQLite file or "
                                           "postgresql://… URL (default: <reports-dir>/perflab.sqlite)")] = None,
    report: Annotated[bool, typer.Option(help="render index.html")] = True,
    reconnect_wait_s: Annotated[float, number_option("--reconnect-wait-s", min=0, max=3600, help="how long a dropped phone is waited "
                                                    "for before its remaining cells fail")] = 60.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="print only cell results and where they are")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log what perflab does on each device")] = False,
) -> None:
    """Run a scenario on devices and write results.json, samples and an HTML report.

    Ctrl-C (or SIGTERM) stops the run cleanly: the running cell is cancelled, devices are
    restored and the report marks the run INCOMPLETE; a second Ctrl-C exits at once (devices
    are still restored). Finish such a run with --resume."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from perflab.lab.lifecycle import StopController, signals_stop
    from perflab.lab.progress import make_progress
    from perflab.lab.runner import RunOptions, run_scenario
    from perflab.lab.select import select_devices
    from perflab.lab.validate import validate_scenario
    from perflab.scenario import plan_cells
    from perflab.store.results import WarningRecord

    try:
        previous, loaded, folder, run_id = _plan_run(scenario, out, resume, reports_dir)
        if db is not None:
            from perflab.store.sql import normalize_url

            normalize_url(db)  # a store URL perflab cannot use is bad input before anything runs
        cells = plan_cells(loaded.scenario)
        warnings = [WarningRecord(code=w.kind, message=str(w)) for w in validate_scenario(loaded)]
        if device is None and previous is not None:  # a resume goes back to the run's own devices
            serials = sorted({p.serial for p in previous.planned})
            device = serials[0] if len(serials) == 1 else "all"
        devices = select_devices(device, loaded.scenario.tuning)
    except PerflabError as exc:
        _fail(exc, 2)

    def echo(text: str) -> None:
        if not quiet:
            typer.echo(text)

    verb = "resume" if previous is not None else "run"
    echo(f"perflab {verb} {loaded.scenario.name} [{run_id}] → {folder}")
    echo(f"  devices: {', '.join(d.serial for d in devices)}; {len(cells)} cells each:")
    for c in cells:
        echo(f"    {c.cell_id}{'  (baseline)' if c.baseline else ''}")
    for w in warnings:
        typer.echo(f"perflab: warning: {w.message}", err=True)
    progress = make_progress(_cell_line, quiet=quiet)
    stop = StopController()

    def first_signal(name: str) -> None:
        progress.note(f"perflab: {name}: stopping — cancelling the running cell and restoring devices "
                      "(press again to exit at once)")

    try:
        with signals_stop(stop, on_first=first_signal):
            outcome = run_scenario(loaded, devices, folder, run_id=run_id, progress=progress, stop=stop,
                                   previous=previous, options=RunOptions(reconnect_wait_s=reconnect_wait_s),
                                   run_warnings=warnings)
    except UserInputError as exc:
        _fail(exc, 2)
    except PerflabError as exc:
        _fail(exc, 1)
    _index_and_render(outcome.run, folder, db or str(reports_dir / "perflab.sqlite"), report, quiet)
    typer.echo(f"  results: {outcome.folder.results_path}")
    if stop.stopped:
        not_ok = sum(1 for c in outcome.run.cells if c.status.value != "ok")
        typer.echo(f"perflab: run INCOMPLETE ({stop.reason}); {not_ok} cell(s) not ok. Finish it with: "
                   f"perflab run --resume {folder}", err=True)
    raise typer.Exit(outcome.exit_code)


def _index_and_render(run_rec: RunRecord, folder: Path, db_url: str, report: bool, quiet: bool) -> None:
    """Print the answer per cell, then index the run and render its page; neither failure loses
    what was measured."""
    from perflab.report.cell_lines import cell_lines
    from perflab.store.sql import SqlStore

    for line in cell_lines(run_rec):
        typer.echo(line)

    try:
        with SqlStore(db_url) as store:
            store.index_run(run_rec, folder)
    except PerflabError as exc:
        typer.echo(f"perflab: warning: results index not updated: {exc}", err=True)
    if report:
        try:
            from perflab.report.html import render_run_report

            page = render_run_report(folder)
            if not quiet:
                typer.echo(f"  report: {page}")
        except PerflabError as exc:
            typer.echo(f"perflab: warning: report not rendered: {exc}", err=True)


@app.command("report")
def report_cmd(run_dir: Annotated[Path, typer.Argument(help="a run folder holding results.json")]) -> None:
    """Rebuild index.html from a run folder alone."""
    from perflab.report.html import render_run_report

    try:
        page = render_run_report(run_dir)
    except PerflabError as exc:
        _fail(exc, 2)
    typer.echo(str(page))


def _add_apps() -> None:
    from perflab.devices.cli import app as devices_app
    from perflab.emulator.cli import emulate
    from perflab.lab.rack_cli import nightly, rack_app, worker
    from perflab.report.compare_cli import compare_cmd, dashboard_cmd, store_app
    from perflab.report.matrix_cli import matrix_cmd
    from perflab.telemetry.cli import app as meter_app
    from perflab.tracing.cli import profile_app, trace_app
    from perflab.zoo.cli import app as models_app

    app.add_typer(models_app, name="models", help="The SR model zoo: list, build, train, convert, analyze.")
    app.add_typer(devices_app, name="devices", help="Phones over adb: list, probe, restore.")
    app.add_typer(profile_app, name="profile", help="TFLite op profiles from benchmark_model logs.")
    app.add_typer(trace_app, name="trace", help="Kernel traces: summary, attribution, Perfetto export.")
    app.add_typer(meter_app, name="meter", help="Power meters over serial (SCPI, PPK2, UM): read, emulate.")
    app.command("emulate", help="Start emulated phones behind the real adb server (until Ctrl-C).")(emulate)
    app.add_typer(rack_app, name="rack", help="Rack files: hosts, their phones, scenarios, limits.")
    app.command("nightly", help="A night on the rack: every phone × scenario, here or on a PostgreSQL queue.")(nightly)
    app.command("worker", help="A rack host's worker on the PostgreSQL task queue.")(worker)
    app.command("matrix", help="Compatibility matrix of stored runs: devices × models, coverage, gaps.")(matrix_cmd)
    app.command("compare", help="Per-cell changes between two runs with confidence intervals; exit 1 on a "
                "regression.")(compare_cmd)
    app.command("dashboard", help="Nightly trends from the results store: change points, regressions, flaky "
                "cells (offline HTML).")(dashboard_cmd)
    app.add_typer(store_app, name="store", help="The results store: info, index run folders into it.")


_add_apps()


def main() -> None:
    """Console entry point: user errors are one line with exit 2; no traceback reaches a user
    (a bug prints one line and where its traceback was written)."""
    try:
        app()
    except UserInputError as exc:
        typer.echo(f"perflab: error: {exc}", err=True)
        sys.exit(2)
    except PerflabError as exc:
        typer.echo(f"perflab: error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("perflab: interrupted", err=True)
        sys.exit(EXIT_SIGINT)
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug, shown as one line
        sys.exit(_internal_error(exc))


def _internal_error(exc: BaseException) -> int:
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="perflab-crash-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write("".join(traceback.format_exception(exc)))
    typer.echo(f"perflab: internal error: {type(exc).__name__}: {exc} (a bug; traceback in {path})", err=True)
    return 3
