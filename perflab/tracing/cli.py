"""``perflab profile …`` and ``perflab trace …`` commands.

Wired by perflab/cli.py as ``app.add_typer(profile_app, name="profile")`` and
``app.add_typer(trace_app, name="trace")``. Bad input: one line on stderr, exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from perflab.errors import PerflabError, SourceLocation, UserInputError

profile_app = typer.Typer(no_args_is_help=True, add_completion=False,
                          help="TFLite op profiles from benchmark_model logs.")
trace_app = typer.Typer(no_args_is_help=True, add_completion=False,
                        help="Kernel traces (ftrace text): summary, attribution, Perfetto export.")


def _fail(exc: PerflabError) -> NoReturn:
    typer.echo(f"perflab: error: {exc}", err=True)
    raise typer.Exit(2 if isinstance(exc, UserInputError) else 1)


def read_text_file(path: Path) -> str:
    """The file's text (undecodable bytes replaced); UserInputError naming the file if it
    cannot be read."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserInputError(f"cannot read: {exc.strerror or exc}", SourceLocation(str(path), None, None)) from exc
    return data.decode("utf-8", errors="replace")


@profile_app.command("parse")
def profile_parse(
    file: Annotated[Path, typer.Argument(help="benchmark_model output, a logcat capture, or its profiling CSV")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Per-node and per-node-type op times from benchmark_model's op profiling."""
    from perflab.tracing.opprofile import parse_op_profile, render_table, to_json

    try:
        prof = parse_op_profile(read_text_file(file), str(file))
    except PerflabError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(to_json(prof), indent=2))
    else:
        typer.echo(render_table(prof), nl=False)
