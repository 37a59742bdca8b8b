"""perflab command line. User errors: one line, exit 2. Failed measurements: exit 1."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from perflab.errors import PerflabError, UserInputError

app = typer.Typer(
    name="perflab", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Measure what super-resolution models cost and give on devices, beside bicubic.",
)
scenario_app = typer.Typer(no_args_is_help=True, help="Validate scenarios and print their schema.")
app.add_typer(scenario_app, name="scenario")

REPORTS_ROOT = Path("reports")


def _fail(exc: PerflabError, code: int) -> NoReturn:
    typer.echo(f"perflab: error: {exc}", err=True)
    raise typer.Exit(code)


@app.callback()
def _global_options(
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
    """Validate a scenario file; print its cells."""
    from perflab.scenario import load_scenario, plan_cells

    try:
        loaded = load_scenario(file)
        cells = plan_cells(loaded.scenario)
    except UserInputError as exc:
        _fail(exc, 2)
    typer.echo(f"{file}: ok — {len(cells)} cells per device")
    for c in cells:
        typer.echo(f"  {c.cell_id}{'  (baseline)' if c.baseline else ''}")


@scenario_app.command("schema")
def scenario_schema() -> None:
    """Print the scenario JSON Schema (for editor completion)."""
    from perflab.scenario.schema import Scenario

    typer.echo(json.dumps(Scenario.model_json_schema(by_alias=True), indent=2))


@app.command("run")
def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML, e.g. scenarios/540p30.yaml")],
    device: Annotated[str | None, typer.Option(help="local, a phone serial, or all; default: attached phones, else local")] = None,
    out: Annotated[Path | None, typer.Option(help="write the run folder exactly here")] = None,
    reports_dir: Annotated[Path, typer.Option(help="root of reports/<scenario>/<run-id>/")] = REPORTS_ROOT,
    db: Annotated[Path | None, typer.Option(help="SQLite results index (default: <reports-dir>/perflab.sqlite)")] = None,
    report: Annotated[bool, typer.Option(help="render index.html")] = True,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run a scenario on devices and write results.json, samples and an HTML report."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from perflab.lab.runner import run_scenario
    from perflab.lab.select import select_devices
    from perflab.scenario import load_scenario, plan_cells
    from perflab.store.runfolder import new_run_id

    try:
        loaded = load_scenario(scenario)
        cells = plan_cells(loaded.scenario)
        devices = select_devices(device, loaded.scenario.tuning)
    except UserInputError as exc:
        _fail(exc, 2)
    except PerflabError as exc:
        _fail(exc, 2)
    run_id = new_run_id()
    folder = out if out is not None else reports_dir / loaded.scenario.name / run_id
    typer.echo(f"perflab run {loaded.scenario.name} [{run_id}] → {folder}")
    typer.echo(f"  devices: {', '.join(d.serial for d in devices)}; {len(cells)} cells each:")
    for c in cells:
        typer.echo(f"    {c.cell_id}{'  (baseline)' if c.baseline else ''}")

    def on_cell(rec: object) -> None:
        from perflab.store.results import CellRecord

        assert isinstance(rec, CellRecord)
        lat = rec.latency_ms
        med = f"{lat.median:.1f} ms median" if lat and lat.median is not None else (
            f"{lat.mean:.1f} ms mean" if lat and lat.mean is not None else "")
        q = f", PSNR-Y {rec.quality.psnr_y_db:.2f} dB" if rec.quality.psnr_y_db is not None else ""
        tag = " [EMULATED]" if rec.emulated else ""
        why = f" — {rec.reason}" if rec.reason else ""
        typer.echo(f"  [{rec.device.serial}]{tag} {rec.cell_id}: {rec.status.value} {med}{q}{why}")

    try:
        outcome = run_scenario(loaded, devices, folder, run_id=run_id, on_cell=on_cell)
    except UserInputError as exc:
        _fail(exc, 2)
    except PerflabError as exc:
        _fail(exc, 1)
    from perflab.store.db import ResultsDB

    try:
        with ResultsDB(db or reports_dir / "perflab.sqlite") as rdb:
            rdb.index_run(outcome.run, folder)
    except PerflabError as exc:
        typer.echo(f"perflab: warning: results index not updated: {exc}", err=True)
    if report:
        try:
            from perflab.report.html import render_run_report

            page = render_run_report(folder)
            typer.echo(f"  report: {page}")
        except PerflabError as exc:
            typer.echo(f"perflab: warning: report not rendered: {exc}", err=True)
    typer.echo(f"  results: {outcome.folder.results_path}")
    raise typer.Exit(outcome.exit_code)


@app.command("report")
def report_cmd(run_dir: Annotated[Path, typer.Argument(help="a run folder holding results.json")]) -> None:
    """Rebuild index.html from a run folder alone."""
    from perflab.report.html import render_run_report

    try:
        page = render_run_report(run_dir)
    except PerflabError as exc:
        _fail(exc, 2)
    typer.echo(str(page))


def _add_optional_apps() -> None:
    try:
        from perflab.zoo.cli import app as models_app

        app.add_typer(models_app, name="models", help="The SR model zoo: list, build, train, convert, analyze.")
    except ImportError:
        pass
    try:
        from perflab.devices.cli import app as devices_app

        app.add_typer(devices_app, name="devices", help="Phones over adb: list, probe, restore.")
    except ImportError:
        pass
    try:
        from perflab.emulator.cli import emulate

        app.command("emulate", help="Start emulated phones behind the real adb server (until Ctrl-C).")(emulate)
    except ImportError:
        pass


_add_optional_apps()


def main() -> None:
    try:
        app()
    except UserInputError as exc:
        typer.echo(f"perflab: error: {exc}", err=True)
        sys.exit(2)
