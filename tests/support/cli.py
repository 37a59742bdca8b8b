"""Every command of ``perflab``, walked from the command table (:data:`perflab.cli.main.COMMANDS`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import typer

from perflab.cli.main import COMMANDS


def _app_commands(app: typer.Typer, path: list[str]) -> Iterator[tuple[list[str], Callable[..., Any]]]:
    if app.registered_callback is not None and app.registered_callback.callback is not None:
        yield path, app.registered_callback.callback
    for c in app.registered_commands:
        assert c.callback is not None
        yield [*path, c.name or c.callback.__name__], c.callback
    for g in app.registered_groups:
        assert g.typer_instance is not None and isinstance(g.name, str)
        yield from _app_commands(g.typer_instance, [*path, g.name])


def cli_commands() -> Iterator[tuple[list[str], Callable[..., Any]]]:
    """``(["models", "build"], its function)`` for every command and group callback (imports them all)."""
    for command in COMMANDS:
        target = command.load()
        if isinstance(target, typer.Typer):
            yield from _app_commands(target, [command.name])
        else:
            yield [command.name], target
