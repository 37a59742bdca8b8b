"""The ``perflab`` command: its app, global options, the table of its commands, and ``main``.

Each command group is one module of perflab.cli (run, scenario, models, devices, trace, meter,
emulate, rack, matrix, compare, ...); exit codes and the error line are perflab.cli.errors.
:data:`COMMANDS` names every command with its module and its one-line help, and a command's
module is imported only when that command is given its arguments (to run, to print its own
``--help``, to complete them): ``perflab --help`` and the completion of a command's name read the
table alone, so that starting perflab does not import numpy, adbutils or the phone emulator.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from perflab import __version__
from perflab.cli.errors import EXIT_OK, error_line, exit_code, internal_error
from perflab.errors import PerflabError

if TYPE_CHECKING:  # typer vendors click (typer._click); perflab does not depend on click itself
    from typer._click import Command as ClickCommand
    from typer._click import Context as ClickContext


@dataclass(frozen=True)
class CommandEntry:
    """One command of ``perflab``: a function (``perflab run``) or a typer app of commands
    (``perflab models ...``), found as ``module.attr``, with the one line ``perflab --help`` lists.

    ``help`` is also the command's own ``--help`` text, unless ``own_help``: then that is the
    command's docstring, whose first paragraph is ``help`` (a test keeps them the same)."""

    name: str
    module: str
    attr: str
    help: str
    own_help: bool = False

    def load(self) -> typer.Typer | Callable[..., Any]:
        """The typer app or the command function (imports its module)."""
        target: typer.Typer | Callable[..., Any] = getattr(importlib.import_module(self.module), self.attr)
        return target


# The order of ``perflab --help``: the commands, then the command groups.
COMMANDS: tuple[CommandEntry, ...] = (
    CommandEntry("run", "perflab.cli.run", "run",
            "Run a scenario on devices and write results.json, samples and an HTML report.", own_help=True),
    CommandEntry("report", "perflab.cli.run", "report_cmd", "Rebuild index.html from a run folder alone."),
    CommandEntry("plan", "perflab.cli.plan", "plan_cmd",
            "Split planner: which layer runs on which processor, measured, solved exactly, run and checked."),
    CommandEntry("emulate", "perflab.cli.emulate", "emulate",
            "Start emulated phones behind the real adb server (until Ctrl-C)."),
    CommandEntry("nightly", "perflab.cli.rack", "nightly",
            "A night on the rack: every phone × scenario, here or on a PostgreSQL queue."),
    CommandEntry("worker", "perflab.cli.rack", "worker", "A rack host's worker on the PostgreSQL task queue."),
    CommandEntry("matrix", "perflab.cli.matrix", "matrix_cmd",
            "Compatibility matrix of stored runs: devices × models, coverage, gaps."),
    CommandEntry("compare", "perflab.cli.compare", "compare_cmd",
            "Per-cell changes between two runs with confidence intervals; exit 1 on a regression."),
    CommandEntry("dashboard", "perflab.cli.compare", "dashboard_cmd",
            "Nightly trends from the results store: change points, regressions, flaky cells (offline HTML)."),
    CommandEntry("import", "perflab.cli.importer", "import_cmd",
            "Import captures measured elsewhere (benchmark_model logs, the benchmark app's logcat) as IMPORTED "
            "cells with their provenance."),
    CommandEntry("scenario", "perflab.cli.scenario", "app", "Validate scenarios and print their schema."),
    CommandEntry("models", "perflab.cli.models", "app", "The SR model zoo: list, build, train, convert, analyze."),
    CommandEntry("devices", "perflab.cli.devices", "app", "Phones over adb: list, probe, restore."),
    CommandEntry("profile", "perflab.cli.trace", "profile_app", "TFLite op profiles from benchmark_model logs."),
    CommandEntry("trace", "perflab.cli.trace", "trace_app", "Kernel traces: summary, attribution, Perfetto export."),
    CommandEntry("meter", "perflab.cli.meter", "app", "Power meters over serial (SCPI, PPK2, UM): read, emulate."),
    CommandEntry("rack", "perflab.cli.rack", "rack_app", "Rack files: hosts, their phones, scenarios, limits."),
    CommandEntry("store", "perflab.cli.compare", "store_app", "The results store: info, index run folders into it."),
)


class _Listed(TyperCommand):
    """A command as ``perflab --help`` and the completion of command names see it: its name and
    one-line help from :data:`COMMANDS`, nothing imported. Given its arguments, it is the real
    command: :meth:`make_context` is where click (and typer's completion) starts every command."""

    def __init__(self, command: CommandEntry) -> None:
        super().__init__(command.name, help=command.help)
        self.command = command

    def make_context(self, info_name: str | None, args: list[str], parent: ClickContext | None = None,
                     **extra: Any) -> ClickContext:
        return _click_command(self.command).make_context(info_name, args, parent=parent, **extra)


class _LazyGroup(TyperGroup):
    """The top-level group: every command of :data:`COMMANDS`, each imported when it is used."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for command in COMMANDS:
            self.commands.setdefault(command.name, _Listed(command))


@functools.cache
def _click_command(command: CommandEntry) -> ClickCommand:
    """``command`` built exactly as mounting it on :data:`app` would build it (same help, same
    rich markup, same error settings)."""
    holder = typer.Typer(rich_markup_mode=app.rich_markup_mode, suggest_commands=app.suggest_commands,
                         pretty_exceptions_short=app.pretty_exceptions_short)
    target = command.load()
    if isinstance(target, typer.Typer):
        if command.own_help:
            holder.add_typer(target, name=command.name)
        else:
            holder.add_typer(target, name=command.name, help=command.help)
    else:
        holder.command(command.name, help=None if command.own_help else command.help)(target)
    return typer.main.get_group(holder).commands[command.name]


app = typer.Typer(
    name="perflab", cls=_LazyGroup, no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
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

