"""The ``perflab`` command: its app, global options, every command group mounted, and ``main``.

Each command group is one module of perflab.cli (run, scenario, models, devices, trace, meter,
emulate, rack, matrix, compare); exit codes and the error line are perflab.cli.errors.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from perflab import __version__
from perflab.cli.errors import EXIT_OK, error_line, exit_code, internal_error
from perflab.errors import PerflabError

app = typer.Typer(
    name="perflab", no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
    help="Measure what super-resolution models cost and give on devices, beside bicubic.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"perflab {__version__}")
        raise typer.Exit(EXIT_OK)


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


def _add_apps() -> None:
    """Mount every command group (the order is the order of ``perflab --help``)."""
    from perflab.cli.compare import compare_cmd, dashboard_cmd, store_app
    from perflab.cli.devices import app as devices_app
    from perflab.cli.emulate import emulate
    from perflab.cli.importer import import_cmd
    from perflab.cli.matrix import matrix_cmd
    from perflab.cli.meter import app as meter_app
    from perflab.cli.models import app as models_app
    from perflab.cli.plan import plan_cmd
    from perflab.cli.rack import nightly, rack_app, worker
    from perflab.cli.run import report_cmd, run
    from perflab.cli.scenario import app as scenario_app
    from perflab.cli.trace import profile_app, trace_app

    app.add_typer(scenario_app, name="scenario")
    app.command("run")(run)
    app.command("report")(report_cmd)
    app.command("plan", help="Split planner: which layer runs on which processor, measured, solved exactly, run and "
                "checked.")(plan_cmd)
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
    app.command("import", help="Import captures measured elsewhere (benchmark_model logs, the benchmark app's "
                "logcat) as IMPORTED cells with their provenance.")(import_cmd)
    app.add_typer(store_app, name="store", help="The results store: info, index run folders into it.")


_add_apps()


def main() -> None:
    """Console entry point: user errors are one line with exit 2; no traceback reaches a user
    (a bug prints one line and where its traceback was written)."""
    try:
        app()
    except PerflabError as exc:
        error_line(exc)
        sys.exit(exit_code(exc))
    except KeyboardInterrupt as exc:
        typer.echo("perflab: interrupted", err=True)
        sys.exit(exit_code(exc))
    except Exception as exc:  # noqa: BLE001 - the last line of defence: a bug, shown as one line
        sys.exit(internal_error(exc))

