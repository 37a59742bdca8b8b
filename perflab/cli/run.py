"""``perflab run`` and ``perflab report``: measure a scenario; rebuild a run's page."""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from perflab.cli.errors import EXIT_BAD_INPUT, fail
from perflab.cli.options import number_option
from perflab.errors import PerflabError, StoreError, UserInputError

if TYPE_CHECKING:
    from perflab.scenario import LoadedScenario
    from perflab.store.results import CellRecord, RunRecord

REPORTS_ROOT = Path("reports")


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
    are still restored, and the INCOMPLETE page is written from results.json). Finish such a
    run with --resume."""
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
        # perflab's own frames cannot be corrupt: a long synthetic clip is not rendered twice
        warnings = [WarningRecord(code=w.kind, message=str(w))
                    for w in validate_scenario(loaded, decode_generated=False)]
        if device is None and previous is not None:  # a resume goes back to the run's own devices
            serials = sorted({p.serial for p in previous.planned})
            device = serials[0] if len(serials) == 1 else "all"
        devices = select_devices(device, loaded.scenario.tuning)
    except PerflabError as exc:  # planning reads the command's inputs: whatever fails there is bad input
        fail(exc, EXIT_BAD_INPUT)

    if not quiet:
        verb = "resume" if previous is not None else "run"
        typer.echo(f"perflab {verb} {loaded.scenario.name} [{run_id}] → {folder}\n"
                   f"  devices: {', '.join(d.serial for d in devices)}; {len(cells)} cells each:\n"
                   + "\n".join(f"    {c.cell_id}{'  (baseline)' if c.baseline else ''}" for c in cells))
    for w in warnings:
        typer.echo(f"perflab: warning: {w.message}", err=True)
    _load_page_writer(report)
    progress = make_progress(_cell_line, quiet=quiet)
    stop = StopController()

    def first_signal(name: str) -> None:
        progress.note(f"perflab: {name}: stopping — cancelling the running cell and restoring devices "
                      "(press again to exit at once)")

    def second_signal() -> None:  # the process exits right after: the page from results.json as it is
        os.write(2, _page_after_second_signal(folder, report).encode())

    try:
        with signals_stop(stop, on_first=first_signal, on_second=second_signal):
            outcome = run_scenario(loaded, devices, folder, run_id=run_id, progress=progress, stop=stop,
                                   previous=previous, options=RunOptions(reconnect_wait_s=reconnect_wait_s),
                                   run_warnings=warnings)
            stopping = stop.stopped
            if stopping:  # a second signal while the INCOMPLETE page is written still leaves one
                _index_and_render(outcome.run, folder, db or str(reports_dir / "perflab.sqlite"), report, quiet)
    except PerflabError as exc:
        fail(exc)
    if not stopping:
        _index_and_render(outcome.run, folder, db or str(reports_dir / "perflab.sqlite"), report, quiet)
    typer.echo(f"  results: {outcome.folder.results_path}")
    if stop.stopped:
        not_ok = sum(1 for c in outcome.run.cells if c.status.value != "ok")
        typer.echo(f"perflab: run INCOMPLETE ({stop.reason}); {not_ok} cell(s) not ok. Finish it with: "
                   f"perflab run --resume {folder}", err=True)
    raise typer.Exit(outcome.exit_code)


def _load_page_writer(report: bool) -> None:
    """Import the page writer before measuring, not on the way out: a second Ctrl-C that lands
    while the first one's page is being imported would find the module half-initialised (an
    ImportError in the handler) and leave no page."""
    if report:
        importlib.import_module("perflab.report.html")


def _page_after_second_signal(folder: Path, report: bool) -> str:
    """Write the run's INCOMPLETE page from its results.json (saved after every cell) before a
    second Ctrl-C exits; what to tell the user, either way."""
    finish = f"finish the run with: perflab run --resume {folder}"
    if not report:
        return f"perflab: {finish}\n"
    try:
        from perflab.report.html import render_run_report

        return f"perflab: report (INCOMPLETE): {render_run_report(folder)}; {finish}\n"
    except PerflabError as exc:
        return _not_rendered(folder, str(exc), finish)
    except Exception:  # noqa: BLE001 - the interrupted thread may have left a module half-imported
        return _page_in_a_fresh_process(folder, finish)


def _not_rendered(folder: Path, why: str, finish: str) -> str:
    return f"perflab: report not rendered ({why}); write it with: perflab report {folder}; {finish}\n"


def _page_in_a_fresh_process(folder: Path, finish: str) -> str:
    """The signal handler runs between two bytecodes of the main thread, which may be inside an
    import the page needs (matplotlib's backend and PIL's plugins are imported on first use):
    that module is half-initialised in this process for good (an ImportError or AttributeError
    here). A fresh interpreter has no such state: ``perflab report`` renders the same page."""
    import subprocess
    import sys

    try:
        r = subprocess.run([sys.executable, "-m", "perflab", "report", str(folder)], capture_output=True,
                           text=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return _not_rendered(folder, type(exc).__name__, finish)
    if r.returncode != 0:
        return _not_rendered(folder, (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1], finish)
    return f"perflab: report (INCOMPLETE): {r.stdout.strip()}; {finish}\n"


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


def report_cmd(run_dir: Annotated[Path, typer.Argument(help="a run folder holding results.json")]) -> None:
    """Rebuild index.html from a run folder alone."""
    from perflab.lab.nightly import note_page_rebuilt
    from perflab.report.html import render_run_report

    try:
        page = render_run_report(run_dir)
    except PerflabError as exc:  # the run folder is the input: whatever fails is bad input
        fail(exc, EXIT_BAD_INPUT)
    note_page_rebuilt(run_dir)  # a nightly unit whose page had failed: its record says it is there now
    typer.echo(str(page))


